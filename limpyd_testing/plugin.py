"""The `limpyd` pytest plugin: run limpyd tests in memory, on a real Redis, or on both.

Installed with limpyd (entry point `pytest11: limpyd`), nothing to enable. A test asks for a
database with a fixture and runs on the backends the session selects::

    def test_create(limpyd_database):
        class Person(model.RedisModel):
            database = limpyd_database
            name = model.StringField(indexable=True)
        ...

Options
-------
Each setting is a command-line option, an environment variable and an ini key (in
`pytest.ini`, `[tool.pytest.ini_options]`...). Precedence: command line, then environment,
then ini file, then the default.

=========================  ========================  =======================  ==============
command line               environment               ini key                  default
=========================  ========================  =======================  ==============
--limpyd-backend=KIND      LIMPYD_BACKEND            limpyd_backend           fake
--limpyd-redis-url=URL     LIMPYD_REDIS_URL          limpyd_redis_url         (start a server)
--limpyd-redis-server=P    LIMPYD_REDIS_SERVER       limpyd_redis_server      redis-server on PATH
--limpyd-require-redis     LIMPYD_REQUIRE_REDIS      limpyd_require_redis     false
--limpyd-flush-existing    LIMPYD_FLUSH_EXISTING     limpyd_flush_existing    false
=========================  ========================  =======================  ==============

- `KIND` is `fake` (in-memory fakeredis), `redis` (a real server) or `both` (every test that
  uses the fixtures runs twice, with ids `[fake]` and `[redis]`).
- Real backend without a URL: a throw-away `redis-server` (`limpyd_testing.server`) is started
  on a free loopback port for the session (one per pytest-xdist worker) and stopped at its end.
- With a URL: the session refuses to start when that db holds keys, unless
  `--limpyd-flush-existing`: tests never destroy data they did not create. Under pytest-xdist,
  worker `gwN` uses db `db + N`.
- No server available: the `[redis]` tests are skipped with a reason, or, with
  `--limpyd-require-redis`, the session fails with an error.
- The boolean settings take `1/true/yes/on` or `0/false/no/off` in the environment and the ini
  file; `--no-limpyd-require-redis` and `--no-limpyd-flush-existing` override them.
- ini `limpyd_databases` (one `package.module:attribute` a line): the application's own
  `RedisDatabase` objects, re-pointed to the test database for every test and put back after.

Fixtures
--------
`limpyd_backend` (`"fake"` or `"redis"`), `limpyd_database`, `limpyd_database_factory`,
`limpyd_redis`, `limpyd_server` (session), `limpyd_commands`, `limpyd_redirect_databases`.

Marker
------
`@pytest.mark.limpyd_backends("redis")` runs a test only on the backends named.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from limpyd.backends import Backend, FakeBackend, RedisBackend
from limpyd.database import RedisDatabase
from limpyd_testing.counting import CommandCount, count_commands
from limpyd_testing.server import (
    RedisServerError,
    RedisServerExecutor,
    find_redis_server,
    redis_server_version,
)

__all__ = [
    "BACKENDS",
    "DatabaseFactory",
    "LimpydOptions",
    "LimpydServer",
    "get_options",
]

#: The backend kinds, in the order parametrized tests run.
BACKENDS: tuple[str, ...] = ("fake", "redis")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_HOW_TO_GET_REDIS = (
    "install Redis (e.g. `apt-get install redis-server`), or pass "
    "--limpyd-redis-server=PATH or --limpyd-redis-url=URL; --limpyd-require-redis makes "
    "this an error instead of a skip"
)


@dataclass(frozen=True)
class _Setting:
    name: str  # the option's dest and the ini key
    flag: str
    env: str
    help: str
    boolean: bool = False

    def value(self, config: pytest.Config) -> str | bool | None:
        """The setting from the command line, else the environment, else the ini file."""
        cli = config.getoption(self.name)
        if cli is not None:
            return cli
        env = os.environ.get(self.env, "").strip()
        if env:
            return self._parse(env, f"environment variable {self.env}")
        ini = str(config.getini(self.name) or "").strip()
        if ini:
            return self._parse(ini, f"ini key {self.name}")
        return None

    def _parse(self, text: str, where: str) -> str | bool:
        if not self.boolean:
            return text
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise pytest.UsageError(f"limpyd: {where}={text!r} is not a boolean (use 1 or 0)")


_SETTINGS = {
    setting.name: setting
    for setting in (
        _Setting(
            "limpyd_backend",
            "--limpyd-backend",
            "LIMPYD_BACKEND",
            "limpyd backends to run the tests on: fake (in memory, the default), redis or both",
        ),
        _Setting(
            "limpyd_redis_url",
            "--limpyd-redis-url",
            "LIMPYD_REDIS_URL",
            "use this Redis server (redis://, rediss://, unix://) instead of starting one; "
            "its db must be empty",
        ),
        _Setting(
            "limpyd_redis_server",
            "--limpyd-redis-server",
            "LIMPYD_REDIS_SERVER",
            "the redis-server executable to start for the real backend (default: from PATH)",
        ),
        _Setting(
            "limpyd_require_redis",
            "--limpyd-require-redis",
            "LIMPYD_REQUIRE_REDIS",
            "no usable real Redis is an error, not a skip of the redis tests",
            boolean=True,
        ),
        _Setting(
            "limpyd_flush_existing",
            "--limpyd-flush-existing",
            "LIMPYD_FLUSH_EXISTING",
            "allow --limpyd-redis-url on a db that holds keys: they are flushed",
            boolean=True,
        ),
    )
}


@dataclass(frozen=True)
class LimpydOptions:
    """The plugin's settings for this session, resolved from CLI, environment and ini."""

    backends: tuple[str, ...] = ("fake",)
    redis_url: str | None = None
    redis_server: str | None = None
    require_redis: bool = False
    flush_existing: bool = False
    databases: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: pytest.Config) -> LimpydOptions:
        """Read and check the settings; a bad value is a `pytest.UsageError`."""
        values = {name: setting.value(config) for name, setting in _SETTINGS.items()}
        backend = str(values["limpyd_backend"] or "fake").lower()
        choices = {"fake": ("fake",), "redis": ("redis",), "both": BACKENDS}
        if backend not in choices:
            raise pytest.UsageError(
                f"limpyd: unknown backend {backend!r}: use fake, redis or both "
                "(--limpyd-backend, LIMPYD_BACKEND, ini limpyd_backend)"
            )
        url = values["limpyd_redis_url"]
        if url and urlsplit(str(url)).scheme not in ("redis", "rediss", "unix"):
            raise pytest.UsageError(
                f"limpyd: --limpyd-redis-url {url!r} is not a redis://, rediss:// or unix:// URL"
            )
        return cls(
            backends=choices[backend],
            redis_url=str(url) if url else None,
            redis_server=str(values["limpyd_redis_server"] or "") or None,
            require_redis=bool(values["limpyd_require_redis"]),
            flush_existing=bool(values["limpyd_flush_existing"]),
            databases=tuple(line.strip() for line in config.getini("limpyd_databases") if line),
        )


@dataclass(frozen=True)
class LimpydServer:
    """The real Redis server of the session: where it is and what it runs.

    `pid` is set only for a server the plugin started; `db` is the db the tests use.
    """

    host: str
    port: int | None
    url: str
    version: str
    db: int = 0
    pid: int | None = None


def _url_with_db(url: str, db: int) -> str:
    """`url` pointing at db `db` (in the path for redis://, in the query for unix://)."""
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query) if key != "db"]
    if parts.scheme == "unix":
        query.append(("db", str(db)))
        # urlunsplit would drop the empty host of unix:///path.
        return f"unix://{parts.netloc}{parts.path}?{urlencode(query)}"
    return urlunsplit(parts._replace(path=f"/{db}", query=urlencode(query)))


def _url_db(url: str) -> int:
    """The db number a Redis URL names (0 when it names none)."""
    parts = urlsplit(url)
    for key, value in parse_qsl(parts.query):
        if key == "db":
            return int(value)
    path = parts.path.strip("/")
    return int(path) if parts.scheme != "unix" and path.isdigit() else 0


def _worker_index(config: pytest.Config) -> int:
    workerinput = getattr(config, "workerinput", None)
    if not workerinput:
        return 0
    digits = "".join(ch for ch in str(workerinput.get("workerid", "")) if ch.isdigit())
    return int(digits or 0)


def _checking_client(url: str) -> redis.Redis:
    """A client that gives up at once: an unreachable server is reported, not waited for."""
    return redis.Redis.from_url(
        url, socket_timeout=5, socket_connect_timeout=5, retry=Retry(NoBackoff(), 0)
    )


def _redact(url: str) -> str:
    """`url` with its password, if any, replaced by `***` (for headers and messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:" if parts.username else ":"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}***@{host}"))


def _refusal(url: str, size: int) -> str:
    return (
        f"limpyd: refusing to run tests on {_redact(url)} (db {_url_db(url)}): it holds "
        f"{size} key(s) "
        "that the tests did not create. Use an empty db, or pass --limpyd-flush-existing "
        "to flush it."
    )


def _xdist_workers(config: pytest.Config) -> int:
    """How many workers the xdist controller starts (`tx` specs like `popen` or `2*popen`)."""
    count = 0
    for spec in config.getoption("tx", None) or []:
        head, star, _ = str(spec).partition("*")
        count += int(head) if star and head.isdigit() else 1
    return count


_fake_names = itertools.count()


class _State:
    """What the plugin knows and holds for one pytest session (one per xdist worker)."""

    def __init__(self, config: pytest.Config, options: LimpydOptions) -> None:
        self.config = config
        self.options = options
        self.executable: str | None = None
        self.executor: RedisServerExecutor | None = None
        self.server: LimpydServer | None = None
        self.unavailable: str | None = None
        self.controller = False
        self.worker = bool(getattr(config, "workerinput", None))
        self.own_server = False
        #: Set when a required real server is missing in an xdist worker: redis tests fail.
        self.error: str | None = None
        self._admin: dict[int, redis.Redis] = {}
        self._checked_dbs: set[int] = set()
        self._databases: list[RedisDatabase] | None = None

    @property
    def redis_selected(self) -> bool:
        return "redis" in self.options.backends

    def fail_or_skip(self, reason: str) -> None:
        """No real server: an error if required, else the redis tests are skipped.

        The error stops the session; in an xdist worker (where an error at start-up would
        only lose the worker) it fails every redis test instead.
        """
        if self.options.require_redis:
            message = f"limpyd: {reason} (--limpyd-require-redis is set)"
            if self.worker:
                self.error = message
                return
            raise pytest.UsageError(message)
        lines = [line.strip() for line in reason.splitlines() if line.strip()]
        self.unavailable = f"limpyd: {' | '.join(lines)}; {_HOW_TO_GET_REDIS}"

    # Real server ----------------------------------------------------------------------------

    def prepare_real(self) -> None:
        """Start the throw-away server, or check the given URL, for this process."""
        if self.options.redis_url:
            self._use_url(self.options.redis_url)
            return
        if self.executable is None:
            return
        executor = RedisServerExecutor(self.executable)
        try:
            executor.start()
        except RedisServerError as exc:
            self.fail_or_skip(f"could not start {self.executable}: {exc}")
            return
        self.executor = executor
        self.server = LimpydServer(
            host=executor.host,
            port=executor.port,
            url=executor.url,
            version=executor.version,
            db=0,
            pid=executor.pid,
        )
        self.own_server = True  # every db of it is ours

    def check_url_for_workers(self, workers: int) -> None:
        """On the xdist controller: refuse now the dbs the workers would refuse."""
        given = self.options.redis_url
        assert given is not None
        for index in range(workers):
            url = _url_with_db(given, _url_db(given) + index)
            client = _checking_client(url)
            try:
                size = client.dbsize()
            except redis.RedisError as exc:
                self.fail_or_skip(f"cannot use Redis at {_redact(url)}: {exc}")
                return
            finally:
                client.close()
            if size and not self.options.flush_existing:
                raise pytest.UsageError(_refusal(url, size))

    def _use_url(self, given: str) -> None:
        db = _url_db(given) + _worker_index(self.config)
        url = _url_with_db(given, db)
        client = _checking_client(url)
        try:
            info = client.info("server")
        except redis.RedisError as exc:
            client.close()
            self.fail_or_skip(f"cannot use Redis at {_redact(url)}: {exc}")
            return
        self._admin[db] = client
        parts = urlsplit(url)
        self.server = LimpydServer(
            host=parts.hostname or (parts.path if parts.scheme == "unix" else "localhost"),
            port=parts.port if parts.scheme != "unix" else None,
            url=url,
            version=str(info.get("redis_version", "")),
            db=db,
        )
        self.check_empty(db)

    def url_for(self, db: int) -> str:
        assert self.server is not None
        return _url_with_db(self.server.url, db)

    def admin(self, db: int) -> redis.Redis:
        """A plain client on db `db` of the real server, for flushing and checks."""
        client = self._admin.get(db)
        if client is None:
            client = self._admin[db] = redis.Redis.from_url(self.url_for(db))
        return client

    def check_empty(self, db: int) -> None:
        """Refuse a db of a server we did not start if it holds keys (or flush it if allowed)."""
        if self.own_server or db in self._checked_dbs:
            return
        client = self.admin(db)
        size = client.dbsize()
        if size and not self.options.flush_existing:
            raise pytest.UsageError(_refusal(self.url_for(db), size))
        if size:
            client.flushdb()
        self._checked_dbs.add(db)

    def close(self) -> None:
        for client in self._admin.values():
            client.close()
        self._admin.clear()
        if self.executor is not None:
            self.executor.stop()
            self.executor = None

    # Application databases ------------------------------------------------------------------

    def application_databases(self) -> list[RedisDatabase]:
        """The `RedisDatabase` objects named by the ini key `limpyd_databases`."""
        if self._databases is None:
            found = []
            for name in self.options.databases:
                module_name, _, attribute = name.partition(":")
                if not module_name or not attribute:
                    raise pytest.UsageError(
                        f"limpyd: limpyd_databases entry {name!r} is not module:attribute"
                    )
                target: Any = importlib.import_module(module_name)
                for part in attribute.split("."):
                    target = getattr(target, part)
                if not isinstance(target, RedisDatabase):
                    raise pytest.UsageError(
                        f"limpyd: limpyd_databases entry {name!r} is {target!r}, "
                        "not a RedisDatabase"
                    )
                found.append(target)
            self._databases = found
        return self._databases

    # Report ---------------------------------------------------------------------------------

    def header(self) -> str:
        line = f"limpyd: backends {', '.join(self.options.backends)}"
        if not self.redis_selected:
            return line
        if self.server is not None:
            origin = "throw-away server" if self.server.pid else "given server"
            return f"{line}; redis {self.server.version} at {_redact(self.server.url)} ({origin})"
        if self.unavailable:
            return f"{line}; redis tests skipped: {self.unavailable}"
        if self.options.redis_url:
            given = _redact(self.options.redis_url)
            return f"{line}; redis at {given} (db + worker number per worker)"
        version = redis_server_version(self.executable) if self.executable else None
        return (
            f"{line}; redis-server {version or '?'} ({self.executable}), "
            "one throw-away server per worker"
        )


_STATE = pytest.StashKey[_State]()


def _state(config: pytest.Config) -> _State:
    return config.stash[_STATE]


def get_options(config: pytest.Config) -> LimpydOptions:
    """The limpyd settings of a session (for conftest files and other plugins)."""
    return _state(config).options


# Hooks ----------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the options, each also an ini key (environment variables are read at use)."""
    group = parser.getgroup("limpyd", "limpyd (Redis ORM) test backends")
    for setting in _SETTINGS.values():
        help_text = f"{setting.help} (env {setting.env}, ini {setting.name})"
        if setting.boolean:
            group.addoption(
                setting.flag,
                dest=setting.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            metavar = "KIND" if setting.name == "limpyd_backend" else "VALUE"
            group.addoption(
                setting.flag, dest=setting.name, default=None, metavar=metavar, help=help_text
            )
        parser.addini(setting.name, help_text, type="string", default="")
    parser.addini(
        "limpyd_databases",
        "application RedisDatabase objects (module:attribute, one a line) re-pointed to the "
        "test backend for every test",
        type="linelist",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    """Resolve the settings, register the marker, find redis-server if it is needed."""
    config.addinivalue_line(
        "markers",
        "limpyd_backends(*kinds): run this test only on these limpyd backends (fake, redis)",
    )
    options = LimpydOptions.from_config(config)
    state = _State(config, options)
    config.stash[_STATE] = state
    if state.redis_selected and not options.redis_url:
        state.executable = find_redis_server(options.redis_server)
        if state.executable is None:
            wanted = options.redis_server or "redis-server on PATH"
            state.fail_or_skip(f"no redis-server executable found ({wanted})")
    if options.databases:
        config.pluginmanager.register(_RedirectEveryTest(), "limpyd-redirect-databases")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Start the real server (or check the given one) before the header and the tests."""
    state = _state(session.config)
    # The xdist controller runs no test: each worker prepares its own server, or db.
    state.controller = session.config.pluginmanager.has_plugin("dsession")
    if not state.redis_selected or state.unavailable is not None:
        return
    if not state.controller:
        state.prepare_real()
    elif state.options.redis_url:
        state.check_url_for_workers(_xdist_workers(session.config))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the server at the very end, after every fixture is torn down."""
    state = config.stash.get(_STATE, None)
    if state is not None:
        state.close()


def pytest_report_header(config: pytest.Config) -> list[str]:
    """One line: the backends in use and the real server (version, address)."""
    return [_state(config).header()]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that uses `limpyd_backend` (even indirectly) once per backend."""
    if "limpyd_backend" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        if isinstance(names, str):
            names = [name.strip() for name in names.split(",")]
        if "limpyd_backend" in names:
            return  # the test chose its backends itself
    state = _state(metafunc.config)
    allowed = set(BACKENDS)
    for mark in metafunc.definition.iter_markers("limpyd_backends"):
        unknown = set(mark.args) - set(BACKENDS)
        if unknown or not mark.args:
            pytest.fail(
                f"limpyd_backends marker of {metafunc.definition.nodeid}: "
                f"{sorted(unknown) or 'no backend'} given, use 'fake' and/or 'redis'",
                pytrace=False,
            )
        allowed &= set(mark.args)
    selected = [kind for kind in BACKENDS if kind in state.options.backends]
    kinds = [kind for kind in selected if kind in allowed]
    params = []
    if not kinds:
        for kind in (kind for kind in BACKENDS if kind in allowed):
            reason = (
                f"limpyd: runs only on {', '.join(sorted(allowed))}; this session runs "
                f"{', '.join(selected)} (--limpyd-backend)"
            )
            params.append(pytest.param(kind, id=kind, marks=pytest.mark.skip(reason=reason)))
    for kind in kinds:
        if kind == "redis" and state.unavailable:
            marks = [pytest.mark.skip(reason=state.unavailable)]
            params.append(pytest.param(kind, id=kind, marks=marks))
        else:
            params.append(pytest.param(kind, id=kind))
    metafunc.parametrize("limpyd_backend", params, indirect=True)


# Fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def limpyd_backend(request: pytest.FixtureRequest) -> str:
    """The backend kind of this test: "fake" or "redis" (tests are parametrized by it)."""
    state = _state(request.config)
    kind = getattr(request, "param", None) or state.options.backends[0]
    if kind == "redis":
        if state.error:
            pytest.fail(state.error, pytrace=False)
        if state.unavailable:
            pytest.skip(state.unavailable)
        if state.server is None:
            pytest.skip("limpyd: no real Redis server in this process")
    return str(kind)


@pytest.fixture(scope="session")
def limpyd_server(request: pytest.FixtureRequest) -> LimpydServer:
    """The session's real Redis server: host, port, url, version (skipped when there is none)."""
    state = _state(request.config)
    if state.server is not None:
        return state.server
    if state.error:
        pytest.fail(state.error, pytrace=False)
    if not state.redis_selected:
        pytest.skip("limpyd: the real Redis backend is not selected (--limpyd-backend=redis|both)")
    if state.unavailable:
        pytest.skip(state.unavailable)
    pytest.skip("limpyd: no real Redis server in this process")


class DatabaseFactory:
    """Makes `RedisDatabase` objects on the current test's backend, and cleans them up.

    Every database it makes is on the same server: the same in-memory server for the fake
    backend, the session's server for the real one, so two of them see the same data (on the
    same `db`). Calling it: `factory(cls=RedisDatabase, *, db=None, **kwargs)`; `kwargs` go to
    `cls` besides `backend`.
    """

    def __init__(self, state: _State, kind: str) -> None:
        self.kind = kind
        self._state = state
        self._databases: list[RedisDatabase] = []
        self._used_dbs: set[int] = set()
        self.fake_name = f"limpyd-test-{os.getpid()}-{next(_fake_names)}" if kind == "fake" else ""

    def backend(self, db: int | None = None) -> Backend:
        """A new backend object on this test's server, db `db` (the default one if None)."""
        if self.kind == "fake":
            return FakeBackend(name=self.fake_name, db=db or 0)
        server = self._state.server
        assert server is not None
        number = server.db if db is None else int(db)
        if number not in self._used_dbs:
            try:
                self._state.check_empty(number)
            except pytest.UsageError as exc:
                pytest.fail(str(exc), pytrace=False)
            self._state.admin(number).flushdb()
            self._used_dbs.add(number)
        return RedisBackend(url=self._state.url_for(number))

    def __call__(
        self, cls: type[RedisDatabase] = RedisDatabase, *, db: int | None = None, **kwargs: Any
    ) -> RedisDatabase:
        database = cls(backend=self.backend(db), **kwargs)
        self._databases.append(database)
        return database

    def close(self) -> None:
        """Close the clients made, and empty what the test used."""
        for database in self._databases:
            client = getattr(database, "_client", None)
            if client is not None:
                client.close()
        self._databases.clear()
        if self.kind == "fake":
            FakeBackend.drop_server(self.fake_name)
        else:
            for number in sorted(self._used_dbs):
                self._state.admin(number).flushdb()
            self._used_dbs.clear()


@pytest.fixture
def limpyd_database_factory(
    request: pytest.FixtureRequest, limpyd_backend: str
) -> Iterator[DatabaseFactory]:
    """Make more databases on this test's backend and server (e.g. two sharing data)."""
    factory = DatabaseFactory(_state(request.config), limpyd_backend)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def limpyd_database(limpyd_database_factory: DatabaseFactory) -> RedisDatabase:
    """A `RedisDatabase` on this test's backend, empty at start, emptied after."""
    return limpyd_database_factory()


@pytest.fixture
def limpyd_redis(limpyd_database: RedisDatabase) -> redis.Redis:
    """The raw redis-py client of `limpyd_database`."""
    return limpyd_database.client


@pytest.fixture
def limpyd_commands(
    limpyd_database: RedisDatabase,
) -> Callable[..., AbstractContextManager[CommandCount]]:
    """Count round trips and commands: `with limpyd_commands() as counted: ...`.

    Counts on `limpyd_database`, or on the database given: `limpyd_commands(other)`.
    """

    def counter(database: RedisDatabase | None = None) -> AbstractContextManager[CommandCount]:
        return count_commands(database if database is not None else limpyd_database)

    return counter


@pytest.fixture
def limpyd_redirect_databases(
    request: pytest.FixtureRequest, limpyd_database: RedisDatabase
) -> Iterator[list[RedisDatabase]]:
    """Point the `limpyd_databases` ini databases at this test's (empty) database.

    They share `limpyd_database`'s server and db, and get their own backend back afterwards.
    Automatic for every test when the ini key is set.
    """
    databases = _state(request.config).application_databases()
    saved = [database.backend for database in databases]
    for database in databases:
        database.connect(backend=limpyd_database.backend)
    try:
        yield databases
    finally:
        for database, backend in zip(databases, saved, strict=True):
            database.connect(backend=backend)


class _RedirectEveryTest:
    """Registered when `limpyd_databases` is set: every test redirects those databases."""

    @pytest.fixture(autouse=True)
    def _limpyd_redirect_every_test(self, limpyd_redirect_databases: list[RedisDatabase]) -> None:
        """Pull `limpyd_redirect_databases` into every test."""
