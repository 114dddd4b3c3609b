"""The model of the HashField modifiers (HSET with a mapping, HMSET, HSETNX, HDEL, HINCRBY...):
each draws a call and predicts its reply and the field's new state."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st
from redis.exceptions import ResponseError

from limpyd_testing.stateful.commands.base import MAX_ITEMS, SMALL, Op, when_empty
from limpyd_testing.stateful.values import as_decimal, as_integer, float_text, not_a_number


def hash_op(
    data: st.DataObject,
    old: dict[str, str],
    texts: st.SearchStrategy[str],
    keys: st.SearchStrategy[str],
) -> Op:
    names = ["hset", "hset_mapping", "hmset", "hsetnx", "hdel", "hincrby", "hincrbyfloat"]
    names = when_empty(names, old, ["hset", "hset_mapping", "hmset", "hincrby", "hdel"])
    name = data.draw(st.sampled_from(names), label="modifier")
    if name in ("hset_mapping", "hmset"):
        mapping = data.draw(
            st.dictionaries(keys, texts, min_size=1, max_size=MAX_ITEMS), label="mapping"
        )
        new = {**old, **mapping}
        if name == "hmset":
            return Op("hmset", (mapping,), new=new, reply=True)
        return Op("hset", kwargs={"mapping": mapping}, new=new, reply=len(set(mapping) - set(old)))
    if name == "hdel":
        chosen = data.draw(st.lists(keys, min_size=1, max_size=MAX_ITEMS), label="keys")
        new = {k: v for k, v in old.items() if k not in chosen}
        return Op(name, tuple(chosen), new=new, reply=len(set(chosen) & set(old)))
    key = data.draw(keys, label="key")
    current = old.get(key)
    if name == "hincrby":
        amount = data.draw(SMALL, label="amount")
        base = as_integer(current)
        if base is not None:
            return Op(
                name, (key, amount), new={**old, key: str(base + amount)}, reply=base + amount
            )
        if not_a_number(current):
            return Op(name, (key, amount), error=ResponseError)
        name = "hset"
    if name == "hincrbyfloat":
        amount_float = data.draw(st.integers(-40, 40), label="quarters") / 4
        base_decimal = as_decimal(current)
        if base_decimal is not None:
            text = float_text(base_decimal + Decimal(repr(amount_float)))
            return Op(name, (key, amount_float), new={**old, key: text}, reply=float(text))
        if not_a_number(current):
            return Op(name, (key, amount_float), error=ResponseError)
        name = "hset"
    v = data.draw(texts, label="value")
    if name == "hsetnx":
        new = old if current is not None else {**old, key: v}
        return Op(name, (key, v), new=new, reply=lambda r, was=current is None: bool(r) == was)
    return Op("hset", (key, v), new={**old, key: v}, reply=int(current is None))
