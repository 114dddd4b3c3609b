"""The model of the SortedSetField modifiers (ZADD with its flags, ZINCRBY, ZREM, ZPOP...,
ZREMRANGEBY...): each draws a call and predicts its reply and the field's new state."""

from __future__ import annotations

from hypothesis import strategies as st

from limpyd_testing import strategies as lst
from limpyd_testing.stateful.commands.base import MAX_ITEMS, Op, choices, when_empty
from limpyd_testing.stateful.values import redis_range, zorder


def zset_op(
    data: st.DataObject,
    kind: str,
    old: dict[str, float],
    texts: st.SearchStrategy[str] | None,
) -> Op:
    names = ["zrem", "zremrangebyscore", "zremrangebyrank", "zpopmin", "zpopmax"]
    if texts is not None:
        names += ["zadd", "zadd_incr", "zincrby"]
    names = when_empty(names, old, ["zadd", "zadd_incr", "zincrby", "zpopmin"])
    name = data.draw(st.sampled_from(names), label="modifier")
    members = choices(old, texts)
    order = zorder(old)
    if name == "zadd":
        mapping = data.draw(
            st.dictionaries(members, lst.scores(), min_size=1, max_size=MAX_ITEMS),
            label="mapping",
        )
        flags = data.draw(
            st.sampled_from([(), ("nx",), ("xx",), ("gt",), ("lt",), ("xx", "gt"), ("xx", "lt")]),
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
        return Op("zadd", (mapping,), options, new=new, reply=added + changed if ch else added)
    if name in ("zadd_incr", "zincrby"):
        member = data.draw(members, label="member")
        amount = float(data.draw(st.integers(-4, 4), label="amount")) / 2
        total = old.get(member, 0.0) + amount
        if name == "zincrby":
            return Op(name, (amount, member), new={**old, member: total}, reply=total)
        flags = data.draw(st.sampled_from([(), ("nx",), ("xx",)]), label="flags")
        exists = member in old
        if ("nx" in flags and exists) or ("xx" in flags and not exists):
            return Op(
                "zadd",
                ({member: amount},),
                {"incr": True, **dict.fromkeys(flags, True)},
                reply=None,
            )
        return Op(
            "zadd",
            ({member: amount},),
            {"incr": True, **dict.fromkeys(flags, True)},
            new={**old, member: total},
            reply=total,
        )
    if name == "zrem":
        chosen = data.draw(st.lists(members, min_size=1, max_size=MAX_ITEMS), label="members")
        new = {m: s for m, s in old.items() if m not in chosen}
        return Op(name, tuple(chosen), new=new, reply=len(set(chosen) & set(old)))
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
        return Op(name, args, new=new, reply=len(old) - len(new))
    if name == "zremrangebyrank":
        start = data.draw(st.integers(-4, 4), label="start")
        end = data.draw(st.integers(-4, 4), label="end")
        removed = {m for m, _ in order[redis_range(len(order), start, end)]}
        new = {m: s for m, s in old.items() if m not in removed}
        return Op(name, (start, end), new=new, reply=len(removed))
    count = data.draw(st.none() | st.integers(1, 3), label="count")
    taken = order if name == "zpopmin" else order[::-1]
    taken = taken[: 1 if count is None else count]
    new = {m: s for m, s in old.items() if m not in dict(taken)}
    return Op(name, () if count is None else (count,), new=new, reply=list(taken))
