"""A window of the whole collection sorted by a text field with a TextRangeIndex is read in
the index's own order (ZRANGE by rank) when every instance has an entry there: the same
rows, in the same order, as the script's sort (bytes of the value, ties by pk, both
reversed by `desc`), for any values and pks."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from limpyd import fields, model
from limpyd.indexes import TextRangeIndex

texts = st.one_of(
    st.sampled_from(["", "\x00", "a\x00", "a\x00b", "a", "ab", "10", "9", "1e3", "\udcff", "é"]),
    st.text(max_size=4),
)
pks = st.one_of(
    st.sampled_from(["1", "2", "10", "9", "a", "a\x00", "\udcfe"]), st.text(min_size=1, max_size=3)
)
bounds = st.one_of(st.none(), st.integers(-4, 9))


@pytest.fixture
def Entry(db):
    class Entry(model.RedisModel):
        database = db
        key = fields.PKField()
        name = fields.InstanceHashField(indexes=[TextRangeIndex])
        label = fields.StringField(indexes=[TextRangeIndex])

    return Entry


def as_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.dictionaries(pks, st.tuples(st.none() | texts, texts), max_size=9),
    by=st.sampled_from(["name", "-name", "label", "-label"]),
    desc=st.booleans(),
    window=st.one_of(st.none(), st.tuples(bounds, bounds), st.tuples(bounds, bounds, st.just(2))),
)
@example(
    rows={"10": ("x", "b"), "9": ("x", "a"), "a": ("", "")}, by="name", desc=False, window=(0, 2)
)
@example(
    rows={"10": ("x", "b"), "9": ("x", "a"), "a": ("", "")},
    by="-name",
    desc=False,
    window=(1, None),
)
@example(
    rows={"1": ("a\x00b", "a"), "2": ("a", "a\x00"), "3": ("a\x00", "ab")},
    by="label",
    desc=True,
    window=(0, 3),
)
@example(rows={"1": (None, "b"), "2": ("a", "a")}, by="name", desc=False, window=(0, 1))
def test_a_window_read_from_the_index_is_the_sorted_window(Entry, rows, by, desc, window):
    Entry.database.connection.flushdb()
    for pk, (name, label) in rows.items():
        values = {"label": label} if name is None else {"name": name, "label": label}
        Entry(key=pk, **values)
    field = by.removeprefix("-")
    reverse = by.startswith("-") != desc
    column = {pk: (value[0] if field == "name" else value[1]) for pk, value in rows.items()}
    expected = sorted(
        rows, key=lambda pk: (as_bytes(column[pk] or ""), as_bytes(pk)), reverse=reverse
    )
    part = slice(*window) if window else slice(None)
    collection = Entry.collection().sort(by=by, alpha=True, desc=desc)
    assert list(collection[part] if window else collection) == expected[part]
    for position in (0, -1, 2):
        if -len(expected) <= position < len(expected):
            assert (
                Entry.collection().sort(by=by, alpha=True, desc=desc)[position]
                == expected[position]
            )
