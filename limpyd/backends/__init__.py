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
from urllib.parse import urlsplit

from limpyd.backends.base import CLIENT_DEFAULTS, Backend, redact_url
from limpyd.backends.cluster import CLUSTER_SCHEMES, RedisClusterBackend
from limpyd.backends.fake import FakeBackend
from limpyd.backends.standalone import RedisBackend
from limpyd.backends.urls import fake_url, scrubbed

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
    `fakeredis://NAME[/DB]` (in memory).

    The URL is checked here (`limpyd.backends.urls`): a db that is not a number, two dbs,
    options an in-memory server does not have, or a fake db out of range are refused."""
    try:
        return _backend_of(url, **kwargs)
    except ValueError as error:  # (an ImplementationError too: its type kept)
        shown = scrubbed(url, str(error))
        if shown == str(error):
            raise
        raise type(error)(shown) from None


def _backend_of(url: str, **kwargs: Any) -> Backend:
    scheme = urlsplit(url).scheme
    if scheme == "fakeredis":
        name, db = fake_url(url)
        return FakeBackend(name=name, db=db, **kwargs)
    if scheme in ("redis", "rediss", "unix"):
        return RedisBackend(url=url, **kwargs)
    if scheme in CLUSTER_SCHEMES:
        return RedisClusterBackend(url=url, **kwargs)
    raise ValueError(
        f"Unsupported database URL {redact_url(url)!r}: use redis://, rediss://, unix://, "
        "redis+cluster://, rediss+cluster:// or fakeredis://"
    )
