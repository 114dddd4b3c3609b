"""The `limpyd` pytest plugin: run limpyd tests in memory, on a real Redis, on a Redis Cluster.

Installed with limpyd (entry point `pytest11: limpyd`), nothing to enable. Its options,
fixtures and marker: the chapter "Testing with limpyd_testing" of the documentation.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
import redis

from limpyd.backends import Backend, FakeBackend, RedisBackend, RedisClusterBackend
from limpyd.backends.fake import fakeredis_module
from limpyd.database import RedisDatabase
from limpyd.exceptions import ImplementationError
from limpyd_testing.counting import CommandCount, count_commands
from limpyd_testing.guard import APPLICATION_DATABASES, ApplicationDatabases
from limpyd_testing.options import BACKENDS, SETTINGS, LimpydOptions, database_entries
from limpyd_testing.server import find_redis_server
from limpyd_testing.session import LimpydServer, SessionState, xdist_workers

__all__ = [
    "BACKENDS",
    "DatabaseFactory",
    "LimpydOptions",
    "LimpydServer",
    "get_options",
]

_STATE = pytest.StashKey[SessionState]()


def _state(config: pytest.Config) -> SessionState:
    return config.stash[_STATE]


def get_options(config: pytest.Config) -> LimpydOptions:
    """The limpyd settings of a session (for conftest files and other plugins)."""
    return _state(config).options


# Hooks ----------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the options, each also an ini key (environment variables are read at use)."""
    group = parser.getgroup("limpyd", "limpyd (Redis ORM) test backends")
    for setting in SETTINGS.values():
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
        if setting.boolean:  # pytest reads its text (1/0, true/false, yes/no, on/off)
            parser.addini(setting.name, help_text, type="bool", default=False)
        else:
            parser.addini(setting.name, help_text, type="string", default="")
    parser.addini(
        "limpyd_databases",
        "application RedisDatabase objects (module:attribute, one a line) re-pointed to the "
        "test backend for every test",
        type="linelist",
        default=[],
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Guard the `limpyd_databases` from their import on, before any conftest file runs."""
    entries = database_entries(early_config)
    if entries:
        databases = ApplicationDatabases(entries)
        early_config.stash[APPLICATION_DATABASES] = databases
        early_config.add_cleanup(databases.restore)  # a run stopped before its configure too
        databases.watch_imports()


def pytest_configure(config: pytest.Config) -> None:
    """Resolve the settings, register the marker, find redis-server if it is needed."""
    config.addinivalue_line(
        "markers",
        "limpyd_backends(*kinds): run this test only on these limpyd backends (fake, redis, "
        "cluster)",
    )
    if config.getoption("help", False):  # the help must show, whatever the settings
        return
    options = LimpydOptions.from_config(config)
    state = SessionState(config, options)
    config.stash[_STATE] = state
    if state.needs_executable():
        state.executable = find_redis_server(options.redis_server)
        if state.executable is None:
            wanted = options.redis_server or "redis-server on PATH"
            kinds = tuple(
                kind
                for kind, url in (("redis", options.redis_url), ("cluster", options.cluster_url))
                if kind in options.backends and not url
            )
            state.fail_or_skip(
                f"no redis-server executable found ({wanted})", kinds, state.named_executable
            )
    if options.databases:
        config.pluginmanager.register(_RedirectEveryTest(), "limpyd-redirect-databases")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Start the real server and cluster (or check the given ones) before the header and the
    tests."""
    state = _state(session.config)
    # The xdist controller runs no test: each worker prepares its own server, or db.
    state.controller = session.config.pluginmanager.has_plugin("dsession")
    if not state.controller:
        state.prepare()
        return
    workers = xdist_workers(session.config)
    if state.redis_selected and "redis" not in state.unavailable and state.options.redis_url:
        state.check_url_for_workers(workers)
    if state.cluster_selected and state.options.cluster_url:
        state.check_cluster_for_workers(workers)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Once the tests are collected (the application's modules importable as the tests
    import them), point the `limpyd_databases` nowhere until a test re-points them; load
    the fake server's modules if a test needs them."""
    state = _state(session.config)
    if not state.controller:
        state.prepare_fake(session.items)
    if state.options.databases and not state.controller:
        try:
            state.databases.guard()
        except pytest.UsageError as error:
            # an xdist worker's usage error reaches the controller as an internal error
            # naming nothing: each test fails with it instead, before any of its fixtures
            # runs (one of a wider scope could reach the application's server: an entry
            # set after the collection is never guarded)
            if not hasattr(session.config, "workerinput"):
                raise
            state.databases_error = str(error)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail each test of a worker whose `limpyd_databases` could not be guarded."""
    error = _state(item.config).databases_error
    if error is not None:
        pytest.fail(error, pytrace=False)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the server at the very end, after every fixture is torn down."""
    state = config.stash.get(_STATE, None)
    if state is not None:
        state.close()  # the application databases given back (without a state: a cleanup)


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
    try:
        allowed = _allowed_backends(metafunc.definition)
    except ValueError as error:
        refused = str(error)  # failed outside the handler: shown once, not chained
    else:
        refused = ""
    if refused:
        pytest.fail(refused, pytrace=False)
    selected = [kind for kind in BACKENDS if kind in state.options.backends]
    kinds = [kind for kind in selected if kind in allowed]
    params = []
    if not kinds:
        reason = _elsewhere(allowed, selected)
        for kind in (kind for kind in BACKENDS if kind in allowed):
            params.append(pytest.param(kind, id=kind, marks=pytest.mark.skip(reason=reason)))
    for kind in kinds:
        if kind in state.unavailable:
            marks = [pytest.mark.skip(reason=state.unavailable[kind])]
            params.append(pytest.param(kind, id=kind, marks=marks))
        else:
            params.append(pytest.param(kind, id=kind))
    metafunc.parametrize("limpyd_backend", params, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test using no backend but naming its backends (`limpyd_backends`) runs only if
    the session runs one of them."""
    running = _state(config).options.backends
    for item in items:
        if "limpyd_backend" in getattr(item, "fixturenames", ()):
            continue  # parametrized by its backends (pytest_generate_tests)
        if item.get_closest_marker("limpyd_backends") is None:
            continue
        try:
            allowed = _allowed_backends(item)
        except ValueError as error:  # pytest.fail here would be an internal error
            raise pytest.UsageError(str(error)) from None
        if not allowed & set(running):
            item.add_marker(pytest.mark.skip(reason=_elsewhere(allowed, running)))


def _allowed_backends(node: pytest.Item) -> set[str]:
    """The backends the test's `limpyd_backends` markers allow (all without one); a
    ValueError for a marker naming none, or another."""
    allowed = set(BACKENDS)
    marked = []
    for mark in node.iter_markers("limpyd_backends"):
        given = [*mark.args, *(f"{name}=..." for name in mark.kwargs)]
        unknown = [repr(arg) for arg in given if not (isinstance(arg, str) and arg in BACKENDS)]
        if unknown or not mark.args:
            raise ValueError(
                f"limpyd: limpyd_backends marker of {node.nodeid}: "
                f"{', '.join(unknown) or 'no backend'} given, use 'fake', 'redis' and/or "
                "'cluster' as its arguments"
            )
        allowed &= set(mark.args)
        marked.append(f"({', '.join(mark.args)})")
    if not allowed:
        raise ValueError(
            f"limpyd: the limpyd_backends markers of {node.nodeid} allow no backend together: "
            f"{' and '.join(marked)}"
        )
    return allowed


def _elsewhere(allowed: set[str], selected: Iterable[str]) -> str:
    return (
        f"limpyd: runs only on {', '.join(sorted(allowed))}; this session runs "
        f"{', '.join(selected)} (--limpyd-backend)"
    )


# Fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def limpyd_backend(request: pytest.FixtureRequest) -> str:
    """The backend kind of this test: "fake", "redis" or "cluster" (tests are parametrized by
    it)."""
    state = _state(request.config)
    return _usable(state, str(getattr(request, "param", None) or state.options.backends[0]))


def _usable(state: SessionState, kind: str) -> str:
    """`kind`, a backend this test can run on; else the test fails or is skipped, saying
    why (checked again by the factory: a test's own direct parametrize skips the fixture)."""
    if kind not in BACKENDS:  # a test's own parametrize
        pytest.fail(
            f"limpyd: unknown backend {kind!r} for limpyd_backend: use 'fake', 'redis' or "
            "'cluster'",
            pytrace=False,
        )
    if kind in state.errors:
        pytest.fail(state.errors[kind], pytrace=False)
    if kind in state.unavailable:
        pytest.skip(state.unavailable[kind])
    if kind == "fake" and (missing := _fake_missing()):
        pytest.fail(f"limpyd: {missing}; or run on --limpyd-backend=redis", pytrace=False)
    if kind == "redis" and state.server is None:
        pytest.skip("limpyd: no real Redis server in this process")
    if kind == "cluster" and state.cluster_url is None:
        pytest.skip("limpyd: no Redis Cluster in this process")
    return kind


def _fake_missing() -> str:
    """Why the fake backend cannot run here (the `fake` extra is not installed), or ''."""
    try:
        fakeredis_module()
    except ImportError as exc:
        return str(exc)
    return ""


@pytest.fixture(scope="session")
def limpyd_server(request: pytest.FixtureRequest) -> LimpydServer:
    """The session's real Redis server: host, port, url, version (skipped when there is none)."""
    state = _state(request.config)
    if state.server is not None:
        return state.server
    if "redis" in state.errors:
        pytest.fail(state.errors["redis"], pytrace=False)
    if not state.redis_selected:
        pytest.skip(
            "limpyd: the real Redis backend is not selected (--limpyd-backend=redis|both|all)"
        )
    if "redis" in state.unavailable:
        pytest.skip(state.unavailable["redis"])
    pytest.skip("limpyd: no real Redis server in this process")


class DatabaseFactory:
    """Makes `RedisDatabase` objects on the current test's backend, and cleans them up.

    Every database it makes is on the same server: the same in-memory server for the fake
    backend, the session's server or cluster for the real ones, so two of them see the same
    data (on the same `db`; a cluster has only db 0). Calling it: `factory(cls=RedisDatabase,
    *, db=None, **kwargs)`; `kwargs` go to `cls` besides `backend`.
    """

    def __init__(self, state: SessionState, kind: str) -> None:
        self.kind = kind
        self._state = state
        self._databases: list[RedisDatabase] = []
        self._used_dbs: set[int] = set()
        #: The in-memory server of this process's tests: kept from test to test, emptied
        #: after each, as the session's real server is (limpyd's code stays loaded there).
        self.fake_name = f"limpyd-test-{os.getpid()}" if kind == "fake" else ""

    def backend(self, db: int | None = None) -> Backend:
        """A new backend object on this test's server, db `db` (the default one if None)."""
        if db is not None and (type(db) is not int or db < 0):
            pytest.fail(
                f"limpyd: limpyd_database_factory(db={db!r}): a db is a number >= 0",
                pytrace=False,
            )
        if self.kind == "fake":
            if not self._used_dbs:  # emptied at its first use too, as a real server's db is
                FakeBackend.empty_server(self.fake_name)  # (a test without it may write)
                self._used_dbs.add(0)
            try:
                return FakeBackend(name=self.fake_name, db=db or 0)
            except ValueError as error:  # beyond its 16 dbs, as a redis-server's default
                pytest.fail(f"limpyd: limpyd_database_factory(db={db!r}): {error}", pytrace=False)
        if self.kind == "cluster":
            return self._cluster_backend(db)
        server = self._state.server
        assert server is not None
        number = server.db if db is None else int(db)
        if number not in self._used_dbs:
            try:
                self._state.check_empty(number)
            except pytest.UsageError as exc:
                pytest.fail(str(exc), pytrace=False)
            try:
                self._state.admin(number).flushdb()
            except redis.ResponseError as error:  # beyond the server's `databases`
                pytest.fail(
                    f"limpyd: limpyd_database_factory(db={db!r}): the server refuses it ({error})",
                    pytrace=False,
                )
            self._used_dbs.add(number)
        return RedisBackend(url=self._state.url_for(number))

    def _cluster_backend(self, db: int | None) -> Backend:
        if db not in (None, 0):
            pytest.fail(
                f"limpyd: a database on db {db!r} was asked for on the cluster backend: a Redis "
                "Cluster has only db 0 (mark the test @pytest.mark.limpyd_backends('fake', "
                "'redis') if it needs several dbs)",
                pytrace=False,
            )
        assert self._state.cluster_url is not None
        if 0 not in self._used_dbs:
            self._state.flush_cluster()
            self._used_dbs.add(0)
        return RedisClusterBackend(url=self._state.cluster_url)

    def __call__(
        self, cls: type[RedisDatabase] = RedisDatabase, *, db: int | None = None, **kwargs: Any
    ) -> RedisDatabase:
        if not (isinstance(cls, type) and issubclass(cls, RedisDatabase)):
            pytest.fail(
                f"limpyd: limpyd_database_factory(cls={cls!r}): a RedisDatabase class is "
                "expected (RedisDatabase, PipelineDatabase or a subclass)",
                pytrace=False,
            )
        if "backend" in kwargs:
            pytest.fail(
                "limpyd: limpyd_database_factory(backend=...): the database is on the test's "
                "backend (use RedisDatabase(backend=...) for a backend of your own)",
                pytrace=False,
            )
        try:
            database = cls(backend=self.backend(db), **kwargs)
        except ImplementationError as error:
            if not kwargs:
                raise
            named = ", ".join(f"{name}=..." for name in kwargs)  # values unshown: passwords
            pytest.fail(
                f"limpyd: limpyd_database_factory({named}): {cls.__name__} refuses them beside "
                f"the test's backend ({error})",
                pytrace=False,
            )
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
            FakeBackend.empty_server(self.fake_name)
        elif self.kind == "cluster":
            if self._used_dbs:
                self._state.flush_cluster()
        else:
            for number in sorted(self._used_dbs):
                self._state.admin(number).flushdb()
        self._used_dbs.clear()


@pytest.fixture
def limpyd_database_factory(
    request: pytest.FixtureRequest, limpyd_backend: str
) -> Iterator[DatabaseFactory]:
    """Make more databases on this test's backend and server (e.g. two sharing data)."""
    state = _state(request.config)
    factory = DatabaseFactory(state, _usable(state, limpyd_backend))
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
    request: pytest.FixtureRequest, limpyd_database: RedisDatabase
) -> Callable[..., AbstractContextManager[CommandCount]]:
    """Count round trips and commands: `with limpyd_commands() as counted: ...`.

    Counts on `limpyd_database` and the `limpyd_databases` of the ini file (re-pointed for
    the test, each with a client of its own), or on the databases given:
    `limpyd_commands(other, ...)`.
    """

    def counter(*databases: RedisDatabase) -> AbstractContextManager[CommandCount]:
        if not databases:
            databases = (limpyd_database, *_redirected(request))
        return count_commands(*databases)

    return counter


def _redirected(request: pytest.FixtureRequest) -> list[RedisDatabase]:
    """The `limpyd_databases` re-pointed for this test (none if they are not)."""
    if "limpyd_redirect_databases" not in request.fixturenames:
        return []
    databases: list[RedisDatabase] = request.getfixturevalue("limpyd_redirect_databases")
    return databases


@pytest.fixture
def limpyd_redirect_databases(
    request: pytest.FixtureRequest, limpyd_database: RedisDatabase
) -> Iterator[list[RedisDatabase]]:
    """Point the `limpyd_databases` ini databases at this test's (empty) database.

    They share `limpyd_database`'s server and db, and get their own backend back afterwards.
    Automatic for every test when the ini key is set.
    """
    try:
        databases = _state(request.config).databases.all()
    except pytest.UsageError as error:
        pytest.fail(str(error), pytrace=False)
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
