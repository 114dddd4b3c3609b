"""Declared keys (Part 10): every key a script call touches that is known before the call is
in its KEYS. Keys found at run time (a new pk's, the instances a query or a deletion meets)
are built under the model's prefix.

On both backends, what each operation changes is compared with what its calls declared; on
the real server, MONITOR shows every command the script itself ran, reads included.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from limpyd import fields, lua, model, protocol
from limpyd.contrib import related
from limpyd.contrib.collection import ExtendedCollectionManager
from limpyd.indexes import NumberRangeIndex, TextRangeIndex
from limpyd_testing.snapshot import snapshot


@pytest.fixture
def declared(monkeypatch) -> list[list[str]]:
    """The KEYS of every script call made while the test runs."""
    calls: list[list[str]] = []

    def recording(args: Any, guard: str) -> tuple[list[str], list[Any]]:
        keys, argv = protocol.split(args, guard)
        calls.append(keys)
        return keys, argv

    monkeypatch.setattr(lua, "split", recording)
    return calls


@pytest.fixture
def models(db):
    class Team(related.RelatedModel):
        cluster_group = "declared_keys"
        database = db
        name = fields.PKField()
        city = fields.InstanceHashField(indexable=True)

    class Player(related.RelatedModel):
        cluster_group = "declared_keys"
        database = db
        collection_manager = ExtendedCollectionManager
        unique_together = [("nick", "city")]
        name = fields.PKField()
        nick = fields.InstanceHashField(unique=True)
        city = fields.InstanceHashField(indexable=True)
        bio = fields.StringField(indexes=[TextRangeIndex])
        tags = fields.SetField(indexable=True)
        log = fields.ListField(indexes=[NumberRangeIndex])
        props = fields.HashField(indexable=True)
        scores = fields.SortedSetField(indexable=True)
        team = related.FKInstanceHashField(Team, related_name="players")
        fans = related.M2MSetField("Player", related_name="idols")

    class Ticket(model.RedisModel):
        database = db
        code = fields.StringField(unique=True)
        seat = fields.InstanceHashField(indexable=True)

    return Team, Player, Ticket


def writes(models) -> list[tuple[str, Callable[[], Any]]]:
    Team, Player, Ticket = models
    Team(name="red", city="paris")
    Player(name="ann", nick="a", city="paris", bio="hi", tags=["x"], log=["1"], team="red")
    bob = Player(name="bob", nick="b", city="lyon", scores={"m": 1.0})
    ann = Player("ann")
    return [
        ("create", lambda: Player(name="cid", nick="c", city="nice", props={"k": "v"})),
        ("create with a new pk", lambda: Ticket(code="t1", seat="3")),
        ("unique update", lambda: ann.nick.hset("aa")),
        ("hmset", lambda: ann.hmset(nick="ab", city="lyon")),
        ("indexed set", lambda: ann.bio.set("hello")),
        ("sadd", lambda: ann.tags.sadd("y", "z")),
        ("srem", lambda: ann.tags.srem("x")),
        ("simulated lpush", lambda: ann.log.lpush("7")),
        ("zadd", lambda: bob.scores.zadd({"n": 2.0})),
        ("hash field", lambda: ann.props.hset("k", "w")),
        ("m2m sadd", lambda: ann.fans.sadd(bob)),
        ("fk set", lambda: bob.team.hset("red")),
        ("expire", lambda: bob.expire(100)),
        ("create_many", lambda: Ticket.create_many([{"code": "t2"}, {"code": "t3"}])),
        ("delete", lambda: ann.delete()),
        ("delete referenced", lambda: Team("red").delete()),
    ]


def _changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}


def test_every_write_declares_what_it_changes(db, models, declared):
    Player = models[1]
    for what, write in writes(models):
        declared.clear()
        before = snapshot(db)
        write()
        changed = _changed(before, snapshot(db))
        assert changed and declared and all(declared), what
        keys = {key for call in declared for key in call}
        # found at run time: a new pk's keys, those of the players a deleted team held, the
        # equality index keys of a single value the script read
        new_pks = {k.split(":")[-2] for k in changed if ":obj:" in k} - {"ann", "bob", "cid"}
        runtime = {
            k
            for k in changed - keys
            if any(f":obj:{pk}:" in k for pk in new_pks)
            or (what == "delete referenced" and k.startswith(Player._meta.prefix))
            or ":equal:" in k
        }
        assert changed - keys == runtime, (what, sorted(changed - keys))


def test_a_creation_with_a_given_pk_declares_every_key(db, models, declared):
    Player = models[1]
    before = snapshot(db)
    Player(name="dan", nick="d", city="rome", bio="b", tags=["t"], scores={"s": 1.0})
    changed = _changed(before, snapshot(db))
    assert len(declared) == 1
    assert changed <= set(declared[0])
    assert Player._meta.collection_key in declared[0]


def test_a_hand_built_argument_naming_no_declared_key_is_an_error(db, models):
    """The script resolves a key only through KEYS: a position out of them fails before any
    write."""
    before = snapshot(db)
    with pytest.raises(Exception, match="no declared key"):
        lua.APPLY(db.client, [protocol.PROBE, 1, protocol.NEW_PK, 2], guard="{t}:probe")
    assert snapshot(db) == before


def test_queries_declare_their_keys(db, models, declared):
    Player = models[1]
    for name, city in (("eve", "oslo"), ("fay", "oslo"), ("gus", "rome")):
        Player(name=name, nick=name, city=city, bio=name, tags=[city])
    meta = Player._meta
    for query in (
        lambda: list(Player.collection(city="oslo")),
        lambda: len(Player.collection(city="oslo", tags="oslo")),
        lambda: list(Player.collection().sort(by="bio", alpha=True)[:2]),
        lambda: bool(Player.collection(city="rome").exclude(tags="x")),
    ):
        declared.clear()
        query()
        (keys,) = declared
        assert meta.collection_key in keys and meta.expiry_key in keys
    declared.clear()
    list(Player.collection(city="oslo"))
    (keys,) = declared
    (index,) = Player.get_field("city").indexes
    assert index.value_key("oslo", None) in keys
    stored = Player.collection(city="oslo").store(ttl=60)
    assert stored.stored_key in declared[-1]


def test_every_call_declares_its_models_probe_key_first(db, models, declared):
    """The slot guard (see `limpyd.protocol`): a key that never exists, declared by every call
    along with at least one other, so a cluster refuses the call while the slot migrates."""
    Player = models[1]
    operations = [
        *writes(models),
        ("filter", lambda: list(Player.collection(city="oslo", tags="oslo"))),
        ("values", lambda: list(Player.collection(city="oslo").values("nick"))),
        ("get", lambda: Player.get(name="bob")),
    ]
    for what, operation in operations:
        declared.clear()
        operation()
        assert declared, what
        probes = {model._meta.probe_key for model in models}
        for keys in declared:
            assert keys[0] in probes and len(set(keys)) >= 2, (what, keys)
            assert keys[0] not in keys[1:], (what, keys)
    assert not any(db.client.exists(model._meta.probe_key) for model in models)


def _monitored(db, run: Callable[[], Any]) -> list[list[str]]:
    """The commands the server ran from scripts while `run` ran (MONITOR)."""
    seen: list[list[str]] = []
    ready, stop = threading.Event(), "limpyd-monitor-stop"

    def listen() -> None:
        with db.client.monitor() as monitor:
            ready.set()
            for line in monitor.listen():
                command = line["command"]
                if command == f"ECHO {stop}":
                    return
                if line.get("client_type") == "lua":
                    seen.append(command.split(" "))

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(5)
    db.client.ping()
    run()
    db.client.echo(stop)
    thread.join(10)
    assert not thread.is_alive()
    return seen


#: Commands a script runs on keys, and where: the first argument, or every one.
_EVERY = {"DEL", "EXISTS", "SINTER", "SUNION", "SDIFF", "SINTERSTORE", "SUNIONSTORE"}
_NOT_KEYED = {"TIME"}


@pytest.mark.limpyd_backends("redis")
def test_the_server_sees_only_declared_keys(db, models, declared):
    Player = models[1]
    for name, city in (("eve", "oslo"), ("fay", "oslo")):
        Player(name=name, nick=name, city=city, bio=name, tags=[city])
    operations = [
        *writes(models),
        ("filter", lambda: list(Player.collection(city="oslo", tags="oslo"))),
        ("sort by", lambda: list(Player.collection().sort(by="bio", alpha=True)[:1])),
        ("values", lambda: list(Player.collection(city="oslo").values("nick"))),
    ]
    instance_prefixes = tuple(f"{m._meta.prefix}:obj:" for m in models)
    # a deletion finds the references to it (and their index entries) in its link records
    referencing = (f"{Player._meta.prefix}:",)
    for what, operation in operations:
        declared.clear()
        commands = _monitored(db, operation)
        keys = {key for call in declared for key in call}
        assert commands, what
        for name, *args in commands:
            name = name.strip('"').upper()
            if name in _NOT_KEYED or not args:
                continue
            touched = args if name in _EVERY else args[:1]
            for key in (k.strip('"') for k in touched):
                found = (
                    key.startswith(instance_prefixes)
                    or (what.startswith("delete") and key.startswith(referencing))
                    or ":equal:" in key  # the value's equality entry, the value read there
                )
                assert key in keys or found, (what, name, key)
