"""Fixtures of the fault-injection suite: a dedicated redis-server, a proxy in front of it.

The server is this suite's own (started with `limpyd_testing.server`), so that a test can
use two of its dbs, or kill it, without touching the session's server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from limpyd_testing.server import RedisServerExecutor

from .proxy import FaultProxy
from .rig import Rig


@pytest.fixture(scope="session")
def fault_server(redis_server_path: str) -> Iterator[RedisServerExecutor]:
    with RedisServerExecutor(redis_server_path) as server:
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
