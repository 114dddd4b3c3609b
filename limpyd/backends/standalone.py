"""`RedisBackend`: one real Redis server, through redis-py."""

from __future__ import annotations

from typing import Any

import redis

from limpyd.backends.base import Backend, client_options, redact_url, with_defaults
from limpyd.backends.urls import redis_url_db

__all__ = ["RedisBackend"]


class RedisBackend(Backend):
    """A real Redis server through redis-py; arguments are those of `redis.Redis`."""

    kind = "redis"

    def __init__(self, url: str | None = None, **redis_kwargs: Any) -> None:
        if url is not None:
            redis_url_db(url)
        self.url = url
        self.redis_kwargs = with_defaults(redis_kwargs)

    def client(self) -> redis.Redis:
        options = client_options(self.redis_kwargs, self.url)
        if self.url is not None:
            return redis.Redis.from_url(self.url, **options)
        return redis.Redis(**options)

    def describe(self) -> str:
        if self.url is not None:
            return redact_url(self.url)
        kwargs = self.redis_kwargs
        if kwargs.get("unix_socket_path"):
            return f"unix://{kwargs['unix_socket_path']}?db={kwargs.get('db', 0)}"
        host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
        return f"redis://{host}:{port}/{kwargs.get('db', 0)}"
