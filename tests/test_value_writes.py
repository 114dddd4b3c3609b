"""Single-value writes found by the script (Part 10): a StringField's or InstanceHashField's
modifier under indexes that keep the value's text (EqualIndex, TextRangeIndex, no
transform) is one round trip. The script reads the value before the command and after it
and writes their index entries; a unique value the command names is checked first."""

from __future__ import annotations

import pytest
from redis.exceptions import ResponseError

from limpyd import fields, model
from limpyd.contrib.indexes import EndsWithIndex
from limpyd.exceptions import UniquenessError
from limpyd.indexes import EqualIndex, NumberRangeIndex, TextRangeIndex

NASTY = ["", "a\x00b", "\x00", "0", "1e3", "x" * 5000, "é\udcff", "a:b"]


@pytest.fixture
def Item(db):
    class Item(model.RedisModel):
        database = db
        name = fields.StringField(indexes=[EqualIndex, TextRangeIndex])
        code = fields.InstanceHashField(unique=True, indexes=[TextRangeIndex])
        count = fields.StringField(indexable=True)
        hits = fields.InstanceHashField(indexable=True)
        tail = fields.StringField(indexes=[EndsWithIndex, EqualIndex])
        size = fields.StringField(indexes=[NumberRangeIndex])

    return Item


def _one_round_trip(counted) -> None:
    assert counted.round_trips == 1, counted.names


@pytest.mark.parametrize("value", NASTY)
def test_set_replaces_the_entries_of_any_value(Item, value, consistent, limpyd_commands):
    item = Item(name="old\x00value", code="c")
    with limpyd_commands() as counted:
        item.name.set(value)
        item.code.hset(value + "!")
    assert counted.round_trips == 2, counted.names
    consistent(Item)
    assert Item.collection(name=value) == [item.pk.get()]
    assert Item.collection(name__gte=value, name__lte=value) == [item.pk.get()]
    assert Item.collection(code=value + "!") == [item.pk.get()]
    assert Item.collection(name="old\x00value") == []


def test_server_computed_values(Item, consistent, limpyd_commands):
    item = Item(count="1", hits="5", name="ab")
    for write in (
        lambda: item.count.incr(),
        lambda: item.count.incrby(10),
        lambda: item.count.decr(),
        lambda: item.hits.hincrby(3),
        lambda: item.hits.hincrbyfloat(0.5),
        lambda: item.name.append("\x00c"),
        lambda: item.name.setrange(0, "z"),
        lambda: item.name.getset("new"),
        lambda: item.name.setnx("ignored"),
        lambda: item.name.getdel(),
        lambda: item.name.setnx("back"),
        lambda: item.hits.hsetnx("ignored"),
    ):
        with limpyd_commands() as counted:
            write()
        _one_round_trip(counted)
        consistent(Item)
    assert item.count.get() == "11" and Item.collection(count="11") == [item.pk.get()]
    assert item.name.get() == "back" and Item.collection(name="back") == [item.pk.get()]
    assert Item.collection(hits="8.5") == [item.pk.get()]


def test_a_refused_command_changes_nothing(Item, unchanged):
    """Redis refuses the command, the first write of the script: nothing is written (its
    error passes through, as for a field without indexes)."""
    item = Item(name="not a number", hits="x")
    with unchanged(), pytest.raises(ResponseError, match="not an integer"):
        item.name.incr()
    with unchanged(), pytest.raises(ResponseError, match="not an integer"):
        item.hits.hincrby(1)


def test_unique_values_are_checked_before_any_write(Item, unchanged, limpyd_commands):
    Item(code="taken")
    item = Item(code="mine", name="n")
    with unchanged(), pytest.raises(UniquenessError):
        item.code.hset("taken")
    with limpyd_commands() as counted:
        item.code.hset("mine")  # its own value: no conflict
    _one_round_trip(counted)
    assert Item.collection(code="mine") == [item.pk.get()]


def test_indexes_that_change_the_value_read_it_first(Item, consistent, limpyd_commands):
    """A reversed (EndsWithIndex) or parsed (NumberRangeIndex) value: two round trips."""
    item = Item(tail="abc", size="3")
    for write in (lambda: item.tail.set("xyz"), lambda: item.size.set("4")):
        with limpyd_commands() as counted:
            write()
        assert counted.round_trips == 2, counted.names
    consistent(Item)
    assert Item.collection(tail__endswith="yz") == [item.pk.get()]
    assert Item.collection(size__gt=3) == [item.pk.get()]


def test_deletions_find_every_value_in_the_script(db, consistent, limpyd_commands):
    """Deleting a field or an instance removes the entries of each member, item or value
    the script reads there: one round trip, number-range members included (removing one
    needs no score)."""

    class Bag(model.RedisModel):
        database = db
        tags = fields.SetField(indexes=[EqualIndex, TextRangeIndex])
        ranks = fields.SortedSetField(indexable=True)
        sizes = fields.ListField(indexes=[NumberRangeIndex])
        weight = fields.StringField(indexes=[NumberRangeIndex])
        label = fields.InstanceHashField(indexable=True)

    values = dict(tags=["a\x00b", "", "x" * 3000], ranks={"m\x00": 1.0, "n": 2.0})
    bags = [Bag(**values, sizes=["1", "1e3", "1", "-0.5"], weight="7", label="l") for _ in range(2)]
    with limpyd_commands() as counted:
        bags[0].tags.delete()
        bags[0].sizes.delete()
        bags[0].weight.delete()
        bags[1].delete()
    assert counted.round_trips == 4, counted.names
    consistent(Bag)
    assert Bag.collection(tags="a\x00b") == [] and Bag.collection(sizes__gt=0) == []
    assert Bag.collection(ranks="n") == [bags[0].pk.get()]


def test_a_unique_number_is_read_before_it_is_deleted(db, consistent, limpyd_commands):
    """A unique NumberRangeIndex keeps an exact-value set named by the parsed number, which
    the script cannot derive from the text: deleting it reads the value first."""

    class Code(model.RedisModel):
        database = db
        code = fields.StringField(indexes=[NumberRangeIndex], unique=True)

    codes = [Code(code="1e3"), Code(code="-0.5")]
    with limpyd_commands() as counted:
        codes[0].code.delete()
        codes[1].delete()
    assert counted.round_trips == 4, counted.names
    consistent(Code)
    assert Code(code="1000").code.get() == "1000"


@pytest.mark.parametrize("condition", [{"ifeq": "a"}, {"ifeq": "zz"}, {"ifne": "b"}, {"nx": True}])
def test_a_conditional_set_of_an_indexed_field_keeps_its_index_exact(db, consistent, condition):
    """SET IFEQ/IFNE (Redis 8.4) writes only if the value matches: its index entries cannot
    be planned from the new value alone, as for NX/XX. Where the server refuses the option
    (Redis before 8.4, fakeredis) nothing is written; where it runs, the index follows."""

    class Doc(model.RedisModel):
        database = db
        title = fields.StringField(indexable=True, unique=True)

    doc = Doc(title="a")
    try:
        written = doc.title.set("b", **condition)
    except ResponseError:  # an option this server does not know
        written = None
    value = doc.title.get()
    assert value == ("b" if written else "a")
    assert Doc.collection(title=value) == ["1"]
    assert Doc.collection(title="a" if value == "b" else "b") == []
    consistent(Doc)
