"""Shared fixtures: every test here runs on both backends through the limpyd plugin."""

from __future__ import annotations

import pytest

from limpyd.database import RedisDatabase
from limpyd_testing.integrity import assert_consistent
from limpyd_testing.plugin import get_options
from limpyd_testing.server import find_redis_server
from limpyd_testing.snapshot import snapshot

# tests/plugin drives pytest sessions of its own
pytest_plugins = ["pytester"]


@pytest.fixture
def db(limpyd_database: RedisDatabase) -> RedisDatabase:
    """The test's empty database."""
    return limpyd_database


@pytest.fixture
def unchanged(db: RedisDatabase):
    """`with unchanged(): ...` fails if the block changed any key."""
    from contextlib import contextmanager

    @contextmanager
    def check():
        before = snapshot(db)
        yield
        assert snapshot(db) == before

    return check


@pytest.fixture
def dumps(db: RedisDatabase):
    """`dumps()`: every key's DUMP and expiry time, what a refused write must leave byte for
    byte (where `snapshot` compares contents)."""

    def read():
        client = db.client
        return {key: (client.dump(key), client.pexpiretime(key)) for key in client.scan_iter()}

    return read


@pytest.fixture
def forget_code(db: RedisDatabase):
    """`forget_code()` makes the server forget limpyd's Lua code (its function library and
    script), as a server limpyd never talked to."""

    def forget() -> None:
        db.connection.function_flush()
        db.connection.script_flush()

    return forget


@pytest.fixture
def loading_round_trips(limpyd_backend: str) -> int:
    """What a server lacking limpyd's code adds to a call: the code loaded, then the call
    again, each alone (a cluster's pipeline would send the call twice after a lost reply);
    on a cluster the load goes to every primary (counted once)."""
    return 2


@pytest.fixture
def consistent():
    """`consistent(Model, ...)` asserts the models' indexes equal their data."""
    return assert_consistent


@pytest.fixture(scope="session")
def redis_server_path(pytestconfig: pytest.Config) -> str:
    """The redis-server executable, for tests starting servers of their own (the plugin's
    executors, faults, replicas). A session on the fake backend alone starts no server: they
    are skipped there and run in any session with a real backend (failed there, when a real
    server is required, if no executable is found)."""
    options = get_options(pytestconfig)
    if not {"redis", "cluster"} & set(options.backends):
        pytest.skip(
            "limpyd: starts redis-server processes, which a session on the fake backend alone "
            "never does (--limpyd-backend=redis|cluster|both|all runs it)"
        )
    path = find_redis_server(options.redis_server)
    if path is None:
        message = f"no redis-server executable found ({options.redis_server or 'PATH'})"
        if options.require_redis:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path
