"""`ModelStateMachine`: property-test your own models against a pure-Python model of them.

Subclass it with the models to test, and run it::

    from limpyd_testing.stateful import ModelStateMachine

    class PeopleMachine(ModelStateMachine):
        models = [Person, Group]

    def test_people(limpyd_database_factory):           # on the plugin's backend(s)
        PeopleMachine.run(database_factory=limpyd_database_factory)

    TestPeople = PeopleMachine.TestCase                   # or: unittest style, in memory

`run(database_factory=None, settings=None)` and `run_state_machine(machine_class, factory)`
run it as a test (settings from `@settings(...)` on the class by default; the deadline is
off, an example being many steps). Class attributes: `models`, `database_factory`,
`field_texts`, `max_instances` (per model, 6), `max_queries` (4), `max_probes` (4).

The machine creates instances (`strategies.model_values`), runs the modifiers of every field
type with generated arguments, the instances' `hmset`/`hdel`, deletes fields and instances,
makes instances expire, and runs collections (`strategies.filters`, sorts, slices). It keeps
what Redis should hold in plain Python (the *oracle*), and after every step that wrote
(queries write nothing, so nothing is re-checked after them) checks that:

- every instance's stored values, and each model's `collection()` (default order: by pk,
  numeric when every pk is a decimal number, else byte-wise), equal the oracle's;
- the last filters drawn (`max_queries`, kept as standing queries), and probes on the
  fields the step wrote (`max_probes`: each index, one of its suffixes in turn, the values
  at stake), answer like the oracle, which implements the documented semantics: text
  equality (EqualIndex), byte-wise order of `s.encode('utf-8', 'surrogateescape')`
  (TextRangeIndex, and `endswith`), float order with non-numbers as 0 (NumberRangeIndex),
  through each index's own `normalize` (transforms, multi-index leaves), the index
  answering a filter chosen as the ORM documents it; `__in`, `__all`, `__isnull`, `pk`;
- `limpyd_testing.integrity.check(*models)` finds nothing;
- each model's expiry times are the oracle's (which instances expire later, which have
  expired), and expired instances are gone for reads: not in collections nor filters,
  `exists(pk=...)` False, their fields raise DoesNotExist, related collections (both ways)
  leave them out.

Expiry. `expireat(server time - 1)` makes an instance expire at once: the oracle moves it
aside, as *expired, not reaped*. Reads no longer see it, but its keys, its index entries and
the references other instances hold to it stay stored until it is reaped, so the stored
values the machine compares still hold those references, and the integrity check (which
reads what is stored) still counts it as an instance, which it is until reaped. Reaping
then acts as a deletion (references unlinked). It happens in three ways, all checked:
`Model.reap_expired()` (returns exactly the number of the model's expired instances; none
of their keys nor expiry times remain, the integrity check is clean after), a write on the
expired instance (it raises DoesNotExist, having reaped it), and a write that meets it as
the holder of a pk or unique value it takes (expired values are free: the creation or
write succeeds, the holder reaped). The values and pks of expired instances are drawn
again, for that. After each write the machine asks which expired instances are still
stored: exactly those the write did not have to reap must be, and it may reap no other.
A refused write may still have reaped holders it met before the check that refused it
(checks stop at the first failure, in an order the oracle does not model): then its "no
key changed" check gives way to the invariant's comparison with the oracle.
`expire(seconds)` (an hour or more) changes no other key and `ttl()` is then positive;
`persist()` returns whether the instance had an expiry time, and `ttl()` is None after.

Texts are drawn new, or (a quarter of the time, half for unique fields) among those the
field already holds, so that queries match and unique values clash. `machine.stats` counts
what an example did (created, written, refused, queried, matched; expired, expiring,
persisted, reaped, reaped by writes, written on expired, created over expired).

Writes are predicted too: a write the oracle says breaks uniqueness must raise
UniquenessError, one on a value Redis cannot increment must raise ResponseError, and such a
refused write must leave the whole database unchanged; replies are compared with the
oracle's (random ones, like SPOP, are checked for membership).

Database: a fresh one per example, the models listed pointed at it with `use_database` (and
put back at teardown). Where it comes from, first found: the `database_factory` given to
`run()` / the constructor, the class attribute `database_factory`, the one set with
`configure()`, else a new in-memory `FakeBackend` server, dropped at teardown. A database
from a factory is flushed (FLUSHDB) when an example starts: give it one the test owns, like
the pytest plugin's `limpyd_database_factory`.

What the machine knows, and what it skips:

- Fields: instances of StringField, InstanceHashField, SetField, ListField, HashField,
  SortedSetField (subclasses and `contrib.related` fields included; related values are drawn
  from the existing pks of the related model, which must be in `models`). Fields of other
  classes are never written nor compared (the integrity check still covers their indexes).
- Indexes: EqualIndex, TextRangeIndex, NumberRangeIndex and their configured variants and
  multi-index leaves. Filters answered by another index class are still run (they must not
  fail) but their results are not compared; a unique field with a uniqueness-checking index
  of another class is never written (its conflicts cannot be predicted).
- Index transforms must accept any text the machine writes; give a field its own texts with
  `field_texts = {"Model.field": strategy}` otherwise (e.g. dates for date indexes).
- Callable defaults are not predicted: the stored value is adopted after the creation.
- `unique_together` groups are modelled (combinations of raw values, all set).
- Time: nothing may expire by the clock during an example, only by the rules. A model's
  default `ttl` is accepted from `MIN_DEFAULT_TTL` (an hour): its new instances expire
  later (the oracle records it); a shorter one is refused.
- Numbers: INCR-style modifiers are sent on canonical integers (INCRBYFLOAT on short
  decimals that are exact in binary), or on values without digits to check the refusal;
  texts both servers parse differently are not incremented. ZREMRANGEBYLEX is not sent
  (it is only defined when all scores are equal).
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from decimal import Decimal
from typing import Any, ClassVar

from hypothesis import note
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from redis.exceptions import ResponseError

from limpyd.backends import FakeBackend
from limpyd.database import RedisDatabase
from limpyd.exceptions import DoesNotExist, ImplementationError, UniquenessError
from limpyd.fields import (
    HashField,
    InstanceHashField,
    ListField,
    PKField,
    SetField,
    SortedSetField,
    StringField,
)
from limpyd.fields.base import NO_DEFAULT, RedisField
from limpyd.indexes import BaseIndex, EqualIndex, NumberRangeIndex, TextRangeIndex
from limpyd.model import RedisModel
from limpyd.text import glob_escape
from limpyd_testing import strategies as lst
from limpyd_testing.integrity import check
from limpyd_testing.snapshot import snapshot

__all__ = [
    "MIN_DEFAULT_TTL",
    "DatabaseFactory",
    "ModelStateMachine",
    "Oracle",
    "StatefulConfig",
    "config",
    "configure",
    "field_kind",
    "order_pks",
    "run_state_machine",
]

#: The shortest default `ttl` of a model the machine accepts (seconds): no instance may
#: expire by the clock during an example, only when a rule makes it.
MIN_DEFAULT_TTL = 3600

#: Makes the database of one example (called once per example).
DatabaseFactory = Callable[[], RedisDatabase]


@dataclass
class StatefulConfig:
    """Process-wide settings of the machines (state machines cannot take fixtures)."""

    #: Where machines without a factory of their own get their databases.
    database_factory: DatabaseFactory | None = None


#: The settings `configure()` changes.
config = StatefulConfig()


def configure(database_factory: DatabaseFactory | None) -> DatabaseFactory | None:
    """Give every machine without a factory of its own this one (None: back to the default
    in-memory servers). Returns the previous factory, to put it back."""
    previous = config.database_factory
    config.database_factory = database_factory
    return previous


def run_state_machine(
    machine_class: type[ModelStateMachine],
    database_factory: DatabaseFactory | None = None,
    *,
    settings: Settings | None = None,
) -> None:
    """Run `machine_class` as a test (see `ModelStateMachine.run`)."""
    machine_class.run(database_factory=database_factory, settings=settings)


# Values -----------------------------------------------------------------------------------

#: The kinds of values the oracle keeps, by field class.
_KINDS: tuple[tuple[type[RedisField], str], ...] = (
    (InstanceHashField, "hashfield"),
    (StringField, "string"),
    (SetField, "set"),
    (ListField, "list"),
    (HashField, "hash"),
    (SortedSetField, "zset"),
)
_SINGLE = ("string", "hashfield")
#: The state of a field without a value, per kind (states are never mutated in place).
_EMPTY: dict[str, Any] = {
    "string": None,
    "hashfield": None,
    "set": frozenset(),
    "list": (),
    "hash": {},
    "zset": {},
}


def field_kind(field: RedisField) -> str | None:
    """The kind of value the machine models for `field` (None: a field it does not know)."""
    if isinstance(field, PKField):
        return None
    for cls, kind in _KINDS:
        if isinstance(field, cls):
            return kind
    return None


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _text(value: Any) -> str:
    """What Redis stores for a value, as it gives it back."""
    if isinstance(value, RedisModel):
        return value.pk.get()  # type: ignore[no-any-return]
    if isinstance(value, bytes):
        return lst.canonical(value.decode("utf-8", "surrogateescape"))
    if isinstance(value, str):
        return lst.canonical(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"not a value: {value!r}")
    return repr(value)


def _empty(kind: str, state: Any) -> bool:
    return state is None if kind in _SINGLE else not state


def _state_of(kind: str, value: Any) -> Any:
    """The oracle's state for a value as `Model(field=value)` takes it."""
    if kind in _SINGLE:
        return _text(value)
    if kind == "set":
        return frozenset(_text(v) for v in value)
    if kind == "list":
        return tuple(_text(v) for v in value)
    if kind == "hash":
        return {_text(k): _text(v) for k, v in value.items()}
    return {_text(m): float(_text(s)) for m, s in value.items()}


def _items(kind: str, state: Any) -> list[tuple[str | None, str]]:
    """The (hash key, value) pairs indexes hold for a state (as the ORM documents them)."""
    if _empty(kind, state):
        return []
    if kind in _SINGLE:
        return [(None, state)]
    if kind == "list":
        return [(None, v) for v in dict.fromkeys(state)]
    if kind == "hash":
        return list(state.items())
    return [(None, v) for v in state]


def _zorder(state: Mapping[str, float]) -> list[tuple[str, float]]:
    """A sorted set's members in rank order: score, then bytes."""
    return sorted(state.items(), key=lambda item: (item[1], _bytes(item[0])))


def _number(text: str) -> float:
    """What a NumberRangeIndex compares: the value as a float, 0 when it is not a number."""
    try:
        number = float(text)
    except ValueError:
        return 0.0
    return 0.0 if number != number else number


_CANONICAL_INT = re.compile(r"0|-?[1-9][0-9]{0,16}")
_SHORT_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]{0,5})(?:\.[0-9]{1,2})?")
_NUMERIC_PK = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _integer(state: str | None) -> int | None:
    """The integer INCR sees (0 when absent), None if the machine does not increment it."""
    if state is None:
        return 0
    return int(state) if _CANONICAL_INT.fullmatch(state) else None


def _decimal(state: str | None) -> Decimal | None:
    """The number INCRBYFLOAT sees, when both servers add it exactly (binary-exact)."""
    if state is None:
        return Decimal(0)
    if not _SHORT_DECIMAL.fullmatch(state):
        return None
    number = Decimal(state)
    return number if (number * 4) % 1 == 0 else None


def _not_a_number(state: str | None) -> bool:
    """A value every server refuses to increment (no digit, no inf/nan)."""
    return (
        state is not None
        and state != ""
        and not re.search(r"[0-9]", state)
        and not re.search(r"(?i)inf|nan", state)
    )


def _float_text(number: Decimal) -> str:
    """How Redis prints an INCRBYFLOAT result: 17 decimals, trailing zeros removed."""
    text = f"{number:.17f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _redis_range(length: int, start: int, end: int) -> slice:
    """LRANGE/LTRIM/ZREMRANGEBYRANK indexes (inclusive, negatives from the end) as a slice."""
    if start < 0:
        start = max(start + length, 0)
    if end < 0:
        end += length
    if start > end or start >= length:
        return slice(0, 0)
    return slice(start, min(end, length - 1) + 1)


# The oracle -------------------------------------------------------------------------------

_KNOWN_INDEXES = (EqualIndex, TextRangeIndex, NumberRangeIndex)
_KNOWN_SUFFIXES = {None, "eq", "in", "gt", "gte", "lt", "lte", "startswith", "endswith"}


def _normalized(index: BaseIndex, value: str) -> str | None:
    """The text `index` stores for `value` (its transforms applied), None for no entry."""
    normalized = index.normalize(value)
    return None if normalized is None else lst.canonical(normalized)


def _compare(index: BaseIndex, operator: str, stored: str, wanted: str) -> bool:
    """Whether an index entry `stored` answers `operator` with the filter text `wanted`."""
    a: Any
    b: Any
    if isinstance(index, NumberRangeIndex):
        a, b = _number(stored), _number(wanted)
    elif isinstance(index, TextRangeIndex):
        a, b = _bytes(stored), _bytes(wanted)
        if operator == "startswith":
            return bool(a.startswith(b))
        if operator == "endswith":  # contrib.indexes.EndsWithIndex stores values reversed
            return bool(_bytes(stored[::-1]).endswith(b))
    else:
        a, b = stored, wanted
    return {
        "eq": a == b,
        "gt": a > b,
        "gte": a >= b,
        "lt": a < b,
        "lte": a <= b,
    }[operator]


def _same_unique(index: BaseIndex, a: str, b: str) -> bool:
    if isinstance(index, NumberRangeIndex):
        return _number(a) == _number(b)
    return a == b


def order_pks(pks: Iterable[str]) -> list[str]:
    """The default order of a collection: numeric when every pk is a number, else bytes."""
    pks = list(pks)
    if pks and all(_NUMERIC_PK.fullmatch(pk) for pk in pks):
        return sorted(pks, key=lambda pk: (float(pk), _bytes(pk)))
    return sorted(pks, key=_bytes)


class Oracle:
    """What Redis should hold: `data[model][pk][field name]` = the field's state (only fields
    with a value), and the AutoPK counters. Answers filters and uniqueness in Python."""

    def __init__(self, models: Sequence[type[RedisModel]]) -> None:
        self.models = list(models)
        self.data: dict[type[RedisModel], dict[str, dict[str, Any]]] = {m: {} for m in models}
        self.counters: dict[type[RedisModel], int] = dict.fromkeys(self.models, 0)
        #: Instances whose time has passed, not reaped yet: their states (as in `data`).
        #: Gone for every read; their keys, index entries and the references to them stay
        #: until a write meets them or `reap_expired()` runs.
        self.expired: dict[type[RedisModel], dict[str, dict[str, Any]]] = {m: {} for m in models}
        #: Live instances with an expiry time in the future.
        self.expiring: dict[type[RedisModel], set[str]] = {m: set() for m in models}

    def states_of(
        self, model: type[RedisModel], values: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[RedisField]]:
        """The field states an instance created with `model(**values)` has (defaults
        included), and the fields whose default is callable (not predicted)."""
        states: dict[str, Any] = {}
        adopt = []
        for field in model._meta.data_fields:
            kind = field_kind(field)
            if kind is None:
                continue
            if field.name in values:
                states[field.name] = _state_of(kind, values[field.name])
            elif field.default is not NO_DEFAULT:
                if callable(field.default):
                    adopt.append(field)
                else:
                    states[field.name] = _state_of(kind, field.default)
        return states, adopt

    def add(self, model: type[RedisModel], pk: str, states: Mapping[str, Any]) -> None:
        """Record a new instance with these field states (by field name)."""
        self.data[model][pk] = {}
        for name, state in states.items():
            self.put(model, pk, model._meta.fields[name], state)

    def create(self, model: type[RedisModel], pk: str, values: Mapping[str, Any]) -> None:
        """Record the instance `model(**values)` created with the pk `pk`."""
        states, _ = self.states_of(model, values)
        self.add(model, _text(pk), states)

    def state(self, model: type[RedisModel], pk: str, field: RedisField) -> Any:
        kind = field_kind(field)
        assert kind is not None
        return self.data[model][pk].get(field.name, _EMPTY[kind])

    def put(self, model: type[RedisModel], pk: str, field: RedisField, state: Any) -> None:
        kind = field_kind(field)
        assert kind is not None
        if _empty(kind, state):
            self.data[model][pk].pop(field.name, None)
        else:
            self.data[model][pk][field.name] = state

    def pks(self, model: type[RedisModel]) -> list[str]:
        return order_pks(self.data[model])

    def conflict(
        self, model: type[RedisModel], pk: str | None, field: RedisField, old: Any, new: Any
    ) -> bool:
        """Whether writing `new` over `old` in `field` of instance `pk` breaks uniqueness."""
        return bool(self.holders(model, pk, field, old, new, self.data[model]))

    def holders(
        self,
        model: type[RedisModel],
        pk: str | None,
        field: RedisField,
        old: Any,
        new: Any,
        among: Mapping[str, Mapping[str, Any]],
    ) -> set[str]:
        """The instances of `among` (pk: states) holding a unique value that writing `new`
        over `old` in `field` of instance `pk` adds."""
        found: set[str] = set()
        if not field.unique:
            return found
        kind = field_kind(field)
        assert kind is not None
        known = set(_items(kind, old))
        fresh = [item for item in dict.fromkeys(_items(kind, new)) if item not in known]
        for index in field.indexes:
            if not index.handle_uniqueness:
                continue
            for other, states in among.items():
                if other == pk or other in found:
                    continue
                theirs = _items(kind, states.get(field.name, _EMPTY[kind]))
                for hkey, value in fresh:
                    mine = _normalized(index, value)
                    if mine is None:
                        continue
                    for their_hkey, their_value in theirs:
                        held = _normalized(index, their_value)
                        if their_hkey == hkey and held is not None:
                            if _same_unique(index, mine, held):
                                found.add(other)
        return found

    def together_conflict(
        self, model: type[RedisModel], pk: str | None, changes: Mapping[str, Any]
    ) -> bool:
        """Whether giving instance `pk` (None: a new one) these field states breaks one of
        the model's `unique_together` groups: a new combination of raw values (all of them
        set) that another instance holds."""
        return bool(self.together_holders(model, pk, changes, self.data[model]))

    def together_holders(
        self,
        model: type[RedisModel],
        pk: str | None,
        changes: Mapping[str, Any],
        among: Mapping[str, Mapping[str, Any]],
    ) -> set[str]:
        """The instances of `among` holding a combination these changes give `pk`."""
        current = self.data[model].get(pk, {}) if pk is not None else {}
        after = {**current, **changes}
        found = set()
        for names in model._meta.unique_together:
            before_combo = tuple(current.get(name) for name in names)
            combo = tuple(after.get(name) for name in names)
            if None in combo or combo == before_combo:
                continue
            for other, states in among.items():
                if other != pk and tuple(states.get(name) for name in names) == combo:
                    found.add(other)
        return found

    def delete(self, model: type[RedisModel], pk: str) -> None:
        """Forget the instance, and unlink it from the related fields pointing to it."""
        del self.data[model][pk]
        self.expiring[model].discard(pk)
        self._unlink(model, pk)

    def expire(self, model: type[RedisModel], pk: str) -> None:
        """The instance's time has passed: gone for reads, its data and the references to
        it stay until it is reaped."""
        self.expired[model][pk] = self.data[model].pop(pk)
        self.expiring[model].discard(pk)

    def reap(self, model: type[RedisModel], pk: str) -> None:
        """An expired instance is deleted (as `delete`: references to it unlinked)."""
        del self.expired[model][pk]
        self._unlink(model, pk)

    def _unlink(self, model: type[RedisModel], pk: str) -> None:
        """Remove `pk` from the related fields pointing to `model`, in every instance
        (expired ones included: their data is still stored)."""
        for other in self.models:
            for field in other._meta.data_fields:
                if not lst.is_related(field) or field.related_model is not model:  # type: ignore[attr-defined]
                    continue
                kind = field_kind(field)
                for states in [*self.data[other].values(), *self.expired[other].values()]:
                    state = states.get(field.name)
                    if state is None:
                        continue
                    if kind in _SINGLE:
                        new = None if state == pk else state
                    elif kind == "set":
                        new = state - {pk}
                    elif kind == "list":
                        new = tuple(v for v in state if v != pk)
                    else:
                        new = {m: s for m, s in state.items() if m != pk}
                    if _empty(kind, new):  # type: ignore[arg-type]
                        del states[field.name]
                    else:
                        states[field.name] = new

    def resolve(self, model: type[RedisModel], key: str) -> tuple[Any, ...]:
        """(field, hkey, index, suffix) of a filter, the index chosen as the ORM documents:
        an optional hash key, an optional prefix of one of the field's indexes, an optional
        suffix; the first index with that prefix handling that suffix answers."""
        meta = model._meta
        name, *parts = key.split("__")
        field = meta.field(name)
        if field is meta.pk_field:
            return field, None, None, parts[0] if parts else None
        if parts and parts[-1] == "all" and field_kind(field) in ("set", "list", "zset"):
            inner = self.resolve(model, key[: -len("__all")])
            return (*inner[:3], ("all", inner[3]))
        if parts == ["isnull"] and field_kind(field) in _SINGLE:
            return field, None, "isnull", "isnull"
        hkey = None
        if isinstance(field, HashField):
            hkey, parts = parts[0], parts[1:]
        prefixes = {index.prefix for index in field.indexes}
        prefix = parts[0] if parts and parts[0] in prefixes else None
        if prefix is not None:
            parts = parts[1:]
        suffix = parts[0] if parts else None
        for index in field.indexes:
            if index.prefix == prefix and suffix in index.handled_suffixes:
                return field, hkey, index, suffix
        raise AssertionError(f"no index of {field.describe()} answers {key!r}")

    def query(self, model: type[RedisModel], filters: Mapping[str, Any]) -> list[str] | None:
        """The pks `model.collection(**filters)` returns, in order; None when a filter is
        answered by an index the oracle does not know."""
        resolved = [(self.resolve(model, key), value) for key, value in filters.items()]
        for (_, _, index, suffix), _ in resolved:
            if isinstance(suffix, tuple):
                suffix = suffix[1]
            if index in (None, "isnull"):
                continue
            if not isinstance(index, _KNOWN_INDEXES) or suffix not in _KNOWN_SUFFIXES:
                return None
        found = []
        for pk, states in self.data[model].items():
            if all(self._matches(pk, states, r, value) for r, value in resolved):
                found.append(pk)
        return order_pks(found)

    def _matches(
        self, pk: str, states: dict[str, Any], resolved: tuple[Any, ...], value: Any
    ) -> bool:
        field, hkey, index, suffix = resolved
        if isinstance(suffix, tuple):  # __all: every value matches
            inner = (field, hkey, index, suffix[1])
            return all(self._matches(pk, states, inner, item) for item in value)
        kind = field_kind(field)
        if index == "isnull":
            return (field.name not in states) == value
        wanted = [_text(v) for v in value] if suffix == "in" else [_text(value)]
        if index is None:  # the pk
            return pk in wanted
        if kind is None:
            return False
        stored = [
            normalized
            for item_hkey, item in _items(kind, states.get(field.name, _EMPTY[kind]))
            if item_hkey == hkey
            for normalized in [_normalized(index, item)]
            if normalized is not None
        ]
        operator = "eq" if suffix in (None, "in") else suffix
        return any(_compare(index, operator, s, w) for s in stored for w in wanted)


# The machine ------------------------------------------------------------------------------

_ANY: Any = type("Any", (), {"__repr__": lambda self: "ANY"})()
_SAME: Any = type("Same", (), {"__repr__": lambda self: "SAME"})()


@dataclass
class _Op:
    """One modifier call and what the oracle expects of it."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclass_field(default_factory=dict)
    #: The state after: a value, _SAME, or a function of the reply (random replies).
    new: Any = _SAME
    #: The reply: a value, _ANY, or a predicate on it.
    reply: Any = _ANY
    #: The exception the write must raise (and then change nothing).
    error: type[Exception] | None = None

    def describe(self) -> str:
        args = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.method}({', '.join(args)})"


_MAX_ITEMS = 3


#: The machines whose example is running (the last one is current): the strategies below are
#: built once per machine class and read the current machine's oracle when drawn.
_running: list[ModelStateMachine] = []


def _current() -> ModelStateMachine:
    return _running[-1]


def _mixed(
    base: st.SearchStrategy[str],
    held: Callable[[ModelStateMachine], Sequence[str]],
    reuse: int = 1,
    fresh: int = 3,
    distinct: bool = False,
) -> st.SearchStrategy[str]:
    """New texts from `base` or, `reuse` times in `reuse + fresh`, one of the texts the
    running machine holds (`held(machine)`): equal values make queries match and unique
    values clash. `distinct`: a new text is made different from the held ones (Hypothesis
    draws the simplest texts often, so new pks would clash most of the time)."""

    @st.composite
    def strategy(draw: Callable[..., Any]) -> str:
        choices = held(_current())
        # (the simplest draw, 0, which Hypothesis makes often, is a new text)
        if choices and draw(st.integers(0, reuse + fresh - 1)) >= fresh:
            return choices[draw(st.integers(0, len(choices) - 1))]  # type: ignore[no-any-return]
        value: str = draw(base)
        while distinct and value in choices:
            value += "~"
        return value

    return strategy()


_SMALL = st.integers(-3, 3)


def _when_empty(names: list[str], state: Any, useful: list[str]) -> list[str]:
    """On an empty field, mostly the modifiers that add (and one that does nothing)."""
    if state:
        return names
    return [name for name in names if name in useful] or names


class ModelStateMachine(RuleBasedStateMachine):
    """A state machine over the instances of `models` (see the module docstring).

    Class attributes a subclass sets: `models` (required), `database_factory`,
    `field_texts` ({"Model.field": strategy of texts}), `max_instances` (per model),
    `max_queries` (standing filters re-checked after every step).
    """

    models: ClassVar[Sequence[type[RedisModel]]] = ()
    database_factory: ClassVar[DatabaseFactory | None] = None
    field_texts: ClassVar[Mapping[str, st.SearchStrategy[str]]] = {}
    max_instances: ClassVar[int] = 6
    max_queries: ClassVar[int] = 4
    max_probes: ClassVar[int] = 4

    def __init__(self, database_factory: DatabaseFactory | None = None) -> None:
        super().__init__()
        models = list(type(self).models)
        if not models:
            raise ImplementationError(f"{type(self).__name__}: set `models = [...]`")
        for model in models:
            default_ttl = getattr(model._meta, "default_ttl", None)
            if default_ttl is not None and default_ttl < MIN_DEFAULT_TTL:
                raise ImplementationError(
                    f"{type(self).__name__}: instances of {model.__name__} expire after "
                    f"{default_ttl} s (its `ttl`), which could pass during an example: the "
                    f"machine models expiry by the clock only from {MIN_DEFAULT_TTL} s"
                )
        factory = database_factory or type(self).database_factory or config.database_factory
        self._drop: str | None = None
        if factory is None:
            self._drop = f"limpyd-stateful-{uuid.uuid4().hex}"
            self.database = RedisDatabase(backend=FakeBackend(name=self._drop))
        else:
            self.database = factory()
            self.database.client.flushdb()
        self._restore = _use_database(models, self.database)
        try:
            self._check_relations(models)
        except BaseException:
            self.teardown()
            raise
        self.oracle = Oracle(models)
        self.queries: list[tuple[type[RedisModel], dict[str, Any]]] = []
        #: (model, field, values): fields written by the last step and values they held.
        self.touched: list[tuple[type[RedisModel], RedisField, list[tuple[str | None, str]]]] = []
        self.steps = 0
        #: Whether a write was attempted since the last check (queries write nothing).
        self.dirty = True
        #: What this example did: created, written, refused, queried, matched (for tests).
        self.stats: Counter[str] = Counter()
        _running.append(self)

    @classmethod
    def run(
        cls, database_factory: DatabaseFactory | None = None, *, settings: Settings | None = None
    ) -> None:
        """Run the machine as a test: each example on a fresh database from
        `database_factory` (see the module docstring). `settings` default to the class's
        (`@settings(...)` on it); the deadline is turned off (an example is many steps)."""
        chosen = settings if settings is not None else cls.TestCase.settings
        chosen = Settings(chosen, deadline=None)
        run_state_machine_as_test(lambda: cls(database_factory=database_factory), settings=chosen)

    def teardown(self) -> None:
        """Put the models back on their databases; drop the in-memory server made here."""
        if self in _running:
            _running.remove(self)
        self._restore()
        if self._drop is not None:
            FakeBackend.drop_server(self._drop)

    @staticmethod
    def _check_relations(models: list[type[RedisModel]]) -> None:
        for model in models:
            for field in model._meta.data_fields:
                if lst.is_related(field) and field.related_model not in models:  # type: ignore[attr-defined]
                    raise ImplementationError(
                        f"{field.describe()} points to {field.to!r}, which is not in "  # type: ignore[attr-defined]
                        "the machine's `models`: add it"
                    )

    # What to draw from -------------------------------------------------------------------

    def _fields(self, model: type[RedisModel]) -> list[RedisField]:
        """The fields the machine writes: known kinds whose uniqueness it can predict."""
        found = []
        for field in model._meta.data_fields:
            if field_kind(field) is None:
                continue
            if field.unique and any(
                index.handle_uniqueness and not isinstance(index, _KNOWN_INDEXES)
                for index in field.indexes
            ):
                continue
            found.append(field)
        return found

    def _pool(self, field: RedisField) -> list[str]:
        """The pks a related field can point to."""
        return self.oracle.pks(field.related_model)  # type: ignore[attr-defined]

    def _held(self, model: type[RedisModel], field: RedisField) -> list[str]:
        """The values `field` holds, over all instances (at most 20)."""
        kind = field_kind(field)
        assert kind is not None
        values = {
            value
            for states in self._all_states(model)
            for _, value in _items(kind, states.get(field.name, _EMPTY[kind]))
        }
        return sorted(values, key=_bytes)[:20]

    def _all_states(self, model: type[RedisModel]) -> list[dict[str, Any]]:
        """The states of the instances of `model`, expired ones included (their values are
        drawn too: queries must not find them, and unique ones must be free)."""
        oracle = self.oracle
        return [*oracle.data[model].values(), *oracle.expired[model].values()]

    def _held_keys(self, model: type[RedisModel], field: RedisField) -> list[str]:
        keys = {
            k for states in self.oracle.data[model].values() for k in states.get(field.name, {})
        }
        return sorted(keys, key=_bytes)[:20]

    @classmethod
    def _cached(cls, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """A strategy built once per machine class (strategies are costly to build)."""
        cache = cls.__dict__.get("_strategy_cache")
        if cache is None:
            cache = {}
            type.__setattr__(cls, "_strategy_cache", cache)
        if key not in cache:
            cache[key] = build()
        return cache[key]

    def _texts(self, model: type[RedisModel], field: RedisField) -> st.SearchStrategy[str] | None:
        """Texts for `field`: its pool for a related field (None if empty), else new texts
        or ones already held."""
        if lst.is_related(field):
            pool = self._pool(field)
            return st.sampled_from(pool) if pool else None
        # unique values clash half the time, others a quarter
        clashing = field.unique or any(field.name in g for g in model._meta.unique_together)
        return self._cached(
            ("texts", model, field.name),
            lambda: _mixed(
                self.field_texts.get(f"{model.__name__}.{field.name}", lst.texts()),
                lambda machine: machine._held(model, field),
                fresh=1 if clashing else 3,
            ),
        )

    def _hash_keys(self, model: type[RedisModel], field: RedisField) -> st.SearchStrategy[str]:
        return self._cached(
            ("keys", model, field.name),
            lambda: _mixed(
                st.one_of(lst.filter_keys(), lst.texts()),
                lambda machine: machine._held_keys(model, field),
            ),
        )

    def _instance(self, data: st.DataObject, model: type[RedisModel]) -> str:
        return data.draw(st.sampled_from(self.oracle.pks(model)), label="pk")

    def _models_with_instances(self) -> list[type[RedisModel]]:
        return [m for m in self.oracle.models if self.oracle.data[m]]

    def _has_instances(self) -> bool:
        return bool(self._models_with_instances())

    # Running writes ----------------------------------------------------------------------

    def _write(
        self,
        what: str,
        call: Callable[[], Any],
        changes: list[tuple[type[RedisModel], str, RedisField, Any]],
        reply: Any = _ANY,
        error: type[Exception] | None = None,
    ) -> None:
        """Run a write, check its outcome against the oracle's prediction, record it."""
        met: set[tuple[type[RedisModel], str]] = set()
        together: dict[str, Any] = {}
        for model, pk, field, new in changes:
            if new is not _SAME and not callable(new):
                old = self.oracle.state(model, pk, field)
                if self.oracle.conflict(model, pk, field, old, new) and error is None:
                    error = UniquenessError
                expired = self.oracle.expired[model]
                met |= {
                    (model, p) for p in self.oracle.holders(model, pk, field, old, new, expired)
                }
                together[field.name] = new
        if together:
            if self.oracle.together_conflict(model, pk, together) and error is None:
                error = UniquenessError
            expired = self.oracle.expired[model]
            met |= {(model, p) for p in self.oracle.together_holders(model, pk, together, expired)}
        note(f"{what} (expected: {error.__name__ if error else 'success'})")
        self.dirty = True
        before = snapshot(self.database) if error is not None else None
        try:
            result = call()
        except (UniquenessError, ResponseError) as exc:
            if error is None or not isinstance(exc, error):
                raise AssertionError(f"{what}: unexpected {exc!r}") from exc
            self._refused(what, before, met)
            return
        if error is not None:
            raise AssertionError(f"{what}: {error.__name__} expected, got reply {result!r}")
        self.stats["written"] += 1
        # every unique value it added was checked: the expired holders it met are reaped
        self._reaped(what, met, met)
        if callable(reply):
            assert reply(result), f"{what}: unexpected reply {result!r}"
        elif reply is not _ANY:
            assert result == reply, f"{what}: reply {result!r}, expected {reply!r}"
        for model, pk, field, new in changes:
            if new is _SAME:
                continue
            old = self.oracle.state(model, pk, field)
            self.oracle.put(model, pk, field, new(result) if callable(new) else new)
            self._touch(model, field, old)

    def _refused(self, what: str, before: Any, met: set[tuple[type[RedisModel], str]]) -> None:
        """A write was refused: it changed nothing, except that it may have reaped expired
        instances it met on the way (checks stop at the first failure, in an order the
        oracle does not model). Then the data is compared with the oracle's by the
        invariant rather than key for key."""
        if not self._reaped(what, met, set()):
            assert snapshot(self.database) == before, f"{what}: refused, but data changed"
        self.stats["refused"] += 1

    def _reaped(
        self,
        what: str,
        allowed: set[tuple[type[RedisModel], str]],
        required: set[tuple[type[RedisModel], str]],
        counter: str = "reaped by writes",
    ) -> set[tuple[type[RedisModel], str]]:
        """The expired instances a write reaped (gone from their collection), which must be
        among those it met (`allowed`) and include those it must have reaped; the oracle
        forgets them (unlinking the references to them)."""
        gone = {
            (model, pk)
            for model in self.oracle.models
            for pk in self.oracle.expired[model]
            if not self._unreaped(model, pk)
        }
        unexpected = sorted((m.__name__, pk) for m, pk in gone - allowed)
        assert not unexpected, f"{what}: reaped expired instances it did not meet: {unexpected}"
        left = sorted((m.__name__, pk) for m, pk in required - gone)
        assert not left, f"{what}: left expired instances it met unreaped: {left}"
        for model, pk in gone:
            self._forget_expired(model, pk)
            self.stats[counter] += 1
        return gone

    def _unreaped(self, model: type[RedisModel], pk: str) -> bool:
        """Whether `pk` is stored as an instance of `model` whose time has passed (not one
        created again with its pk since)."""
        meta = model._meta
        with self.database.client.pipeline(transaction=False) as pipeline:
            pipeline.sismember(meta.collection_key, pk)
            pipeline.zscore(meta.expiry_key, pk)
            pipeline.time()
            present, at, (seconds, microseconds) = pipeline.execute()
        return bool(present) and at is not None and at <= seconds + microseconds / 1e6

    def _forget_expired(self, model: type[RedisModel], pk: str) -> None:
        """The oracle reaps an expired instance (the next check probes its values)."""
        states = self.oracle.expired[model][pk]
        for field in self._fields(model):
            kind = field_kind(field)
            self._touch(model, field, states.get(field.name, _EMPTY[kind]))  # type: ignore[index]
        self.oracle.reap(model, pk)

    # Rules -------------------------------------------------------------------------------

    def _creation(
        self, model: type[RedisModel], targets: tuple[type[RedisModel], ...]
    ) -> st.SearchStrategy[dict[str, Any]]:
        """`model_values` for `model`, related fields drawing from the existing instances of
        `targets` (the related models that have some), texts often reusing held ones."""
        fields = self._fields(model)
        meta = model._meta
        pools = {
            target: _mixed(
                st.nothing(), lambda machine, target=target: machine.oracle.pks(target), 1, 0
            )
            for target in targets
        }
        texts = {
            field.name: self._texts(model, field) for field in fields if not lst.is_related(field)
        }
        keys = {f.name: self._hash_keys(model, f) for f in fields if isinstance(f, HashField)}
        if not meta.pk_field.auto:
            texts[meta.pk_field.name] = _mixed(
                self.field_texts.get(f"{model.__name__}.pk", lst.texts(allow_empty=False)),
                lambda machine: [*machine.oracle.pks(model), *machine.oracle.expired[model]],
                distinct=True,
            )
        names = {meta.pk_field.name} | {field.name for field in fields}
        return lst.model_values(model, pks=pools, items=texts, keys=keys).map(
            lambda values: {k: v for k, v in values.items() if k in names}
        )

    @rule(data=st.data())
    def create(self, data: st.DataObject) -> None:
        """Create an instance from `model_values` (uniqueness and pk clashes predicted)."""
        model = data.draw(st.sampled_from(self.oracle.models), label="model")
        if len(self.oracle.data[model]) >= self.max_instances:
            return
        fields = self._fields(model)
        meta = model._meta
        targets = tuple(
            target
            for target in dict.fromkeys(
                field.related_model  # type: ignore[attr-defined]
                for field in fields
                if lst.is_related(field)
            )
            if self.oracle.data[target]
        )
        values = data.draw(
            self._cached(("create", model, targets), lambda: self._creation(model, targets)),
            label="values",
        )
        states, adopt = self.oracle.states_of(model, values)
        if not values and not states and not adopt:
            return  # Model() would only make an unsaved instance
        pk_value = values.get(meta.pk_field.name)
        pk = None if pk_value is None else _text(pk_value)
        error: type[Exception] | None = None
        expired = self.oracle.expired[model]
        # expired instances hold nothing: their pk and unique values are free (the
        # creation reaps them first)
        met: set[str] = set()
        if pk is not None and pk in self.oracle.data[model]:
            error = UniquenessError
        if pk is not None and pk in expired:
            met.add(pk)
        for name, state in states.items():
            field = meta.fields[name]
            kind = field_kind(field)
            if self.oracle.conflict(model, None, field, _EMPTY[kind], state):  # type: ignore[index]
                error = UniquenessError
            met |= self.oracle.holders(model, None, field, _EMPTY[kind], state, expired)  # type: ignore[index]
        if self.oracle.together_conflict(model, None, states):
            error = UniquenessError
        met |= self.oracle.together_holders(model, None, states, expired)
        what = f"{model.__name__}(**{values!r})"
        note(f"{what} (expected: {error.__name__ if error else 'success'})")
        self.dirty = True
        before = snapshot(self.database) if error is not None else None
        try:
            instance = model(**values)
        except UniquenessError as exc:
            if error is None:
                raise AssertionError(f"{what}: unexpected {exc!r}") from exc
            self._refused(what, before, {(model, p) for p in met})
            return
        assert error is None, f"{what}: {error.__name__} expected, the instance was created"
        created = instance.pk.get()
        if meta.pk_field.auto:
            self.oracle.counters[model] += 1
            expected_pk = str(self.oracle.counters[model])
            assert created == expected_pk, f"{what}: pk {created!r}, expected {expected_pk!r}"
        else:
            assert created == pk, f"{what}: pk {created!r}, expected {pk!r}"
        reaped = self._reaped(what, {(model, p) for p in met}, {(model, p) for p in met})
        self.stats["created over expired"] += bool(reaped)
        self.oracle.add(model, created, states)
        if meta.default_ttl is not None:
            self.oracle.expiring[model].add(created)
        self.stats["created"] += 1
        for name in states:
            field = meta.fields[name]
            self._touch(model, field, _EMPTY[field_kind(field)])  # type: ignore[index]
        for field in adopt:
            self.oracle.put(model, created, field, _read(instance, field))

    def _can_modify(self, kinds: tuple[str, ...]) -> bool:
        return any(
            field_kind(field) in kinds
            for model in self._models_with_instances()
            for field in self._fields(model)
        )

    def _modify(self, data: st.DataObject, kinds: tuple[str, ...]) -> None:
        """Run one modifier of a field of one of these kinds, with generated arguments."""
        models = [
            model
            for model in self._models_with_instances()
            if any(field_kind(field) in kinds for field in self._fields(model))
        ]
        model = data.draw(st.sampled_from(models), label="model")
        pk = self._instance(data, model)
        candidates = []
        for field in self._fields(model):
            kind = field_kind(field)
            if kind not in kinds:
                continue
            if self._texts(model, field) is not None or not _empty(
                kind, self.oracle.state(model, pk, field)
            ):
                candidates.append(field)
        if not candidates:
            return
        field = data.draw(st.sampled_from(candidates), label="field")
        kind = field_kind(field)
        assert kind is not None
        old = self.oracle.state(model, pk, field)
        texts = self._texts(model, field)
        if kind == "hash":
            op = self._hash_op(data, old, texts, self._hash_keys(model, field))  # type: ignore[arg-type]
        elif kind in _SINGLE:
            op = self._string_op(data, kind, old, texts, lst.is_related(field))
        else:
            make = {"set": self._set_op, "list": self._list_op, "zset": self._zset_op}[kind]
            op = make(data, kind, old, texts)
        bound = getattr(model.lazy_connect(pk), field.name)
        self._write(
            f"{model.__name__}({pk!r}).{field.name}.{op.describe()}",
            lambda: getattr(bound, op.method)(*op.args, **op.kwargs),
            [(model, pk, field, op.new)],
            reply=op.reply,
            error=op.error,
        )

    @precondition(lambda self: self._can_modify(_SINGLE))
    @rule(data=st.data())
    def modify_string(self, data: st.DataObject) -> None:
        """A modifier of a StringField or an InstanceHashField."""
        self._modify(data, _SINGLE)

    @precondition(lambda self: self._can_modify(("set",)))
    @rule(data=st.data())
    def modify_set(self, data: st.DataObject) -> None:
        """A modifier of a SetField."""
        self._modify(data, ("set",))

    @precondition(lambda self: self._can_modify(("list",)))
    @rule(data=st.data())
    def modify_list(self, data: st.DataObject) -> None:
        """A modifier of a ListField."""
        self._modify(data, ("list",))

    @precondition(lambda self: self._can_modify(("hash",)))
    @rule(data=st.data())
    def modify_hash(self, data: st.DataObject) -> None:
        """A modifier of a HashField."""
        self._modify(data, ("hash",))

    @precondition(lambda self: self._can_modify(("zset",)))
    @rule(data=st.data())
    def modify_zset(self, data: st.DataObject) -> None:
        """A modifier of a SortedSetField."""
        self._modify(data, ("zset",))

    @precondition(lambda self: self._has_instances())
    @rule(data=st.data())
    def hmset(self, data: st.DataObject) -> None:
        """`instance.hmset(**values)` on some InstanceHashFields."""
        model = data.draw(st.sampled_from(self._models_with_instances()), label="model")
        fields = [f for f in self._fields(model) if field_kind(f) == "hashfield"]
        fields = [f for f in fields if self._texts(model, f) is not None]
        if not fields:
            return
        pk = self._instance(data, model)
        chosen = data.draw(
            st.lists(st.sampled_from(fields), min_size=1, unique=True), label="fields"
        )
        values = {f.name: data.draw(self._texts(model, f), label=f.name) for f in chosen}  # type: ignore[arg-type]
        instance = model.lazy_connect(pk)
        self._write(
            f"{model.__name__}({pk!r}).hmset(**{values!r})",
            lambda: instance.hmset(**values),
            [(model, pk, f, values[f.name]) for f in chosen],
            reply=True,
        )

    @precondition(lambda self: self._has_instances())
    @rule(data=st.data())
    def hdel(self, data: st.DataObject) -> None:
        """`instance.hdel(*names)` on some InstanceHashFields."""
        model = data.draw(st.sampled_from(self._models_with_instances()), label="model")
        fields = [f for f in self._fields(model) if field_kind(f) == "hashfield"]
        if not fields:
            return
        pk = self._instance(data, model)
        chosen = data.draw(
            st.lists(st.sampled_from(fields), min_size=1, unique=True), label="fields"
        )
        had = sum(self.oracle.state(model, pk, f) is not None for f in chosen)
        instance = model.lazy_connect(pk)
        names = [f.name for f in chosen]
        self._write(
            f"{model.__name__}({pk!r}).hdel(*{names!r})",
            lambda: instance.hdel(*names),
            [(model, pk, f, None) for f in chosen],
            reply=had,
        )

    @precondition(lambda self: self._has_instances())
    @rule(data=st.data())
    def delete_field(self, data: st.DataObject) -> None:
        """`instance.field.delete()`."""
        model = data.draw(st.sampled_from(self._models_with_instances()), label="model")
        fields = self._fields(model)
        if not fields:
            return
        pk = self._instance(data, model)
        field = data.draw(st.sampled_from(fields), label="field")
        kind = field_kind(field)
        had = not _empty(kind, self.oracle.state(model, pk, field))  # type: ignore[arg-type]
        bound = getattr(model.lazy_connect(pk), field.name)
        self._write(
            f"{model.__name__}({pk!r}).{field.name}.delete()",
            bound.delete,
            [(model, pk, field, _EMPTY[kind])],  # type: ignore[index]
            reply=int(had),
        )

    @precondition(lambda self: self._has_instances())
    @rule(data=st.data())
    def delete_instance(self, data: st.DataObject) -> None:
        """`instance.delete()`: related fields pointing to it are unlinked."""
        model = data.draw(st.sampled_from(self._models_with_instances()), label="model")
        pk = self._instance(data, model)
        note(f"{model.__name__}({pk!r}).delete()")
        self.dirty = True
        for field in self._fields(model):
            self._touch(model, field, self.oracle.state(model, pk, field))
        model.lazy_connect(pk).delete()
        self._reaped(f"{model.__name__}({pk!r}).delete()", set(), set())
        self.oracle.delete(model, pk)

    # Expiry ------------------------------------------------------------------------------

    def _server_now(self) -> float:
        seconds, microseconds = self.database.client.time()
        return seconds + microseconds / 1e6  # type: ignore[no-any-return]

    def _models_with_expired(self) -> list[type[RedisModel]]:
        return [m for m in self.oracle.models if self.oracle.expired[m]]

    def _expiry_only(self, what: str, before: dict[str, Any], model: type[RedisModel]) -> None:
        """Only the model's expiry times changed: every other key is as it was."""
        key = model._meta.expiry_key
        after = {k: v for k, v in snapshot(self.database).items() if k != key}
        assert after == {k: v for k, v in before.items() if k != key}, (
            f"{what}: changed other keys than the expiry times"
        )

    @precondition(lambda self: self._has_instances())
    @rule(data=st.data())
    def expire_now(self, data: st.DataObject) -> None:
        """`instance.expireat(server time - 1)`: gone at once for every read, as if deleted
        (related fields pointing to it included), but its data, index entries and the
        references to it stay until it is reaped."""
        model = data.draw(st.sampled_from(self._models_with_instances()), label="model")
        pk = self._instance(data, model)
        what = f"{model.__name__}({pk!r}).expireat(now - 1)"
        note(what)
        self.dirty = True
        before = snapshot(self.database)
        assert model.lazy_connect(pk).expireat(self._server_now() - 1) is True, what
        self._expiry_only(what, before, model)
        for field in self._fields(model):
            self._touch(model, field, self.oracle.state(model, pk, field))
        self.oracle.expire(model, pk)
        self.stats["expired"] += 1

    @precondition(lambda self: self._has_instances())
    @rule(data=st.data())
    def expire_later(self, data: st.DataObject) -> None:
        """`instance.expire(seconds)`, far in the future: only `ttl()` tells."""
        model = data.draw(st.sampled_from(self._models_with_instances()), label="model")
        pk = self._instance(data, model)
        seconds = data.draw(st.integers(3600, 10**7), label="seconds")
        what = f"{model.__name__}({pk!r}).expire({seconds})"
        note(what)
        self.dirty = True
        instance = model.lazy_connect(pk)
        before = snapshot(self.database)
        assert instance.expire(seconds) is True, what
        self._expiry_only(what, before, model)
        ttl = instance.ttl()
        assert ttl is not None and seconds - 60 < ttl <= seconds, f"{what}: ttl() is {ttl!r}"
        self.oracle.expiring[model].add(pk)
        self.stats["expiring"] += 1

    @precondition(lambda self: self._has_instances())
    @rule(data=st.data())
    def persist(self, data: st.DataObject) -> None:
        """`instance.persist()`: whether it had an expiry time; `ttl()` is None after."""
        model = data.draw(st.sampled_from(self._models_with_instances()), label="model")
        pk = self._instance(data, model)
        what = f"{model.__name__}({pk!r}).persist()"
        note(what)
        self.dirty = True
        instance = model.lazy_connect(pk)
        had = pk in self.oracle.expiring[model]
        before = snapshot(self.database)
        result = instance.persist()
        assert result is had, f"{what} is {result!r}, expected {had!r}"
        self._expiry_only(what, before, model)
        assert instance.ttl() is None, f"{what}: ttl() is {instance.ttl()!r} after"
        self.oracle.expiring[model].discard(pk)
        self.stats["persisted"] += had

    @rule(data=st.data())
    def reap_expired(self, data: st.DataObject) -> None:
        """`Model.reap_expired()`: the number of its expired instances, none of whose keys,
        index entries or references remain after."""
        models = self._models_with_expired() or self.oracle.models
        model = data.draw(st.sampled_from(models), label="model")
        what = f"{model.__name__}.reap_expired()"
        note(what)
        self.dirty = True
        due = list(self.oracle.expired[model])
        reaped = model.reap_expired()
        assert reaped == len(due), f"{what} is {reaped}, expected {len(due)} ({due!r})"
        meta = model._meta
        client = self.database.client
        left = [pk for pk in due if self._unreaped(model, pk)]
        assert not left, f"{what}: {left!r} still stored as expired instances"
        for pk in due:
            keys = list(client.scan_iter(match=glob_escape(meta.instance_key(pk, "")) + "*"))
            assert not keys, f"{what}: keys of the reaped {pk!r} remain: {keys!r}"
            assert client.zscore(meta.expiry_key, pk) is None, f"{what}: {pk!r} still expires"
            self._forget_expired(model, pk)
        self._reaped(what, set(), set())
        self.stats["reaped"] += reaped

    @precondition(lambda self: self._models_with_expired())
    @rule(data=st.data())
    def write_expired(self, data: st.DataObject) -> None:
        """A write on an expired instance (a field's `delete()`, `hdel`, `delete()`): it
        raises DoesNotExist, having reaped the instance."""
        model = data.draw(st.sampled_from(self._models_with_expired()), label="model")
        pk = data.draw(st.sampled_from(sorted(self.oracle.expired[model])), label="pk")
        instance = model.lazy_connect(pk)
        fields = self._fields(model)
        hashed = [f.name for f in fields if field_kind(f) == "hashfield"]
        calls: list[tuple[str, Callable[[], Any]]] = [("delete()", instance.delete)]
        for field in fields:
            calls.append((f"{field.name}.delete()", getattr(instance, field.name).delete))
        for name in hashed:
            calls.append((f"hdel({name!r})", lambda name=name: instance.hdel(name)))
        how, call = data.draw(st.sampled_from(calls), label="write")
        what = f"{model.__name__}({pk!r}).{how} (expired)"
        note(what)
        self.dirty = True
        try:
            call()
        except DoesNotExist:
            pass
        else:
            raise AssertionError(f"{what}: DoesNotExist expected")
        self._reaped(what, {(model, pk)}, {(model, pk)}, counter="written on expired")

    @rule(data=st.data())
    def query(self, data: st.DataObject) -> None:
        """A collection with filters from `strategies.filters`, drawing values held by the
        instances too; it is kept as a standing query, checked after every step."""
        model = data.draw(st.sampled_from(self.oracle.models), label="model")
        filters = data.draw(self._filters(model), label="filters")
        self._check_query(model, filters)
        self.queries.append((model, filters))
        del self.queries[: -self.max_queries]

    @rule(data=st.data())
    def sorted_query(self, data: st.DataObject) -> None:
        """A collection sorted (alpha) by the pk or a single-value field, maybe sliced."""
        model = data.draw(st.sampled_from(self.oracle.models), label="model")
        names = ["pk"] + [f.name for f in self._fields(model) if field_kind(f) in _SINGLE]
        by = data.draw(st.sampled_from(names), label="by")
        desc = data.draw(st.booleans(), label="desc")
        window = data.draw(
            st.none()
            | st.tuples(
                st.none() | _SMALL, st.none() | _SMALL, st.sampled_from([None, 1, 2, -1, -2])
            ),
            label="slice",
        )
        collection = model.collection().sort(by=by, alpha=True, desc=desc)
        meta = model._meta

        def key(pk: str) -> tuple[bytes, bytes]:
            if by == "pk":
                return (_bytes(pk), b"")
            state = self.oracle.data[model][pk].get(by)
            return (_bytes(state or ""), _bytes(pk))

        expected = sorted(self.oracle.data[model], key=key, reverse=desc)
        if window is not None:
            collection = collection[slice(*window)]
            expected = expected[slice(*window)]
        note(
            f"{meta.model.__name__}.collection().sort(by={by!r}, alpha=True, desc={desc})[{window}]"
        )
        assert list(collection) == expected, f"sort by {by!r} desc={desc} slice={window}"

    # Checks ------------------------------------------------------------------------------

    def _filter_values(self, model: type[RedisModel], field: RedisField) -> list[str]:
        """What filters on `field` may match: held values, and their normalized forms."""
        kind = field_kind(field)
        assert kind is not None
        held: set[str] = set()
        for states in self._all_states(model):
            for _, value in _items(kind, states.get(field.name, _EMPTY[kind])):
                held.add(value)
                for index in field.indexes:
                    normalized = _normalized(index, value)
                    if normalized is not None:
                        held.add(normalized)
        return sorted(held, key=_bytes)[:30]

    def _filter_keys(self, model: type[RedisModel], field: RedisField) -> list[str]:
        keys = self._held_keys(model, field)
        return [k for k in keys if "__" not in k and not k.endswith("_")]

    def _filters(self, model: type[RedisModel]) -> st.SearchStrategy[dict[str, Any]]:
        """`strategies.filters`, values often drawn from what each field holds."""

        def build() -> st.SearchStrategy[dict[str, Any]]:
            values = {
                "pk": _mixed(
                    lst.texts(),
                    lambda machine: [*machine.oracle.pks(model), *machine.oracle.expired[model]],
                    3,
                )
            }
            keys = {}
            for field in self._fields(model):
                values[field.name] = _mixed(
                    lst.texts(), lambda machine, f=field: machine._filter_values(model, f), 3
                )
                keys[field.name] = _mixed(
                    lst.filter_keys(), lambda machine, f=field: machine._filter_keys(model, f), 3
                )
            return lst.filters(model, values=values, hash_keys=keys)

        return self._cached(("filters", model), build)  # type: ignore[no-any-return]

    def _touch(self, model: type[RedisModel], field: RedisField, old: Any) -> None:
        """Remember that `field` was written: the next check probes its indexes with the
        values it held before and holds now."""
        if not field.indexes:
            return
        kind = field_kind(field)
        assert kind is not None
        values = _items(kind, old)
        for states in self._all_states(model):
            values += _items(kind, states.get(field.name, _EMPTY[kind]))
        self.touched.append((model, field, values))

    def _probes(self) -> list[tuple[type[RedisModel], dict[str, Any]]]:
        """Filters on the fields written by the last step, with the values at stake: every
        known index, one of its suffixes (in turn, step after step), two values."""
        probes = []
        for model, field, values in self.touched[:4]:
            usable = [
                (hkey, value)
                for hkey, value in dict.fromkeys(values)
                if hkey is None or ("__" not in hkey and not hkey.endswith("_"))
            ][-2:]
            for index in field.indexes:
                if not isinstance(index, _KNOWN_INDEXES):
                    continue
                suffixes = sorted(index.handled_suffixes, key=lambda s: s or "")
                suffix = suffixes[self.steps % len(suffixes)]
                for hkey, value in usable:
                    key = "__".join(
                        part
                        for part in (field.name, hkey, index.prefix, suffix)
                        if part is not None
                    )
                    probes.append((model, {key: [value] if suffix == "in" else value}))
        return probes[: self.max_probes]

    def _check_query(self, model: type[RedisModel], filters: dict[str, Any]) -> None:
        expected = self.oracle.query(model, filters)
        found = list(model.collection(**filters))
        self.stats["queried"] += 1
        self.stats["matched"] += bool(found)
        if expected is not None:
            assert found == expected, (
                f"{model.__name__}.collection(**{filters!r}) is {found!r}, expected {expected!r}"
            )

    def _check_expiry(self) -> None:
        """Expiry times are the oracle's; expired instances are gone for reads (`exists`,
        a field's value, related collections), though stored until reaped."""
        now = self._server_now()
        for model in self.oracle.models:
            meta = model._meta
            times = self.database.client.zrange(meta.expiry_key, 0, -1, withscores=True)
            stored = {pk: at <= now for pk, at in times}
            wanted = dict.fromkeys(self.oracle.expiring[model], False)
            wanted.update(dict.fromkeys(self.oracle.expired[model], True))
            assert stored == wanted, (
                f"{model.__name__}: expiry times (pk: passed) are {stored!r}, expected {wanted!r}"
            )
            fields = self._fields(model)
            for pk in self.oracle.expired[model]:
                assert not model.exists(pk=pk), f"{model.__name__}.exists(pk={pk!r}): expired"
                if fields:
                    try:
                        value = _read(model.lazy_connect(pk), fields[0])
                    except DoesNotExist:
                        continue
                    raise AssertionError(
                        f"{model.__name__}({pk!r}).{fields[0].name} read {value!r}: expired"
                    )
        if any(self.oracle.expired.values()):
            self._check_related_collections()

    def _check_related_collections(self) -> None:
        """Related collections, both ways, hold only live instances (stored references to
        expired ones are not seen)."""
        for model in self.oracle.models:
            for field in model._meta.data_fields:
                if not lst.is_related(field) or field_kind(field) is None:
                    continue
                kind = field_kind(field)
                target = field.related_model  # type: ignore[attr-defined]
                alive = set(self.oracle.data[target])
                pointing: dict[str, set[str]] = {pk: set() for pk in alive}
                for pk, states in self.oracle.data[model].items():
                    held = {v for _, v in _items(kind, states.get(field.name, _EMPTY[kind]))}  # type: ignore[index]
                    for value in held & alive:
                        pointing[value].add(pk)
                    if kind in _SINGLE:
                        continue
                    found = set(getattr(model.lazy_connect(pk), field.name)())
                    assert found == held & alive, (
                        f"{model.__name__}({pk!r}).{field.name}() is {sorted(found)!r}, "
                        f"expected {sorted(held & alive)!r}"
                    )
                for pk, expected in pointing.items():
                    related = getattr(target.lazy_connect(pk), field.related_name)  # type: ignore[attr-defined]
                    found = set(related())
                    assert found == expected, (
                        f"{target.__name__}({pk!r}).{field.related_name}() is "  # type: ignore[attr-defined]
                        f"{sorted(found)!r}, expected {sorted(expected)!r}"
                    )

    @invariant()
    def consistent(self) -> None:
        """Stored values, collections, standing queries, probes and indexes equal the
        oracle's. Skipped after a step that wrote nothing (a query): nothing changed."""
        if not self.dirty:
            return
        self.dirty = False
        for model in self.oracle.models:
            found = list(model.collection())
            expected = self.oracle.pks(model)
            assert found == expected, (
                f"{model.__name__}.collection() is {found!r}, expected {expected!r}"
            )
            fields = [f for f in model._meta.data_fields if field_kind(f) is not None]
            hashed = [f for f in fields if field_kind(f) == "hashfield"]
            others = [f for f in fields if field_kind(f) != "hashfield"]
            for pk, states in self.oracle.data[model].items():
                instance = model.lazy_connect(pk)
                if hashed:
                    stored = instance.hgetall()
                    wanted = {f.name: states[f.name] for f in hashed if f.name in states}
                    assert stored == wanted, (
                        f"{model.__name__}({pk!r}).hgetall() is {stored!r}, expected {wanted!r}"
                    )
                for field in others:
                    kind = field_kind(field)
                    wanted = states.get(field.name, _EMPTY[kind])  # type: ignore[index]
                    if kind == "zset":  # in rank order
                        bound = getattr(instance, field.name)
                        stored, wanted = bound.zrange(0, -1, withscores=True), _zorder(wanted)
                    else:
                        stored = _read(instance, field)
                    assert stored == wanted, (
                        f"{model.__name__}({pk!r}).{field.name} is {stored!r}, expected {wanted!r}"
                    )
        self._check_expiry()
        for model, filters in [*self.queries, *self._probes()]:
            self._check_query(model, filters)
        self.touched.clear()
        self.steps += 1
        problems = check(*self.oracle.models)
        assert not problems, "integrity check:\n" + "\n".join(map(str, problems))

    # Modifiers ---------------------------------------------------------------------------

    def _string_op(
        self,
        data: st.DataObject,
        kind: str,
        old: str | None,
        texts: st.SearchStrategy[str] | None,
        related: bool = False,
    ) -> _Op:
        if kind == "string":
            names = ["set", "getset", "setnx", "getdel"]
            if not related:
                names += ["append", "incr", "decr", "incrby", "decrby", "incrbyfloat",
                          "setrange", "setbit"]  # fmt: skip
        else:
            names = ["hset", "hsetnx"] + ([] if related else ["hincrby", "hincrbyfloat"])
        if texts is None:
            names = [n for n in names if n == "getdel"]
            if not names:  # an empty pool and an InstanceHashField: delete it instead
                return _Op("delete", new=None, reply=int(old is not None))
        name = data.draw(st.sampled_from(names), label="modifier")
        setter = "set" if kind == "string" else "hset"

        def value() -> str:
            return data.draw(texts, label="value")  # type: ignore[arg-type]

        if name in ("incr", "decr", "incrby", "decrby", "hincrby"):
            base = _integer(old)
            amount = data.draw(_SMALL, label="amount")
            if base is not None:
                total = base - amount if name.startswith("decr") else base + amount
                return _Op(name, (amount,), new=str(total), reply=total)
            if _not_a_number(old):
                return _Op(name, (amount,), error=ResponseError)
            name = setter
        if name in ("incrbyfloat", "hincrbyfloat"):
            base_decimal = _decimal(old)
            amount_float = data.draw(st.integers(-40, 40), label="quarters") / 4
            if base_decimal is not None:
                text = _float_text(base_decimal + Decimal(repr(amount_float)))
                return _Op(name, (amount_float,), new=text, reply=float(text))
            if _not_a_number(old):
                return _Op(name, (amount_float,), error=ResponseError)
            name = setter
        if name in ("set", "hset"):
            v = value()
            return _Op(name, (v,), new=v, reply=True if name == "set" else int(old is None))
        if name == "getset":
            v = value()
            return _Op(name, (v,), new=v, reply=old)
        if name in ("setnx", "hsetnx"):
            v = value()
            return _Op(
                name,
                (v,),
                new=v if old is None else old,
                reply=lambda r, was=old is None: bool(r) == was,
            )
        if name == "getdel":
            return _Op(name, new=None, reply=old)
        if name == "append":
            v = value()
            new = lst.canonical((old or "") + v)
            return _Op(name, (v,), new=new, reply=len(_bytes(new)))
        if name == "setrange":
            offset = data.draw(st.integers(0, 6), label="offset")
            v = value()
            current = _bytes(old or "")
            if not v:
                return _Op(name, (offset, v), reply=len(current))
            current = current.ljust(offset, b"\x00")
            raw = _bytes(v)
            result = current[:offset] + raw + current[offset + len(raw) :]
            text = result.decode("utf-8", "surrogateescape")
            return _Op(name, (offset, v), new=text, reply=len(result))
        assert name == "setbit", name
        offset = data.draw(st.integers(0, 31), label="offset")
        bit = data.draw(st.integers(0, 1), label="bit")
        buffer = bytearray(_bytes(old or ""))
        position, shift = divmod(offset, 8)
        if len(buffer) <= position:
            buffer.extend(b"\x00" * (position + 1 - len(buffer)))
        previous = (buffer[position] >> (7 - shift)) & 1
        if bit:
            buffer[position] |= 1 << (7 - shift)
        else:
            buffer[position] &= ~(1 << (7 - shift)) & 0xFF
        text = bytes(buffer).decode("utf-8", "surrogateescape")
        return _Op(name, (offset, bit), new=text, reply=previous)

    def _choices(
        self, data: st.DataObject, held: Iterable[str], texts: st.SearchStrategy[str] | None
    ) -> st.SearchStrategy[str]:
        held = sorted(set(held), key=_bytes)
        options = ([st.sampled_from(held)] if held else []) + ([texts] if texts is not None else [])
        assert options, "no value to draw"
        return st.one_of(options)

    def _set_op(
        self,
        data: st.DataObject,
        kind: str,
        old: frozenset[str],
        texts: st.SearchStrategy[str] | None,
    ) -> _Op:
        names = ["srem", "spop", "spop_count"] + (["sadd"] if texts is not None else [])
        names = _when_empty(names, old, ["sadd", "spop"])
        name = data.draw(st.sampled_from(names), label="modifier")
        if name == "sadd":
            members = data.draw(st.lists(texts, min_size=1, max_size=_MAX_ITEMS), label="members")  # type: ignore[arg-type]
            return _Op(name, tuple(members), new=old | set(members), reply=len(set(members) - old))
        if name == "srem":
            members = data.draw(
                st.lists(self._choices(data, old, texts), min_size=1, max_size=_MAX_ITEMS),
                label="members",
            )
            return _Op(name, tuple(members), new=old - set(members), reply=len(set(members) & old))
        if name == "spop":
            return _Op(
                "spop",
                new=lambda r: old - {r},
                reply=lambda r: (r is None and not old) or r in old,
            )
        count = data.draw(st.integers(1, 3), label="count")
        return _Op(
            "spop",
            (count,),
            new=lambda r: old - set(r or ()),
            reply=lambda r: len(set(r or ())) == min(count, len(old)) and set(r or ()) <= old,
        )

    def _list_op(
        self,
        data: st.DataObject,
        kind: str,
        old: tuple[str, ...],
        texts: st.SearchStrategy[str] | None,
    ) -> _Op:
        names = ["lpop", "rpop", "lpop_count", "rpop_count", "ltrim", "lrem"]
        if texts is not None:
            names += ["rpush", "lpush", "rpushx", "lpushx", "lset", "linsert"]
        names = _when_empty(names, old, ["rpush", "lpush", "lpushx", "rpop"])
        name = data.draw(st.sampled_from(names), label="modifier")
        n = len(old)
        if name in ("rpush", "lpush", "rpushx", "lpushx"):
            values = tuple(
                data.draw(st.lists(texts, min_size=1, max_size=_MAX_ITEMS), label="values")  # type: ignore[arg-type]
            )
            if name.endswith("x") and not old:
                return _Op(name, values, reply=0)
            new = old + values if name.startswith("r") else values[::-1] + old
            return _Op(name, values, new=new, reply=len(new))
        if name in ("lpop", "rpop"):
            if not old:
                return _Op(name, reply=None)
            return _Op(
                name,
                new=old[1:] if name == "lpop" else old[:-1],
                reply=old[0] if name == "lpop" else old[-1],
            )
        if name in ("lpop_count", "rpop_count"):
            method = name[:4]
            count = data.draw(st.integers(1, 3), label="count")
            if not old:
                return _Op(method, (count,), reply=None)
            if method == "lpop":
                return _Op(method, (count,), new=old[count:], reply=list(old[:count]))
            return _Op(
                method, (count,), new=old[: max(n - count, 0)], reply=list(old[::-1][:count])
            )
        if name == "ltrim":
            start = data.draw(st.integers(-4, 4), label="start")
            end = data.draw(st.integers(-4, 4), label="end")
            return _Op(name, (start, end), new=old[_redis_range(n, start, end)], reply=True)
        if name == "lrem":
            count = data.draw(st.integers(-2, 2), label="count")
            v = data.draw(self._choices(data, old, texts), label="value")
            positions = [i for i, item in enumerate(old) if item == v]
            if count > 0:
                positions = positions[:count]
            elif count < 0:
                positions = positions[count:]
            new = tuple(item for i, item in enumerate(old) if i not in set(positions))
            return _Op(name, (count, v), new=new, reply=len(positions))
        if name == "lset":
            index = data.draw(st.integers(-n - 1, n), label="index")
            v = data.draw(texts, label="value")  # type: ignore[arg-type]
            if not -n <= index < n:
                return _Op(name, (index, v), error=ResponseError)
            new_list = list(old)
            new_list[index] = v
            return _Op(name, (index, v), new=tuple(new_list), reply=True)
        assert name == "linsert", name
        where = data.draw(st.sampled_from(["BEFORE", "AFTER"]), label="where")
        pivot = data.draw(self._choices(data, old, texts), label="pivot")
        v = data.draw(texts, label="value")  # type: ignore[arg-type]
        if not old:
            return _Op(name, (where, pivot, v), reply=0)
        if pivot not in old:
            return _Op(name, (where, pivot, v), reply=-1)
        at = old.index(pivot) + (where == "AFTER")
        new = (*old[:at], v, *old[at:])
        return _Op(name, (where, pivot, v), new=new, reply=len(new))

    def _hash_op(
        self,
        data: st.DataObject,
        old: dict[str, str],
        texts: st.SearchStrategy[str],
        keys: st.SearchStrategy[str],
    ) -> _Op:
        names = ["hset", "hset_mapping", "hmset", "hsetnx", "hdel", "hincrby", "hincrbyfloat"]
        names = _when_empty(names, old, ["hset", "hset_mapping", "hmset", "hincrby", "hdel"])
        name = data.draw(st.sampled_from(names), label="modifier")
        if name in ("hset_mapping", "hmset"):
            mapping = data.draw(
                st.dictionaries(keys, texts, min_size=1, max_size=_MAX_ITEMS), label="mapping"
            )
            new = {**old, **mapping}
            if name == "hmset":
                return _Op("hmset", (mapping,), new=new, reply=True)
            return _Op(
                "hset", kwargs={"mapping": mapping}, new=new, reply=len(set(mapping) - set(old))
            )
        if name == "hdel":
            chosen = data.draw(st.lists(keys, min_size=1, max_size=_MAX_ITEMS), label="keys")
            new = {k: v for k, v in old.items() if k not in chosen}
            return _Op(name, tuple(chosen), new=new, reply=len(set(chosen) & set(old)))
        key = data.draw(keys, label="key")
        current = old.get(key)
        if name == "hincrby":
            amount = data.draw(_SMALL, label="amount")
            base = _integer(current)
            if base is not None:
                return _Op(
                    name, (key, amount), new={**old, key: str(base + amount)}, reply=base + amount
                )
            if _not_a_number(current):
                return _Op(name, (key, amount), error=ResponseError)
            name = "hset"
        if name == "hincrbyfloat":
            amount_float = data.draw(st.integers(-40, 40), label="quarters") / 4
            base_decimal = _decimal(current)
            if base_decimal is not None:
                text = _float_text(base_decimal + Decimal(repr(amount_float)))
                return _Op(name, (key, amount_float), new={**old, key: text}, reply=float(text))
            if _not_a_number(current):
                return _Op(name, (key, amount_float), error=ResponseError)
            name = "hset"
        v = data.draw(texts, label="value")
        if name == "hsetnx":
            new = old if current is not None else {**old, key: v}
            return _Op(name, (key, v), new=new, reply=lambda r, was=current is None: bool(r) == was)
        return _Op("hset", (key, v), new={**old, key: v}, reply=int(current is None))

    def _zset_op(
        self,
        data: st.DataObject,
        kind: str,
        old: dict[str, float],
        texts: st.SearchStrategy[str] | None,
    ) -> _Op:
        names = ["zrem", "zremrangebyscore", "zremrangebyrank", "zpopmin", "zpopmax"]
        if texts is not None:
            names += ["zadd", "zadd_incr", "zincrby"]
        names = _when_empty(names, old, ["zadd", "zadd_incr", "zincrby", "zpopmin"])
        name = data.draw(st.sampled_from(names), label="modifier")
        members = self._choices(data, old, texts)
        order = _zorder(old)
        if name == "zadd":
            mapping = data.draw(
                st.dictionaries(members, lst.scores(), min_size=1, max_size=_MAX_ITEMS),
                label="mapping",
            )
            flags = data.draw(
                st.sampled_from(
                    [(), ("nx",), ("xx",), ("gt",), ("lt",), ("xx", "gt"), ("xx", "lt")]
                ),
                label="flags",
            )
            ch = data.draw(st.booleans(), label="ch")
            new = dict(old)
            added = changed = 0
            for member, score in mapping.items():
                exists = member in old
                if ("nx" in flags and exists) or ("xx" in flags and not exists):
                    continue
                if exists and (
                    ("gt" in flags and not score > old[member])
                    or ("lt" in flags and not score < old[member])
                ):
                    continue
                if not exists:
                    added += 1
                elif score != old[member]:
                    changed += 1
                new[member] = score
            options = dict.fromkeys(flags, True)
            if ch:
                options["ch"] = True
            return _Op("zadd", (mapping,), options, new=new, reply=added + changed if ch else added)
        if name in ("zadd_incr", "zincrby"):
            member = data.draw(members, label="member")
            amount = float(data.draw(st.integers(-4, 4), label="amount")) / 2
            total = old.get(member, 0.0) + amount
            if name == "zincrby":
                return _Op(name, (amount, member), new={**old, member: total}, reply=total)
            flags = data.draw(st.sampled_from([(), ("nx",), ("xx",)]), label="flags")
            exists = member in old
            if ("nx" in flags and exists) or ("xx" in flags and not exists):
                return _Op(
                    "zadd",
                    ({member: amount},),
                    {"incr": True, **dict.fromkeys(flags, True)},
                    reply=None,
                )
            return _Op(
                "zadd",
                ({member: amount},),
                {"incr": True, **dict.fromkeys(flags, True)},
                new={**old, member: total},
                reply=total,
            )
        if name == "zrem":
            chosen = data.draw(st.lists(members, min_size=1, max_size=_MAX_ITEMS), label="members")
            new = {m: s for m, s in old.items() if m not in chosen}
            return _Op(name, tuple(chosen), new=new, reply=len(set(chosen) & set(old)))
        if name == "zremrangebyscore":
            bounds = st.one_of(
                st.sampled_from(sorted(set(old.values()))) if old else st.nothing(), lst.scores()
            )
            low = data.draw(bounds, label="min")
            high = data.draw(bounds, label="max")
            low_open = data.draw(st.booleans(), label="min exclusive")
            high_open = data.draw(st.booleans(), label="max exclusive")

            def inside(score: float) -> bool:
                above = score > low if low_open else score >= low
                below = score < high if high_open else score <= high
                return above and below

            args = (("(" if low_open else "") + repr(low), ("(" if high_open else "") + repr(high))
            new = {m: s for m, s in old.items() if not inside(s)}
            return _Op(name, args, new=new, reply=len(old) - len(new))
        if name == "zremrangebyrank":
            start = data.draw(st.integers(-4, 4), label="start")
            end = data.draw(st.integers(-4, 4), label="end")
            removed = {m for m, _ in order[_redis_range(len(order), start, end)]}
            new = {m: s for m, s in old.items() if m not in removed}
            return _Op(name, (start, end), new=new, reply=len(removed))
        count = data.draw(st.none() | st.integers(1, 3), label="count")
        taken = order if name == "zpopmin" else order[::-1]
        taken = taken[: 1 if count is None else count]
        new = {m: s for m, s in old.items() if m not in dict(taken)}
        args = () if count is None else (count,)
        return _Op(name, args, new=new, reply=list(taken))


def _read(instance: RedisModel, field: RedisField) -> Any:
    """A field's stored value, as the oracle keeps it."""
    bound = getattr(instance, field.name)
    kind = field_kind(field)
    if kind == "string":
        return bound.get()
    if kind == "hashfield":
        return bound.hget()
    if kind == "set":
        return frozenset(bound.smembers())
    if kind == "list":
        return tuple(bound.lrange(0, -1))
    if kind == "hash":
        return bound.hgetall()
    return dict(bound.zrange(0, -1, withscores=True))


_MISSING: Any = object()


def _use_database(models: list[type[RedisModel]], database: RedisDatabase) -> Callable[[], None]:
    """Point `models` at `database` with `use_database`; the function that puts them back.

    Related models check, when moved, that the models they point to use the same database:
    each model is moved once (some checks may fail while the others are not moved yet),
    then again, when all are, for the checks to pass."""
    saved = [(model, model.__dict__.get("database", _MISSING), model.database) for model in models]

    def move(target: Callable[[type[RedisModel]], RedisDatabase | None]) -> None:
        for attempt in range(2):
            for model in models:
                destination = target(model)
                if destination is None:
                    continue
                try:
                    model.use_database(destination)
                except ImplementationError:
                    if attempt:
                        raise

    def restore() -> None:
        previous = {model: old for model, _, old in saved}
        try:
            move(lambda model: previous[model])
        except ImplementationError:
            pass
        for model, own, _ in saved:
            if own is _MISSING:
                if "database" in model.__dict__:
                    delattr(model, "database")
            elif not isinstance(own, RedisDatabase):
                model.database = own

    try:
        move(lambda model: database)
    except BaseException:
        restore()
        raise
    return restore
