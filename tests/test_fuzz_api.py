"""Hostile and bad input through the public API.

- Hypothesis drives constructors, every field command, instance methods, filters and sorts
  with arbitrary names, suffixes and values: wrong types, None, empty strings, non-UTF-8
  bytes, large strings (one of 1 MB), NaN/inf, glob characters, ':' '->' and spaces, in
  values and in pks. Only documented exceptions come out (limpyd's, ValueError, TypeError,
  and redis' ResponseError for what Redis itself refuses, like INCR on text), and after every
  refused call the database is exactly what it was; reads never change it; what was
  accepted leaves indexes exact.
- Values and pks holding key-pattern characters never make a query read another model's
  keys, nor make SCAN patterns match them.
- `clean_indexes` / `rebuild_indexes` touch nothing but the field's own index keys.

`LIMPYD_FUZZ_EXAMPLES` sets the examples per fuzz test (default 30); `LIMPYD_FUZZ_SHRINK=1`
makes Hypothesis shrink a failure to a minimal example (slow: off by default).
"""

from __future__ import annotations

import math
import os
import threading
import uuid
import weakref
from collections.abc import Callable
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from limpyd import fields, model
from limpyd.contrib import related
from limpyd.contrib.collection import ExtendedCollectionManager
from limpyd.exceptions import LimpydException
from limpyd.indexes import EqualIndex, NumberRangeIndex, TextRangeIndex, parse_number
from limpyd.text import to_text
from limpyd_testing import integrity
from limpyd_testing.snapshot import snapshot

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("LIMPYD_FUZZ_EXAMPLES", "") or 30)
#: Shrinking a failure costs minutes here (every example makes many round trips): opt in.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate]
if os.environ.get("LIMPYD_FUZZ_SHRINK", "").lower() in ("1", "true", "yes", "on"):
    PHASES.append(Phase.shrink)
FUZZ = settings(
    max_examples=EXAMPLES,
    phases=PHASES,
    deadline=None,
    database=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: What the public API may raise on bad input.
DOCUMENTED = (LimpydException, ValueError, TypeError, redis.ResponseError)

# Strategies ----------------------------------------------------------------------------------

PIECES = [
    "", " ", ":", "->", "*", "?", "[", "]", "[a-z]", "\\", "\x00", "__", "é", "\u2603",
    "\udcff", "\udc80", "pk", "1", "-1", "1.5", "nan", "inf", "-inf", "1e400", "0x10",
    "a:b->c d", "obj", "idx", "collection", "_hash",
]  # fmt: skip

texts = st.one_of(
    st.sampled_from(PIECES),
    st.lists(st.sampled_from(PIECES), min_size=2, max_size=4).map("".join),
    st.text(max_size=10),
    st.text(st.characters(codec="utf-8"), min_size=200, max_size=1000),
)
raw_bytes = st.binary(max_size=12)  # mostly not UTF-8
numbers = st.one_of(
    # Small enough that no offset (SETBIT, SETRANGE) makes the server allocate much...
    st.integers(min_value=-(2**16), max_value=2**16),
    st.floats(),  # NaN, infinities, -0.0, subnormals
    # ...and too large for any of them.
    st.sampled_from([0, -0.0, math.nan, math.inf, -math.inf, 2**32, 2**63, -(2**63) - 1, 2**70]),
)
junk = st.sampled_from([None, True, False, object(), 1j, Ellipsis, set(), (), frozenset()])
scalars = st.one_of(texts, raw_bytes, numbers)
values = st.one_of(
    scalars,
    junk,
    st.lists(st.one_of(scalars, junk), max_size=3),
    st.dictionaries(st.one_of(texts, numbers), st.one_of(scalars, junk), max_size=3),
)
names = st.one_of(
    st.sampled_from(["name", "email", "city", "score", "word", "plain", "note", "tags", "log"]),
    st.sampled_from(["ranks", "attrs", "pk", "id", "label", "friend", "members", "-name"]),
    texts,
)
SUFFIXES = ["eq", "in", "gt", "gte", "lt", "lte", "startswith", "text", "number"]
filter_keys = st.one_of(
    names,
    st.tuples(names, st.sampled_from(SUFFIXES)).map("__".join),
    st.tuples(names, texts).map("__".join),
    st.tuples(names, texts, st.sampled_from(SUFFIXES)).map("__".join),
)


# Models ----------------------------------------------------------------------------------------


def _models(db):
    class Fuzz(related.RelatedModel):
        cluster_group = "fuzz_api"
        database = db
        namespace = "fuzz"
        name = fields.StringField(unique=True)
        email = fields.InstanceHashField(unique=True)
        city = fields.InstanceHashField(indexable=True)
        score = fields.InstanceHashField(indexes=[NumberRangeIndex])
        word = fields.StringField(indexes=[TextRangeIndex, EqualIndex])
        plain = fields.StringField()
        note = fields.InstanceHashField()
        tags = fields.SetField(indexable=True)
        log = fields.ListField(indexable=True)
        ranks = fields.SortedSetField(indexes=[TextRangeIndex])
        attrs = fields.HashField(indexable=True)

    class Keyed(related.RelatedModel):
        cluster_group = "fuzz_api"
        database = db
        namespace = "fuzz"
        id = fields.PKField()
        label = fields.StringField(indexable=True, unique=True)
        friend = related.FKStringField(Fuzz, related_name="fans")
        members = related.M2MSetField(Fuzz, related_name="groups")

    return Fuzz, Keyed


_PREPARED: weakref.WeakKeyDictionary[Any, tuple[Any, Any, dict[str, Any]]] = (
    weakref.WeakKeyDictionary()
)


def _fresh(db):
    """The models, and the instances every example starts from (written once per test, then
    put back from a snapshot)."""
    prepared = _PREPARED.get(db)
    if prepared is not None:
        Fuzz, Keyed, base = prepared
        _restore(db, base)
        return Fuzz, Keyed
    db.client.flushdb()
    Fuzz, Keyed = _models(db)
    Fuzz(
        name="a*",
        email="e:1",
        city="x->y",
        score=3,
        word="[w]",
        plain="p",
        note="n",
        tags=["*", "?"],
        log=["m", "l", "m"],
        ranks={"r": 1},
        attrs={"k:1": "v"},
    )
    Fuzz(name="b", city="x->y", score="-inf", tags=["\\"])
    Keyed(id="k 1:->*", label="L", friend="1", members=["1", "2"])
    _PREPARED[db] = (Fuzz, Keyed, snapshot(db))
    return Fuzz, Keyed


def _restore(db, base: dict[str, Any]) -> None:
    db.client.flushdb()  # (a cluster refuses FLUSHDB in a pipeline)
    with db.client.pipeline(transaction=False) as pipeline:
        for key, (kind, content) in base.items():
            if kind == "string":
                pipeline.set(key, content)
            elif kind == "hash":
                pipeline.hset(key, mapping=content)
            elif kind == "set":
                pipeline.sadd(key, *content)
            elif kind == "list":
                pipeline.rpush(key, *content)
            elif kind == "zset":
                pipeline.zadd(key, dict(content))
        pipeline.execute()


def _call(db, action: Callable[[], Any], *, read: bool = False) -> Any:
    """Run `action`: a documented exception must leave the database as it was (as must any
    read); any other exception fails the test."""
    before = snapshot(db)
    try:
        result = action()
    except DOCUMENTED as error:
        after = snapshot(db)
        assert after == before, f"{error!r} was raised, yet the data changed"
        return error
    if read:
        assert snapshot(db) == before, "a read changed the data"
    return result


def _consistent(Fuzz, Keyed) -> None:
    # Relations to pks of no instance are written as the caller asked (the fuzz gives any
    # pk); relations broken by concurrent deletions are tested in test_guarantees.py.
    problems = [p for p in integrity.check(Fuzz, Keyed) if p.kind != "dangling"]
    assert problems == []


def _consume(result: Any) -> Any:
    """Evaluate what a call returned (collections and scan iterators are lazy)."""
    if isinstance(result, model.RedisModel):
        return result
    if hasattr(result, "__iter__") and not isinstance(result, str | bytes | dict | list | set):
        return list(result)
    return result


# The fuzz tests ----------------------------------------------------------------------------------


def _steps(db, data, step: Callable[[Any, Any, Any], None], count: int) -> None:
    """Run `count` fuzzed calls on fresh data, then check the indexes."""
    Fuzz, Keyed = _fresh(db)
    for _ in range(count):
        cls = data.draw(st.sampled_from([Fuzz, Keyed]), label="model")
        step(db, data, cls)
    _consistent(Fuzz, Keyed)


def _constructor_call(db, data, cls) -> None:
    how = data.draw(st.sampled_from(["create", "load", "get", "exists", "get_or_connect"]))
    kwargs = data.draw(st.dictionaries(names, values, max_size=4), label="kwargs")
    args = data.draw(st.lists(values, max_size=2), label="args")
    if how == "create":
        _call(db, lambda: cls(**kwargs))
    elif how == "load":
        _call(db, lambda: cls(*args), read=True)
    elif how == "get":
        _call(db, lambda: cls.get(*args, **kwargs), read=True)
    elif how == "exists":
        _call(db, lambda: cls.exists(*args, **kwargs), read=True)
    else:
        _call(db, lambda: cls.get_or_connect(**kwargs))


@FUZZ
@given(data=st.data())
def test_fuzz_constructors(db, data):
    """`Model(**values)`, `Model(pk)`, `get`, `exists`, `get_or_connect`."""
    _steps(db, data, _constructor_call, 3)


def _instance(db, data, cls):
    """An instance that exists, one not saved yet, or one from `lazy_connect` with any pk
    (None if that pk is refused)."""
    which = data.draw(st.sampled_from(["existing", "unsaved", "missing", "lazy"]), label="which")
    if which == "existing":
        return cls.lazy_connect("1" if cls.__name__ == "Fuzz" else "k 1:->*")
    if which == "unsaved":
        return cls()
    pk = data.draw(st.one_of(texts, raw_bytes, numbers) if which == "missing" else values)
    made = _call(db, lambda: cls.lazy_connect(pk), read=True)
    return None if isinstance(made, BaseException) else made


# Not `store`, which turns `sort` into a write: see test_getters_never_write.
KWARG_NAMES = [
    "withscores", "count", "desc", "nx", "xx", "ch", "incr", "gt", "lt", "start", "num",
    "alpha", "amount", "mapping", "score_cast_func", "byscore", "bylex", "offset", "rank",
    "maxlen", "match", "value", "key", "keys", "items", "by", "get", "groups",
]  # fmt: skip
EXTRA_METHODS = ["get", "set", "delete", "hmset", "zadd", "hscan", "sscan", "zscan", "instance"]
INSTANCE_METHODS = ["hmset", "hmget", "hdel", "hgetall", "hkeys", "hvals", "hlen", "delete"]


def _field_call(db, data, cls) -> None:
    instance = _instance(db, data, cls)
    if instance is None:
        return
    field_name = data.draw(st.sampled_from(sorted(cls._meta.fields)), label="field")
    field = getattr(instance, field_name)
    methods = [*field.getters, *field.modifiers, *EXTRA_METHODS]
    method = data.draw(st.sampled_from(methods), label="method")
    if not hasattr(field, method):
        return
    args = data.draw(st.lists(values, max_size=3), label="args")
    kwargs = data.draw(
        st.dictionaries(st.sampled_from(KWARG_NAMES), values, max_size=2), label="kwargs"
    )
    read = method in field.getters or method in ("hscan", "sscan", "zscan", "instance")
    _call(db, lambda: _consume(getattr(field, method)(*args, **kwargs)), read=read)


@FUZZ
@given(data=st.data())
def test_fuzz_field_commands(db, data):
    """Every getter and modifier of every field, with arbitrary arguments."""
    _steps(db, data, _field_call, 4)


def _instance_call(db, data, cls) -> None:
    instance = _instance(db, data, cls)
    if instance is None:
        return
    method = data.draw(st.sampled_from(INSTANCE_METHODS), label="method")
    kwargs = data.draw(st.dictionaries(names, values, max_size=3), label="kwargs")
    args = data.draw(st.lists(names, max_size=3), label="args")
    if method == "hmset":
        _call(db, lambda: instance.hmset(**kwargs))
    elif method == "delete":
        _call(db, instance.delete)
    elif method == "hdel":
        _call(db, lambda: instance.hdel(*args))
    elif method == "hmget":
        _call(db, lambda: instance.hmget(*args), read=True)
    else:
        _call(db, getattr(instance, method), read=True)


@FUZZ
@given(data=st.data())
def test_fuzz_instance_methods(db, data):
    """`hmset`, `hmget`, `hdel`, `hgetall`..., `delete`, with arbitrary names and values."""
    _steps(db, data, _instance_call, 3)


def _query(db, data, cls) -> None:
    filters = data.draw(st.dictionaries(filter_keys, values, max_size=3), label="filters")
    extended = data.draw(st.booleans(), label="extended")
    sort = data.draw(st.none() | st.tuples(names, st.booleans()), label="sort")
    piece = data.draw(
        st.none() | st.tuples(st.none() | st.integers(-5, 5), st.none() | st.integers(-5, 5))
    )
    output = data.draw(st.sampled_from(["list", "len", "instances", "values", "first"]))
    value_names = data.draw(st.lists(names, max_size=2), label="value names")

    def query() -> Any:
        manager = ExtendedCollectionManager if extended else None
        collection = cls.collection(manager=manager, **filters)
        if sort is not None:
            collection = collection.sort(by=sort[0], alpha=sort[1])
        if piece is not None:
            collection = collection[piece[0] : piece[1]]
        if output == "len":
            return len(collection)
        if output == "instances":
            return list(collection.instances())
        if output == "values" and extended:
            return list(collection.values(*value_names))
        if output == "first":
            try:
                return collection[0]
            except IndexError:  # an empty collection, as for a list
                return None
        return list(collection)

    _call(db, query, read=True)


@FUZZ
@given(data=st.data())
def test_fuzz_queries(db, data):
    """Filters with arbitrary names, suffixes and values; sorts by arbitrary names; slices;
    the extended collection's values. Reads only: nothing may change."""
    _steps(db, data, _query, 3)


# Values: what is accepted comes back as written and is found by filters ------------------------


@settings(FUZZ, max_examples=max(EXAMPLES // 2, 10))
@given(value=scalars)
@example(value="\U0001f642*?[x]\\:->" * 62_500)  # 1 MB of awkward text
@example(value=b"\xff\xfe\x00:*" * 200_000)  # 1 MB of bytes that are not UTF-8
@example(value=math.nan)
@example(value=-math.inf)
def test_fuzz_value_round_trip(db, value):
    Fuzz, Keyed = _fresh(db)
    text = to_text(value)
    target = Fuzz.lazy_connect("2")
    for field_name, write, read in [
        ("plain", lambda: target.plain.set(value), target.plain.get),
        ("city", lambda: target.city.hset(value), target.city.hget),
        ("word", lambda: target.word.set(value), target.word.get),
        ("score", lambda: target.score.hset(value), target.score.hget),
        ("tags", lambda: target.tags.sadd(value), lambda: text in target.tags.smembers()),
        ("log", lambda: target.log.rpush(value), lambda: target.log.lindex(-1)),
        ("attrs", lambda: target.attrs.hset(value, value), lambda: target.attrs.hget(value)),
    ]:
        outcome = _call(db, write)
        if field_name == "score" and parse_number(text) is None:  # not a number: refused
            assert isinstance(outcome, ValueError) and "Fuzz.score" in str(outcome), outcome
            continue
        assert not isinstance(outcome, BaseException), f"{field_name}: {outcome!r}"
        assert read() in (text, True), field_name
    for field_name in ("city", "word", "tags", "log"):
        assert "2" in list(Fuzz.collection(**{field_name: value})), field_name
    if "__" not in text:  # filters name a hash key after `__`
        assert "2" in list(Fuzz.collection(**{f"attrs__{text}": value}))
    assert "2" in list(Fuzz.collection(word__startswith=value))
    _consistent(Fuzz, Keyed)


@settings(FUZZ, max_examples=max(EXAMPLES // 2, 10))
@given(value=scalars)
@example(value=math.nan)
@example(value="1e400")
@example(value=" 1")
def test_fuzz_pk_round_trip(db, value):
    """Any text is a pk (and a unique value): found again, ordered byte-wise with others."""
    Fuzz, Keyed = _fresh(db)
    text = to_text(value)
    if not text or text in ("k 1:->*", "L"):
        return
    outcome = _call(db, lambda: Keyed(id=value, label=value, members=["1"]))
    assert not isinstance(outcome, BaseException), outcome
    assert list(Keyed.collection(pk=value)) == [text]
    assert list(Keyed.collection(label=value)) == [text]
    assert Keyed.get(label=value).pk.get() == text
    by_bytes = sorted(["k 1:->*", text], key=lambda pk: pk.encode("utf-8", "surrogateescape"))
    assert list(Fuzz.lazy_connect("1").groups()) == by_bytes
    assert list(Keyed.collection()) == by_bytes
    _consistent(Fuzz, Keyed)


@pytest.mark.parametrize("pk", ["nan", "-nan", " 1", "1 ", "\t2", "1e400", "0x10", "inf", "7"])
def test_numeric_looking_pks(db, pk):
    """Without sort(), pks are ordered numerically when all are numbers, else byte-wise
    (docs/decisions.md): a pk that merely looks like a number is still listed."""

    class Item(model.RedisModel):
        database = db
        id = fields.PKField()
        label = fields.StringField(indexable=True)

    Item(id=pk, label="x")
    assert list(Item.collection()) == [pk]
    assert list(Item.collection(label="x")) == [pk]
    Item(id="10", label="x")
    assert sorted(Item.collection(label="x")) == sorted([pk, "10"])


@pytest.mark.parametrize(
    "field_name, method, args, kwargs",
    [
        ("plain", "set", ("v", "x"), {}),
        ("plain", "set", ("v",), {"ex": 1, "px": 1}),
        ("plain", "bitcount", (0,), {}),
        ("attrs", "hset", (), {}),
        ("ranks", "zrange", (0, 1), {"byscore": True, "bylex": True}),
    ],
    ids=["set ex=text", "set ex and px", "bitcount start only", "hset nothing", "zrange by both"],
)
def test_bad_arguments_raise_documented_errors(db, field_name, method, args, kwargs):
    """Arguments redis-py refuses (its DataError) are refused as bad input is documented to
    be: a ValueError or TypeError (naming the field), nothing sent."""
    Fuzz, _ = _fresh(db)
    field = getattr(Fuzz.lazy_connect("1"), field_name)
    before = snapshot(db)
    with pytest.raises((ValueError, TypeError)):
        getattr(field, method)(*args, **kwargs)
    assert snapshot(db) == before


def test_nan_and_infinite_scores(db):
    """Scores: NaN is refused (by Redis) changing nothing, infinities are kept; a
    NumberRangeIndex refuses NaN and indexes infinities as themselves."""
    Fuzz, Keyed = _fresh(db)
    item = Fuzz.lazy_connect("1")
    for write in (
        lambda: item.ranks.zadd({"x": math.nan}),
        lambda: item.ranks.zadd({"r": 1, "y": math.nan}),
        lambda: item.ranks.zincrby(math.nan, "r"),
    ):
        outcome = _call(db, write)
        assert isinstance(outcome, DOCUMENTED), outcome
    assert item.ranks.zincrby(math.inf, "r") == math.inf
    outcome = _call(db, lambda: item.ranks.zincrby(-math.inf, "r"))  # inf - inf is NaN
    assert isinstance(outcome, DOCUMENTED), outcome
    assert item.ranks.zadd({"up": math.inf, "down": -math.inf}) == 2
    assert item.ranks.zscore("up") == math.inf and item.ranks.zscore("down") == -math.inf
    assert set(Fuzz.collection(ranks__gte="down")) == {"1"}
    outcome = _call(db, lambda: item.score.hset(math.nan))
    assert isinstance(outcome, ValueError) and "Fuzz.score" in str(outcome), outcome
    assert item.score.hget() == "3"
    second = Fuzz.lazy_connect("2")  # its score is -inf
    assert list(Fuzz.collection(score__lt=-1e308)) == ["2"]
    second.score.hset(math.inf)
    assert list(Fuzz.collection(score__gt=1e308)) == ["2"]
    assert list(Fuzz.collection(score=math.inf)) == ["2"]
    _consistent(Fuzz, Keyed)


# Getters are reads --------------------------------------------------------------------------------


@pytest.mark.parametrize("field_name", ["tags", "log", "ranks"])
@pytest.mark.parametrize("destination", ["own key", "other field"])
def test_getters_never_write(db, field_name, destination):
    """`sort` is a getter ("read-only, sent as they are"): whatever its arguments, it must
    not write a field's key behind its indexes' back (SORT ... STORE)."""
    Fuzz, Keyed = _fresh(db)
    instance = Fuzz.lazy_connect("1")
    keys = {
        "own key": getattr(instance, field_name).key,
        "other field": instance.log.key if field_name != "log" else instance.tags.key,
    }
    _call(
        db,
        lambda: getattr(instance, field_name).sort(alpha=True, store=keys[destination]),
        read=True,
    )
    assert integrity.check(Fuzz, Keyed) == []


# Key-pattern characters never reach other keys ------------------------------------------------

AWKWARD = [
    "*", "?", "[", "]", "[a-z]", "[!x]", "\\", "\\*", "a*", "*:*", ":", "::", "->", " ",
    "a b", "x:idx:y", "obj:1:name", "_hash", "collection", "max_pk", "\x00", "\udcff", "é",
]  # fmt: skip


def _pattern_models(db):
    class Target(related.RelatedModel):
        cluster_group = "fuzz_api"
        database = db
        namespace = "pat"
        id = fields.PKField()
        name = fields.StringField(indexable=True)
        word = fields.InstanceHashField(indexes=[TextRangeIndex])
        number = fields.InstanceHashField(indexes=[NumberRangeIndex])
        attrs = fields.HashField(indexable=True)
        tags = fields.SetField(indexable=True)

    class Bait(related.RelatedModel):
        """Same fields, same pks, other values: any read of its keys shows in results."""

        cluster_group = "fuzz_api"

        database = db
        namespace = "zz9bait"
        id = fields.PKField()
        name = fields.StringField(indexable=True)
        word = fields.InstanceHashField(indexes=[TextRangeIndex])
        number = fields.InstanceHashField(indexes=[NumberRangeIndex])
        attrs = fields.HashField(indexable=True)
        tags = fields.SetField(indexable=True)

    for position, value in enumerate(AWKWARD):
        shifted = AWKWARD[(position + 1) % len(AWKWARD)]
        for cls, held in ((Target, value), (Bait, shifted)):
            cls(
                id=f"{value}|{position}",
                name=held,
                word=held,
                number=position if cls is Target else -position,
                attrs={held: held},
                tags=[held, "common"],
            )
    return Target, Bait


class _Monitor:
    """Every command the server runs (Lua calls included) while the block runs (Redis)."""

    def __init__(self, db) -> None:
        self.db = db
        self.lines: list[str] = []

    def __enter__(self) -> _Monitor:
        client = redis.Redis.from_url(self.db.backend.url, decode_responses=True)
        self.client = client
        self.stop = f"stop-{uuid.uuid4().hex}"
        ready = threading.Event()

        def watch() -> None:
            with client.monitor() as monitor:
                ready.set()
                for command in monitor.listen():
                    self.lines.append(command["command"])
                    if self.stop in command["command"]:
                        return

        self.thread = threading.Thread(target=watch, daemon=True)
        self.thread.start()
        assert ready.wait(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.db.client.echo(self.stop)
        self.thread.join(10)
        self.client.close()


def test_pattern_characters_in_values_and_pks(db, limpyd_backend):
    Target, Bait = _pattern_models(db)
    pks = {value: f"{value}|{position}" for position, value in enumerate(AWKWARD)}

    def queries() -> None:
        for value, pk in pks.items():
            assert list(Target.collection(name=value)) == [pk], value
            assert list(Target.collection(word=value)) == [pk], value
            assert list(Target.collection(tags=value)) == [pk], value
            assert list(Target.collection(**{f"attrs__{value}": value})) == [pk], value
            assert list(Target.collection(pk=pk)) == [pk], value
            starting = {p for v, p in pks.items() if v.startswith(value)}
            assert set(Target.collection(word__startswith=value)) == starting, value
            assert set(Target.collection(name__in=[value, "common"])) == {pk}, value
        ordered = sorted(pks, key=lambda v: (v.encode("utf-8", "surrogateescape"), pks[v]))
        assert list(Target.collection().sort(by="name", alpha=True)) == [pks[v] for v in ordered]
        assert list(Target.collection().sort(by="word", alpha=True)) == [pks[v] for v in ordered]
        assert list(Target.collection(tags="common").sort(by="-number")) == [
            pks[v] for v in reversed(AWKWARD)
        ]
        rows = Target.collection(manager=ExtendedCollectionManager).values("pk", "name", "word")
        assert sorted((row["pk"], row["name"], row["word"]) for row in rows) == sorted(
            (pk, value, value) for value, pk in pks.items()
        )
        for value, pk in pks.items():
            instance = Target(pk)
            assert instance.name.get() == value
            assert set(instance.scan_keys()) == {
                f"{Target._meta.instance_prefix}{pk}:name",
                f"{Target._meta.instance_prefix}{pk}:_hash",
                f"{Target._meta.instance_prefix}{pk}:attrs",
                f"{Target._meta.instance_prefix}{pk}:tags",
            }

    if limpyd_backend == "redis":
        with _Monitor(db) as monitor:
            queries()
        assert sum(f"{Target._meta.prefix}:idx:" in line for line in monitor.lines) > len(AWKWARD)
        leaks = [line for line in monitor.lines if "zz9bait" in line]
        assert leaks == []
    else:
        queries()
    everything = set(db.client.scan_iter())
    assert set(Target.scan_model_keys()) == {k for k in everything if k.startswith("pat:")}
    assert set(Bait.scan_model_keys()) == {k for k in everything if k.startswith("zz9bait:")}
    assert integrity.check(Target) == [] and integrity.check(Bait) == []


# Index maintenance stays inside the field's own indexes ----------------------------------------


def _own_index_keys(cls, field_name: str, index_class=None) -> set[str]:
    """The keys the field's (selected) indexes hold for the instances' current values."""
    field = cls._meta.fields[field_name]
    from limpyd.writes import read_states

    pks = sorted(cls._meta.database.client.smembers(cls._meta.collection_key))
    states = read_states(cls._meta.database, [(field, pk) for pk in pks])
    return {
        add[1]
        for pk, state in zip(pks, states, strict=True)
        for hkey, value in field.items_of(state)
        for index in field.indexes
        if index_class is None or isinstance(index, index_class)
        for add, _ in index.entries(value, pk, hkey)
    }


MAINTAINED = [
    ("Target", "name", None),
    ("Target", "word", None),
    ("Target", "number", NumberRangeIndex),
    ("Target", "attrs", None),
    ("Target", "tags", EqualIndex),
    ("Multi", "multi", EqualIndex),
    ("Multi", "multi", TextRangeIndex),
    ("Multi", "multi", None),
]


def test_clean_and_rebuild_stay_in_their_indexes(db):
    """For each field (and index class): cleaning deletes exactly the field's index keys,
    whatever the values and pks hold; rebuilding puts back exactly what was there."""
    Target, Bait = _pattern_models(db)

    class Multi(model.RedisModel):
        """Two fields, one named like the start of the other, with two indexes each."""

        database = db
        namespace = "pat"
        multi = fields.StringField(indexes=[EqualIndex, TextRangeIndex])
        multi2 = fields.StringField(indexes=[EqualIndex, TextRangeIndex])

    for value in AWKWARD:
        Multi(multi=value, multi2=value)
    models = {"Target": Target, "Multi": Multi}
    for model_name, field_name, index_class in MAINTAINED:
        where = f"{model_name}.{field_name} {index_class and index_class.__name__}"
        cls = models[model_name]
        prefix = cls._meta.prefix
        # Keys that look like the field's index keys without being theirs (the field's
        # index keys are `<prefix>:idx:<field>:<index>` and below, see limpyd/indexes.py).
        decoys = {
            f"{prefix}:idx:{field_name}",
            f"{prefix}:idx:{field_name}X:equal:a",
            f"{prefix}:idx:{field_name}:equalX:a",
            f"{prefix}:idx:{field_name}:text-rangeX",
            f"{prefix}:idx:{field_name}:other-index:*",
            f"{prefix}:obj:*:idx:{field_name}:equal:*",
            f"{prefix}X:idx:{field_name}:equal:a",
            f"pat:{{other}}:other:idx:{field_name}:equal:a",
            f"other:{cls.__name__.lower()}:idx:{field_name}:equal:a",
        }
        for key in decoys:
            db.client.set(key, "decoy")
        field = cls._meta.fields[field_name]
        own = _own_index_keys(cls, field_name, index_class)
        assert own, where  # the field is indexed, so it has index keys
        before = snapshot(db)

        field.clean_indexes(index_class)
        cleaned = snapshot(db)
        assert own.isdisjoint(cleaned), f"{where}: index keys left"
        gone = sorted(set(before) - set(cleaned) - own)
        assert gone == [], f"{where}: deleted keys that are not its indexes"
        assert cleaned == {k: v for k, v in before.items() if k not in own}, where

        field.rebuild_indexes(index_class)
        assert snapshot(db) == before, f"{where}: not rebuilt as it was"
        for decoy in decoys:  # (keys of several slots of a cluster)
            db.client.delete(decoy)
    assert integrity.check(Target, Bait, Multi) == []
