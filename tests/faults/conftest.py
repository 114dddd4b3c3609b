"""Fixtures of the fault-injection suite: a dedicated redis-server, a proxy in front of it.

The server is this suite's own (started with `limpyd_testing.server`), so that a test can
use two of its dbs, or kill it, without touching the session's server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from limpyd_testing.plugin import get_options
from limpyd_testing.server import RedisServerExecutor, find_redis_server

from .proxy import FaultProxy
from .rig import Rig


@pytest.fixture(scope="session")
def redis_executable(pytestconfig: pytest.Config, limpyd_server) -> str | None:
    """The redis-server the session uses (`limpyd_server` skips when there is none)."""
    options = get_options(pytestconfig)
    if find_redis_server(options.redis_server) is None:
        message = "the fault suite starts its own redis-server, and none was found"
        if options.require_redis:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return options.redis_server


@pytest.fixture(scope="session")
def fault_server(redis_executable: str | None) -> Iterator[RedisServerExecutor]:
    with RedisServerExecutor(redis_executable) as server:
        yield server


@pytest.fixture
def proxy(limpyd_backend: str, fault_server: RedisServerExecutor) -> Iterator[FaultProxy]:
    with FaultProxy(fault_server.host, fault_server.port, seed=1) as running:
        yield running


@pytest.fixture(params=["url", "kwargs"])
def rig(request: pytest.FixtureRequest, proxy: FaultProxy, fault_server) -> Iterator[Rig]:
    """The rig, its client made with `RedisDatabase.from_url` or with keyword arguments."""
    made = Rig(fault_server.url, proxy, request.param)
    try:
        yield made
    finally:
        made.close()
