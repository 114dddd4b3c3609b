"""The fault proxy itself: it relays faithfully, and cuts exactly where it says.

A plain redis-py client without retries talks through it, so what the server ran can be
read directly on the server.
"""

from __future__ import annotations

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .proxy import KINDS, FaultProxy, request_args, resp_end

pytestmark = [pytest.mark.slow, pytest.mark.limpyd_backends("redis")]


def test_resp_framing():
    assert resp_end(b"+OK\r\n") == 5
    assert resp_end(b"+OK\r") is None
    assert resp_end(b"$3\r\nabc\r\n:1\r\n") == 9
    assert resp_end(b"$3\r\nab") is None
    assert resp_end(b"$-1\r\n") == 5
    assert resp_end(b"*2\r\n$1\r\na\r\n*1\r\n:5\r\n") == 19
    assert resp_end(b"*2\r\n$1\r\na\r\n*1\r\n") is None
    assert resp_end(b"*-1\r\n") == 5
    assert resp_end(b"-ERR x\r\n") == 8
    assert resp_end(b"%1\r\n+a\r\n:1\r\n_\r\n") == 12  # RESP3
    assert resp_end(b"|1\r\n+a\r\n:1\r\n,1.5\r\n") == 18
    request = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n"
    assert resp_end(request) == len(request)
    assert request_args(request) == [b"SET", b"k", b"a\r\nb"]


def _client(proxy: FaultProxy) -> redis.Redis:
    return redis.Redis(
        host=proxy.host, port=proxy.port, db=2, decode_responses=True, retry=Retry(NoBackoff(), 0)
    )


@pytest.fixture
def server_client(limpyd_backend, fault_server):
    client = redis.Redis(host=fault_server.host, port=fault_server.port, db=2)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def test_relays_faithfully(proxy, server_client):
    client = _client(proxy)
    big = "x" * 1_000_000
    assert client.set("big", big)
    assert client.get("big") == big
    with client.pipeline(transaction=True) as pipeline:
        pipeline.rpush("list", *range(5000)).lrange("list", 0, -1).hgetall("missing")
        assert pipeline.execute() == [5000, [str(i) for i in range(5000)], {}]
    assert proxy.faults == []


@pytest.mark.parametrize("kind", KINDS)
def test_cuts_where_it_says(proxy, server_client, kind):
    client = _client(proxy)
    client.set("n", 1)
    proxy.cut_next(kind, lambda args: args[0] == b"INCRBY")
    with pytest.raises(redis.ConnectionError):
        client.incrby("n", 10)
    assert [(fault.kind, fault.command) for fault in proxy.take_faults()] == [(kind, "INCRBY")]
    # Only a request sent in full ran; the reply of the one cut "after" was not delivered.
    assert server_client.get("n") == (b"11" if kind == "after" else b"1")
    assert client.incrby("n", 100) in (101, 111)  # a new connection works
    assert proxy.connections == 2


def test_random_cuts_happen_at_the_rate_asked(proxy, server_client):
    client = _client(proxy)
    proxy.rate = 0.5
    proxy.matcher = lambda args: args[0] == b"SET"  # not the handshake of new connections
    errors = 0
    for number in range(200):
        try:
            client.set(f"k{number}", number)
        except redis.ConnectionError:
            errors += 1
    faults = proxy.take_faults()
    assert 50 < len(faults) == errors < 150
    assert {fault.kind for fault in faults} == set(KINDS)
    # Exactly the requests cut "after" ran among the failed ones.
    ran_after_cut = {fault.args[1].decode() for fault in faults if fault.kind == "after"}
    failed = {fault.args[1].decode() for fault in faults if fault.command == "SET"}
    present = {key.decode() for key in server_client.keys("k*")}
    assert present & failed == ran_after_cut


def test_down_and_up(proxy, server_client):
    client = _client(proxy)
    assert client.ping()
    proxy.down()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    proxy.up()
    assert client.ping()
