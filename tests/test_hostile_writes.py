"""Writes that must not half-apply, reap what they should not, read user data as markers, or
inherit leftovers (issue "Part 9")."""

from __future__ import annotations

import contextlib
import re

import pytest
from redis.exceptions import RedisError

from limpyd import fields, model, writes
from limpyd.contrib import related
from limpyd.contrib.database import PipelineDatabase
from limpyd.exceptions import (
    DoesNotExist,
    ImplementationError,
    RefusedValueError,
    UniquenessError,
)
from limpyd.indexes import EqualIndex, NumberRangeIndex, TextRangeIndex
from limpyd_testing.snapshot import snapshot

OLD_MARKER = "\x00limpyd-new-pk:"


@pytest.fixture
def Player(db):
    class Player(model.RedisModel):
        database = db
        nick = fields.InstanceHashField(indexable=True, unique=True)
        scores = fields.SortedSetField()
        ranks = fields.SortedSetField(indexable=True)
        counter = fields.StringField()
        level = fields.StringField(indexable=True)
        items = fields.ListField()

    return Player


# 1. A refused write is refused before anything is sent, or by the script before it writes.

# Redis's ZADD parses scores with strtod, and refuses NaN, leading spaces, trailing
# characters, and what overflows a double or underflows to zero.
BAD_SCORES = [
    "not-a-number", "nan", "-nan", "NaN", "", "1e400", "-1e400", 10**400, float("nan"),
    " 1", "1 ", "1e-400", "0x", "1_0", "1e", ".", "+", "inf!", b"nan", "1\x00",
]  # fmt: skip
GOOD_SCORES = {
    "inf": float("inf"), "+inf": float("inf"), "-inf": float("-inf"), "+Infinity":
    float("inf"), float("inf"): float("inf"), "1.": 1.0, ".5": 0.5, "-0": 0.0, "1e3": 1000.0,
    "+2.5E-1": 0.25, 7: 7.0,
}  # fmt: skip


@pytest.mark.parametrize("score", BAD_SCORES, ids=repr)
def test_a_bad_score_refuses_the_creation_before_anything_is_sent(db, Player, score):
    Player(nick="bob", scores={"game": 1})
    before = snapshot(db)
    with pytest.raises(ValueError, match=r"Player\.scores.*game"):
        Player(nick="alice", scores={"game": score})
    with pytest.raises(ValueError, match=r"Player\.ranks"):
        Player(nick="alice", ranks={"game": score})
    assert snapshot(db) == before
    alice = Player(nick="alice", scores={"game": 2})
    assert alice.pk.get() == "2" and alice.scores.zscore("game") == 2.0


@pytest.mark.parametrize("score", list(GOOD_SCORES), ids=repr)
def test_every_score_redis_accepts_is_accepted(db, Player, score):
    player = Player(nick="alice", scores={"game": score}, ranks={"r": score})
    assert player.scores.zscore("game") == GOOD_SCORES[score]
    player.scores.zadd(other=score)
    player.ranks.zincrby(score, "r2")
    assert player.ranks.zscore("r2") == GOOD_SCORES[score]


@pytest.mark.parametrize("name", ["scores", "ranks"])
def test_zadd_options_are_not_scores(db, Player, name):
    field = getattr(Player(nick="alice", scores={"a": 1}, ranks={"a": 1}), name)
    assert field.zadd({"a": 2}, xx=True, ch=True) == 1
    assert field.zadd({"a": "1.5"}, incr=True) == 3.5
    assert field.zadd({"b": "-inf"}, nx=True) == 1
    assert field.zadd({"b": 0}, gt=True, ch=True) == 1
    with pytest.raises(ValueError, match=rf"Player\.{name}\.zadd: invalid value 'nan'"):
        field.zadd({"c": "nan"}, nx=True)
    assert field.zrange(0, -1, withscores=True) == [("b", 0.0), ("a", 3.5)]


MODIFIERS = [
    ("scores", "zadd", ({"a": "nan"},)),
    ("ranks", "zadd", ({"a": "x"},)),
    ("scores", "zincrby", ("1e400", "a")),
    ("ranks", "zincrby", ("nan", "a")),
    ("scores", "zremrangebyscore", ("nan", 1)),
    ("scores", "zremrangebylex", ("a", "+")),
    ("scores", "zpopmin", (-1,)),
    ("counter", "incrby", ("x",)),
    ("counter", "incrby", ("1.5",)),
    ("counter", "incrby", (2**63,)),
    ("counter", "decrby", ("01",)),
    ("level", "incrby", ("+1",)),
    ("counter", "incrbyfloat", ("nan",)),
    ("level", "incrbyfloat", ("inf",)),
    ("counter", "setbit", (-1, 1)),
    ("counter", "setbit", (2**32, 1)),
    ("counter", "setrange", (-1, "x")),
    ("level", "setrange", ("x", "x")),
    ("items", "lset", ("one", "x")),
    ("items", "ltrim", (0, "x")),
    ("items", "lrem", ("x", "a")),
    ("items", "lpop", (-1,)),
]


@pytest.mark.parametrize(("name", "method", "args"), MODIFIERS, ids=repr)
def test_a_bad_number_refuses_the_modifier_before_anything_is_sent(db, Player, name, method, args):
    player = Player(nick="alice", scores={"a": 1}, counter=1, level=1, items=["a"])
    before = snapshot(db)
    with pytest.raises(ValueError, match=rf"Player\.{name}\.{method}: invalid value"):
        getattr(getattr(player, name), method)(*args)
    with pytest.raises(ValueError, match=rf"Player\.{name}"):  # a creation too
        getattr(getattr(Player(), name), method)(*args)
    assert snapshot(db) == before


def test_hash_counters_are_checked(db):
    class Stats(model.RedisModel):
        database = db
        hits = fields.InstanceHashField()
        by_day = fields.HashField(indexable=True)

    stats = Stats(hits=1, by_day={"mon": 1})
    before = snapshot(db)
    with pytest.raises(ValueError, match=r"Stats\.hits\.hincrby: invalid value '1\.5'"):
        stats.hits.hincrby("1.5")
    with pytest.raises(ValueError, match=r"Stats\.by_day\.hincrbyfloat: invalid value 'nan'"):
        stats.by_day.hincrbyfloat("mon", "nan")
    assert snapshot(db) == before
    assert stats.hits.hincrby(2) == 3


def test_the_script_probes_scores_before_its_first_write(db, Player, monkeypatch):
    """Belt and braces: a score the Python side let through is refused by the script
    before it writes anything (no index entry, no hash, no pk taken)."""
    from limpyd.fields import sortedsets

    monkeypatch.setattr(sortedsets, "double_error", lambda text: None)
    before = snapshot(db)
    for score in ("not-a-number", "nan", "", "1e400"):
        with pytest.raises(ValueError, match="Redis refused a value"):
            Player(nick="alice", counter=1, scores={"game": score})
    assert snapshot(db) == before
    assert Player(nick="alice", scores={"game": 1}).pk.get() == "1"


@pytest.mark.parametrize("seconds", [float("nan"), float("inf"), -float("inf"), 0, -1])
def test_a_ttl_must_be_a_finite_positive_number(db, seconds):
    with pytest.raises(ImplementationError, match="ttl"):

        class Session(model.RedisModel):
            database = db
            token = fields.StringField(unique=True)
            ttl = seconds


def test_the_script_refuses_a_bad_expiry_before_its_first_write(db, Player, monkeypatch):
    monkeypatch.setattr(Player._meta, "default_ttl", float("nan"))
    before = snapshot(db)
    with pytest.raises(ValueError, match="Redis refused a value"):
        Player(nick="alice")
    assert snapshot(db) == before
    monkeypatch.setattr(Player._meta, "default_ttl", 100)
    assert 99 < Player(nick="alice").ttl() <= 100


@pytest.mark.parametrize("seconds", [float("nan"), float("inf"), "soon", None])
def test_expire_takes_a_finite_number(db, Player, seconds):
    player = Player(nick="alice")
    before = snapshot(db)
    with pytest.raises(ValueError, match="finite"):
        player.expire(seconds)
    with pytest.raises(ValueError, match="finite"):
        player.expireat(seconds)
    assert snapshot(db) == before


# 2. Reaping re-checks the expiry in the deleting script.


@pytest.fixture
def Token(db):
    class Token(model.RedisModel):
        database = db
        name = fields.PKField()
        value = fields.StringField(indexable=True, unique=True)

    return Token


def _recreate_on_reap(monkeypatch, Token, pk, value):
    """The hook: when the reap of `pk` is about to run, another client reaps it first and
    creates it again, without expiry."""
    seen = []

    def hook(model, pks):
        monkeypatch.setattr(writes, "before_reap", None)
        seen.append(list(pks))
        assert Token.lazy_connect(pk)._reap()
        Token(name=pk, value=value)

    monkeypatch.setattr(writes, "before_reap", hook)
    return seen


def test_reap_expired_spares_an_instance_created_again(db, Token, monkeypatch, consistent):
    Token(name="x", value="a").expireat(0)
    Token(name="y", value="b").expireat(0)
    seen = _recreate_on_reap(monkeypatch, Token, "x", "new")
    assert Token.reap_expired() == 1  # y only
    assert seen == [["x", "y"]]
    assert Token("x").value.get() == "new" and Token("x").ttl() is None
    assert Token.collection() == ["x"]
    consistent(Token)


def test_a_write_reaping_what_it_met_spares_an_instance_created_again(
    db, Token, monkeypatch, consistent
):
    Token(name="x", value="a").expireat(0)
    seen = _recreate_on_reap(monkeypatch, Token, "x", "new")
    with pytest.raises(DoesNotExist):
        Token.lazy_connect("x").value.set("other")
    assert seen == [["x"]]
    assert Token("x").value.get() == "new"
    consistent(Token)


def test_a_uniqueness_check_reaping_a_holder_spares_it_when_created_again(
    db, Token, monkeypatch, consistent
):
    Token(name="x", value="a").expireat(0)
    _recreate_on_reap(monkeypatch, Token, "x", "a")
    with pytest.raises(UniquenessError):
        Token(name="y", value="a")
    assert Token("x").value.get() == "a" and Token.collection() == ["x"]
    consistent(Token)


# 7. No user value or pk is read as a marker.


def test_pks_and_values_holding_the_old_marker_are_stored_exactly(db, Token, Player):
    pk, value = OLD_MARKER + "abc\x00", OLD_MARKER + "v" + OLD_MARKER
    token = Token(name=pk, value=value)
    assert token.pk.get() == pk and Token.collection() == [pk]
    assert Token(pk).value.get() == value and Token.collection(value=value) == [pk]
    player = Player(nick=value, scores={value: 1})
    assert player.pk.get() == "1"
    assert player.nick.get() == value and player.scores.zrange(0, -1) == [value]
    fresh = Player()
    fresh.counter.set(value)
    assert fresh.pk.get() == "2" and fresh.counter.get() == value


def test_a_write_to_a_missing_pk_holding_the_marker_raises(db, Token, Player, unchanged):
    with unchanged():
        with pytest.raises(DoesNotExist):
            Token.lazy_connect(OLD_MARKER + "ghost").value.set("x")
        with pytest.raises(DoesNotExist):
            Player.lazy_connect(OLD_MARKER + "ghost").counter.set("x")
        with pytest.raises(DoesNotExist):
            Player.lazy_connect(OLD_MARKER + "ghost").delete()
    assert Token.collection() == [] and Player.collection() == []


def test_deletion_propagates_to_pks_and_values_holding_the_marker(db, consistent):
    class Target(related.RelatedModel):
        cluster_group = "hostile_writes"
        database = db
        name = fields.PKField()

    class Ref(related.RelatedModel):
        cluster_group = "hostile_writes"
        database = db
        name = fields.PKField()
        fk = related.FKStringField(Target, related_name="refs")
        tags = related.M2MListField(Target, related_name="tagged")

    target = Target(name=OLD_MARKER + "t")
    other = Target(name=OLD_MARKER + "u")
    ref = Ref(name=OLD_MARKER + "r", fk=target, tags=[target, other, target])
    target.delete()
    assert ref.fk.get() is None and ref.tags.lrange(0, -1) == [other.pk.get()]
    assert Ref.collection() == [OLD_MARKER + "r"]
    consistent(Target, Ref)


# 8. Pipelined writes check the instance exists; creations expose only what they are given.


@pytest.fixture
def Acc(limpyd_database_factory):
    pipelined = limpyd_database_factory(PipelineDatabase)

    class Acc(model.RedisModel):
        database = pipelined
        name = fields.PKField()
        balance = fields.StringField()
        owner = fields.InstanceHashField()
        history = fields.ListField()

    return Acc


def test_a_pipelined_write_on_a_missing_instance_raises(Acc):
    database = Acc._meta.database
    Acc(name="bob", balance="10").delete()
    bob = Acc.lazy_connect("bob")
    before = snapshot(database)
    with database.pipeline() as pipeline:
        with pytest.raises(DoesNotExist, match="bob"):
            bob.balance.set("1000000")
        with pytest.raises(DoesNotExist, match="bob"):
            bob.hmset(owner="mallory")
        assert pipeline.execute() == []
    assert snapshot(database) == before
    assert Acc(name="bob").balance.get() is None


def test_a_pipelined_write_on_an_existing_instance_is_queued(Acc):
    database = Acc._meta.database
    Acc(name="bob", balance="10")
    bob = Acc.lazy_connect("bob")
    with database.pipeline() as pipeline:
        bob.balance.set("20")
        bob.hmset(owner="bob")
        assert pipeline.execute() == [True, 1]
    assert bob.balance.get() == "20" and bob.owner.get() == "bob"


def test_a_creation_deletes_leftover_keys_of_its_pk(Acc, Player):
    database = Acc._meta.database
    meta = Acc._meta
    database.client.set(meta.instance_key("bob", "balance"), "1000000")
    database.client.hset(meta.hash_key("bob"), mapping={"owner": "mallory", "junk": "x"})
    database.client.rpush(meta.instance_key("bob", "history"), "stolen")
    bob = Acc(name="bob", history=["opened"])
    assert bob.balance.get() is None and bob.hgetall() == {}
    assert bob.history.lrange(0, -1) == ["opened"]
    # A new auto pk too, created by a modifier
    client, meta = Player._meta.database.client, Player._meta
    client.hset(meta.hash_key("1"), "nick", "mallory")
    client.zadd(meta.instance_key("1", "scores"), {"stolen": 1})
    player = Player()
    player.counter.incr()
    assert player.pk.get() == "1" and player.nick.get() is None
    assert player.scores.zcard() == 0 and player.counter.get() == "1"


# 9. A model whose only field is its pk.


def test_a_model_with_only_a_pk_can_be_deleted_and_reaped(db, consistent):
    class Lone(model.RedisModel):
        database = db
        name = fields.PKField()

    lone = Lone(name="x")
    lone.delete()
    assert not Lone.exists("x") and snapshot(db) == {}
    Lone(name="x").expireat(0)
    assert Lone.reap_expired() == 1 and Lone.reap_expired() == 0
    assert Lone(name="x").ttl() is None and Lone.collection() == ["x"]
    Lone.lazy_connect("x").expireat(0)
    Lone(name="x")  # the creation reaps the expired one first
    assert Lone.collection() == ["x"] and Lone.reap_expired() == 0
    consistent(Lone)


def test_new_pks_are_exact_and_a_bad_counter_refuses_the_creation(db, Player):
    """The script takes the counter's successor as pk (exact beyond 2**53) and stores it
    last; a counter INCR would refuse refuses the creation before anything is written."""
    counter = Player._meta.max_pk_key
    db.client.set(counter, "9007199254740993")
    assert Player(nick="a").pk.get() == "9007199254740994"
    db.client.set(counter, "99")
    assert Player(nick="b").pk.get() == "100"
    assert db.client.get(counter) == "100"
    for bad in ("x", "007", str(2**63 - 1)):
        db.client.set(counter, bad)
        before = snapshot(db)
        with pytest.raises(ValueError, match="counter"):
            Player(nick="c")
        assert snapshot(db) == before


def test_scripts_keep_to_the_keys_of_their_model(db, Player):
    """Scripts simulate commands and check scores on keys under the model's own prefix,
    never on names a user could hold, and leave none of them behind."""
    mine = {"__limpyd_scratch__": "mine", "__limpyd_probe__": "mine", "probe": "mine"}
    for key, value in mine.items():
        db.client.set(key, value)
    player = Player(nick="ann", level="1", ranks={"a": 1})
    player.ranks.zadd({"b": 2})  # simulated on a scratch copy, its score probed
    player.ranks.zincrby(3, "a")
    player.scores.zadd({"x": 1.5})  # not indexed: probed
    player.level.append("0")
    with pytest.raises(ValueError):
        player.ranks.zadd({"c": "nan"})
    assert [db.client.get(key) for key in mine] == list(mine.values())
    prefix = Player._meta.prefix
    assert {key for key in db.scan_keys() if not key.startswith(f"{prefix}:")} == set(mine)
    assert not db.client.exists(Player._meta.scratch_key, Player._meta.probe_key)
    assert player.ranks.zrange(0, -1, withscores=True) == [("b", 2.0), ("a", 4.0)]


# 10. A key holding another type than a write's commands need (written by another client):
# Redis would refuse the command only after the ones before it ran; the script refuses the
# write before its first one.


@pytest.fixture
def Member(db):
    class Member(model.RedisModel):
        database = db
        nick = fields.InstanceHashField(indexable=True, unique=True)
        rank = fields.InstanceHashField(indexable=True)
        level = fields.StringField(indexable=True)
        age = fields.StringField(indexable=True, indexes=[NumberRangeIndex])
        tags = fields.SetField(indexable=True)
        notes = fields.ListField()

    return Member


def _value_key(model_class, field, value):
    return model_class.get_field(field).indexes[0].value_key(value, None)


def _refused(db, key, write):
    """`write()` is refused naming the key another client made a string, and changes nothing;
    it applies once the key is gone."""
    db.client.set(key, "not a set")
    before = snapshot(db)
    with pytest.raises(RefusedValueError, match=r"holds a string, not a \w+\b") as refusal:
        write()
    assert key in str(refusal.value)
    assert snapshot(db) == before
    db.client.delete(key)
    write()


def test_a_key_of_another_type_refuses_the_write_before_its_first_write(db, Member, consistent):
    ann = Member(nick="ann", level="1", age="30", tags=["a"], notes=["n"])
    # an index entry added after the field's own write (a static call)
    _refused(db, _value_key(Member, "nick", "anna"), lambda: ann.nick.hset("anna"))
    # the entry of the value before the write (a value entry removed)
    _refused(db, _value_key(Member, "level", "1"), lambda: ann.level.set("2"))
    # a member's entry (a per-member write)
    _refused(db, _value_key(Member, "tags", "b"), lambda: ann.tags.sadd("b"))
    # a range index (a sorted set)
    age_key = Member.get_field("age").indexes[0].base_key()
    _refused(db, age_key, lambda: ann.age.set("31"))
    # the field's own key, and a creation's index entry
    _refused(db, Member._meta.instance_key(ann.pk.get(), "notes"), lambda: ann.notes.rpush("m"))
    counter = db.client.get(Member._meta.max_pk_key)
    _refused(db, _value_key(Member, "level", "7"), lambda: Member(nick="bob", level="7"))
    assert int(db.client.get(Member._meta.max_pk_key)) == int(counter) + 1  # taken once
    consistent(Member)


class Text(str):
    """A str subclass: stored as its text."""


HOSTILE = [
    "\x00x", "é", "1e3", " 1", "nan", "-inf", "", "*?[", OLD_MARKER + "1", "x" * 100_000, Text("t"),
]  # fmt: skip
OTHER_TYPES = {
    "string": lambda client, key: client.set(key, "x"),
    "hash": lambda client, key: client.hset(key, "f", "v"),
    "list": lambda client, key: client.rpush(key, "x"),
    "zset": lambda client, key: client.zadd(key, {"x": 1}),
}


@pytest.mark.parametrize("kind", list(OTHER_TYPES))
@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v)[:12])
def test_any_value_at_a_key_of_any_other_type_is_refused_byte_for_byte(
    db, Member, dumps, kind, value
):
    ann = Member(nick="ann", level="1")
    key = _value_key(Member, "level", value)
    OTHER_TYPES[kind](db.client, key)
    before = dumps()
    for write in (lambda: ann.level.set(value), lambda: Member(nick="bob", level=value)):
        with pytest.raises(RefusedValueError, match=rf"Member: .*holds a {kind}, not a set"):
            write()
        assert dumps() == before
    db.client.delete(key)
    ann.level.set(value)
    assert ann.level.get() == value and Member.collection(level=value) == [ann.pk.get()]


def test_only_the_commands_a_write_runs_are_checked(db, Member, consistent):
    """Removing a member the set does not hold runs nothing on its index key: another
    type there refuses nothing; removing one it holds is refused."""
    ann = Member(nick="ann", tags=["a"])
    db.client.set(_value_key(Member, "tags", "zzz"), "not a set")
    assert ann.tags.srem("zzz") == 0
    db.client.sadd(Member._meta.instance_key(ann.pk.get(), "tags"), "zzz")  # held, unindexed
    before = snapshot(db)
    with pytest.raises(RefusedValueError, match="holds a string, not a set"):
        ann.tags.srem("zzz")
    assert snapshot(db) == before


# The value Redis computes (incr, append, hincrbyfloat...): its index entries are only known
# once the modifier ran; entries refused then undo the modifier.
COMPUTED = [
    ("level", "incr", (), "1", "2"),
    ("level", "incrbyfloat", ("0.5",), "1", "1.5"),
    ("level", "append", ("x",), "1", "1x"),
    ("level", "setrange", (1, "z"), "1", "1z"),
    ("level", "setnx", ("7",), None, "7"),
    ("level", "getset", ("\x00é",), "1", "\x00é"),
    ("rank", "hincrby", (-3,), "1", "-2"),
    ("rank", "hincrbyfloat", ("1e3",), "1", "1001"),
    ("rank", "hsetnx", ("*?[",), None, "*?["),
    ("rank", "hsetnx", ("x" * 100,), None, "x" * 100),  # the hash's encoding changes, undone
]


@pytest.mark.parametrize("kind", list(OTHER_TYPES))
@pytest.mark.parametrize(("name", "method", "args", "old", "new"), COMPUTED, ids=repr)
def test_a_computed_value_at_a_key_of_another_type_is_undone(
    db, Member, consistent, dumps, kind, name, method, args, old, new
):
    ann = Member(nick="ann", **({} if old is None else {name: old}))
    if name == "level" and old is not None:  # an expiry time of its own, kept
        db.client.pexpire(Member._meta.instance_key(ann.pk.get(), "level"), 10**7)
    if name == "rank" and old is not None:  # the hash field's own, where Redis has them
        with contextlib.suppress(RedisError):  # Redis < 7.4 (a cluster client says it first)
            db.client.hpexpire(Member._meta.hash_key(ann.pk.get()), 10**7, "rank")
    key = _value_key(Member, name, new)
    OTHER_TYPES[kind](db.client, key)
    before = dumps()
    field = getattr(ann, name)
    with pytest.raises(RefusedValueError, match=rf"Member: .*holds a {kind}, not a set") as error:
        getattr(field, method)(*args)
    assert key in str(error.value)
    assert dumps() == before
    db.client.delete(key)
    getattr(field, method)(*args)
    assert getattr(ann, name).get() == new
    assert Member.collection(**{name: new}) == [ann.pk.get()]
    if old is not None:
        assert Member.collection(**{name: old}) == []
    consistent(Member)


def test_a_creation_replaces_a_leftover_of_another_type_at_its_keys(db, Member, consistent):
    """A creation deletes its pk's keys first: what they held, of any type, is no refusal."""
    db.client.set(Member._meta.hash_key("1"), "junk")
    db.client.hset(Member._meta.instance_key("1", "tags"), "x", "y")
    ann = Member(nick="ann", tags=["a"])
    assert ann.pk.get() == "1" and ann.tags.smembers() == {"a"}
    consistent(Member)


# A deletion unlinks the instances pointing to it, found by reading its link records: the keys
# they lead to are checked, by reading only, before the deletion's first write.


@pytest.fixture
def Linked(db):
    class Team(related.RelatedModel):
        cluster_group = "hostile_writes"
        database = db
        name = fields.PKField()

    class Seat(related.RelatedModel):
        cluster_group = "hostile_writes"
        database = db
        team = related.FKInstanceHashField(Team, indexes=[EqualIndex, TextRangeIndex])
        teams = related.M2MSetField(Team, related_name="set_seats")
        ranked = related.M2MListField(Team, related_name="listed")
        row = fields.StringField()
        unique_together = [("team", "row")]

    return Team, Seat


ANY_TYPE = {**OTHER_TYPES, "set": lambda client, key: client.sadd(key, "x")}
UNLINKED_KEYS = {  # what a deletion of team t reads or writes, the type another client puts
    "links": (lambda Team, Seat: Team._meta.links_key("t"), "list"),
    "holders' index": (lambda Team, Seat: _value_key(Seat, "team", "t"), "string"),
    "a holder's hash": (lambda Team, Seat: Seat._meta.hash_key("1"), "zset"),
    "a holder's set": (lambda Team, Seat: Seat._meta.instance_key("1", "teams"), "hash"),
    "a holder's list": (lambda Team, Seat: Seat._meta.instance_key("1", "ranked"), "string"),
    "another index": (lambda Team, Seat: Seat.get_field("team").indexes[1].base_key(), "set"),
    "a combination": (
        lambda Team, Seat: Seat._meta.together_key(("team", "row"), {"team": ["t"], "row": ["7"]}),
        "string",
    ),
    "a combination's partner": (lambda Team, Seat: Seat._meta.instance_key("1", "row"), "hash"),
}  # fmt: skip


@pytest.mark.parametrize("where", list(UNLINKED_KEYS))
def test_a_deletion_meeting_a_key_of_another_type_while_unlinking_is_refused(
    db, Linked, consistent, dumps, where
):
    Team, Seat = Linked
    team = Team(name="t")
    Seat(team=team, teams=[team], ranked=[team, team], row="7")
    make_key, kind = UNLINKED_KEYS[where]
    key = str(make_key(Team, Seat))
    held = db.client.dump(key)
    db.client.delete(key)
    ANY_TYPE[kind](db.client, key)
    before = dumps()
    with pytest.raises(RefusedValueError, match=rf"Team: .*holds a {kind}, not a ") as error:
        team.delete()
    assert key in str(error.value)
    assert dumps() == before
    db.client.restore(key, 0, held, replace=True)
    team.delete()
    assert Seat(1).teams.smembers() == set() and Seat(1).team.hget() is None
    consistent(Team, Seat)


def test_a_combination_part_the_deletion_does_not_read_refuses_nothing(db, Linked, consistent):
    """A unique_together combination stops at its first field without a value: the fields
    after it are neither read nor checked."""
    Team, _ = Linked

    class Bench(related.RelatedModel):
        cluster_group = "hostile_writes"
        database = db
        team = related.FKStringField(Team, indexes=[EqualIndex], related_name="benches")
        row = fields.StringField()
        col = fields.StringField()
        unique_together = [("team", "row", "col")]

    team = Team(name="t")
    bench = Bench(team=team)
    db.client.hset(Bench._meta.instance_key(bench.pk.get(), "col"), "f", "v")
    team.delete()
    assert bench.team.get() is None
    db.client.delete(Bench._meta.instance_key(bench.pk.get(), "col"))
    consistent(Team, Bench)


def test_a_malformed_link_record_fails_the_deletion_before_its_first_write(db, Linked, dumps):
    Team, Seat = Linked
    team = Team(name="t")
    Seat(team=team, row="7")
    links = Team._meta.links_key("t")
    holders = ["string", "", "", "", "set_key", str(_value_key(Seat, "team", "t"))]

    def encoded(*parts):
        return "".join(f"{len(x)}:{x}" for x in parts)

    def with_op(*args):  # a record whose one op (index entry removal) is `args`
        return encoded(*holders, "1", str(len(args)), *(x for a in args for x in ("=", a)), "0")

    malformed = "a malformed link record"
    records = {
        "x": malformed,
        "nan:abc": malformed,
        "1e300:x": malformed,
        "-1:": malformed,
        "": malformed,
        "6:string": malformed,
        encoded("hash", "", "", ""): "a link record of kind hash",
        encoded(*holders, "0", "1", "p", "1", "R", "odd", "", "", ""): "unknown state kind odd",
        encoded(*holders, "x"): malformed,
        with_op(): malformed,
        with_op("SREM", "k"): malformed,
        with_op("NOSUCHCOMMAND", "k", "m"): malformed,
        with_op("GET", "k", "m"): malformed,
        with_op("ZADD", "k", "m"): malformed,
    }
    for record, message in records.items():
        db.client.hset(links, "hostile", record)
        before = dumps()
        with pytest.raises(ImplementationError, match=message):
            team.delete()
        assert dumps() == before


@pytest.mark.parametrize(
    ("which", "wanted"), [("expiry_key", "a sorted set"), ("collection_key", "a set")]
)
def test_a_mistyped_model_key_is_named_by_every_call(db, unchanged, which, wanted):
    """Another client's string where the model keeps its expiry times or its collection:
    creation and reaping named the key, every other call gave Redis's bare WRONGTYPE."""

    class Session(model.RedisModel):
        database = db
        ttl = 3600
        token = fields.StringField(unique=True)

    session = Session(token="a")
    key = getattr(Session._meta, which)
    db.client.delete(key)
    db.client.set(key, "oops")
    calls = [
        lambda: Session(token="b"),
        lambda: session.ttl(),
        lambda: session.expire(60),
        lambda: session.persist(),
        lambda: session.token.set("c"),
        lambda: session.delete(),
        lambda: list(Session.collection()),
    ]
    if which == "expiry_key":  # (a unique value's holder is found without the collection)
        calls.append(lambda: Session.exists(token="a"))
    kind = {"a set": "set", "a sorted set": "zset"}[wanted]
    message = (  # (a write's own check says it the Redis way)
        rf"^Session: the key '{re.escape(key)}' (is not {wanted}|holds a string, not a "
        rf"{kind}) \(another client"
    )
    with unchanged():
        for call in calls:
            with pytest.raises(RefusedValueError, match=message):
                call()
