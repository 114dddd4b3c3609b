"""Indexes stay exact through every modifier; unique values are refused atomically."""

from __future__ import annotations

import pytest

from limpyd import fields, model
from limpyd.exceptions import DoesNotExist, ImplementationError, UniquenessError
from limpyd.indexes import EqualIndex, TextRangeIndex


@pytest.fixture
def Thing(db):
    class Thing(model.RedisModel):
        database = db
        name = fields.StringField(indexable=True)
        code = fields.StringField(unique=True)
        color = fields.InstanceHashField(indexable=True)
        serial = fields.InstanceHashField(unique=True)
        tags = fields.SetField(indexable=True)
        steps = fields.ListField(indexable=True)
        scores = fields.SortedSetField(indexable=True)
        headers = fields.HashField(indexable=True)
        plain = fields.StringField()

    return Thing


def pks(collection):
    return sorted(collection)


STRING_MODIFIERS = [
    ("set", ("b",), "b"),
    ("append", ("x",), "ax"),
    ("getset", ("z",), "z"),
    ("setrange", (0, "Q"), "Q"),
    ("getdel", (), None),
    ("setnx", ("n",), "a"),
]


@pytest.mark.parametrize(("command", "args", "expected"), STRING_MODIFIERS)
def test_string_modifiers_keep_index_exact(Thing, consistent, command, args, expected):
    thing = Thing(name="a")
    getattr(thing.name, command)(*args)
    assert thing.name.get() == expected
    if expected is not None:
        assert pks(Thing.collection(name=expected)) == ["1"]
    if expected != "a":
        assert pks(Thing.collection(name="a")) == []
    consistent(Thing)


def test_numeric_string_modifiers(Thing, consistent):
    thing = Thing(name="10")
    assert thing.name.incr() == 11
    assert thing.name.incr(5) == 16
    assert thing.name.decr() == 15
    assert thing.name.incrbyfloat("0.5") == 15.5
    assert pks(Thing.collection(name="15.5")) == ["1"]
    assert pks(Thing.collection(name="10")) == []
    thing.name.setbit(0, 1)
    consistent(Thing)


def test_failed_command_raises_redis_error_and_writes_nothing(Thing, unchanged):
    import redis

    thing = Thing(name="abc")
    with unchanged(), pytest.raises(redis.ResponseError):
        thing.name.incr()


def test_instance_hash_field_modifiers(Thing, consistent):
    thing = Thing(color="red")
    thing.color.hset("blue")
    assert pks(Thing.collection(color="blue")) == ["1"]
    assert pks(Thing.collection(color="red")) == []
    thing.color.hsetnx("green")
    assert thing.color.hget() == "blue"
    thing.color.hset("1")
    thing.color.hincrby(2)
    thing.color.hincrbyfloat(0.5)
    assert pks(Thing.collection(color="3.5")) == ["1"]
    thing.hmset(color="x", serial="s1")
    assert pks(Thing.collection(color="x")) == ["1"]
    assert pks(Thing.collection(serial="s1")) == ["1"]
    assert thing.hdel("color", "serial") == 2
    assert pks(Thing.collection(color="x")) == []
    assert pks(Thing.collection(serial="s1")) == []
    consistent(Thing)


def test_set_modifiers(Thing, consistent):
    thing = Thing(tags=["a", "b", "c"])
    assert pks(Thing.collection(tags="a")) == ["1"]
    thing.tags.srem("a")
    assert pks(Thing.collection(tags="a")) == []
    popped = thing.tags.spop()
    assert popped in {"b", "c"}
    assert pks(Thing.collection(tags=popped)) == []
    remaining = ({"b", "c"} - {popped}).pop()
    assert pks(Thing.collection(tags=remaining)) == ["1"]
    thing.tags.sadd("d", "e")
    assert pks(Thing.collection(tags__in=["d", "zz"])) == ["1"]
    consistent(Thing)


def test_set_writes_under_shared_entries_read_first(db, consistent, limpyd_commands):
    """Two members can share an entry under a transform or a NumberRangeIndex (one score
    per instance): sadd/srem there read the set first, and a shared entry stays while a
    member needs it; under value-naming indexes they plan from their own members."""
    from limpyd.contrib.indexes import EndsWithIndex
    from limpyd.indexes import EqualIndex, NumberRangeIndex, TextRangeIndex

    class Bag(model.RedisModel):
        database = db
        lower = fields.SetField(indexes=[EqualIndex.configure(transform=str.lower)])
        numbers = fields.SetField(indexes=[NumberRangeIndex])
        named = fields.SetField(indexes=[EqualIndex, TextRangeIndex, EndsWithIndex])

    bag = Bag(lower=["A", "a", "b"], numbers=["1", "1.0"], named=["x"])
    for write, round_trips in (
        (lambda: bag.lower.srem("A"), 2),
        (lambda: bag.numbers.srem("1.0"), 2),
        (lambda: bag.named.sadd("y", "x", "y"), 1),
        (lambda: bag.named.srem("x", "nothing"), 1),
    ):
        with limpyd_commands() as counted:
            write()
        assert counted.round_trips == round_trips, counted.names
    assert pks(Bag.collection(lower="a")) == ["1"]  # "a" still needs the entry
    assert pks(Bag.collection(numbers__gte=1)) == ["1"]  # "1" still needs it
    assert pks(Bag.collection(named="y")) == ["1"] and pks(Bag.collection(named="x")) == []
    assert pks(Bag.collection(named__endswith="y")) == ["1"]
    assert bag.lower.srem("a") == 1 and pks(Bag.collection(lower="a")) == []
    consistent(Bag)


def test_sorted_set_writes_plan_from_their_members(db, consistent, limpyd_commands, unchanged):
    """zadd (every flag), zincrby and zrem under value-naming indexes: one round trip, the
    entries of exactly the members added or removed."""
    from limpyd.indexes import EqualIndex, TextRangeIndex

    class Board(model.RedisModel):
        database = db
        ranks = fields.SortedSetField(indexes=[EqualIndex, TextRangeIndex])
        codes = fields.SortedSetField(unique=True)

    board, other = Board(ranks={"a": 1}), Board(codes={"held": 1})
    writes = [
        (lambda: board.ranks.zadd({"b": 2, "a": 5}), 1),
        (lambda: board.ranks.zadd({"c": 1, "a": 0}, xx=True), 0),  # adds nothing
        (lambda: board.ranks.zadd({"c": 3, "a": 9}, nx=True), 1),
        (lambda: board.ranks.zadd({"d": 1, "a": 20}, gt=True, ch=True), 2),
        (lambda: board.ranks.zadd({"e": 2}, incr=True), 2.0),
        (lambda: board.ranks.zincrby(2, "f"), 2.0),
        (lambda: board.ranks.zrem("b", "zz"), 1),
    ]
    for write, reply in writes:
        with limpyd_commands() as counted:
            assert write() == reply
        assert counted.round_trips == 1, counted.names
    assert board.ranks.zrange(0, -1, withscores=True) == [
        ("d", 1.0),
        ("e", 2.0),
        ("f", 2.0),
        ("c", 3.0),
        ("a", 20.0),
    ]
    for member in "acdef":
        assert pks(Board.collection(ranks=member)) == ["1"], member
    assert pks(Board.collection(ranks="b")) == [] and pks(Board.collection(ranks__gte="e")) == ["1"]
    with unchanged(), pytest.raises(UniquenessError), limpyd_commands() as counted:
        board.codes.zadd({"mine": 1, "held": 2})
    assert counted.round_trips == 1 and board.codes.zcard() == 0
    for hostile in ({"x": "nan"}, {"x": ""}, {"x": "1e400"}, {b"\xff": "inf!"}):
        with unchanged(), pytest.raises(ValueError, match=r"Board\.ranks"):
            board.ranks.zadd(hostile)
    assert other.codes.zrem("held") == 1 and board.codes.zadd({"held": 3}) == 1
    consistent(Board)


def test_list_modifiers(Thing, consistent):
    thing = Thing(steps=["a", "b"])
    thing.steps.rpush("c")
    thing.steps.lpush("z")
    assert thing.steps.lrange(0, -1) == ["z", "a", "b", "c"]
    thing.steps.lset(1, "A")
    assert pks(Thing.collection(steps="a")) == []
    assert pks(Thing.collection(steps="A")) == ["1"]
    thing.steps.linsert("before", "b", "b0")
    thing.steps.rpush("b")
    assert thing.steps.lrem(0, "b") == 2
    assert pks(Thing.collection(steps="b")) == []
    assert thing.steps.lpop() == "z"
    assert thing.steps.rpop() == "c"
    thing.steps.ltrim(0, 0)
    assert thing.steps.lrange(0, -1) == ["A"]
    assert pks(Thing.collection(steps="b0")) == []
    thing.steps.lpushx("p")
    thing.steps.rpushx("q")
    assert pks(Thing.collection(steps="q")) == ["1"]
    consistent(Thing)


def test_list_keeps_value_indexed_while_a_copy_remains(Thing, consistent):
    thing = Thing(steps=["a", "a", "b"])
    thing.steps.lrem(1, "a")
    assert pks(Thing.collection(steps="a")) == ["1"]
    thing.steps.lrem(1, "a")
    assert pks(Thing.collection(steps="a")) == []
    consistent(Thing)


def test_sorted_set_modifiers(Thing, consistent):
    thing = Thing(scores={"a": 1, "b": 2, "c": 3, "d": 4})
    thing.scores.zadd(e=5)
    thing.scores.zadd({"f": 6})
    thing.scores.zincrby(10, "a")
    thing.scores.zrem("b")
    assert pks(Thing.collection(scores="b")) == []
    thing.scores.zremrangebyscore(3, 3)
    assert pks(Thing.collection(scores="c")) == []
    thing.scores.zremrangebyrank(0, 0)
    assert pks(Thing.collection(scores="d")) == []
    assert thing.scores.zrange(0, -1) == ["e", "f", "a"]
    assert pks(Thing.collection(scores="a")) == ["1"]
    thing.scores.zpopmin()
    assert pks(Thing.collection(scores="e")) == []
    consistent(Thing)


def test_hash_field_indexes_per_key(Thing, consistent):
    thing = Thing(headers={"from": "me", "to": "you"})
    other = Thing(headers={"from": "you"})
    assert pks(Thing.collection(headers__from="me")) == [thing.pk.get()]
    assert pks(Thing.collection(headers__to="you")) == [thing.pk.get()]
    assert pks(Thing.collection(headers__from="you")) == [other.pk.get()]
    thing.headers.hset("from", "him")
    thing.headers.hdel("to")
    thing.headers.hincrby("count", 2)
    thing.headers.hmset({"cc": "x"}, bcc="y")
    assert pks(Thing.collection(headers__from="me")) == []
    assert pks(Thing.collection(headers__to="you")) == []
    assert pks(Thing.collection(headers__count=2)) == ["1"]
    assert pks(Thing.collection(headers__bcc="y")) == ["1"]
    with pytest.raises(ImplementationError):
        list(Thing.collection(headers="me"))
    consistent(Thing)


def test_field_delete_and_instance_delete_clean_indexes(Thing, consistent, db):
    thing = Thing(
        name="n",
        code="c",
        color="r",
        serial="s",
        tags=["t"],
        steps=["x"],
        scores={"m": 1},
        headers={"k": "v"},
        plain="p",
    )
    thing.name.delete()
    assert pks(Thing.collection(name="n")) == []
    consistent(Thing)
    thing.delete()
    consistent(Thing)
    assert set(db.scan_keys()) == {":{thing}:thing:max_pk"}
    with pytest.raises(DoesNotExist):
        thing.plain.set("again")
    with pytest.raises(DoesNotExist):
        thing.plain.get()
    # the unique values are free again
    Thing(code="c", serial="s")


def test_unique_string_field(Thing, unchanged, consistent):
    first = Thing(code="A")
    with unchanged(), pytest.raises(UniquenessError) as error:
        Thing(name="other", code="A", tags=["t"])
    assert "Thing.code" in str(error.value) and "'A'" in str(error.value)
    second = Thing(code="B")
    with unchanged(), pytest.raises(UniquenessError):
        second.code.set("A")
    first.code.set("A")  # same instance, same value: fine
    first.code.set("C")
    second.code.set("A")  # freed
    consistent(Thing)


def test_unique_instance_hash_field_through_hmset(Thing, unchanged, consistent):
    Thing(serial="S")
    other = Thing(serial="T")
    with unchanged(), pytest.raises(UniquenessError, match=r"Thing\.serial"):
        other.hmset(color="c", serial="S")
    with unchanged(), pytest.raises(UniquenessError):
        Thing().hmset(serial="S", color="c")
    consistent(Thing)


def test_unique_multi_value_fields(db, unchanged, consistent):
    class Tagged(model.RedisModel):
        database = db
        tags = fields.SetField(unique=True)

    Tagged(tags=["a", "b"])
    other = Tagged(tags=["c"])
    with unchanged(), pytest.raises(UniquenessError, match=r"Tagged\.tags.*'b'"):
        other.tags.sadd("d", "b")
    other.tags.sadd("d")
    consistent(Tagged)


def test_bad_values_are_refused_before_writing(Thing, unchanged):
    thing = Thing(name="a")
    for bad in (None, True, [1], {"a": 1}, object()):
        with unchanged(), pytest.raises(ValueError, match=r"Thing\.name"):
            thing.name.set(bad)
        with unchanged(), pytest.raises(ValueError, match=r"Thing\.name"):
            Thing(name=bad)
    with unchanged(), pytest.raises(ValueError, match=r"Thing\.tags"):
        thing.tags.sadd("ok", None)
    with unchanged(), pytest.raises(ValueError, match=r"Thing\.tags"):
        Thing(name="fine", tags="not-a-list")
    with unchanged(), pytest.raises(ValueError, match=r"Thing\.scores"):
        Thing(scores=["a"])
    with unchanged(), pytest.raises(ValueError, match="nope"):
        Thing(nope=1)
    with unchanged(), pytest.raises(ValueError, match="nope"):
        thing.hmset(nope=1)


def test_filter_errors_when_given(Thing):
    """Filters are checked when given (redis-limpyd did so too), not at evaluation."""
    with pytest.raises(ValueError, match="nope"):
        Thing.collection(nope=1)
    with pytest.raises(ImplementationError, match="nope"):
        Thing.collection(nope=1)
    with pytest.raises(ImplementationError, match=r"Thing\.plain"):
        Thing.collection(plain=1)
    with pytest.raises(ImplementationError, match="name__gt"):
        Thing.collection(name__gt="a")
    with pytest.raises(ImplementationError, match="name__in"):
        Thing.collection(name__in=5)
    with pytest.raises(ImplementationError, match="pk__in"):
        Thing.collection(pk__in="abc")


def test_values_with_any_character(Thing, consistent):
    for value in ("a:b", "a*", "[x]", "\x00", "é", b"\xff\xfe", "", " "):
        thing = Thing(name=value, headers={value or "k": value})
        text = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
        assert thing.pk.get() in Thing.collection(name=value)
        assert thing.name.get() == text
    consistent(Thing)


def test_unsaved_instance_created_by_first_write(Thing, unchanged, consistent):
    Thing(code="taken")
    thing = Thing()
    assert thing.pk.get() is None
    with unchanged(), pytest.raises(UniquenessError):
        thing.code.set("taken")
    assert thing.pk.get() is None
    thing.tags.sadd("a")
    assert thing.pk.get() is not None
    assert pks(Thing.collection(tags="a")) == [thing.pk.get()]
    with pytest.raises(DoesNotExist):
        Thing().name.get()
    consistent(Thing)


class _LoweredEqual(EqualIndex):
    """A hand-written index class storing the values lowered."""

    def normalize(self, value: str) -> str | None:
        normalized = super().normalize(value)
        return None if normalized is None else normalized.lower()


@pytest.mark.parametrize("field_class", [fields.StringField, fields.InstanceHashField])
def test_an_index_class_normalizing_values_keeps_its_entries_exact(db, consistent, field_class):
    """Its entries are not the values' texts: a write finds them by the index, not by the
    value's text (which left stale entries behind)."""

    class Tag(model.RedisModel):
        database = db
        name = field_class(indexes=[_LoweredEqual])

    tag = Tag(name="Python")
    setter = tag.name.set if field_class is fields.StringField else tag.name.hset
    setter("Redis")
    assert Tag.collection(name="python") == [] and Tag.collection(name="redis") == ["1"]
    consistent(Tag)
    tag.delete()
    assert Tag.collection(name="redis") == []
    consistent(Tag)


def test_the_manuals_index_built_by_calling_the_class_says_configure():
    """Section 2.5.5.2 writes `EqualIndex(key='yolo', transform=...)`: an error naming
    `configure`, the way to make such a class (it was __init__'s TypeError)."""
    with pytest.raises(ImplementationError, match=r"EqualIndex.configure\(key=..., transform"):
        EqualIndex(key="yolo", transform=lambda value: "yolo" + value)
    with pytest.raises(ImplementationError, match=r"^TextRangeIndex\(\): .*configure"):
        TextRangeIndex()


@pytest.mark.parametrize("prefix", ["eq", "in", "gt", "lte", "startswith", "isnull", "all", "a__b"])
def test_a_prefix_that_filters_could_not_reach_is_refused(prefix):
    """`prefix='eq'` took over the field's `__eq` (and `in` made `__in` take one value);
    `'all'` was reached by no `field__all=` filter (that is the each-value filter of Set,
    List and SortedSet fields); `'a__b'` was written and reached by no filter."""
    with pytest.raises(ImplementationError, match=rf"configure\(prefix='{prefix}'\): a prefix"):
        EqualIndex.configure(prefix=prefix)


def test_a_transform_that_cannot_be_called_with_a_value_is_refused(db):
    """A transform every write would fail on (a bare TypeError naming nothing) is refused
    by configure(); `(value)`, `(self, value)`, a default or `*args` are taken."""
    for bad in (5, "lower", lambda: "x", lambda a, b, c: a, lambda value, *, how: value):
        with pytest.raises(ImplementationError, match=r"^EqualIndex.configure\(transform="):
            EqualIndex.configure(transform=bad)

    class Word(model.RedisModel):
        database = db
        a = fields.StringField(indexes=[EqualIndex.configure(prefix="lo", transform=str.lower)])
        b = fields.StringField(
            indexes=[EqualIndex.configure(prefix="self", transform=lambda index, v: v[::-1])]
        )
        c = fields.StringField(
            indexes=[EqualIndex.configure(prefix="args", transform=lambda *v: v[0])]
        )
        d = fields.StringField(
            indexes=[EqualIndex.configure(prefix="n", transform=lambda v, n=2: v[:n])]
        )

    Word(a="AB", b="xy", c="q", d="long")
    assert Word.collection(a__lo="ab") == ["1"] and Word.collection(b__self="yx") == ["1"]
    assert Word.collection(c__args="q") == ["1"] and Word.collection(d__n="lo") == ["1"]


def test_a_hash_key_named_all_is_filtered_on_as_a_key(db):
    """`hf__all=` is the hash key 'all' (a HashField has no `__all` filter): it was read as
    the suffix of Set, List and SortedSet fields and refused, which `filter_keys()` drew."""
    from limpyd.exceptions import InvalidQueryError

    class Doc(model.RedisModel):
        database = db
        attrs = fields.HashField(indexable=True)
        tags = fields.SetField(indexable=True)

    Doc(attrs={"all": "v", "x": "all"}, tags=["a", "b"])
    Doc(attrs={"all": "w"}, tags=["a"])
    assert Doc.collection(attrs__all="v") == ["1"]
    assert Doc.collection(attrs__all__eq="w") == ["2"]
    assert Doc.collection(attrs__x="all") == ["1"]
    assert Doc.collection(tags__all=["a", "b"]) == ["1"]
    with pytest.raises(InvalidQueryError, match=r"'attrs__x__all' is for Set, List"):
        list(Doc.collection(attrs__x__all=["v"]))
