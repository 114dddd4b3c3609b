"""Backends: where a database's connection comes from.

A backend makes redis-py-compatible clients; the ORM only ever talks to such a client and
never asks which backend made it (the shape of httpx's transports):

- `RedisBackend` (`standalone`): one real server, through redis-py;
- `RedisClusterBackend` (`cluster`): a Redis Cluster, through redis-py's `RedisCluster`;
- `FakeBackend` (`fake`): an in-memory fakeredis server, in this process.

Where a backend's server behaves unlike Redis in a way the ORM meets, the difference is
absorbed in that backend's module, once.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from limpyd.backends.base import CLIENT_DEFAULTS, Backend
from limpyd.backends.cluster import CLUSTER_SCHEMES, RedisClusterBackend
from limpyd.backends.fake import FakeBackend
from limpyd.backends.standalone import RedisBackend

__all__ = [
    "CLIENT_DEFAULTS",
    "Backend",
    "FakeBackend",
    "RedisBackend",
    "RedisClusterBackend",
    "backend_from_url",
]


def backend_from_url(url: str, **kwargs: Any) -> Backend:
    """The backend of a URL: `redis://`, `rediss://`, `unix://` (one server),
    `redis+cluster://HOST:PORT[,HOST:PORT...]`, `rediss+cluster://` (a cluster), or
    `fakeredis://NAME[/DB]` (in memory)."""
    parts = urlsplit(url)
    if parts.scheme == "fakeredis":
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise ValueError(f"Invalid fakeredis URL {url!r}: the path must be a db number")
        return FakeBackend(name=unquote(parts.netloc) or None, db=int(path or 0), **kwargs)
    if parts.scheme in ("redis", "rediss", "unix"):
        return RedisBackend(url=url, **kwargs)
    if parts.scheme in CLUSTER_SCHEMES:
        return RedisClusterBackend(url=url, **kwargs)
    raise ValueError(
        f"Unsupported database URL {url!r}: use redis://, rediss://, unix://, "
        "redis+cluster://, rediss+cluster:// or fakeredis://"
    )
