"""A window of a collection sorted by a text (alpha, one key) is read cheaply, never by
sorting the whole result in Lua: from the field's TextRangeIndex in its own order (ZRANGE
by rank) when every instance of the collection has an entry there, else (the first few)
from the values one SORT_RO reads, kept in one pass. Both must give the rows, in the order,
of the script's sort: bytes of the value (a missing one is ''), ties by pk, both reversed
by `desc`, for any values and pks."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from limpyd import fields, model
from limpyd.contrib.indexes import EndsWithIndex
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
        kind = fields.InstanceHashField(indexable=True)
        name = fields.InstanceHashField(indexes=[TextRangeIndex])
        label = fields.StringField(indexes=[TextRangeIndex])
        plain_name = fields.InstanceHashField()
        plain_label = fields.StringField()

    return Entry


def as_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.dictionaries(pks, st.tuples(st.none() | texts, texts, st.booleans()), max_size=9),
    by=st.sampled_from(["name", "label", "plain_name", "plain_label"]),
    reverse=st.booleans(),
    desc=st.booleans(),
    filtered=st.booleans(),
    window=st.one_of(
        st.none(), st.tuples(bounds, bounds), st.tuples(bounds, bounds, st.sampled_from([-1, 2]))
    ),
)
@example(
    rows={"10": ("x", "b", True), "9": ("x", "a", True), "a": ("", "", True)},
    by="name", reverse=False, desc=False, filtered=False, window=(0, 2),
)  # fmt: skip
@example(
    rows={"10": ("x", "b", True), "9": ("x", "a", True), "a": ("", "", True)},
    by="plain_name", reverse=True, desc=False, filtered=False, window=(1, None),
)  # fmt: skip
@example(
    rows={"1": ("a\x00b", "a", True), "2": ("a", "a\x00", True), "3": ("a\x00", "ab", True)},
    by="plain_label", reverse=False, desc=True, filtered=True, window=(0, 3),
)  # fmt: skip
@example(
    rows={"1": (None, "b", True), "2": ("a", "a", True), "3": ("", "c", False)},
    by="name", reverse=False, desc=False, filtered=False, window=(0, 1),
)  # fmt: skip
@example(
    rows={"1": (None, "b", True), "2": ("a", "a", True), "3": ("", "c", True)},
    by="plain_name", reverse=False, desc=True, filtered=True, window=(1, 3),
)  # fmt: skip
@example(
    rows={"d": ("x", "", True), "c": ("x", "", True), "b": ("w", "", True), "a": ("x", "", True)},
    by="plain_name", reverse=False, desc=False, filtered=False, window=(0, 4),
)  # fmt: skip
@example(
    rows={"a": ("x", "", True), "b": ("x", "", True), "c": ("y", "", True), "d": ("x", "", True)},
    by="plain_name", reverse=True, desc=False, filtered=True, window=(0, 4),
)  # fmt: skip
def test_a_window_sorted_by_a_text_is_the_sorted_window(
    Entry, rows, by, reverse, desc, filtered, window
):
    Entry.database.connection.flushdb()
    for pk, (name, label, kept) in rows.items():
        values: dict[str, Any] = {"kind": "k" if kept else "x", "label": label}
        values["plain_label"] = label
        if name is not None:
            values["name"] = values["plain_name"] = name
        Entry(key=pk, **values)
    chosen = [pk for pk, row in rows.items() if row[2] or not filtered]
    column = {pk: (row[0] if "name" in by else row[1]) for pk, row in rows.items()}
    expected = sorted(
        chosen,
        key=lambda pk: (as_bytes(column[pk] or ""), as_bytes(pk)),
        reverse=reverse != desc,
    )

    def collection() -> Any:
        found = Entry.collection(kind="k") if filtered else Entry.collection()
        return found.sort(by=("-" if reverse else "") + by, alpha=True, desc=desc)

    part = slice(*window) if window else slice(None)
    assert list(collection()[part] if window else collection()) == expected[part]
    for position in (0, 1, -1):
        if -len(expected) <= position < len(expected):
            assert collection()[position] == expected[position]


@pytest.mark.parametrize("desc", [False, True])
def test_a_window_ending_in_a_long_tie(Entry, desc):
    """SORT reads the window and 16, then 1,024 rows more, to see where the ties of the
    window's last value end; ties that go on past them (or that a sample of the values
    foresees) are read otherwise, and every order is still by pk."""
    rows = [{"key": f"k{i:04d}", "kind": "k", "plain_name": "same"} for i in range(1100)]
    rows += [{"key": f"z{i}", "kind": "k", "plain_name": name} for i, name in enumerate("ab")]
    Entry.create_many(rows)
    pks = sorted(row["key"] for row in rows if row["plain_name"] == "same")
    found = Entry.collection(kind="k").sort(by="plain_name", alpha=True, desc=desc)
    if desc:
        assert list(found[:3]) == pks[::-1][:3]
        assert list(found[1098:1101]) == [pks[1], pks[0], "z1"]
    else:
        assert list(found[:5]) == ["z0", "z1", *pks[:3]]
        assert list(found[60:70]) == pks[58:68]  # more than 64: no one-pass selection
        assert list(found[1090:1102]) == pks[1088:]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    values=st.lists(st.none() | texts, min_size=66, max_size=90),
    by=st.sampled_from(["plain_name", "plain_label"]),
    start=st.integers(0, 5),
    stop=st.integers(1, 95),
    desc=st.booleans(),
)
@example(
    values=["a", "a\x00b", "a\x00", None, "", "\x00"] * 11, by="plain_name", start=0, stop=65,
    desc=False,
)  # fmt: skip
@example(
    values=["a", "a\x00b", "a\x00", None, "", "\x00"] * 11, by="plain_label", start=3, stop=66,
    desc=True,
)  # fmt: skip
@example(
    values=["a\x00b", "a", "a\x00"] * 22 + ["b"], by="plain_name", start=1, stop=4, desc=True,
)  # fmt: skip
def test_a_long_window_read_by_redis_sort_is_the_sorted_window(
    Entry, values, by, start, stop, desc
):
    """Windows of a stored set are read with Redis's own SORT ... ALPHA LIMIT, whose order
    only agrees with limpyd's between values of different classes (up to their first NUL,
    '' when missing): the rows up to the end of the last one's class are sorted again."""
    Entry.database.connection.flushdb()
    column = {f"p{i:03d}": value for i, value in enumerate(values)}
    Entry.create_many(
        [
            {"key": pk, "kind": "k", **({} if value is None else {by: value})}
            for pk, value in column.items()
        ]
    )
    expected = sorted(column, key=lambda pk: (as_bytes(column[pk] or ""), pk), reverse=desc)
    found = Entry.collection(kind="k").sort(by=by, alpha=True, desc=desc)
    assert list(found[start:stop]) == expected[start:stop]


class _Lowered(TextRangeIndex):
    """A hand-written index class whose entries are not the values' texts."""

    def normalize(self, value: str) -> str | None:
        normalized = super().normalize(value)
        return None if normalized is None else normalized.lower()


@pytest.mark.parametrize("index", [EndsWithIndex, _Lowered], ids=["endswith", "lowered"])
def test_an_index_not_keeping_the_text_does_not_give_the_sort_order(db, index):
    """Only an index whose entries are the values' texts orders an alpha sort (a reversed
    or lowered entry is another order): the others sort by the values themselves."""

    class Word(model.RedisModel):
        database = db
        name = fields.StringField(indexes=[index])

    for name in ["az", "by", "cx", "B", "C"]:
        Word(name=name)
    names = ["B", "C", "az", "by", "cx"]  # byte order
    ordered = Word.collection().sort(by="name", alpha=True)
    assert [Word(pk).name.get() for pk in ordered] == names
    assert [Word(pk).name.get() for pk in ordered[1:3]] == names[1:3]
    reverse = Word.collection().sort(by="-name", alpha=True)
    assert [Word(pk).name.get() for pk in reverse[0:2]] == names[::-1][0:2]
