"""Guarantees of concurrent writes, each forced deterministically:

- a write to an instance another client deleted meanwhile (before the write, or between the
  read a write is computed from and the script applying it) raises DoesNotExist and brings
  nothing back: no ghost in the collection, no orphan key, indexes exact;
- a related field written with the pk of an instance deleted meanwhile raises DoesNotExist
  and leaves no dangling relation;
- a write made stale by concurrent writers is computed again, a bounded number of times with
  a growing, capped backoff; exhaustion raises ConflictError and writes nothing.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import pytest
from redis.exceptions import ResponseError

from limpyd import fields, writes
from limpyd.contrib import related
from limpyd.exceptions import ConflictError, DoesNotExist
from limpyd.indexes import NumberRangeIndex
from limpyd_testing import integrity
from limpyd_testing.snapshot import snapshot


def _models(db):
    class Item(related.RelatedModel):
        cluster_group = "guarantees"
        database = db
        namespace = "guarantees"
        name = fields.StringField(unique=True)
        email = fields.InstanceHashField(unique=True)
        city = fields.InstanceHashField(indexable=True)
        note = fields.InstanceHashField()
        tags = fields.SetField(indexable=True)
        log = fields.ListField(indexable=True)
        scores = fields.SortedSetField(indexable=True)
        attrs = fields.HashField(indexable=True)
        plain = fields.StringField()
        counter = fields.StringField()
        rank = fields.InstanceHashField(indexes=[NumberRangeIndex])  # a parsed value: read first

    class Box(related.RelatedModel):
        cluster_group = "guarantees"
        database = db
        namespace = "guarantees"
        label = fields.StringField(indexable=True)
        owner = related.FKInstanceHashField(Item, related_name="owned")
        members = related.M2MSetField(Item, related_name="boxes")
        queue = related.M2MListField(Item, related_name="queues")

    return types.SimpleNamespace(Item=Item, Box=Box)


def _populate(models) -> None:
    first = models.Item(
        name="first",
        email="first@x",
        city="paris",
        note="n",
        tags=["a", "b"],
        log=["x", "y"],
        scores={"s": 1},
        attrs={"k": "v"},
        plain="p",
        counter=1,
    )
    second = models.Item(name="second", city="paris", tags=["a"])
    models.Box(label="box", owner=first, members=[first, second], queue=[second, first])


def _reference(database: Any, build: Callable[[Any], Any]) -> dict[str, Any]:
    """The data `build(models)` makes of the populated models, rebuilt from nothing on
    `database` (emptied first: a cluster has no second db to build it in)."""
    database.client.flushdb()
    models = _models(database)
    _populate(models)
    build(models)
    return snapshot(database)


#: Writes to Item '1' (or, for `box ...`, to Box '1'), by name; the flag: computed from a
#: read first (two round trips), so a deletion can fall between the read and the write
#: (`sadd`/`srem`, `zadd`/`zincrby`/`zrem` under value-naming indexes, and a single value
#: under them, read nothing: one round trip).
WRITES: dict[str, tuple[bool, Callable[[Any], Any]]] = {
    "set unique": (False, lambda m: m.Item.lazy_connect("1").name.set("other")),
    "hset unique": (False, lambda m: m.Item.lazy_connect("1").email.hset("new@x")),
    "hset indexed": (False, lambda m: m.Item.lazy_connect("1").city.hset("rome")),
    "hset plain": (False, lambda m: m.Item.lazy_connect("1").note.hset("m")),
    "hmset": (False, lambda m: m.Item.lazy_connect("1").hmset(city="oslo", note="o")),
    "hmset read first": (True, lambda m: m.Item.lazy_connect("1").hmset(rank="2", city="x")),
    "hdel": (False, lambda m: m.Item.lazy_connect("1").hdel("city", "email")),
    "sadd": (False, lambda m: m.Item.lazy_connect("1").tags.sadd("c")),
    "srem": (False, lambda m: m.Item.lazy_connect("1").tags.srem("a")),
    "rpush": (True, lambda m: m.Item.lazy_connect("1").log.rpush("z")),
    "lpop": (True, lambda m: m.Item.lazy_connect("1").log.lpop()),
    "zadd": (False, lambda m: m.Item.lazy_connect("1").scores.zadd({"t": 2})),
    "zincrby": (False, lambda m: m.Item.lazy_connect("1").scores.zincrby(5, "s")),
    "hash hset": (True, lambda m: m.Item.lazy_connect("1").attrs.hset("k", "w")),
    "hash hdel": (True, lambda m: m.Item.lazy_connect("1").attrs.hdel("k")),
    "set plain": (False, lambda m: m.Item.lazy_connect("1").plain.set("q")),
    "append": (False, lambda m: m.Item.lazy_connect("1").plain.append("q")),
    "incr": (False, lambda m: m.Item.lazy_connect("1").counter.incr()),
    "field delete": (False, lambda m: m.Item.lazy_connect("1").tags.delete()),
    "hash field delete": (True, lambda m: m.Item.lazy_connect("1").attrs.delete()),
    "plain field delete": (False, lambda m: m.Item.lazy_connect("1").plain.delete()),
    "delete": (True, lambda m: m.Item.lazy_connect("1").delete()),
    "box fk": (False, lambda m: m.Box.lazy_connect("1").owner.hset("2")),
    "box m2m": (False, lambda m: m.Box.lazy_connect("1").members.srem("2")),
    "box delete": (False, lambda m: m.Box.lazy_connect("1").delete()),
}


def _target(name: str, models) -> Any:
    return models.Box.lazy_connect("1") if name.startswith("box") else models.Item.lazy_connect("1")


class _AfterRead:
    """Replace `writes.READ` so that `action` runs once, right after the next read made by
    the code under test (not by `action` itself)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, action: Callable[[], Any]) -> None:
        self.original = writes.READ
        self.action = action
        self.fired = 0
        self.reads = 0
        self._busy = False
        monkeypatch.setattr(writes, "READ", self)

    def __call__(self, client: Any, args: list[Any], *, guard: str, model: Any = None) -> Any:
        result = self.original(client, args, guard=guard, model=model)
        if not self._busy:
            self.reads += 1
            if self.should_fire():
                self._busy = True
                try:
                    self.action()
                    self.fired += 1
                finally:
                    self._busy = False
        return result

    def should_fire(self) -> bool:
        return self.fired == 0


@pytest.mark.parametrize(
    "write, when",
    [(name, "before") for name in WRITES]
    + [(name, "between read and write") for name, (reads, _) in WRITES.items() if reads],
)
def test_write_to_instance_deleted_meanwhile(limpyd_database_factory, monkeypatch, write, when):
    database = limpyd_database_factory()
    mine, theirs = _models(database), _models(limpyd_database_factory())
    _populate(mine)
    _, action = WRITES[write]
    victim = _target(write, theirs)
    if when == "before":
        victim.delete()
        hook = None
        before = snapshot(database)
    else:
        hook = _AfterRead(monkeypatch, victim.delete)

    with pytest.raises(DoesNotExist):
        action(mine)

    after = snapshot(database)
    if hook is None:
        assert after == before  # the refused write changed nothing at all
    else:
        assert hook.fired == 1, "the write read nothing before writing"
        monkeypatch.undo()
    model = type(_target(write, mine))
    assert "1" not in set(model.collection())  # no ghost
    prefix = f"guarantees:{model.__name__.lower()}:obj:1:"
    assert [key for key in after if key.startswith(prefix)] == []  # nothing of it is left
    assert integrity.check(mine.Item, mine.Box) == []  # no orphan, indexes exact
    # The data is exactly what the deletion alone makes of it.
    assert _reference(database, lambda models: _target(write, models).delete()) == after


def test_a_write_redis_would_refuse_on_a_deleted_instance_is_does_not_exist(
    limpyd_database_factory,
):
    """LSET on a list another client deleted (with its instance) is refused by Redis ("no
    such key") when limpyd simulates it to find the index changes: that was raised, where
    every other write to a deleted instance raises DoesNotExist."""
    database = limpyd_database_factory()
    mine, theirs = _models(database), _models(limpyd_database_factory())
    _populate(mine)
    item = mine.Item.get("1")  # known to exist: no check before the write
    theirs.Item.lazy_connect("1").delete()
    before = snapshot(database)
    with pytest.raises(DoesNotExist, match=r"^Item: no instance with pk '1'$"):
        item.log.lset(0, "q")
    assert snapshot(database) == before
    with pytest.raises(ResponseError, match="no such key"):  # an instance that exists
        mine.Item.get("2").log.lset(0, "q")


#: Writes of Box '1' adding a relation to an Item; the flag: computed from a read first.
RELATING: dict[str, tuple[bool, Callable[[Any, Any], Any]]] = {
    "fk": (False, lambda box, item: box.owner.hset(item)),
    "m2m set": (False, lambda box, item: box.members.sadd(item)),
    "m2m list": (True, lambda box, item: box.queue.rpush(item)),
    "create with fk": (False, lambda box, item: type(box)(label="new", owner=item)),
    "create with m2m": (False, lambda box, item: type(box)(label="new", members=["1", item])),
}


@pytest.mark.parametrize(
    "write, when",
    [(name, "before") for name in RELATING]
    + [(name, "between read and write") for name, (reads, _) in RELATING.items() if reads],
)
def test_relation_to_instance_deleted_meanwhile(limpyd_database_factory, monkeypatch, write, when):
    """The related instance (not the one written) was deleted by another client: the write
    is refused with DoesNotExist (docs/decisions.md), writes nothing, and no relation points
    to a missing instance."""
    database = limpyd_database_factory()
    mine, theirs = _models(database), _models(limpyd_database_factory())
    _populate(mine)
    item = mine.Item(name="third")
    victim = theirs.Item.lazy_connect(item.pk.get())
    if when == "before":
        victim.delete()
        hook = None
        before = snapshot(database)
    else:
        hook = _AfterRead(monkeypatch, victim.delete)

    with pytest.raises(DoesNotExist, match=r"Item.*'3'"):
        RELATING[write][1](mine.Box.lazy_connect("1"), item)

    if hook is None:
        assert snapshot(database) == before
    else:
        assert hook.fired == 1, "the write read nothing before writing"
        monkeypatch.undo()
    assert integrity.check(mine.Item, mine.Box) == []
    after = snapshot(database)
    assert _reference(database, lambda models: models.Item(name="third").delete()) == after


# Conflicts and their bounded retries -------------------------------------------------------


class _Shim:
    """A module with some of its functions replaced."""

    def __init__(self, module: Any, **replaced: Any) -> None:
        self._module = module
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


class _Backoff:
    """Record the pauses between attempts instead of sleeping (bounds, then pauses)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bounds: list[float] = []
        self.pauses: list[float] = []
        # Only limpyd.writes sees these (its own names for the modules).
        monkeypatch.setattr(writes, "random", _Shim(writes.random, uniform=self.uniform))
        monkeypatch.setattr(writes, "time", _Shim(writes.time, sleep=self.pauses.append))

    def uniform(self, low: float, high: float) -> float:
        assert low == 0
        self.bounds.append(high)
        return high


#: Writes that are computed from a read (they can be made stale), and a concurrent write
#: that makes them stale (another client, on the same instance and field).
STALE: dict[str, tuple[Callable[[Any], Any], Callable[[Any, int], Any]]] = {
    "modify indexed": (
        lambda m: m.Item.lazy_connect("1").log.rpush("mine"),
        lambda m, n: m.Item.lazy_connect("1").log.rpush(f"theirs{n}"),
    ),
    "modify unique": (  # a unique value only the server computes: read first
        lambda m: m.Item.lazy_connect("1").name.append("mine"),
        lambda m, n: m.Item.lazy_connect("1").name.set(f"theirs{n}"),
    ),
    "hmset": (
        lambda m: m.Item.lazy_connect("1").hmset(rank="1", email="mine@x"),
        lambda m, n: m.Item.lazy_connect("1").rank.hset(f"{n}"),
    ),
    "field delete": (  # a hash's values are read first (a set's are found by the script)
        lambda m: m.Item.lazy_connect("1").attrs.delete(),
        lambda m, n: m.Item.lazy_connect("1").attrs.hset("k", f"theirs{n}"),
    ),
    "delete": (
        lambda m: m.Item.lazy_connect("1").delete(),
        lambda m, n: m.Item.lazy_connect("1").attrs.hset("k", f"theirs{n}"),
    ),
    "m2m": (
        lambda m: m.Box.lazy_connect("1").queue.rpush("2"),
        lambda m, n: m.Box.lazy_connect("1").queue.rpush("1"),
    ),
}


class _Interfere(_AfterRead):
    """After each of the first `times` reads of the write under test, another client
    writes the same field: the write is stale when it is applied."""

    def __init__(self, monkeypatch, theirs, interfere, times: int) -> None:
        super().__init__(monkeypatch, lambda: interfere(theirs, self.fired))
        self.times = times

    def should_fire(self) -> bool:
        if self.reads > 1000:  # fail, rather than hang, if retries were unbounded
            raise AssertionError("a write made stale was computed again 1000 times")
        return self.fired < self.times


@pytest.mark.parametrize("write", list(STALE))
def test_retries_exhausted(limpyd_database_factory, monkeypatch, write):
    mine_db, theirs_db = limpyd_database_factory(), limpyd_database_factory()
    mine, theirs = _models(mine_db), _models(theirs_db)
    _populate(mine)
    mine_db.max_write_attempts = 5
    mine_db.retry_backoff, mine_db.retry_backoff_max = 0.01, 0.03
    action, interfere = STALE[write]
    hook = _Interfere(monkeypatch, theirs, interfere, times=10**6)
    backoff = _Backoff(monkeypatch)

    with pytest.raises(ConflictError, match=r"gave up after 5 attempts.*nothing was written"):
        action(mine)

    assert hook.reads == hook.fired == 5  # computed 5 times, each made stale
    assert backoff.bounds == [0.01, 0.02, 0.03, 0.03, 0.03]  # doubling, capped
    assert backoff.pauses == backoff.bounds
    monkeypatch.undo()
    # Nothing of the write is there: the data is what the other client's 5 writes made.
    assert integrity.check(mine.Item, mine.Box) == []
    after = snapshot(mine_db)

    def concurrent_writes(models: Any) -> None:
        for number in range(5):
            interfere(models, number)

    assert _reference(mine_db, concurrent_writes) == after


@pytest.mark.parametrize("write", list(STALE))
def test_conflicts_then_success(limpyd_database_factory, monkeypatch, write):
    """Made stale 3 times, the write is computed again from fresh data and applied once,
    on top of the concurrent writes."""
    mine_db, theirs_db = limpyd_database_factory(), limpyd_database_factory()
    mine, theirs = _models(mine_db), _models(theirs_db)
    _populate(mine)
    action, interfere = STALE[write]
    hook = _Interfere(monkeypatch, theirs, interfere, times=3)
    backoff = _Backoff(monkeypatch)

    result = action(mine)

    assert hook.reads == 4 and hook.fired == 3
    assert len(backoff.pauses) == 3
    monkeypatch.undo()
    assert integrity.check(mine.Item, mine.Box) == []
    after = snapshot(mine_db)

    def concurrent_writes_then_mine(models: Any) -> None:
        for number in range(3):
            interfere(models, number)
        assert action(models) == result

    assert _reference(mine_db, concurrent_writes_then_mine) == after


def test_default_retry_bounds(db):
    """The defaults are bounded: a write gives up after a finite, short total backoff."""
    attempts, first, cap = db.max_write_attempts, db.retry_backoff, db.retry_backoff_max
    assert 1 < attempts <= 100
    assert 0 < first <= cap <= 1
    assert attempts * cap <= 10  # seconds, at worst
