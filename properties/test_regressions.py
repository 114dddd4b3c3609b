"""Bugs the machines found, each as its smallest reproduction, on both backends."""

from __future__ import annotations

import uuid

import pytest
from redis.exceptions import ResponseError

from limpyd import fields, model
from limpyd.backends import FakeBackend
from limpyd.contrib.collection import SORTED_SCORE, ExtendedCollectionManager
from limpyd.database import RedisDatabase
from limpyd.exceptions import DoesNotExist, ImplementationError, UniquenessError
from properties.support import default_order


@pytest.mark.parametrize(
    "pks",
    [
        ["1", " 2"],  # Lua's tonumber() skips spaces, ZADD does not
        ["10", "2 "],  # trailing spaces: numeric order, not byte-wise
        ["1", "nan"],  # a number for tonumber(), not a valid score
        ["3", "0x10"],  # hexadecimal for tonumber(): fails on fakeredis, numeric on Redis
        ["2", "10", "inf"],  # a number for tonumber(): numeric order, not byte-wise
    ],
)
def test_default_order_of_pks_that_lua_reads_as_numbers(limpyd_database, pks):
    """Found by the index-consistency machine (PKField pks drawn from any text).

    Without sort(), query.lua orders pks numerically when Lua's `tonumber` reads all of
    them as numbers, and ZADDs them as scores: pks `tonumber` accepts but ZADD refuses
    make every collection of the model fail with "value is not a valid float"; the others
    are ordered as numbers where the documented order ("numeric when every pk is a number",
    as limpyd_testing.stateful's oracle implements it) says byte-wise.
    """

    class Thing(model.RedisModel):
        database = limpyd_database
        id = fields.PKField()
        name = fields.StringField(indexable=True)

    for pk in pks:
        Thing(id=pk, name="x")
    assert list(Thing.collection()) == default_order(pks)
    assert list(Thing.collection(name="x")) == default_order(pks)


def test_unique_together_with_text_that_is_not_canonical(limpyd_database):
    """Found while writing the uniqueness machine.

    `'\\udcc3\\udca9'` (two lone surrogates) is stored as the bytes of `'é'`: both are the
    same value for Redis, and for every index. But the `unique_together` key is built from
    the text as given, with its length in code points (`2:` vs `1:`), so the same pair of
    values gets two keys and is held twice.
    """

    class Place(model.RedisModel):
        database = limpyd_database
        unique_together = [("city", "name")]
        city = fields.InstanceHashField()
        name = fields.InstanceHashField()

    first = Place(city="\udcc3\udca9", name="x")
    assert first.city.hget() == "é"
    with pytest.raises(UniquenessError):
        Place(city="é", name="x")


def test_storing_an_empty_collection(limpyd_database):
    """Found by the collection machine: `store()` of a collection whose result is empty
    writes no key (Redis has no empty list), so the stored collection it returns raised
    DoesNotExist ("expired or was deleted") instead of being empty. It knows it is empty;
    `from_stored` of its key, which does not exist, raises DoesNotExist (decisions: Coming
    from redis-limpyd, Collections)."""

    class Item(model.RedisModel):
        database = limpyd_database
        collection_manager = ExtendedCollectionManager
        name = fields.InstanceHashField(indexable=True)

    Item(name="a")
    stored = Item.collection(name="b").store(ttl=None)
    assert list(stored) == [] and not limpyd_database.client.exists(stored.stored_key)
    with pytest.raises(DoesNotExist, match="held an empty result"):
        list(Item.collection().from_stored(stored.stored_key))


def test_exclude_with_an_all_filter(limpyd_database):
    """Found by the collection machine: `exclude(field__all=[...])` with other than one
    value fails with a ResponseError ("Wrong number of args calling Redis command from
    script", "'for' limit must be a number"): `_expression` counts the filters of the
    excluded group (`len(excluded)`), not the sources they make (`__all` makes one per
    value)."""

    class Item(model.RedisModel):
        database = limpyd_database
        num = fields.StringField(indexable=True)
        tags = fields.SetField(indexable=True)

    Item(num="1", tags=["a"])
    Item(num="2", tags=["a", "b"])
    assert list(Item.collection().exclude(tags__all=["a", "b"])) == ["1"]
    assert list(Item.collection().exclude(num="1", tags__all=["a", "b"])) == ["1", "2"]
    assert list(Item.collection().exclude(num="2", tags__all=["a", "b"])) == ["1"]
    assert list(Item.collection().exclude(tags__all=[])) == []  # all of nothing: everyone
    assert list(Item.collection().exclude(num="1", tags__all=[])) == ["2"]


def test_storing_a_collection_with_scores(limpyd_database):
    """Found by the collection machine: `store()` keeps the output settings, so storing a
    collection sorted `by_score` whose values include `sorted_score` writes the key, then
    the stored collection it returns raises ImplementationError ("sorted_score needs a
    collection sorted with sort(by_score=...)") when read. Either store() refuses before
    writing anything, or the stored collection gives the same rows."""

    class Item(model.RedisModel):
        database = limpyd_database
        collection_manager = ExtendedCollectionManager
        name = fields.InstanceHashField(indexable=True)
        ranking = fields.SortedSetField()

    first = Item(name="a", ranking={"1": 2.5})
    Item(name="b")
    collection = Item.collection().sort(by_score=first.ranking).values("pk", SORTED_SCORE)
    rows = list(collection)
    before = set(limpyd_database.scan_keys())
    try:
        stored = collection.store(ttl=None)
    except ImplementationError:
        assert set(limpyd_database.scan_keys()) == before
    else:
        assert list(stored) == rows


@pytest.mark.parametrize(
    "start, amount, fake_result",
    [
        ("1000", 0.1, ("1000.1", "1000.1")),
        ("980730276949858", 0.1, ("980730276949858.1", "980730276949858.1")),
        ("0x10", 0.5, ("error", "ERR value is not a valid float")),
        ("1e400", 0.5, ("error", "ERR value is not a valid float")),
    ],
)
def test_fake_float_increments_known_difference(start, amount, fake_result):
    """Found by the parity machine, documented as a known difference (docs/decisions.md):
    Redis parses INCRBYFLOAT operands with strtold and adds in long double (so
    '1000' + 0.1 gives '1000.09999999999999998', and it takes hexadecimal and 1e400); the
    fake server adds exact decimals and refuses what a double cannot hold. Both agree on
    decimal values of ordinary magnitude (see tests/test_database.py)."""
    name = f"limpyd-regression-{uuid.uuid4().hex}"
    client = RedisDatabase(backend=FakeBackend(name=name)).client
    try:
        client.set("k", start)
        try:
            outcome = (str(client.incrbyfloat("k", amount)), client.get("k"))
        except ResponseError as error:
            outcome = ("error", str(error))
        assert outcome[0] == fake_result[0] or outcome[0].rstrip("0") == fake_result[0]
        assert outcome[1] == fake_result[1] or fake_result[0] == "error"
    finally:
        FakeBackend.drop_server(name)


@pytest.mark.parametrize(
    "values, fake_result",
    [
        (["1_000", "2"], ("ok", ["2", "1_000"])),  # Redis: an error (strtod stops at '_')
        (["0x10", "2"], ("error", "One or more scores can't be converted into double")),
        (["10", "-2.5", "1e1"], ("ok", ["-2.5", "10", "1e1"])),  # both: ties by the value
    ],
)
def test_fake_numeric_sort_known_difference(values, fake_result):
    """Found by the parity machine, documented as a known difference (docs/decisions.md): a
    numeric SORT reads values with strtod on Redis (hexadecimal taken, '1_000' refused) and
    with Python's float on the fake (the reverse); they agree on plain decimals."""
    name = f"limpyd-regression-{uuid.uuid4().hex}"
    client = RedisDatabase(backend=FakeBackend(name=name)).client
    try:
        client.rpush("k", *values)
        try:
            outcome = ("ok", client.sort("k"))
        except ResponseError as error:
            outcome = ("error", str(error))
        assert outcome == fake_result
    finally:
        FakeBackend.drop_server(name)
