"""`RedisDatabase`: the connection to Redis and the registry of the models it hosts."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import redis

from limpyd.backends import Backend, RedisBackend, backend_from_url
from limpyd.exceptions import ImplementationError

if TYPE_CHECKING:
    from limpyd.model import RedisModel

__all__ = ["RedisDatabase"]

T = TypeVar("T")
#: A database class: `PipelineDatabase.from_url(...)` gives a PipelineDatabase.
_Database = TypeVar("_Database", bound="RedisDatabase")

DEFAULT_CONNECTION_SETTINGS: dict[str, Any] = {"host": "localhost", "port": 6379, "db": 0}


class RedisDatabase:
    """A Redis database hosting models.

    `RedisDatabase(host=..., port=..., db=..., **redis_kwargs)` connects to a real server
    through redis-py (defaults: localhost:6379, db 0); `RedisDatabase(backend=FakeBackend())`
    or `RedisDatabase.from_url("fakeredis://name")` to the in-memory one. The connection is
    opened on first use.
    """

    #: How many times a write made stale by concurrent writers is computed again.
    max_write_attempts: int = 50
    #: First and largest pause (seconds, randomized) between two attempts.
    retry_backoff: float = 0.001
    retry_backoff_max: float = 0.05

    def __init__(self, backend: Backend | None = None, **redis_kwargs: Any) -> None:
        self._models: dict[str, type[RedisModel]] = {}
        self._derived: dict[Hashable, Any] = {}
        self._lock = threading.RLock()
        self._local = threading.local()
        self.backend: Backend
        self._client: redis.Redis | None = None
        self.connect(backend=backend, **redis_kwargs)

    @classmethod
    def from_url(cls: type[_Database], url: str, **kwargs: Any) -> _Database:
        """A database for `redis://`, `rediss://`, `unix://`, `redis+cluster://HOST:PORT[,...]`,
        `rediss+cluster://` or `fakeredis://NAME[/DB]` URLs (see `backend_from_url`)."""
        return cls(backend=backend_from_url(url, **kwargs))

    def connect(self, backend: Backend | None = None, **settings: Any) -> RedisDatabase:
        """Point this database elsewhere: new redis-py settings, or another backend.

        Models using this database keep working: they always go through it. The previous
        client is not closed here (a thread may be in the middle of a command on it): it
        closes its connections once nothing uses it any more.
        """
        if backend is not None and settings:
            raise ImplementationError(
                "RedisDatabase.connect() takes either a backend or connection settings, not both"
            )
        if backend is None:
            backend = RedisBackend(**{**DEFAULT_CONNECTION_SETTINGS, **settings})
        elif not isinstance(backend, Backend):
            raise ImplementationError(f"{backend!r} is not a limpyd backend")
        for model in self.models.values():
            model._check_backend(backend)
        with self._lock:
            self.backend = backend
            self._client = None
        return self

    @property
    def client(self) -> redis.Redis:
        """The redis-py client of this database (scripts and checks always use it)."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self.backend.client()
                client = self._client
        return client

    @property
    def connection(self) -> Any:
        """Where field commands go: the client (a PipelineDatabase swaps in its pipeline)."""
        return self.client

    @property
    def pipelined(self) -> bool:
        """Whether field commands are being queued in a pipeline (see PipelineDatabase)."""
        return False

    def scan_keys(self, match: str | None = None, count: int | None = None) -> Iterator[str]:
        """Iterate (with SCAN) over the keys of the whole database, or those matching `match`."""
        return self.client.scan_iter(match=match, count=count)

    # Model registry ---------------------------------------------------------------------

    def _add_model(self, model: type[RedisModel]) -> None:
        """Host `model`; refuse a second model with the same namespace and name."""
        key = model._meta.full_name
        with self._lock:
            existing = self._models.get(key)
            if (
                existing is not None
                and existing is not model
                and not _same_definition(existing, model)
            ):
                raise ImplementationError(
                    f"Cannot host model {model.__module__}.{model.__qualname__} in {self!r}: "
                    f"model {existing.__module__}.{existing.__qualname__} already uses the "
                    f"name {model.__name__!r} in namespace {model.namespace!r}"
                )
            self._models[key] = model
            self._derived.clear()

    def _remove_model(self, model: type[RedisModel]) -> None:
        with self._lock:
            if self._models.get(model._meta.full_name) is model:
                del self._models[model._meta.full_name]
                self._derived.clear()

    def get_model(self, name: str, namespace: str = "") -> type[RedisModel] | None:
        """The model hosted here under `namespace` and `name` (case-insensitive), if any."""
        return self._models.get(f"{namespace}:{name.lower()}")

    def derived(self, key: Hashable, compute: Callable[[], T]) -> T:
        """`compute()`, kept under `key` until the set of hosted models changes (for what is
        derived from it, e.g. the relations between models)."""
        with self._lock:
            if key not in self._derived:
                self._derived[key] = compute()
            value: T = self._derived[key]  # what `compute` gave for this key
            return value

    @property
    def models(self) -> dict[str, type[RedisModel]]:
        """The hosted models, by `namespace:name`."""
        return dict(self._models)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.backend.describe()}>"


def _same_definition(a: type, b: type) -> bool:
    """A module re-imported (same module and qualified name) redefines the same model."""
    return (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)
