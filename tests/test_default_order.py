"""The default order of a collection is computed in two places: the query script sorts
when it must pick a slice, and `collection.default_order` sorts a whole result in Python
(cheaper). Both must give the same order for any pks: canonical integers of any length,
decimal numbers (ties byte-wise), and anything else byte-wise, NUL and non-UTF-8 bytes
included."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from limpyd import fields, model
from limpyd.collection import default_order

NUMBER_LIKE = [
    "0", "-0", "00", "7", "-7", "+7", "10", "9" * 30, "-" + "9" * 30, "1e3", "1E3", "1000",
    ".5", "5.", "0.5", "-.5", "1e400", "-1e400", "1_0", " 1", "1 ", "0x10", "inf", "nan",
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


def test_the_default_order_by_kind_of_pk():
    assert default_order(["10", "9", "-1", "0", "9" * 20]) == ["-1", "0", "9", "10", "9" * 20]
    assert default_order(["1e3", "2", ".5", "1000"]) == [".5", "2", "1000", "1e3"]
    assert default_order(["b", "10", "9", "a\x00"]) == ["10", "9", "a\x00", "b"]
    assert default_order(["\udcff", "\ue000", "z"]) == ["z", "\ue000", "\udcff"]
    assert default_order(["1", "3", "2"], desc=True) == ["3", "2", "1"]
    assert default_order(HUGE_NEGATIVES) == [HUGE_NEGATIVES[1], HUGE_NEGATIVES[0], "-1"]
