"""A query that runs long does not hold the server hostage: it is a read-only function, so
once it passes the server's busy threshold, FUNCTION KILL stops it, its caller gets an
error, and the server answers everyone again with nothing changed."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from limpyd import fields, model
from limpyd_testing.snapshot import snapshot

pytestmark = pytest.mark.slow


@pytest.mark.limpyd_backends("redis")
def test_a_long_query_can_be_killed(db):
    class Person(model.RedisModel):
        database = db
        namespace = "long"
        name = fields.InstanceHashField()

    # a collection of 300,000 pks, written raw: sorting them by a text reads each value
    # from Lua, for about a second
    admin = db.connection
    with admin.pipeline(transaction=False) as pipe:
        for start in range(0, 300_000, 10_000):
            pipe.sadd(Person._meta.collection_key, *range(start + 1, start + 10_001))
        pipe.execute()
    before = snapshot(db)
    threshold = admin.config_get("busy-reply-threshold")["busy-reply-threshold"]
    admin.config_set("busy-reply-threshold", 50)
    outcome: list[BaseException] = []

    def ask() -> None:
        try:
            list(Person.collection().sort(by="name", alpha=True))
        except BaseException as error:  # what the caller got, checked below
            outcome.append(error)

    other = db.backend.client()  # a client of its own
    asking = threading.Thread(target=ask)
    try:
        asking.start()
        deadline = time.monotonic() + 20
        while True:  # until the server says it is busy with the query
            assert time.monotonic() < deadline, "the query never made the server busy"
            try:
                other.ping()
            except redis.exceptions.BusyLoadingError:
                break
            except redis.exceptions.ResponseError as error:
                if "BUSY" in str(error):
                    break
                raise
            time.sleep(0.01)
        assert other.function_kill()
        asking.join(20)
        assert not asking.is_alive()
        assert other.ping()
    finally:
        asking.join(20)
        admin.config_set("busy-reply-threshold", threshold)
        other.close()
    (error,) = outcome
    assert isinstance(error, redis.exceptions.ResponseError) and "kill" in str(error).lower()
    assert snapshot(db) == before
