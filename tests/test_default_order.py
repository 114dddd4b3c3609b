"""The default order of a collection is computed in two places: the query script sorts
when it must pick a slice, and `collection.default_order` sorts a whole result in Python
(cheaper). Both must give the same order for any pks: canonical integers of any length,
decimal numbers (ties byte-wise; not infinities), and anything else byte-wise, NUL and
non-UTF-8 bytes included."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from limpyd import fields, model
from limpyd.collection import default_order
from limpyd.contrib.collection import ExtendedCollectionManager
from limpyd.exceptions import RefusedValueError

NUMBER_LIKE = [
    "0", "-0", "00", "7", "-7", "+7", "10", "9" * 30, "-" + "9" * 30, "1e3", "1E3", "1000",
    ".5", "5.", "0.5", "-.5", "1e400", "-1e400", "1_0", " 1", "1 ", "0x10", "inf", "nan",
    "-", "--1", "1-2", "1\n2", "1" * 15, "1" * 16, "-" + "9" * 15, "-" + "9" * 16, "0\n",
    "-INF", "+Inf", "infinity", "-nan",
]  # fmt: skip
#: Integers a double cannot tell apart, whose text order is not their order.
HUGE_NEGATIVES = ["-" + "9" * 20 + "0", "-" + "9" * 20 + "1", "-1"]
pks = st.lists(
    st.one_of(
        st.sampled_from(NUMBER_LIKE),
        st.integers(-(10**20), 10**20).map(str),
        st.text(min_size=1, max_size=6),
        st.binary(min_size=1, max_size=4).map(lambda b: b.decode("utf-8", "surrogateescape")),
    ),
    min_size=0,
    max_size=12,
    unique=True,
)


@pytest.fixture
def Thing(db):
    class Thing(model.RedisModel):
        database = db
        name = fields.PKField()
        kind = fields.InstanceHashField(indexable=True)

    return Thing


@pytest.fixture
def ExtThing(db):
    class ExtThing(model.RedisModel):
        database = db
        collection_manager = ExtendedCollectionManager
        name = fields.PKField()
        kind = fields.InstanceHashField(indexable=True)
        size = fields.StringField()

    return ExtThing


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(names=pks)
@example(names=HUGE_NEGATIVES)
def test_the_client_and_the_script_order_alike(Thing, names):
    Thing.database.connection.flushdb()
    for name in names:
        Thing(name=name, kind="k")
    sliced = list(Thing.collection(kind="k")[0:])  # a slice: ordered by the script
    assert sorted(sliced) == sorted(names)
    assert list(Thing.collection(kind="k")) == sliced
    assert list(Thing.collection()) == sliced
    assert list(Thing.collection().instances()) == [Thing(pk) for pk in sliced]


bounds = st.one_of(st.none(), st.integers(-3, 14))


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    names=pks,
    order=st.sampled_from([None, {}, {"desc": True}, {"by": "-pk"}]),
    window=st.one_of(st.none(), st.tuples(bounds, bounds)),
)
@example(names=["1", "2", "10", "-3"], order=None, window=None)
@example(names=["1" * 15, "1" * 16, "7"], order={}, window=(0, 2))
@example(names=["1\n2", "3", "12"], order=None, window=None)
@example(names=["5", "3"], order=None, window=(1, 1))
@example(names=HUGE_NEGATIVES, order=None, window=None)
@example(names=["10", "9", "0x10"], order=None, window=None)
@example(names=["10", "9", "11"], order={"desc": True}, window=None)
def test_values_read_and_sorted_by_the_server_keep_the_order(ExtThing, names, order, window):
    """values() of a stored set sorted by pk is read and sorted by one SORT when every pk is
    a short canonical integer: it gives the rows of the pks the script orders itself."""
    ExtThing.database.connection.flushdb()
    for i, name in enumerate(names):
        ExtThing(name=name, kind="k", size=str(i))
    collection = ExtThing.collection(kind="k")
    if order is not None:
        collection = collection.sort(**order)
    sizes = {name: str(i) for i, name in enumerate(names)}

    def part(found: Any) -> list[Any]:
        return list(found[slice(*window)] if window else found)  # no slice: read by SORT

    try:
        expected = part(collection[0:])  # pks: a slice, ordered by the script itself
    except RefusedValueError as error:  # a numeric sort of a pk that is no number
        with pytest.raises(RefusedValueError, match="cannot sort numerically"):
            part(collection.values("pk", "size"))
        assert "cannot sort numerically" in str(error)
        return
    if order is None:
        assert expected == part(default_order(names))
    rows = part(collection.values("pk", "size", "kind"))
    assert rows == [{"pk": pk, "size": sizes[pk], "kind": "k"} for pk in expected]
    assert part(collection.values_list("size", flat=True)) == [sizes[pk] for pk in expected]


@pytest.fixture
def Auto(db):
    class Auto(model.RedisModel):
        database = db
        collection_manager = ExtendedCollectionManager
        id = fields.AutoPKField()
        kind = fields.InstanceHashField(indexable=True)
        size = fields.StringField(indexable=True)

    return Auto


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kept=st.lists(st.booleans(), max_size=14),
    order=st.sampled_from([None, {}, {"desc": True}, {"by": "-pk"}, {"by": "pk"}]),
    window=st.one_of(
        st.none(), st.tuples(bounds, bounds), st.tuples(bounds, bounds, st.sampled_from([-2, 1, 3]))
    ),
    two_filters=st.booleans(),
)
@example(kept=[True] * 12, order=None, window=(0, 1), two_filters=False)
@example(kept=[True] * 12, order={"desc": True}, window=(2, 5), two_filters=False)
@example(kept=[True] * 12, order=None, window=(-3, None), two_filters=False)
@example(kept=[True, False] * 6, order=None, window=(4, 2), two_filters=False)
def test_auto_pks_are_sorted_as_numbers_by_the_server(Auto, kept, order, window, two_filters):
    """An AutoPKField's pks are canonical integers: SORT selects a window of them, pks or
    rows, in the order Python gives their numbers; other windows, and results that are no
    stored set, are ordered by the script alike."""
    Auto.database.connection.flushdb()
    created = [Auto(kind="k", size=f"s{i}") for i in range(len(kept))]
    for instance, keep in zip(created, kept, strict=True):
        if not keep:
            instance.delete()
    desc = bool(order and (order.get("desc") or order.get("by") == "-pk"))
    pks = [int(i.pk.get()) for i, keep in zip(created, kept, strict=True) if keep]
    expected = [str(pk) for pk in sorted(pks, reverse=desc)]

    def collection() -> Any:
        found = Auto.collection(kind="k")
        if two_filters:  # no stored set: the script sorts
            found = found.filter(size__in=[f"s{i}" for i in range(len(kept))])
        return found.sort(**order) if order is not None else found

    part = slice(*window) if window else slice(None)

    def windowed(found: Any) -> list[Any]:
        return list(found[part] if window else found)

    assert windowed(collection()) == expected[part]
    rows = windowed(collection().values("pk", "size"))
    assert rows == [{"pk": pk, "size": f"s{int(pk) - 1}"} for pk in expected[part]]
    for position in (0, -1, len(expected) - 1, len(expected)):
        if -len(expected) <= position < len(expected):
            assert collection()[position] == expected[position]
        else:
            with pytest.raises(IndexError):
                collection()[position]


def test_an_auto_pk_another_client_wrote_is_listed_in_the_default_order(Auto, db):
    """A text in an AutoPKField model's collection (another client's): listed in the default
    order (integers would be first, then bytes), where `int()` raised a bare ValueError."""
    for _ in range(3):
        Auto(kind="k")
    db.client.sadd(Auto._meta.collection_key, "ghost", "10")
    assert list(Auto.collection()) == default_order(["1", "2", "3", "10", "ghost"])
    assert list(Auto.collection().sort(desc=True)) == default_order(
        ["1", "2", "3", "10", "ghost"], desc=True
    )


def test_the_default_order_by_kind_of_pk():
    assert default_order(["10", "9", "-1", "0", "9" * 20]) == ["-1", "0", "9", "10", "9" * 20]
    assert default_order(["1e3", "2", ".5", "1000"]) == [".5", "2", "1000", "1e3"]
    assert default_order(["b", "10", "9", "a\x00"]) == ["10", "9", "a\x00", "b"]
    assert default_order(["\udcff", "\ue000", "z"]) == ["z", "\ue000", "\udcff"]
    assert default_order(["1", "3", "2"], desc=True) == ["3", "2", "1"]
    assert default_order(HUGE_NEGATIVES) == [HUGE_NEGATIVES[1], HUGE_NEGATIVES[0], "-1"]
