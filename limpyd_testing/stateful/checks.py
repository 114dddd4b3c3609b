"""The rules and invariant that read: filtered and sorted collections, standing queries,
probes of what a step wrote, stored values, expiry, integrity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from limpyd.exceptions import DoesNotExist
from limpyd.fields.base import RedisField
from limpyd.model import RedisModel
from limpyd_testing import strategies as lst
from limpyd_testing.integrity import check
from limpyd_testing.stateful.commands.base import SMALL
from limpyd_testing.stateful.core import MachineCore
from limpyd_testing.stateful.drawing import mixed
from limpyd_testing.stateful.oracle import KNOWN_INDEXES, index_text
from limpyd_testing.stateful.values import (
    EMPTY,
    SINGLE,
    field_kind,
    items_of,
    lex_before,
    raw,
    read_value,
    resplits,
    zorder,
)


class CheckRules(MachineCore):
    """Queries as rules, and the invariant comparing everything with the oracle."""

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
        names = ["pk"] + [f.name for f in self._fields(model) if field_kind(f) in SINGLE]
        by = data.draw(st.sampled_from(names), label="by")
        desc = data.draw(st.booleans(), label="desc")
        window = data.draw(
            st.none()
            | st.tuples(
                st.none() | SMALL, st.none() | SMALL, st.sampled_from([None, 1, 2, -1, -2])
            ),
            label="slice",
        )
        collection = model.collection().sort(by=by, alpha=True, desc=desc)
        meta = model._meta

        def key(pk: str) -> tuple[bytes, bytes]:
            if by == "pk":
                return (raw(pk), b"")
            state = self.oracle.data[model][pk].get(by)
            return (raw(state or ""), raw(pk))

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
            for _, value in items_of(kind, states.get(field.name, EMPTY[kind])):
                held.add(value)
                for near in (lex_before(value), lex_before(value[:1])):
                    if near is not None:
                        held.add(near)
                for index in field.indexes:
                    normalized = index_text(index, value)
                    if normalized is not None:
                        held.add(normalized)
        return sorted(held, key=raw)[:30]

    def _filter_keys(self, model: type[RedisModel], field: RedisField) -> list[str]:
        keys = self._held_keys(model, field)
        return [k for k in keys if "__" not in k and not k.endswith("_")]

    def _filters(self, model: type[RedisModel]) -> st.SearchStrategy[dict[str, Any]]:
        """`strategies.filters`, values often drawn from what each field holds."""

        def held_values(field: RedisField) -> Callable[[MachineCore], list[str]]:
            return lambda machine: cast(CheckRules, machine)._filter_values(model, field)

        def held_keys(field: RedisField) -> Callable[[MachineCore], list[str]]:
            return lambda machine: cast(CheckRules, machine)._filter_keys(model, field)

        def build() -> st.SearchStrategy[dict[str, Any]]:
            values = {
                "pk": mixed(
                    lst.texts(),
                    lambda machine: [*machine.oracle.pks(model), *machine.oracle.expired[model]],
                    3,
                )
            }
            keys = {}
            for field in self._fields(model):
                values[field.name] = mixed(lst.texts(), held_values(field), 3)
                keys[field.name] = mixed(lst.filter_keys(), held_keys(field), 3)
            return lst.filters(model, values=values, hash_keys=keys)

        return self._cached(("filters", model), build)

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
                if not isinstance(index, KNOWN_INDEXES):
                    continue
                suffixes = sorted(index.handled_suffixes, key=lambda s: s or "")
                suffix = suffixes[self.steps % len(suffixes)]
                near = [(h, lex_before(v)) for h, v in usable] if suffix == "startswith" else []
                drawn = [*usable, *((h, v) for h, v in near if v is not None), *_resplit(usable)]
                for hkey, value in drawn:
                    key = "__".join(
                        part
                        for part in (field.name, hkey, index.prefix, suffix)
                        if part is not None
                    )
                    probes.append((model, {key: [value] if suffix == "in" else value}))
        return probes[: self.max_probes]

    def _check_query(self, model: type[RedisModel], filters: dict[str, Any]) -> None:
        try:
            expected = self.oracle.query(model, filters)
        except ValueError:
            try:
                found = list(model.collection(**filters))
            except ValueError:
                self.stats["refused queries"] += 1
                return
            raise AssertionError(
                f"{model.__name__}.collection(**{filters!r}) is {found!r}, ValueError expected"
            ) from None
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
            times = cast(
                "list[tuple[str, float]]",
                self.database.client.zrange(meta.expiry_key, 0, -1, withscores=True),
            )
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
                        value = read_value(model.lazy_connect(pk), fields[0])
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
                kind = field_kind(field)
                if not lst.is_related(field) or kind is None:
                    continue
                target = field.require_related_model()
                alive = set(self.oracle.data[target])
                pointing: dict[str, set[str]] = {pk: set() for pk in alive}
                for pk, states in self.oracle.data[model].items():
                    held = {v for _, v in items_of(kind, states.get(field.name, EMPTY[kind]))}
                    for value in held & alive:
                        pointing[value].add(pk)
                    if kind in SINGLE:
                        continue
                    found = set(getattr(model.lazy_connect(pk), field.name)())
                    assert found == held & alive, (
                        f"{model.__name__}({pk!r}).{field.name}() is {sorted(found)!r}, "
                        f"expected {sorted(held & alive)!r}"
                    )
                for pk, expected in pointing.items():
                    related = getattr(target.lazy_connect(pk), field.related_name)
                    found = set(related())
                    assert found == expected, (
                        f"{target.__name__}({pk!r}).{field.related_name}() is "
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
                    stored_hash = instance.hgetall()
                    wanted_hash = {f.name: states[f.name] for f in hashed if f.name in states}
                    assert stored_hash == wanted_hash, (
                        f"{model.__name__}({pk!r}).hgetall() is {stored_hash!r}, "
                        f"expected {wanted_hash!r}"
                    )
                for field in others:
                    kind = field_kind(field)
                    wanted: Any = states.get(field.name, EMPTY[kind])
                    if kind == "zset":  # in rank order
                        bound = getattr(instance, field.name)
                        stored, wanted = bound.zrange(0, -1, withscores=True), zorder(wanted)
                    else:
                        stored = read_value(instance, field)
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


def _resplit(pairs: list[tuple[str | None, str]]) -> list[tuple[str, str]]:
    """Other (hash key, value) pairs that join with ':' to the same text as these ones:
    filters by them must not find each other's holders."""
    found = [
        (hkey, value)
        for first, second in pairs
        if first is not None
        for hkey, value in resplits(first, second)
        if "__" not in hkey and not hkey.endswith("_")
    ]
    return found[:2]
