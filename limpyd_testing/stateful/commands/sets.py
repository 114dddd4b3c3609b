"""The model of the SetField modifiers (SADD, SREM, SPOP):
each draws a call and predicts its reply and the field's new state."""

from __future__ import annotations

from hypothesis import strategies as st

from limpyd_testing.stateful.commands.base import MAX_ITEMS, Op, choices, when_empty


def set_op(
    data: st.DataObject,
    kind: str,
    old: frozenset[str],
    texts: st.SearchStrategy[str] | None,
) -> Op:
    names = ["srem", "spop", "spop_count"] + (["sadd"] if texts is not None else [])
    names = when_empty(names, old, ["sadd", "spop"])
    name = data.draw(st.sampled_from(names), label="modifier")
    if name == "sadd":
        # type-ignored: texts is None only for a related field without pks: not drawn then
        members = data.draw(st.lists(texts, min_size=1, max_size=MAX_ITEMS), label="members")  # type: ignore[arg-type]
        return Op(name, tuple(members), new=old | set(members), reply=len(set(members) - old))
    if name == "srem":
        members = data.draw(
            st.lists(choices(old, texts), min_size=1, max_size=MAX_ITEMS),
            label="members",
        )
        return Op(name, tuple(members), new=old - set(members), reply=len(set(members) & old))
    if name == "spop":
        return Op(
            "spop",
            new=lambda r: old - {r},
            reply=lambda r: (r is None and not old) or r in old,
        )
    count = data.draw(st.integers(1, 3), label="count")
    return Op(
        "spop",
        (count,),
        new=lambda r: old - set(r or ()),
        reply=lambda r: len(set(r or ())) == min(count, len(old)) and set(r or ()) <= old,
    )
