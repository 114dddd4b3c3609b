"""`Oracle`: what Redis should hold, in plain Python, and the answers of filters and
uniqueness as the ORM documents them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from limpyd.fields import HashField
from limpyd.fields.base import NO_DEFAULT, RedisField
from limpyd.indexes import BaseIndex, EqualIndex, NumberRangeIndex, TextRangeIndex
from limpyd.model import RedisModel
from limpyd_testing import strategies as lst
from limpyd_testing.stateful.values import (
    EMPTY,
    SINGLE,
    as_number,
    field_kind,
    is_empty,
    items_of,
    raw,
    state_of,
    text_of,
)

_NUMERIC_PK = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

KNOWN_INDEXES = (EqualIndex, TextRangeIndex, NumberRangeIndex)
_KNOWN_SUFFIXES = {None, "eq", "in", "gt", "gte", "lt", "lte", "startswith", "endswith"}


def index_text(index: BaseIndex, value: str) -> str | None:
    """The text `index` stores for `value` (its transforms applied), None for no entry."""
    normalized = index.normalize(value)
    return None if normalized is None else lst.canonical(normalized)


#: What a NumberRangeIndex holds and answers ("Design decisions", Values): a decimal number,
#: `[+-]digits[.digits][e[+-]digits]` (`5.` and `.5` too), or an infinity.
_DECIMAL = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|(?i:inf))")


def refuses(index: BaseIndex, text: str) -> bool:
    """Whether `index` refuses this text (already transformed) with a ValueError: a
    NumberRangeIndex takes decimal numbers only."""
    return isinstance(index, NumberRangeIndex) and not _DECIMAL.fullmatch(text)


def refused_state(field: RedisField, state: Any) -> bool:
    """Whether writing this state in `field` is refused (ValueError, nothing written): one
    of its values that an index would hold is refused by it."""
    kind = field_kind(field)
    assert kind is not None
    return any(
        refuses_value(index, value) for index in field.indexes for _, value in items_of(kind, state)
    )


def refuses_value(index: BaseIndex, value: str) -> bool:
    """Whether `index` refuses this value: a transform refusing it (a ValueError: the date
    and time indexes take dates and times only), or the text it gives refused."""
    try:
        text = index_text(index, value)
    except ValueError:
        return True
    return text is not None and refuses(index, text)


def _compare(index: BaseIndex, operator: str, stored: str, wanted: str) -> bool:
    """Whether an index entry `stored` answers `operator` with the filter text `wanted`."""
    a: Any
    b: Any
    if isinstance(index, NumberRangeIndex):
        a, b = as_number(stored), as_number(wanted)
    elif isinstance(index, TextRangeIndex):
        a, b = raw(stored), raw(wanted)
        if operator == "startswith":
            return bool(a.startswith(b))
        if operator == "endswith":  # contrib.indexes.EndsWithIndex stores values reversed
            return bool(a[::-1].endswith(b))
    else:
        a, b = stored, wanted
    return bool(
        {
            "eq": a == b,
            "gt": a > b,
            "gte": a >= b,
            "lt": a < b,
            "lte": a <= b,
        }[operator]
    )


def _same_unique(index: BaseIndex, a: str, b: str) -> bool:
    if isinstance(index, NumberRangeIndex):
        try:
            return Decimal(a) == Decimal(b)
        except InvalidOperation:  # not a number: refused (`refused_state`), holds nothing
            return False
    return a == b


def order_pks(pks: Iterable[str]) -> list[str]:
    """The default order of a collection: numeric when every pk is a number, else bytes."""
    pks = list(pks)
    if pks and all(_NUMERIC_PK.fullmatch(pk) for pk in pks):
        return sorted(pks, key=lambda pk: (float(pk), raw(pk)))
    return sorted(pks, key=raw)


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
                states[field.name] = state_of(kind, values[field.name])
            elif field.default is not NO_DEFAULT:
                if callable(field.default):
                    adopt.append(field)
                else:
                    states[field.name] = state_of(kind, field.default)
        return states, adopt

    def add(self, model: type[RedisModel], pk: str, states: Mapping[str, Any]) -> None:
        """Record a new instance with these field states (by field name)."""
        self.data[model][pk] = {}
        for name, state in states.items():
            self.put(model, pk, model._meta.fields[name], state)

    def create(self, model: type[RedisModel], pk: str, values: Mapping[str, Any]) -> None:
        """Record the instance `model(**values)` created with the pk `pk`."""
        states, _ = self.states_of(model, values)
        self.add(model, text_of(pk), states)

    def state(self, model: type[RedisModel], pk: str, field: RedisField) -> Any:
        kind = field_kind(field)
        assert kind is not None
        return self.data[model][pk].get(field.name, EMPTY[kind])

    def put(self, model: type[RedisModel], pk: str, field: RedisField, state: Any) -> None:
        kind = field_kind(field)
        assert kind is not None
        if is_empty(kind, state):
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
        known = set(items_of(kind, old))
        fresh = [item for item in dict.fromkeys(items_of(kind, new)) if item not in known]
        for index in field.indexes:
            if not index.handle_uniqueness:
                continue
            for other, states in among.items():
                if other == pk or other in found:
                    continue
                theirs = items_of(kind, states.get(field.name, EMPTY[kind]))
                for hkey, value in fresh:
                    if refuses_value(index, value):  # refused: the write holds nothing
                        continue
                    mine = index_text(index, value)
                    if mine is None:
                        continue
                    for their_hkey, their_value in theirs:
                        held = index_text(index, their_value)
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
                if not lst.is_related(field) or field.related_model is not model:
                    continue
                kind = field_kind(field)
                for states in [*self.data[other].values(), *self.expired[other].values()]:
                    state = states.get(field.name)
                    if state is None:
                        continue
                    if kind in SINGLE:
                        new = None if state == pk else state
                    elif kind == "set":
                        new = state - {pk}
                    elif kind == "list":
                        new = tuple(v for v in state if v != pk)
                    else:
                        new = {m: s for m, s in state.items() if m != pk}
                    if is_empty(kind, new):
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
        if parts == ["isnull"] and field_kind(field) in SINGLE:
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
        answered by an index the oracle does not know; ValueError when the collection
        must refuse a filter value."""
        resolved = [(self.resolve(model, key), value) for key, value in filters.items()]
        for (_, _, index, suffix), value in resolved:
            if isinstance(suffix, tuple):
                suffix, value = suffix[1], list(value)
            else:
                value = [value]
            wanted = [w for v in value for w in (v if suffix == "in" else [v])]
            if isinstance(index, BaseIndex) and any(refuses(index, text_of(w)) for w in wanted):
                raise ValueError(f"{index!r} refuses a filter value of {filters!r}")
        for (_, _, index, suffix), _ in resolved:
            if isinstance(suffix, tuple):
                suffix = suffix[1]
            if index in (None, "isnull"):
                continue
            if not isinstance(index, KNOWN_INDEXES) or suffix not in _KNOWN_SUFFIXES:
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
            return bool((field.name not in states) == value)
        wanted = [text_of(v) for v in value] if suffix == "in" else [text_of(value)]
        if index is None:  # the pk
            return pk in wanted
        if kind is None:
            return False
        stored = [
            normalized
            for item_hkey, item in items_of(kind, states.get(field.name, EMPTY[kind]))
            if item_hkey == hkey
            for normalized in [index_text(index, item)]
            if normalized is not None
        ]
        operator = "eq" if suffix in (None, "in") else suffix
        return any(_compare(index, operator, s, w) for s in stored for w in wanted)
