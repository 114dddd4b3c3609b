"""Machine 5: backend parity, one random program on fakeredis and on Redis side by side."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from limpyd.backends import FakeBackend
from limpyd.database import RedisDatabase
from limpyd.fields import (
    HashField,
    InstanceHashField,
    ListField,
    SetField,
    SortedSetField,
    StringField,
)
from limpyd.fields.base import RedisField
from limpyd_testing import strategies as lst
from limpyd_testing.snapshot import snapshot
from properties.models import (
    INDEX_FIELD_TEXTS,
    collection_models,
    index_models,
    related_models,
    unique_models,
)
from properties.support import DatabaseMachine, described, scaled
from properties.test_collections import build, queries

texts = lst.texts()
small = st.integers(-3, 3)
ranks = st.integers(-4, 4)
floats = st.sampled_from([0.5, -1.25, 2.0, 0.1])
scores = lst.scores()
score_bounds = st.one_of(
    st.sampled_from(["-inf", "+inf", "(0", "(1", "0", "1.5", "(-1"]), scores.map(repr)
)

#: The modifiers and getters the program calls, per field class, with their arguments.
Args = Callable[[Any, st.SearchStrategy[str]], tuple[tuple[Any, ...], dict[str, Any]]]


def _args(*strategies: Any) -> Args:
    """Positional arguments, each a strategy or a function of the values strategy."""

    def draw(data: Any, values: st.SearchStrategy[str]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        drawn = []
        for index, strategy in enumerate(strategies):
            strategy = strategy(values) if callable(strategy) else strategy
            drawn.append(data.draw(strategy, label=f"arg {index}"))
        return tuple(drawn), {}

    return draw


def _many(values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(values, min_size=1, max_size=3)


def _star(strategy: Callable[[Any], Any]) -> Args:
    """One list argument spread as positional arguments."""

    def draw(data: Any, values: st.SearchStrategy[str]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return tuple(data.draw(strategy(values), label="args")), {}

    return draw


def _zadd(data: Any, values: st.SearchStrategy[str]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    mapping = data.draw(st.dictionaries(values, scores, min_size=1, max_size=3), label="mapping")
    flags = data.draw(
        st.sampled_from([{}, {"nx": True}, {"xx": True}, {"gt": True}, {"lt": True}, {"ch": True}]),
        label="flags",
    )
    if data.draw(st.booleans(), label="incr") and len(mapping) == 1:
        flags = {**flags, "incr": True}
    return (mapping,), flags


def _hash_mapping(data: Any, values: st.SearchStrategy[str]) -> tuple[tuple[Any, ...], dict]:
    return (), {"mapping": data.draw(st.dictionaries(texts, values, min_size=1, max_size=3))}


def _hmset(data: Any, values: st.SearchStrategy[str]) -> tuple[tuple[Any, ...], dict]:
    return (data.draw(st.dictionaries(texts, values, min_size=1, max_size=3)),), {}


def _withscores(*strategies: Any) -> Args:
    base = _args(*strategies)

    def draw(data: Any, values: st.SearchStrategy[str]) -> tuple[tuple[Any, ...], dict]:
        args, _ = base(data, values)
        return args, {"withscores": data.draw(st.booleans(), label="withscores")}

    return draw


COMMANDS: dict[type[RedisField], dict[str, Args]] = {
    StringField: {
        "append": _args(lambda v: v),
        "decr": _args(small),
        "decrby": _args(small),
        "getdel": _args(),
        "getset": _args(lambda v: v),
        "incr": _args(small),
        "incrby": _args(small),
        "incrbyfloat": _args(floats),
        "set": _args(lambda v: v),
        "setbit": _args(st.integers(0, 40), st.integers(0, 1)),
        "setnx": _args(lambda v: v),
        "setrange": _args(st.integers(0, 8), lambda v: v),
        "delete": _args(),
        # getters
        "bitcount": _args(),
        "get": _args(),
        "getbit": _args(st.integers(0, 40)),
        "getrange": _args(ranks, ranks),
        "strlen": _args(),
    },
    InstanceHashField: {
        "hincrby": _args(small),
        "hincrbyfloat": _args(floats),
        "hset": _args(lambda v: v),
        "hsetnx": _args(lambda v: v),
        "delete": _args(),
        "hget": _args(),
    },
    SetField: {
        "sadd": _star(_many),
        "srem": _star(_many),
        "delete": _args(),
        "scard": _args(),
        "sismember": _args(lambda v: v),
        "smembers": _args(),
        "smismember": _args(_many),
    },
    ListField: {
        "linsert": _args(st.sampled_from(["BEFORE", "AFTER"]), lambda v: v, lambda v: v),
        "lpop": _args(st.none() | st.integers(1, 3)),
        "lpush": _star(_many),
        "lpushx": _star(_many),
        "lrem": _args(st.integers(-2, 2), lambda v: v),
        "lset": _args(ranks, lambda v: v),
        "ltrim": _args(ranks, ranks),
        "rpop": _args(st.none() | st.integers(1, 3)),
        "rpush": _star(_many),
        "rpushx": _star(_many),
        "delete": _args(),
        "lindex": _args(ranks),
        "llen": _args(),
        "lpos": _args(lambda v: v),
        "lrange": _args(ranks, ranks),
        "sort": _args(),
    },
    HashField: {
        "hdel": _star(lambda v: _many(texts)),
        "hincrby": _args(texts, small),
        "hincrbyfloat": _args(texts, floats),
        "hset": _args(texts, lambda v: v),
        "hset_mapping": _hash_mapping,
        "hmset": _hmset,
        "hsetnx": _args(texts, lambda v: v),
        "delete": _args(),
        "hexists": _args(texts),
        "hget": _args(texts),
        "hgetall": _args(),
        "hkeys": _args(),
        "hlen": _args(),
        "hmget": _args(lambda v: _many(texts)),
        "hstrlen": _args(texts),
        "hvals": _args(),
    },
    SortedSetField: {
        "zadd": _zadd,
        "zincrby": _args(floats, lambda v: v),
        "zpopmax": _args(st.none() | st.integers(1, 3)),
        "zpopmin": _args(st.none() | st.integers(1, 3)),
        "zrem": _star(_many),
        "zremrangebyrank": _args(ranks, ranks),
        "zremrangebyscore": _args(score_bounds, score_bounds),
        "delete": _args(),
        "zcard": _args(),
        "zcount": _args(score_bounds, score_bounds),
        "zmscore": _args(_many),
        "zrange": _withscores(ranks, ranks),
        "zrangebyscore": _withscores(score_bounds, score_bounds),
        "zrank": _args(lambda v: v),
        "zrevrange": _withscores(ranks, ranks),
        "zrevrangebyscore": _withscores(score_bounds, score_bounds),
        "zrevrank": _args(lambda v: v),
        "zscore": _args(lambda v: v),
    },
}
#: Differences between the fake server and Redis that are known and not fixed yet (each
#: has a regression test in test_regressions.py); the program steers around them.
#: "incrbyfloat": INCRBYFLOAT / HINCRBYFLOAT. Redis parses with strtold (hexadecimal
#: accepted) and adds in long double (80-bit on x86-64: no overflow at 1e308, rounding
#: visible in the 17 decimals it prints from about 512 up), where limpyd's fake server
#: adds exact decimals. The program only sends them on missing values and short decimals.
#: "sort": a field's numeric SORT reads values with strtod on Redis (hexadecimal, leading
#: spaces and '' taken) and with Python's float on the fake ('1_000', other digits taken):
#: the program only sends it when every value is a plain decimal or a text neither reads.
#: Remove a name once the backend layer absorbs the difference.
KNOWN_DIFFERENCES = ("incrbyfloat", "sort")
SHORT_DECIMAL = re.compile(r"-?[0-8]?[0-9](?:\.[0-9]{1,2})?")
PLAIN_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _number_like(text: str) -> bool:
    """Whether one of the servers may read `text` as a number: Python's float does, or it
    holds a digit, a dot, or is empty or spaced (strtod skips leading spaces)."""
    try:
        float(text)
    except ValueError:
        return text == "" or text[:1].isspace() or any(c.isdigit() or c == "." for c in text)
    return True


#: Replies whose order Redis does not define: compared sorted.
UNORDERED = {"hkeys", "hvals"}


def commands_of(field: RedisField) -> dict[str, Args]:
    for cls in (InstanceHashField, StringField, SetField, ListField, HashField, SortedSetField):
        if isinstance(field, cls):
            return COMMANDS[cls]
    return {}


def every_model(database: RedisDatabase) -> SimpleNamespace:
    """The models of the other machines, on one database."""
    groups = [
        index_models(database),
        unique_models(database),
        related_models(database),
        collection_models(database),
    ]
    models = {model.__name__: model for group in groups for model in group.all}
    return SimpleNamespace(models=models, collections=groups[3])


class BackendParityMachine(DatabaseMachine):
    """The models of the four other machines (every field type, index type, unique field,
    unique_together, relations, an ExtendedCollectionManager), on two databases: the test's
    real Redis one and an in-memory fakeredis one. Each step runs one operation on both:
    creations with any values (`strategies.model_values`, awkward texts and numbers),
    every modifier and getter of every field type with arbitrary arguments (including
    ones Redis refuses: INCR on text, LSET out of range...), instance `hmset`/`hdel`/
    `hmget`/`hgetall`/`delete`, field deletion, collections (`strategies.filters` with
    sorts on any field, numeric or alpha, and slices; the collection machine's random
    queries), `clean_indexes`/`rebuild_indexes`, writes to missing instances.

    Invariants:
    - every operation has the same outcome on both: the same return value (instances by
      pk; unordered replies sorted), or an exception of the same type;
    - after every step, both databases hold the same keys with the same contents
      (`snapshot`).
    """

    weight = 0.6

    def setup(self) -> None:
        self._fake_name = f"limpyd-parity-{uuid.uuid4().hex}"
        self.fake = RedisDatabase(backend=FakeBackend(name=self._fake_name))
        self.sides = [every_model(self.fake), every_model(self.database)]
        self.boards = [side.collections.Board(queue=["-"]) for side in self.sides]
        #: model name -> pks that exist (the same on both sides, or the step failed).
        self.pks: dict[str, list[str]] = {name: [] for name in self.sides[0].models}
        self.steps = 0

    def teardown(self) -> None:
        FakeBackend.drop_server(self._fake_name)
        super().teardown()

    # Running on both ---------------------------------------------------------------------

    def both(self, what: str, action: Callable[[SimpleNamespace, int], Any]) -> Any:
        """Run `action(side, i)` on both databases; their outcomes must be equal."""
        outcomes = []
        for i, side in enumerate(self.sides):
            try:
                outcomes.append(("ok", described(action(side, i))))
            except Exception as error:  # the type is the outcome
                outcomes.append(("error", type(error).__name__))
        note(f"{what} -> {outcomes[0]!r}")
        assert outcomes[0] == outcomes[1], (
            f"{what}: fakeredis gave {outcomes[0]!r}, Redis gave {outcomes[1]!r}"
        )
        return outcomes[0]

    def model_name(self, data: st.DataObject, existing: bool = True) -> str:
        names = [n for n, pks in self.pks.items() if pks or not existing]
        return data.draw(st.sampled_from(sorted(names)), label="model")

    def pk(self, data: st.DataObject, name: str) -> str:
        """An existing pk of `name`, or now and then a missing one."""
        pool = self.pks[name]
        if pool and data.draw(st.integers(0, 9), label="missing?") < 9:
            return data.draw(st.sampled_from(pool), label="pk")
        return "404"

    def values(self, field: RedisField) -> st.SearchStrategy[str]:
        """Texts for a field: pks (existing or not) for a related field."""
        if lst.is_related(field):
            pool = self.pks[field.related_model.__name__]  # type: ignore[attr-defined]
            return st.sampled_from([*pool, "404"])
        return texts

    # Rules -------------------------------------------------------------------------------

    @initialize(data=st.data(), count=st.integers(2, 8))
    def populate(self, data: st.DataObject, count: int) -> None:
        """Start with a few instances (whatever rules an example leaves out)."""
        for _ in range(count):
            self.create(data)

    @rule(data=st.data())
    def create(self, data: st.DataObject) -> None:
        """`Model(**values)`, values from `strategies.model_values` (items more often, for
        the queries)."""
        name = data.draw(st.sampled_from(["Item", "Item", *sorted(self.pks)]), label="model")
        model = self.sides[0].models[name]
        pools = {
            target: st.sampled_from([*self.pks[target.__name__], "404"])
            for target in {
                f.related_model
                for f in model._meta.data_fields
                if lst.is_related(f)  # type: ignore[attr-defined]
            }
        }
        prefix = f"{name}."
        items = {  # dates and times (and anything) for the date and time indexes
            field[len(prefix) :]: texts
            for field, texts in INDEX_FIELD_TEXTS.items()
            if field.startswith(prefix) and not field.endswith("[]")
        }
        values = data.draw(lst.model_values(model, pks=pools, items=items), label="values")
        outcome = self.both(f"{name}(**{values!r})", lambda side, i: side.models[name](**values))
        if outcome[0] == "ok":
            self.pks[name].append(outcome[1][2])

    @precondition(lambda self: any(self.pks.values()))
    @rule(data=st.data())
    def command(self, data: st.DataObject) -> None:
        """A modifier or getter of a field, with arbitrary arguments."""
        self._command(data)

    @precondition(lambda self: any(self.pks.values()))
    @rule(data=st.data())
    def another_command(self, data: st.DataObject) -> None:
        """The same as `command` (commands are most of a program)."""
        self._command(data)

    @precondition(lambda self: any(self.pks.values()))
    @rule(data=st.data())
    def counter_command(self, data: st.DataObject) -> None:
        """An INCR-family command (incr, decrby, incrbyfloat, hincrby, zincrby...): the
        replies and stored numbers they print are where servers differ most, and few of the
        commands `command` draws are counters."""
        self._command(data, counters=True)

    def _command(self, data: st.DataObject, counters: bool = False) -> None:
        name = self.model_name(data)
        pk = self.pk(data, name)
        model = self.sides[0].models[name]

        def methods(field: RedisField) -> list[str]:
            return sorted(
                m for m in commands_of(field) if not counters or "incr" in m or "decr" in m
            )

        fields = [f for f in model._meta.data_fields if methods(f)]
        if not fields:
            return
        field = data.draw(st.sampled_from(fields), label="field")
        table = commands_of(field)
        method = data.draw(st.sampled_from(methods(field)), label="method")
        args, kwargs = table[method](data, self.values(field))
        call = "hset" if method == "hset_mapping" else method
        known = "incrbyfloat" in KNOWN_DIFFERENCES and method.endswith("incrbyfloat")
        if known and not self.float_safe(name, pk, field, args):
            note(f"{name}({pk!r}).{field.name}.{method}: skipped (see KNOWN_DIFFERENCES)")
            return
        if "sort" in KNOWN_DIFFERENCES and method == "sort" and not self.sort_safe(name, pk, field):
            note(f"{name}({pk!r}).{field.name}.sort: skipped (see KNOWN_DIFFERENCES)")
            return

        def action(side: SimpleNamespace, i: int) -> Any:
            bound = getattr(side.models[name].lazy_connect(pk), field.name)
            reply = getattr(bound, call)(*args, **kwargs)
            if method in UNORDERED and isinstance(reply, list):
                reply = sorted(reply)
            return reply

        self.both(f"{name}({pk!r}).{field.name}.{call}(*{args!r}, **{kwargs!r})", action)

    @precondition(lambda self: any(self.pks.values()))
    @rule(data=st.data())
    def instance_method(self, data: st.DataObject) -> None:
        """`hmset`, `hdel`, `hmget`, `hgetall`, `delete` of an instance."""
        name = self.model_name(data)
        pk = self.pk(data, name)
        model = self.sides[0].models[name]
        hashed = [f for f in model._meta.data_fields if isinstance(f, InstanceHashField)]
        methods = ["delete"] + (["hmset", "hdel", "hmget", "hgetall"] if hashed else [])
        method = data.draw(st.sampled_from(methods), label="method")
        args: tuple[Any, ...] = ()
        kwargs: dict[str, Any] = {}
        if method == "hmset":
            chosen = data.draw(st.lists(st.sampled_from(hashed), min_size=1, unique=True))
            kwargs = {f.name: data.draw(self.values(f), label=f.name) for f in chosen}
        elif method in ("hdel", "hmget"):
            args = tuple(f.name for f in data.draw(st.lists(st.sampled_from(hashed), min_size=1)))
        outcome = self.both(
            f"{name}({pk!r}).{method}(*{args!r}, **{kwargs!r})",
            lambda side, i: getattr(side.models[name].lazy_connect(pk), method)(*args, **kwargs),
        )
        if method == "delete" and outcome[0] == "ok":
            self.forget(name, pk)

    def float_safe(self, name: str, pk: str, field: RedisField, args: tuple[Any, ...]) -> bool:
        """Whether INCRBYFLOAT on this value is outside the known differences: the value is
        missing, or a short decimal far from the magnitudes where Redis's long double
        shows in the 17 decimals it prints."""
        instance = self.sides[1].models[name].lazy_connect(pk)
        bound = getattr(instance, field.name)
        try:
            current = bound.hget(args[0]) if isinstance(field, HashField) else bound.get()
        except Exception:  # a missing instance: the same error on both sides
            return True
        return current is None or SHORT_DECIMAL.fullmatch(current) is not None

    def sort_safe(self, name: str, pk: str, field: RedisField) -> bool:
        """Whether a numeric SORT of this field is outside the known differences: each value
        is a plain decimal, or a text neither server reads as a number."""
        bound = getattr(self.sides[1].models[name].lazy_connect(pk), field.name)
        try:
            values = bound.sort(alpha=True)
        except Exception:  # a missing instance: the same error on both sides
            return True
        return all(PLAIN_DECIMAL.fullmatch(value) or not _number_like(value) for value in values)

    def forget(self, name: str, pk: str) -> None:
        if pk in self.pks[name]:
            self.pks[name].remove(pk)

    @rule(data=st.data())
    def filtered(self, data: st.DataObject) -> None:
        """`strategies.filters` on any model, sorted on any field (numeric or alpha),
        sliced."""
        name = self.model_name(data, existing=False)
        model = self.sides[0].models[name]
        if not any(f.indexes for f in model._meta.data_fields):
            return
        filters = data.draw(lst.filters(model), label="filters")
        sortable = ["pk"] + [
            f.name
            for f in model._meta.data_fields
            if isinstance(f, StringField | InstanceHashField)
        ]
        by = data.draw(st.none() | st.sampled_from(sortable), label="by")
        alpha = data.draw(st.booleans(), label="alpha")
        desc = data.draw(st.booleans(), label="desc")
        window = data.draw(st.none() | st.tuples(ranks, ranks, st.sampled_from([None, 1, -1, 2])))

        def action(side: SimpleNamespace, i: int) -> Any:
            collection = side.models[name].collection(**filters)
            if by is not None:
                collection = collection.sort(by=by, alpha=alpha, desc=desc)
            if window is not None:
                collection = collection[slice(*window)]
            return list(collection)

        self.both(f"{name}.collection(**{filters!r}) by={by} alpha={alpha} {window}", action)

    @rule(spec=queries())
    def query(self, spec: dict[str, Any]) -> None:
        """A query of the collection machine (algebra, intersections, by_score, values,
        store...)."""
        key = f"props-collections:stored:parity:{self.steps}"
        self.both(
            f"query {spec!r}",
            lambda side, i: build(side.collections, self.boards[i], spec, key),
        )

    @rule(data=st.data())
    def rebuild(self, data: st.DataObject) -> None:
        """`clean_indexes` or `rebuild_indexes` of an indexed field (cleaning leaves the
        indexes empty until the next rebuild, on both sides)."""
        name = self.model_name(data, existing=False)
        fields = [f for f in self.sides[0].models[name]._meta.data_fields if f.indexes]
        if not fields:
            return
        field = data.draw(st.sampled_from(fields), label="field")
        method = data.draw(st.sampled_from(["clean_indexes", "rebuild_indexes"]))
        self.both(
            f"{name}.{field.name}.{method}()",
            lambda side, i: getattr(side.models[name].get_field(field.name), method)(),
        )

    @invariant()
    def same_keys(self) -> None:
        """Both databases hold the same keys and contents."""
        self.steps += 1
        fake, real = snapshot(self.fake), snapshot(self.database)
        if fake != real:
            keys = sorted(set(fake) | set(real))
            diff = [(k, fake.get(k), real.get(k)) for k in keys if fake.get(k) != real.get(k)]
            raise AssertionError(f"the databases differ (key, fakeredis, Redis): {diff!r}")


@pytest.mark.limpyd_backends("redis")
def test_backend_parity(limpyd_database_factory, profile):
    BackendParityMachine.run(
        limpyd_database_factory, settings=scaled(profile, BackendParityMachine.weight)
    )
