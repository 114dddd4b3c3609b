"""Connections cut under limpyd: every write fully happens or not at all, errors reach the
caller, and the database keeps working.

Each rig test runs with a client made by `RedisDatabase.from_url(...)` ("url") and one made
by `RedisDatabase(host=..., port=..., db=...)` ("kwargs"), the two ways the README shows:
redis-py gives the second kind automatic retries of a command after a connection error
unless told otherwise, and a write whose reply was lost must not run twice (see `rig.py`
for the oracle).
"""

from __future__ import annotations

import os
import random
from collections import Counter
from typing import Any

import pytest
import redis

from limpyd import fields, model
from limpyd.database import RedisDatabase
from limpyd_testing import integrity
from limpyd_testing.snapshot import snapshot

from .proxy import KINDS
from .rig import Rig, is_apply, random_operation

pytestmark = pytest.mark.slow

#: Operations of the random workload (LIMPYD_FAULT_OPS for a longer run).
FAULT_OPS = int(os.environ.get("LIMPYD_FAULT_OPS", "") or 250)


def _base(models: dict[str, Any]) -> None:
    """Two accounts and a group pointing to them: pks '1', '2' and group '1'."""
    Account, Group = models["Account"], models["Group"]
    ann = Account(
        name="ann",
        email="ann@x",
        city="paris",
        tags=["t"],
        log=["x"],
        scores={"s": 1},
        attrs={"k": "v"},
        counter=0,
    )
    bob = Account(name="bob", city="rome")
    Group(code="g", owner=ann, members=[ann], queue=[ann, bob])


def _account(models: dict[str, Any], pk: str = "1") -> Any:
    return models["Account"].lazy_connect(pk)


def _group(models: dict[str, Any]) -> Any:
    return models["Group"].lazy_connect("1")


#: One write of each kind limpyd makes (create, modify, rewrite, delete, relations).
WRITES = {
    "create": lambda m: m["Account"](name="new", city="rome", log=["y"]),
    "create group": lambda m: m["Group"](code="h", owner="2"),
    "set unique": lambda m: _account(m).name.set("cid"),
    "hmset": lambda m: _account(m).hmset(email="e2@x", city="oslo"),
    "rpush": lambda m: _account(m).log.rpush("z"),
    "zincrby": lambda m: _account(m).scores.zincrby(1, "s"),
    "incr": lambda m: _account(m).counter.incr(),
    "m2m sadd": lambda m: _group(m).members.sadd("2"),
    "field delete": lambda m: _account(m).tags.delete(),
    "delete": lambda m: _account(m).delete(),
}


@pytest.mark.limpyd_backends("redis")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("operation", list(WRITES))
def test_cut_during_write(rig: Rig, operation, kind):
    """The connection is cut before, during, or after the request applying the write."""
    _base(rig.direct)
    rig.resync()
    list(rig.models["Account"].collection())  # the script is loaded: the cut hits the write
    rig.proxy.cut_next(kind, is_apply)

    step = rig.step(operation, WRITES[operation])

    assert rig.proxy.planned() == 0, "the write sent no script call to cut"
    assert [fault.kind for fault in step.faults] == [kind]
    assert step.problems == []
    if step.actual.kind == "lost":
        # A request sent in full ran; one cut before its end did not.
        assert step.applied is (kind == "after")
    assert step.actual.kind == "lost"  # the error reaches the caller, nothing is resent
    # The database object keeps working, and the data is consistent.
    again = rig.step(f"{operation} again", WRITES[operation])
    assert again.problems == [] and again.actual.kind != "lost"
    assert list(rig.models["Account"].collection()) == list(rig.direct["Account"].collection())
    assert integrity.check(*rig.direct.values()) == []


@pytest.mark.limpyd_backends("redis")
def test_random_faults(rig: Rig, capsys):
    """A random workload while ~10% of requests are cut at a random point."""
    rng = random.Random(2024)
    rig.proxy.rate = 0.1
    steps = []
    for number in range(FAULT_OPS):
        name, action = random_operation(rng, number, rig.pks("Account"), rig.pks("Group"))
        steps.append(rig.step(name, action))
    rig.proxy.rate = 0.0

    outcomes = Counter(step.actual.kind for step in steps)
    on_writes = Counter(f.kind for step in steps for f in step.faults if is_apply(list(f.args)))
    faults = Counter(f.kind for step in steps for f in step.faults)
    lost_applied = sum(1 for step in steps if step.actual.kind == "lost" and step.applied)
    with capsys.disabled():
        print(
            f"\n[faults {rig.style}] {FAULT_OPS} operations: {dict(outcomes)}; faults "
            f"{dict(faults)} ({dict(on_writes)} on write scripts); interrupted writes that "
            f"happened: {lost_applied}"
        )
    problems = [problem for step in steps for problem in step.problems]

    # Once the connections are left alone, everything works again, exactly.
    for number in range(FAULT_OPS, FAULT_OPS + 30):
        name, action = random_operation(rng, number, rig.pks("Account"), rig.pks("Group"))
        step = rig.step(name, action)
        problems += step.problems
        if step.actual.kind == "lost":
            problems.append(f"{name}: connection error without faults: {step.actual}")
    problems += [f"integrity: {problem}" for problem in integrity.check(*rig.direct.values())]

    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:20])
    # The faults really hit writes, at every point.
    assert set(on_writes) == set(KINDS)
    assert outcomes["ok"] > FAULT_OPS / 3


@pytest.mark.parametrize("what", ["write", "read"])
def test_unreachable_then_back(limpyd_backend, limpyd_database_factory, request, what):
    """While the server cannot be reached, calls raise ConnectionError and change nothing;
    once it is back, the same database object works (fakeredis: its `connected` switch;
    Redis: the proxy cuts every connection)."""
    if limpyd_backend == "fake":
        db = direct = limpyd_database_factory()
        server = db.backend.server

        def down() -> None:
            server.connected = False

        def up() -> None:
            server.connected = True
    else:
        proxy = request.getfixturevalue("proxy")
        base_url = request.getfixturevalue("fault_server").url.rsplit("/", 1)[0]
        db = RedisDatabase.from_url(f"{proxy.url}/3")
        direct = RedisDatabase.from_url(f"{base_url}/3")
        direct.client.flushdb()
        request.addfinalizer(db.client.close)
        request.addfinalizer(direct.client.close)
        down, up = proxy.down, proxy.up

    def declare(database):
        class Thing(model.RedisModel):
            database = None
            namespace = "unreachable"
            name = fields.StringField(unique=True)
            tags = fields.SetField(indexable=True)

        Thing.use_database(database)
        return Thing

    Thing, Seen = declare(db), declare(direct)
    thing = Thing(name="one", tags=["a"])
    before = snapshot(direct)
    down()
    with pytest.raises(redis.ConnectionError):
        if what == "write":
            thing.tags.sadd("b")
        else:
            list(Thing.collection(tags="a"))
    with pytest.raises(redis.ConnectionError):
        Thing(name="two")
    up()
    assert snapshot(direct) == before
    assert thing.tags.sadd("c") == 1
    assert Thing(name="two").pk.get() == "2"
    assert set(Thing.collection(tags="a")) == {"1"}
    assert integrity.check(Seen) == []
