"""The script's grammar at the script level: each operation of `limpyd.protocol`, sent by
hand to the `apply`, `read` and `query` modes, on both backends."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from limpyd import lua, protocol
from limpyd.exceptions import DoesNotExist
from limpyd.protocol import Key, encode_command, encode_sort, encode_sources
from limpyd.text import ESCAPE
from limpyd_testing.snapshot import snapshot

C, X, P = Key("{t}:collection"), Key("{t}:expiry"), Key("{t}:probe")


def apply(db, *instructions):
    return lua.APPLY(db.client, [protocol.PROBE, P, *instructions], guard=P)


def call(*command, reply=False):
    operation = protocol.CALL_FOR_REPLY if reply else protocol.CALL
    return [operation, *encode_command(command)]


def test_the_operations_are_named_once_and_all_known_to_the_script():
    codes = list(protocol.OPERATIONS.values())
    assert len(codes) == len(set(codes)) > 30
    folder = resources.files("limpyd") / "scripts"
    names = ("keytypes.lua", "links.lua", "apply.lua", "read.lua", "order.lua", "query.lua")
    text = "".join((folder / name).read_text() for name in names)
    used = set(re.findall(r"\bOP\.(\w+)", text))
    assert used == set(protocol.OPERATIONS)


def test_an_unknown_operation_is_an_error_that_writes_nothing(db):
    before = snapshot(db)
    for mode in (lua.APPLY, lua.READ):
        with pytest.raises(Exception, match="unknown"):
            mode(db.client, ["nonsense", "list", Key("{t}:k"), ""], guard=P)
    assert snapshot(db) == before


def test_exists_free_and_reaping(db):
    db.client.sadd(C, "1")
    assert apply(db, protocol.EXISTS, C, "1", X)[0] == "OK"
    assert apply(db, protocol.EXISTS, C, "2", X) == ["DOESNOTEXIST"]
    assert apply(db, protocol.FREE, C, "1", X) == ["PKEXISTS"]
    assert apply(db, protocol.FREE, C, "2", X)[0] == "OK"
    assert apply(db, protocol.REAPING, C, "1", X) == ["LIVE"]
    db.client.zadd(X, {"1": 1.0})  # its time passed long ago
    assert apply(db, protocol.EXISTS, C, "1", X) == ["EXPIRED"]
    assert apply(db, protocol.REAPING, C, "1", X)[0] == "OK"
    db.client.zadd(X, {"3": 1.0})
    assert apply(db, protocol.REAPING, C, "3", X) == ["GONE"]
    assert db.client.zscore(X, "3") is None


def test_guard(db):
    db.client.rpush("{t}:list", "a", "b")
    key = Key("{t}:list")
    assert apply(db, protocol.GUARD, "list", key, "", 2, "a", "b", *call("DEL", key))[0] == "OK"
    assert not db.client.exists("{t}:list")
    db.client.rpush("{t}:list", "a")
    assert apply(db, protocol.GUARD, "list", key, "", 0, *call("DEL", key)) == ["CONFLICT"]
    assert db.client.lrange("{t}:list", 0, -1) == ["a"]


def test_reference_and_unique(db):
    db.client.sadd(C, "1")
    assert apply(db, protocol.REFERENCE, 0, C, "2", X, "") == ["DANGLING", "0"]
    assert apply(db, protocol.REFERENCE, 0, C, "1", X, "")[0] == "OK"
    # a reference the field holds already is not checked again
    db.client.sadd("{t}:members", "2")
    held = ["set", Key("{t}:members"), ""]
    assert apply(db, protocol.REFERENCE, 0, C, "2", X, *held)[0] == "OK"
    assert apply(db, protocol.REFERENCE, 0, C, "3", X, *held) == ["DANGLING", "0"]
    db.client.set("{t}:fk", "3")
    assert apply(db, protocol.REFERENCE, 0, C, "3", X, "string", Key("{t}:fk"), "")[0] == "OK"
    db.client.sadd("{t}:idx", "1")
    check = [protocol.UNIQUE, 4, "set", Key("{t}:idx"), "", ""]
    assert apply(db, *check, "2", X) == ["UNIQUE", "4", "1"]
    assert apply(db, *check, "1", X)[0] == "OK"
    db.client.zadd(X, {"1": 1.0})
    assert apply(db, *check, "2", X) == ["REAP", "1"]


def test_probe_refuses_a_bad_score_before_any_write(db):
    z = Key("{t}:z")
    before = snapshot(db)
    outcome = apply(db, *call("SET", Key("{t}:s"), "v"), *call("ZADD", z, "nan", "m"))
    assert outcome[0] == "INVALID"
    assert snapshot(db) == before


def test_new_pk_fills_its_holes(db):
    token = "\x00token\x00"
    counter = Key("{t}:max_pk")
    add = encode_command(("SADD", C, token), token)
    field = encode_command(("SET", f"{{t}}:obj:{token}:name", "ann"), token)
    outcome = apply(db, protocol.NEW_PK, counter, C, protocol.CALL, *add, protocol.CALL, *field)
    assert outcome == ["OK", None, "1"]
    assert db.client.smembers(C) == {"1"} and db.client.get("{t}:obj:1:name") == "ann"
    assert db.client.get("{t}:max_pk") == "1"


def test_new_pk_refuses_a_counter_behind_the_collection(db):
    """A counter set back by another client would give a pk an instance holds (which a
    creation's first command deletes): the write is refused, nothing written."""
    token = "\x00token\x00"
    db.client.sadd(C, "1", "2")
    db.client.set("{t}:max_pk", "1")
    before = snapshot(db)
    add = encode_command(("SADD", C, token), token)
    outcome = apply(db, protocol.NEW_PK, Key("{t}:max_pk"), C, protocol.CALL, *add)
    assert outcome == ["INVALID", "the pk counter {t}:max_pk holds 1, behind the instance 2"]
    assert snapshot(db) == before


def test_expire_and_call_for_reply(db):
    outcome = apply(
        db,
        protocol.EXPIRE,
        100,
        *encode_command(("ZADD", X, "1")),
        *call("SADD", Key("{t}:s"), "a", "b", reply=True),
    )
    assert outcome[:2] == ["OK", 2]
    assert db.client.zscore(X, "1") > 100


def test_per_member(db):
    s = Key("{t}:s")
    db.client.sadd(s, "held")
    plans = [
        *("held", 1, *encode_command(("SADD", Key("{t}:log"), "was held"))),
        *("new", 1, *encode_command(("SADD", Key("{t}:log"), "was new"))),
    ]
    apply(db, protocol.PER_MEMBER, "set", s, "0", 2, *plans)
    assert db.client.smembers("{t}:log") == {"was new"}
    apply(db, protocol.PER_MEMBER, "set", s, "1", 2, *plans)
    assert db.client.smembers("{t}:log") == {"was new", "was held"}


def test_unlink(db):
    """Instance 5 refers to instance 1 in its set `friends` (indexed in t:idx:friends:1);
    deleting 1 unlinks it there, removes the index entry and drops the link records."""
    db.client.sadd("{t}:obj:5:friends", "1", "2")
    db.client.sadd("{t}:idx:friends:1", "5")
    record = ["set", "{t}:obj:", ":friends", "", protocol.SET_KEY, "{t}:idx:friends:1"]
    record += ["1", "3", "=", "SREM", "=", "{t}:idx:friends:1", "+", "", "", "0"]
    encoded = "".join(f"{len(x)}:{x}" for x in record)
    db.client.hset("{t}:relations:1", "{t}:friends", encoded)
    assert apply(db, protocol.UNLINK, Key("{t}:relations:1"), "1")[0] == "OK"
    assert db.client.smembers("{t}:obj:5:friends") == {"2"}
    assert not db.client.exists("{t}:idx:friends:1") and not db.client.exists("{t}:relations:1")


def entries(when, index="{t}:idx:"):
    """Value entries of the string at {t}:v: its value's index entry removed ('old') or
    added ('new'), \x01 standing for the value."""
    template = ("SREM" if when == "old" else "SADD", index + "\x01", "5")
    command = protocol.encode_template(template, "\x01", "\x02")
    return [protocol.VALUE_ENTRIES, when, "string", Key("{t}:v"), "", *ESCAPE, 1, *command]


def test_value_entries_of_a_computed_value_are_checked_after_its_modifier(db, dumps):
    """'new' entries are known once the modifier ran: refused, the modifier is undone (the
    value and its expiry time put back) and the 'old' entries stay."""
    db.client.set("{t}:v", "1")
    db.client.sadd("{t}:idx:1", "5")
    incr = call("INCR", Key("{t}:v"), reply=True)
    assert apply(db, *incr, *entries("old"), *entries("new")) == ["OK", 2, None]
    assert db.client.smembers("{t}:idx:2") == {"5"} and not db.client.exists("{t}:idx:1")
    db.client.pexpire("{t}:v", 10**7)
    db.client.set("{t}:idx:3", "not a set")
    before = dumps()
    outcome = apply(db, *incr, *entries("old"), *entries("new"))
    assert outcome == ["INVALID", "key {t}:idx:3 holds a string, not a set"]
    assert dumps() == before
    db.client.delete("{t}:v")  # no value before: the undo deletes it
    assert apply(db, *incr, *entries("old"), *entries("new"))[0] == "OK"
    db.client.delete("{t}:v")
    db.client.set("{t}:idx:1", "not a set")
    assert apply(db, *incr, *entries("old"), *entries("new"))[0] == "INVALID"
    assert not db.client.exists("{t}:v")


@pytest.mark.parametrize(
    "before",
    [
        call("SADD", Key("{t}:other"), "x"),  # a write that is not the field's modifier
        [*call("INCR", Key("{t}:v")), *call("INCR", Key("{t}:v"))],  # two
        [*entries("old"), *entries("old", "{t}:other:")],  # old entries of another
        [protocol.VALUE_ENTRIES, "old", "hashfield", *entries("old")[3:]],  # another field
    ],
    ids=["other write", "two modifiers", "twice old", "other field"],
)
def test_value_entries_of_a_computed_value_follow_only_its_modifier(db, before):
    data = snapshot(db)
    with pytest.raises(Exception, match="'new' value entries follow only"):
        apply(db, *before, *entries("new"))
    assert snapshot(db) == data


def _new_entries(*template, when="new", escape=ESCAPE):
    command = protocol.encode_template(template, "\x01", "\x02")
    return [protocol.VALUE_ENTRIES, when, "string", Key("{t}:v"), "", *escape, 1, *command]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (_new_entries("GET", "{t}:idx:\x01"), "not an index entry's command"),
        (_new_entries("SADD", "{t}:idx:\x01"), "not an index entry's command"),
        (_new_entries("ZADD", "{t}:idx", "\x01"), "not an index entry's command"),
        (_new_entries("SADD", "{t}:idx:\x01", "5", escape=("", "x")), "escaping an empty text"),
        (_new_entries("SADD", "{t}:idx:\x01", "5", when="later"), "unknown time"),
    ],
    ids=["not an index write", "no member", "no score", "empty escape", "unknown time"],
)
def test_value_entries_are_read_whole_before_the_first_write(db, entries, message):
    db.client.set("{t}:v", "1")
    data = snapshot(db)
    with pytest.raises(Exception, match=message):
        apply(db, *call("INCR", Key("{t}:v"), reply=True), *entries)
    assert snapshot(db) == data


def test_a_computed_score_redis_refuses_undoes_the_modifier(db, dumps):
    db.client.set("{t}:v", "1")
    before = dumps()
    append = call("APPEND", Key("{t}:v"), "x", reply=True)
    outcome = apply(db, *append, *_new_entries("ZADD", "{t}:z", "\x01", "m"))
    assert outcome[0] == "INVALID" and "not a valid float" in outcome[1]
    assert dumps() == before
    db.client.set("{t}:v", "1")
    assert apply(db, *call("INCR", Key("{t}:v")), *_new_entries("ZADD", "{t}:z", "\x01", "m"))
    assert db.client.zscore("{t}:z", "m") == 2.0


def test_state_and_simulate(db):
    key, scratch = Key("{t}:list"), Key("{t}:scratch")
    db.client.rpush(key, "a")
    state = lua.READ(db.client, [protocol.STATE, "list", key, ""], guard=P)
    assert state == [["a"]]
    ((old, outcome, new),) = lua.READ(
        db.client, [protocol.SIMULATE, "list", key, "", scratch, 2, "RPUSH", "b"], guard=P
    )
    assert (old, outcome, new) == (["a"], ["R", 2], ["a", "b"])
    assert db.client.lrange(key, 0, -1) == ["a"] and not db.client.exists(scratch)


def query(db, expression, sort=(protocol.UNSORTED,), output=("pks",)):
    args = [C, "{t}:obj:", ":_hash", X, *expression, *encode_sort(sort), 0, *output]
    return lua.QUERY(db.client, args, guard=P)


@pytest.fixture
def data(db):
    db.client.sadd(C, "1", "2", "3", "10")
    db.client.sadd("{t}:red", "1", "2")
    db.client.sadd("{t}:big", "2", "3")
    db.client.zadd("{t}:name", {"ann\x00\x001": 0, "bob\x00\x002": 0, "cid\x00\x003": 0})
    db.client.zadd("{t}:age", {"1": 30, "2": 20, "3": 10})
    db.client.rpush("{t}:order", "3", "1")
    for pk, name in (("1", "b"), ("2", "c"), ("3", "a"), ("10", "d")):
        db.client.set(f"{{t}}:obj:{pk}:name", name)
        db.client.hset(f"{{t}}:obj:{pk}:_hash", "nick", name.upper())
    return db


def test_set_expressions(data):
    red, big = [protocol.SET_KEY, "{t}:red"], [protocol.SET_KEY, "{t}:big"]

    def pks(*expression):
        return sorted(query(data, expression))

    assert pks(protocol.COLLECTION) == ["1", "10", "2", "3"]
    assert pks(*encode_sources([[red]])) == ["1", "2"]
    assert pks(*encode_sources([[red, big]])) == ["1", "2", "3"]
    assert pks(protocol.INTERSECTION, 2, *encode_sources([[red], [big]])) == ["2"]
    assert pks(protocol.UNION, 2, *encode_sources([[red], [big]])) == ["1", "2", "3"]
    assert pks(protocol.DIFFERENCE, 2, *encode_sources([[red], [big]])) == ["1"]
    assert pks(protocol.SYMMETRIC_DIFFERENCE, 2, *encode_sources([[red], [big]])) == ["1", "3"]


def test_atoms(data):
    def pks(atom):
        return sorted(query(data, encode_sources([[atom]])))

    assert pks((protocol.LEX_RANGE, "{t}:name", "[b", "(c")) == ["2"]
    assert pks((protocol.SCORE_RANGE, "{t}:age", "15", "+inf")) == ["1", "2"]
    assert pks((protocol.PK_LIST, 2, "3", "99")) == ["3", "99"]
    assert pks((protocol.KEY_MEMBERS, "{t}:order")) == ["1", "3"]
    data.client.rpush("{t}:stored", "", "2")
    stored = encode_sources([[(protocol.STORED_LIST, "{t}:stored")]])
    assert query(data, [protocol.INTERSECTION, 2, protocol.COLLECTION, *stored]) == ["2"]
    with pytest.raises(DoesNotExist, match=r"stored collection '\{t\}:nowhere' expired"):
        pks((protocol.STORED_LIST, "{t}:nowhere"))
    assert pks((protocol.FIELD_EXISTS, "{t}:obj:", ":name", "", "1")) == ["1", "10", "2", "3"]
    assert pks((protocol.FIELD_EXISTS, "{t}:obj:", ":_hash", "nick", "0")) == []


def test_sorts(data):
    everything = [protocol.COLLECTION]
    assert query(data, everything, (protocol.BY_DEFAULT, True)) == ["10", "3", "2", "1"]
    assert query(data, everything, (protocol.BY_PK, True, False)) == ["1", "10", "2", "3"]
    assert query(data, everything, (protocol.BY_STRING, True, False, ":name")) == [
        "3",
        "1",
        "2",
        "10",
    ]
    assert query(data, everything, (protocol.BY_HASH, True, True, "nick")) == ["10", "2", "1", "3"]
    red = encode_sources([[(protocol.SCORE_RANGE, "{t}:age", "-inf", "+inf")]])
    assert query(data, red, (protocol.BY_SCORE, False, False, "{t}:age")) == ["3", "2", "1"]
    order = encode_sources([[(protocol.KEY_MEMBERS, "{t}:order")]])
    assert query(data, order, (protocol.BY_LIST, False, False, "{t}:order")) == ["3", "1"]
    keys = (protocol.BY_KEYS, 1, protocol.BY_STRING, ":name", True, True)
    assert query(data, everything, keys) == ["10", "2", "1", "3"]


def test_outputs(data):
    everything = [protocol.COLLECTION]
    assert query(data, everything, output=("count",)) == 4
    rows = query(data, everything, (protocol.BY_DEFAULT, False), ("values", 2, "pk", "S:name"))
    assert rows == ["1", "b", "2", "c", "3", "a", "10", "d"]  # flat, row after row
    assert len(query(data, everything, output=("any", 2))) == 2


def test_every_field_modifier_has_the_key_type_apply_checks():
    """A modifier missing from `protocol.KEY_TYPES` would go unchecked (see apply.lua's
    wrong_type): every one is there, but SET and SETNX, which never refuse a key's type."""
    from limpyd.fields.base import RedisField

    classes, modifiers = [RedisField], set()
    while classes:
        cls = classes.pop()
        classes += cls.__subclasses__()
        modifiers.update(name.upper() for name in cls.modifiers)
    assert {"SADD", "ZINCRBY", "HSET", "RPUSH", "INCR"} <= modifiers
    assert modifiers - set(protocol.KEY_TYPES) == {"SET", "SETNX"}
