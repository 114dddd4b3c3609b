"""The model of the ListField modifiers (pushes, pops, LSET, LINSERT, LREM, LTRIM):
each draws a call and predicts its reply and the field's new state."""

from __future__ import annotations

from hypothesis import strategies as st
from redis.exceptions import ResponseError

from limpyd_testing.stateful.commands.base import MAX_ITEMS, Op, choices, when_empty
from limpyd_testing.stateful.values import redis_range

#: The modifiers that only remove items.
SHORTENING = ("lpop", "rpop", "lpop_count", "rpop_count", "ltrim", "lrem")


def list_op(
    data: st.DataObject,
    kind: str,
    old: tuple[str, ...],
    texts: st.SearchStrategy[str] | None,
    *,
    shorten: bool = False,
) -> Op:
    """A modifier of a list holding `old`; with `shorten`, one that only removes items."""
    names = list(SHORTENING)
    if texts is not None and not shorten:
        names += ["rpush", "lpush", "rpushx", "lpushx", "lset", "linsert"]
    names = when_empty(names, old, ["rpush", "lpush", "lpushx", "rpop"])
    name = data.draw(st.sampled_from(names), label="modifier")
    n = len(old)
    if name in ("rpush", "lpush", "rpushx", "lpushx"):
        values = tuple(
            # type-ignored: texts is None only for a related field without pks: not drawn then
            data.draw(st.lists(texts, min_size=1, max_size=MAX_ITEMS), label="values")  # type: ignore[arg-type]
        )
        if name.endswith("x") and not old:
            return Op(name, values, reply=0)
        new = old + values if name.startswith("r") else values[::-1] + old
        return Op(name, values, new=new, reply=len(new))
    if name in ("lpop", "rpop"):
        if not old:
            return Op(name, reply=None)
        return Op(
            name,
            new=old[1:] if name == "lpop" else old[:-1],
            reply=old[0] if name == "lpop" else old[-1],
        )
    if name in ("lpop_count", "rpop_count"):
        method = name[:4]
        count = data.draw(st.integers(1, 3), label="count")
        if not old:
            return Op(method, (count,), reply=None)
        if method == "lpop":
            return Op(method, (count,), new=old[count:], reply=list(old[:count]))
        return Op(method, (count,), new=old[: max(n - count, 0)], reply=list(old[::-1][:count]))
    if name == "ltrim":
        start = data.draw(st.integers(-4, 4), label="start")
        end = data.draw(st.integers(-4, 4), label="end")
        return Op(name, (start, end), new=old[redis_range(n, start, end)], reply=True)
    if name == "lrem":
        count = data.draw(st.integers(-2, 2), label="count")
        v = data.draw(choices(old, texts), label="value")
        positions = [i for i, item in enumerate(old) if item == v]
        if count > 0:
            positions = positions[:count]
        elif count < 0:
            positions = positions[count:]
        new = tuple(item for i, item in enumerate(old) if i not in set(positions))
        return Op(name, (count, v), new=new, reply=len(positions))
    if name == "lset":
        index = data.draw(st.integers(-n - 1, n), label="index")
        # type-ignored: texts is None only for a related field without pks: not drawn then
        v = data.draw(texts, label="value")  # type: ignore[arg-type]
        if not -n <= index < n:
            return Op(name, (index, v), error=ResponseError)
        new_list = list(old)
        new_list[index] = v
        return Op(name, (index, v), new=tuple(new_list), reply=True)
    assert name == "linsert", name
    where = data.draw(st.sampled_from(["BEFORE", "AFTER"]), label="where")
    pivot = data.draw(choices(old, texts), label="pivot")
    # type-ignored: texts is None only for a related field without pks: not drawn then
    v = data.draw(texts, label="value")  # type: ignore[arg-type]
    if not old:
        return Op(name, (where, pivot, v), reply=0)
    if pivot not in old:
        return Op(name, (where, pivot, v), reply=-1)
    at = old.index(pivot) + (where == "AFTER")
    new = (*old[:at], v, *old[at:])
    return Op(name, (where, pivot, v), new=new, reply=len(new))
