"""Values in disguise and wrong values: bytes, str subclasses and str Enum members, ints and
floats standing for texts must be stored as those texts (storage, indexes, uniqueness and
filters agreeing); values limpyd must refuse (`strategies.wrong_values`) must change
nothing; IntEnum members (`strategies.risky_values`) may be either."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from limpyd.model import RedisModel
from limpyd_testing import strategies as lst
from limpyd_testing.stateful.commands import COLLECTION_OPS, Op, hash_op, string_op
from limpyd_testing.stateful.core import MachineCore
from limpyd_testing.stateful.values import SINGLE, field_kind, text_of

#: The text an op is drawn with when the value sent has none (it must be refused).
_PLACEHOLDER = "\x00wrong value\x00"
#: Scores both servers refuse.
WRONG_SCORES = (float("nan"), None, "abc", True, "", b"1x")

#: A swap of a text or score: `swap(value, as_key)`, `as_key` telling it replaces a dict key
#: (which must stay hashable: a swap that cannot keep it so returns `value` unchanged).
Swap = Callable[[Any, bool], Any]


def score_disguises(score: float) -> st.SearchStrategy[Any]:
    """Values Redis takes as the score `score`: its text, its bytes, the int it equals."""
    options: list[Any] = [score, repr(score), repr(score).encode()]
    if score.is_integer() and abs(score) < 2**53:
        options.append(int(score))
    return st.sampled_from(options)


def disguise(data: st.DataObject, value: Any) -> Any:
    """`value` (a text or a score) in one of its disguises."""
    if isinstance(value, str):
        return data.draw(lst.disguises(value), label="disguise")
    if isinstance(value, float):
        return data.draw(score_disguises(value), label="disguise")
    return value


def hashable(value: Any) -> bool:
    """Whether `value` can be a dict key (a bytearray or a set cannot)."""
    try:
        hash(value)
    except TypeError:
        return False
    return True


def swap_values(value: Any, swap: Swap, as_key: bool = False) -> Any:
    """`value` with `swap` applied to its texts and scores (dict keys and values included)."""
    if isinstance(value, str | float):
        return swap(value, as_key)
    if isinstance(value, dict):
        return {swap_values(k, swap, True): swap_values(v, swap) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(swap_values(v, swap) for v in value)
    return value


def disguising(data: st.DataObject) -> Swap:
    """A swap putting each text and score in a disguise (a dict key in a hashable one)."""

    def swap(value: Any, as_key: bool) -> Any:
        disguised = disguise(data, value)
        return disguised if not as_key or hashable(disguised) else value

    return swap


def swap_op(op: Op, swap: Swap) -> Op:
    """`op` with `swap` applied to the values it sends (not to LINSERT's BEFORE/AFTER, nor
    to ZREMRANGEBYSCORE's bounds, nor to integers: offsets, counts, amounts)."""
    skip = {"linsert": {0}, "zremrangebyscore": {0, 1}}.get(op.method, set())
    args = tuple(a if i in skip else swap_values(a, swap) for i, a in enumerate(op.args))
    kwargs = {k: swap_values(v, swap) for k, v in op.kwargs.items()}
    return dataclasses.replace(op, args=args, kwargs=kwargs)


def swap_once(target: Any, replacement: Any) -> tuple[Swap, list[bool]]:
    """A swap replacing the first value equal to `target` (same type) by `replacement`
    (not a dict key by an unhashable one); and a flag list telling whether it did."""
    done: list[bool] = []

    def swap(value: Any, as_key: bool) -> Any:
        if as_key and not hashable(replacement):
            return value
        if not done and type(value) is type(target) and value == target:
            done.append(True)
            return replacement
        return value

    return swap, done


def wrong_or_risky() -> st.SearchStrategy[Any]:
    """A value limpyd must refuse, or may (IntEnum members)."""
    return st.one_of(lst.wrong_values(), lst.risky_values())


class InvalidInputRules(MachineCore):
    """Modifiers and constructors sent wrong values, and values in disguise."""

    def _op(
        self,
        data: st.DataObject,
        model: type[RedisModel],
        field: Any,
        old: Any,
        texts: st.SearchStrategy[str] | None,
    ) -> Op:
        """One modifier of `field` drawn with these texts (see `commands`)."""
        kind = field_kind(field)
        assert kind is not None
        if kind == "hash":
            # type-ignored: a hash field is not related: it has texts
            return hash_op(data, old, texts, self._hash_keys(model, field))  # type: ignore[arg-type]
        if kind in SINGLE:
            return string_op(data, kind, old, texts, lst.is_related(field))
        make = COLLECTION_OPS[kind]
        return make(data, kind, old, texts)

    @precondition(lambda self: self._has_instances())
    @rule(data=st.data())
    def write_wrong(self, data: st.DataObject) -> None:
        """A modifier sent a wrong, risky or disguised value (or a wrong score, or
        `InstanceHashField.hset(value, mapping={other field: ...})`): it succeeds and the
        oracle agrees, or it raises and no key changed."""
        drawn = self._instance_field(data)
        if drawn is None:
            return
        model, pk, field = drawn
        kind = field_kind(field)
        old = self.oracle.state(model, pk, field)
        texts = self._texts(model, field)
        if texts is None:
            return
        if kind == "hashfield" and data.draw(st.integers(0, 3), label="mapping") == 0:
            self._hset_other_field(data, model, pk, field)
            return
        if kind == "zset" and data.draw(st.booleans(), label="wrong score"):
            value = data.draw(st.sampled_from(WRONG_SCORES), label="score")
            op = self._op(data, model, field, old, texts)
            mappings = [a for a in op.args if op.method == "zadd" and isinstance(a, dict)]
            target: Any = next((s for m in mappings for s in m.values()), None)
            valid = False
        else:
            value = data.draw(
                st.one_of(wrong_or_risky(), texts.flatmap(lst.disguises)), label="value"
            )
            try:
                target, valid = text_of(value), True
            except (TypeError, ValueError):
                target, valid = _PLACEHOLDER, False
            op = self._op(data, model, field, old, st.just(target))
        swap, done = swap_once(target, value)
        sent = swap_op(op, swap)
        if not done:
            return  # the modifier drawn sends no value
        self.stats["sent wrong" if not valid else "sent nasty"] += 1
        bound = getattr(model.lazy_connect(pk), field.name)
        self._write(
            f"{model.__name__}({pk!r}).{field.name}.{sent.describe()}",
            lambda: getattr(bound, sent.method)(*sent.args, **sent.kwargs),
            [(model, pk, field, op.new)] if valid else [],
            reply=op.reply,
            error=op.error if valid else ValueError,
            refusable=True,
        )

    def _hset_other_field(
        self, data: st.DataObject, model: type[RedisModel], pk: str, field: Any
    ) -> None:
        """`instance.field.hset(value, mapping={other: ...})`: another InstanceHashField
        through this one's HSET. Refused, or both written (indexes and uniqueness kept)."""
        others = [f for f in self._fields(model) if field_kind(f) == "hashfield" and f != field]
        others = [f for f in others if self._texts(model, f) is not None]
        if not others:
            return
        other = data.draw(st.sampled_from(others), label="other")
        # type-ignored: InstanceHashFields with texts only (filtered above, the field by the caller)
        value = data.draw(self._texts(model, field), label="value")  # type: ignore[arg-type]
        # type-ignored: `others` holds fields with texts only (filtered above)
        other_value = data.draw(self._texts(model, other), label="other value")  # type: ignore[arg-type]
        had = sum(self.oracle.state(model, pk, f) is not None for f in (field, other))
        bound = getattr(model.lazy_connect(pk), field.name)
        self.stats["sent wrong"] += 1
        self._write(
            f"{model.__name__}({pk!r}).{field.name}.hset({value!r}, "
            f"mapping={{{other.name!r}: {other_value!r}}})",
            lambda: bound.hset(value, mapping={other.name: other_value}),
            [(model, pk, field, value), (model, pk, other, other_value)],
            reply=2 - had,
            refusable=True,
        )


Path = tuple[Any, ...]


def leaves(values: dict[str, Any]) -> list[Path]:
    """Where values sit in creation kwargs: (name,), (name, i), (name, key, "key"),
    (name, key, "value"), (name, member, "score")."""
    paths: list[Path] = []
    for name, value in values.items():
        if isinstance(value, list):
            paths += [(name, i) for i in range(len(value))]
        elif isinstance(value, dict):
            scores = all(isinstance(v, float) for v in value.values())
            for key in value:
                paths += [(name, key, "key"), (name, key, "score" if scores else "value")]
        else:
            paths.append((name,))
    return paths


def replace_leaf(values: dict[str, Any], path: Path, new: Any) -> dict[str, Any]:
    """A copy of `values` with the leaf at `path` replaced by `new` (a key by a
    hashable value only; an unhashable one replaces its value instead)."""
    values = dict(values)
    name = path[0]
    if len(path) == 1:
        values[name] = new
    elif len(path) == 2:
        items = list(values[name])
        items[path[1]] = new
        values[name] = items
    else:
        key, where = path[1], path[2]
        mapping = dict(values[name])
        if where == "key" and hashable(new):
            mapping = {(new if k == key else k): v for k, v in mapping.items()}
        else:
            mapping[key] = new
        values[name] = mapping
    return values


def disguise_all(data: st.DataObject, values: dict[str, Any]) -> dict[str, Any]:
    """Creation kwargs with every text and score in a disguise."""
    return {name: swap_values(value, disguising(data)) for name, value in values.items()}
