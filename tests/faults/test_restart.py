"""The server dies (SIGKILL) and starts again on the same port, empty (no persistence):
limpyd reconnects on the next call, and nothing the Python objects kept makes a write wrong.
"""

from __future__ import annotations

import os
import signal

import pytest
import redis

from limpyd.database import RedisDatabase
from limpyd.exceptions import DoesNotExist
from limpyd_testing import integrity
from limpyd_testing.server import RedisServerExecutor

from .rig import make_models

pytestmark = pytest.mark.slow


@pytest.mark.limpyd_backends("redis")
@pytest.mark.parametrize("style", ["url", "kwargs"])
def test_server_restart(limpyd_backend, redis_server_path, style):
    server = RedisServerExecutor(redis_server_path).start()
    restarted: RedisServerExecutor | None = None
    db: RedisDatabase | None = None
    try:
        if style == "url":
            db = RedisDatabase.from_url(server.url)
        else:
            db = RedisDatabase(host=server.host, port=server.port, db=0)
        models = make_models(db)
        Account, Group = models["Account"], models["Group"]
        ann = Account(name="ann", email="ann@x", city="paris", tags=["t"], log=["x"], counter=1)
        bob = Account(name="bob", city="paris")
        group = Group(code="g", owner=ann, members=[ann, bob])
        assert list(Account.collection(city="paris")) == ["1", "2"]

        os.kill(server.pid, signal.SIGKILL)
        server.stop()  # reaps the dead process
        with pytest.raises(redis.ConnectionError):
            ann.log.rpush("y")  # no silent success while the server is down

        restarted = RedisServerExecutor(redis_server_path, port=server.port).start()
        # The next call reconnects (and loads the script into the new server).
        assert list(Account.collection(city="paris")) == []
        # The instances the Python objects stand for are gone: writing to them is refused,
        # and brings nothing back.
        writes = [
            lambda: ann.name.set("x"),
            lambda: ann.log.rpush("y"),
            lambda: ann.hmset(city="rome"),
            lambda: ann.counter.incr(),
            lambda: ann.tags.delete(),
            lambda: group.members.sadd(bob),
            lambda: group.owner.hset(bob),
            lambda: bob.delete(),
        ]
        for write in writes:
            with pytest.raises(DoesNotExist):
                write()
        assert db.client.dbsize() == 0
        # Unique values are free again, the pk counter starts again, indexes are exact.
        again = Account(name="ann", email="ann@x", city="rome", log=["z"])
        assert again.pk.get() == "1"
        assert list(Account.collection(city="rome")) == ["1"]
        assert again.log.lrange(0, -1) == ["z"]
        assert integrity.check(Account, Group) == []
    finally:
        if db is not None:
            db.client.close()
        server.stop()
        if restarted is not None:
            restarted.stop()
