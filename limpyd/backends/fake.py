"""`FakeBackend`: an in-memory fakeredis server, in this process.

The few places where fakeredis behaves unlike Redis in a way the ORM meets are absorbed
here, once, each covered by a test that runs on both backends:

- INCRBYFLOAT / HINCRBYFLOAT: Redis adds in long double precision and prints the result
  with 17 decimals, trailing zeros removed (`0.1 + 0.2` gives `0.3`); fakeredis adds
  binary doubles and prints their repr (`0.30000000000000004`). The fake server here adds
  the two decimal texts exactly and prints them the way Redis does.
- INFO: fakeredis has no server version to report; `server_info()` answers for both.
- SADD: fakeredis wakes a set's WATCHers even when no member is added; the fake server
  here, as Redis, only when one is.
- EVAL_RO / EVALSHA_RO: fakeredis has neither; the fake server runs them as EVAL / EVALSHA
  (it has no replicas; on Redis the read-only call is what refuses a write).
- Script compilation: fakeredis compiles a script's text on every call (about 2 ms for
  limpyd's), Redis once; the fake server here keeps each text's compiled function.
- Commands: a fakeredis client packs each command into RESP text that the fake server then
  parses back (quadratic in a command's size); the fake connection here hands the server
  the command's byte strings, as encoded by redis-py. A plain client's commands skip
  redis-py's pool, retries and reply queue too: each goes to the server at once, on a
  connection the client keeps per thread (see `fake_connection.client_class`), and the reads
  limpyd sends most are answered from the server's data (`fake_connection._client_read`).
- limpyd's functions: fakeredis runs Lua through lupa, every `redis.call` crossing into its
  Python command machinery (the fake was slower than a loopback Redis); the fake server
  here runs a loaded limpyd function natively (see `limpyd.backends.native`).
- Importing: fakeredis imports numpy, when installed, for its vector sets only; it is
  imported at its first use instead (half of fakeredis's import time, at every session).
- Connecting: no CLIENT SETINFO (two commands per connection, for a real server's CLIENT
  LIST); the plugin's emptying of the server after each test reuses one client.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.util
import sys
import threading
import types
from typing import Any

import redis

from limpyd.backends import fake_connection
from limpyd.backends.base import Backend, with_defaults
from limpyd.backends.urls import FAKE_DATABASES

__all__ = ["FAKE_EXTRA", "FakeBackend", "fakeredis_module"]


def fakeredis_module() -> Any:
    """The fakeredis package, or an ImportError saying what to install (it is an extra:
    production installs of limpyd have no in-memory server)."""
    fakeredis = sys.modules.get("fakeredis")
    if fakeredis is not None and not getattr(fakeredis.__spec__, "_initializing", False):
        return fakeredis
    try:
        fakeredis = _import_fakeredis()
        importlib.import_module("lupa")  # FUNCTION LOAD compiles limpyd's library with it
    except ImportError as exc:
        raise ImportError(f"{FAKE_EXTRA} ({exc})") from None
    return fakeredis


class _DeferredNumpy(types.ModuleType):
    """What fakeredis's own modules get for `import numpy`: numpy, imported at its first use.
    fakeredis imports numpy (when installed) for its vector set commands only, and it is
    half of fakeredis's import time, which every test session on this backend pays. (A
    broken numpy install then fails those commands, where fakeredis would not offer them.)"""

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module("numpy"), name)

    def __dir__(self) -> list[str]:
        return dir(importlib.import_module("numpy"))


_import_lock = threading.Lock()


def _import_fakeredis() -> Any:
    """`import fakeredis`, its `import numpy` answered by a `_DeferredNumpy` (unless numpy is
    imported already, or missing). Only fakeredis's modules get it, and nothing else changes
    in `sys.modules`: another thread importing numpy meanwhile gets numpy."""
    with _import_lock:
        numpy_missing = "numpy" not in sys.modules and importlib.util.find_spec("numpy") is None
        if "fakeredis" in sys.modules or "numpy" in sys.modules or numpy_missing:
            import fakeredis  # waits for another thread's import of it to end

            return fakeredis
        deferred = _DeferredNumpy("numpy")
        importer = builtins.__import__

        def deferring(name: str, globals: Any = None, *args: Any, **kwargs: Any) -> Any:
            if name == "numpy" and str((globals or {}).get("__name__", "")).startswith("fakeredis"):
                return deferred
            return importer(name, globals, *args, **kwargs)

        builtins.__import__ = deferring
        try:
            import fakeredis
        finally:
            builtins.__import__ = importer
        return fakeredis


#: What to install for this backend, when fakeredis (or its Lua runtime) is missing.
FAKE_EXTRA = "the fake backend needs fakeredis with Lua: pip install 'limpyd[fake]'"

_fake_servers: dict[str, Any] = {}
#: A client of each named server, to empty it (see `FakeBackend.empty_server`).
_admin_clients: dict[str, Any] = {}
_fake_servers_lock = threading.Lock()


class FakeBackend(Backend):
    """An in-memory fakeredis server, shared by every backend of the same `name` in a process.

    `name=None` is the process's default server. Databases `db` are separate, as on Redis.
    """

    kind = "fake"
    in_process = True

    def __init__(self, name: str | None = None, db: int = 0, **client_kwargs: Any) -> None:
        self.name = name or "default"
        self.db = int(db)
        if not 0 <= self.db < FAKE_DATABASES:
            raise ValueError(
                f"fakeredis db {db!r} is out of range: 0 to {FAKE_DATABASES - 1}, as on a "
                "redis-server with its default 16 databases"
            )
        self.client_kwargs = with_defaults(client_kwargs)
        fakeredis_module()

    @property
    def server(self) -> Any:
        """The fakeredis server behind this backend (one per name)."""
        fakeredis = fakeredis_module()
        with _fake_servers_lock:
            server = _fake_servers.get(self.name)
            if server is None:
                server = _fake_servers[self.name] = fakeredis.FakeServer()
            return server

    def client(self) -> redis.Redis:
        client: redis.Redis = fake_connection.client_class()(
            server=self.server,
            db=self.db,
            connection_class=fake_connection.connection_class(),
            **self.client_kwargs,
        )
        return client

    def describe(self) -> str:
        return f"fakeredis://{self.name}/{self.db}"

    def server_info(self, client: redis.Redis) -> dict[str, str]:
        return {
            "redis_version": "7.0.0",
            "redis_mode": "fakeredis",
            "fakeredis_version": fakeredis_module().__version__,
        }

    @classmethod
    def drop_server(cls, name: str) -> None:
        """Forget the named in-memory server (its data goes with it)."""
        with _fake_servers_lock:
            _fake_servers.pop(name, None)
            admin = _admin_clients.pop(name, None)
        if admin is not None:
            admin.close()

    @classmethod
    def empty_server(cls, name: str) -> None:
        """Empty every db of the named in-memory server (FLUSHALL: its function libraries
        stay, as on Redis); one left disconnected is dropped instead. Its client is kept from
        call to call: the test plugin empties the server after every test."""
        with _fake_servers_lock:
            server = _fake_servers.get(name)
            admin = _admin_clients.get(name)
        if server is None:
            return
        if not server.connected:
            cls.drop_server(name)
            return
        if admin is None:
            admin = cls(name=name).client()
            with _fake_servers_lock:
                admin = _admin_clients.setdefault(name, admin)
        try:
            admin.flushall()
        except redis.ConnectionError:  # its connection was killed (CLIENT KILL): a new one
            admin.flushall()
