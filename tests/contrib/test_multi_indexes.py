"""Multi-indexes (manual 2.9): `MultiIndexes.compose` and the ready date/time indexes, on
single-value, InstanceHashField, multi-value and hash fields, with writes, deletes, uniqueness
and index maintenance, each checked against the integrity checker."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from limpyd import fields, model
from limpyd.contrib.indexes import (
    DateIndex,
    DateIndexParts,
    DateRangeIndex,
    DateSimpleTimeIndex,
    DateTimeIndex,
    MultiIndexes,
    SimpleDateTimeIndex,
    TimeIndex,
    TimeIndexParts,
    TimeRangeIndex,
)
from limpyd.exceptions import ImplementationError, UniquenessError
from limpyd.indexes import EqualIndex, NumberRangeIndex, TextRangeIndex
from limpyd_testing import integrity


def index_keys(db, field="at"):
    """The index keys of a field, without the model prefix."""
    return sorted(k.split(":idx:", 1)[1] for k in db.scan_keys() if f":idx:{field}:" in k)


def identities(Model, name="at"):
    return [index.identity for index in Model.get_field(name).indexes]


def found(Model, **filters):
    return sorted(Model.collection(**filters), key=int)


# compose ------------------------------------------------------------------------------------


def test_compose_makes_a_new_class():
    EqualAndRangeIndex = MultiIndexes.compose([EqualIndex, TextRangeIndex])
    assert issubclass(EqualAndRangeIndex, MultiIndexes)
    assert EqualAndRangeIndex is not MultiIndexes
    assert EqualAndRangeIndex.__name__ == "MultiIndexes"
    assert EqualAndRangeIndex.composed == (EqualIndex, TextRangeIndex)
    assert MultiIndexes.composed == ()
    assert EqualAndRangeIndex.key is None and EqualAndRangeIndex.transform is None

    def upper(value):
        return value.upper()

    Named = MultiIndexes.compose([EqualIndex], name="Named", key="k", transform=upper)
    assert Named.__name__ == "Named" and Named.key == "k"
    assert Named.transform("ab") == "AB"
    assert [c.__name__ for c in DateTimeIndex.leaf_classes()] == [
        "FullDateTimeRangeIndex",
        "DateRangeIndex",
        "YearIndex",
        "MonthIndex",
        "DayIndex",
        "TimeRangeIndex",
        "HourIndex",
        "MinuteIndex",
        "SecondIndex",
    ]


def test_equal_and_range_index(db, consistent):
    """The manual's first example: one field, an EqualIndex and a TextRangeIndex."""
    EqualAndRangeIndex = MultiIndexes.compose([EqualIndex, TextRangeIndex])

    class Person(model.RedisModel):
        database = db
        name = fields.StringField(indexable=True, indexes=[EqualAndRangeIndex])

    leaf_types = [type(index) for index in Person.get_field("name").indexes]
    assert issubclass(leaf_types[0], EqualIndex) and issubclass(leaf_types[1], TextRangeIndex)
    assert identities(Person, "name") == ["equal", "text-range"]
    for name in ["Joe", "Jon", "Emma", "Sue"]:
        Person(name=name)
    assert found(Person, name="Jon") == ["2"]
    assert found(Person, name__in=["Jon", "Sue"]) == ["2", "4"]
    assert found(Person, name__startswith="Jo") == ["1", "2"]
    assert found(Person, name__gt="Jon") == ["4"]
    assert found(Person, name__lte="Jon") == ["1", "2", "3"]
    assert index_keys(db, "name") == [
        "name:equal:Emma",
        "name:equal:Joe",
        "name:equal:Jon",
        "name:equal:Sue",
        "name:text-range",
    ]
    consistent(Person)
    Person(1).name.set("Zoe")
    assert found(Person, name="Joe") == [] and found(Person, name__gt="Sue") == ["1"]
    assert "name:equal:Joe" not in index_keys(db, "name")
    consistent(Person)
    Person(2).delete()
    assert found(Person, name__startswith="Jo") == []
    consistent(Person)


def test_compose_transform_runs_before_the_inner_ones(db, consistent):
    calls = []

    def strip(value):
        calls.append(value)
        return value.strip()

    def upper(self, value):  # a `(self, value)` transform gets the leaf index
        assert isinstance(self, EqualIndex)
        return value.upper()

    Index = MultiIndexes.compose(
        [EqualIndex.configure(prefix="up", transform=upper), TextRangeIndex],
        name="Stripped",
        transform=strip,
    )

    class Word(model.RedisModel):
        database = db
        word = fields.StringField(indexes=[Index])

    Word(word="  abc ")
    assert "  abc " in calls
    assert found(Word, word__up="ABC") == ["1"]
    assert found(Word, word="abc") == ["1"]
    assert found(Word, word="  abc ") == []  # filter values are not transformed
    assert found(Word, word__up="  ABC ") == []
    consistent(Word)


def test_transforms_chain_through_nested_compositions(db, consistent):
    Inner = MultiIndexes.compose(
        [EqualIndex.configure(transform=lambda v: v + "-leaf")],
        transform=lambda v: v + "-inner",
        key="in",
    )
    Outer = MultiIndexes.compose([Inner], transform=lambda v: v + "-outer", key="out")

    class Thing(model.RedisModel):
        database = db
        name = fields.StringField(indexes=[Outer])

    Thing(name="x")
    assert identities(Thing, "name") == ["out/in/equal"]
    assert index_keys(db, "name") == ["name:out/in/equal:x-outer-inner-leaf"]
    assert found(Thing, name="x-outer-inner-leaf") == ["1"]
    consistent(Thing)


def test_a_transform_returning_none_skips_the_value(db, consistent):
    Index = MultiIndexes.compose(
        [EqualIndex, NumberRangeIndex.configure(prefix="n")],
        transform=lambda value: value or None,
    )

    class Item(model.RedisModel):
        database = db
        code = fields.StringField(indexes=[Index])

    Item(code="")
    Item(code="7")
    assert index_keys(db, "code") == ["code:equal:7", "code:number-range+n"]
    assert found(Item, code="") == []
    assert found(Item, code__n__lt=100) == ["2"]
    consistent(Item)
    Item(2).code.set("")
    assert index_keys(db, "code") == []
    consistent(Item)


def test_configure_a_multi_index_replaces_its_transform(db, consistent):
    Upper = MultiIndexes.compose([EqualIndex], name="Upper", transform=lambda v: v.upper())
    Stripped = Upper.configure(transform=lambda v: v.strip(), name="Stripped", key="s")
    assert Stripped.composed == Upper.composed and Stripped.__name__ == "Stripped"
    Keyed = Upper.configure(key="k")  # keeps the transform it does not replace

    class Word(model.RedisModel):
        database = db
        a = fields.StringField(indexes=[Stripped])
        b = fields.StringField(indexes=[Keyed])

    Word(a=" x ", b="y")
    assert found(Word, a="x") == ["1"]  # stripped, not upper-cased
    assert found(Word, a="X") == []
    assert found(Word, b="Y") == ["1"]
    assert identities(Word, "a") == ["s/equal"] and identities(Word, "b") == ["k/equal"]
    consistent(Word)


def test_isinstance_and_repr_of_leaves(db):
    class Event(model.RedisModel):
        database = db
        at = fields.StringField(indexes=[DateTimeIndex])

    year = next(i for i in Event.get_field("at").indexes if i.prefix == "year")
    assert isinstance(year, NumberRangeIndex)
    assert isinstance(year, DateIndexParts) and isinstance(year, DateSimpleTimeIndex)
    assert isinstance(year, DateTimeIndex) and isinstance(year, MultiIndexes)
    assert not isinstance(year, TimeIndexParts) and not isinstance(year, TextRangeIndex)
    assert not isinstance(year, DateIndex)
    assert repr(year) == "<DateTimeIndex.DateSimpleTimeIndex.DateIndexParts.YearIndex of Event.at>"
    assert not isinstance(EqualIndex, MultiIndexes) and not isinstance(1, DateTimeIndex)


# keys -----------------------------------------------------------------------------------------


def test_key_keeps_indexes_of_the_same_class_apart(db, consistent):
    Lower = MultiIndexes.compose(
        [TextRangeIndex, NumberRangeIndex.configure(prefix="size", transform=len)],
        key="lower",
        transform=lambda v: v.lower(),
    )
    Reversed = MultiIndexes.compose(
        [TextRangeIndex.configure(prefix="rev"), TextRangeIndex],
        key="reversed",
        transform=lambda v: v[::-1],
    )

    class Word(model.RedisModel):
        database = db
        word = fields.StringField(indexes=[Lower, Reversed])

    assert identities(Word, "word") == [
        "lower/text-range",
        "lower/number-range+size",
        "reversed/text-range+rev",
        "reversed/text-range",
    ]
    Word(word="Hello")
    Word(word="World")
    assert found(Word, word__startswith="h") == ["1"]  # the first unprefixed leaf answers
    assert found(Word, word__rev__startswith="dl") == ["2"]
    assert found(Word, word__size=5) == ["1", "2"]
    assert index_keys(db, "word") == [
        "word:lower/number-range+size",
        "word:lower/text-range",
        "word:reversed/text-range",
        "word:reversed/text-range+rev",
    ]
    assert db.client.zcard(f"{Word._meta.prefix}:idx:word:reversed/text-range") == 2
    consistent(Word)
    Word(1).word.set("Bye")
    assert found(Word, word__rev__startswith="ol") == []
    assert found(Word, word__size__lt=4) == ["1"]
    consistent(Word)


@pytest.mark.parametrize(
    "indexes",
    [
        [
            MultiIndexes.compose([TextRangeIndex], transform=str.lower),
            MultiIndexes.compose([TextRangeIndex], transform=str.upper),
        ],
        [MultiIndexes.compose([TextRangeIndex, TextRangeIndex.configure(transform=str.upper)])],
        [TextRangeIndex, MultiIndexes.compose([EqualIndex, TextRangeIndex])],
        [DateTimeIndex, DateTimeIndex],
        [DateIndex, DateTimeIndex.configure(key="x"), DateIndexParts],
        [MultiIndexes.compose([EqualIndex], key="a"), EqualIndex.configure(key="a/equal")],
    ],
)
def test_indexes_sharing_keys_are_refused(db, indexes):
    with pytest.raises(ImplementationError, match=r"Model\.f: the indexes .* share"):

        class Model(model.RedisModel):
            database = db
            f = fields.StringField(indexes=indexes)


# the ready date and time indexes ----------------------------------------------------------------

DATETIMES = {
    "1": "2015-12-21 15:16:17",
    "2": "2015-12-22 09:05:00",
    "3": "2014-01-21 15:30:45",
    "4": "2016-06-01 23:59:59.250",  # restricted to 19 characters
    "5": "2015-02-03 00:00:09",
}


#: filter -> what it selects, on a 'YYYY-MM-DD HH:MM:SS' value (v).
DATETIME_FILTERS = {
    "full": [
        ({"at": "2015-12-21 15:16:17"}, lambda v: v[:19] == "2015-12-21 15:16:17"),
        ({"at": "2016-06-01 23:59:59.250"}, lambda v: False),  # stored as 19 characters
        ({"at__gt": "2015-12-21 15:"}, lambda v: v[:19] > "2015-12-21 15:"),
        ({"at__gte": "2015-12-21 15:16:17"}, lambda v: v[:19] >= "2015-12-21 15:16:17"),
        ({"at__lt": "2015-12"}, lambda v: v[:19] < "2015-12"),
        ({"at__lte": "2015-12-22 09:05:00"}, lambda v: v[:19] <= "2015-12-22 09:05:00"),
        ({"at__startswith": "2015"}, lambda v: v.startswith("2015")),
        ({"at__in": ["2014-01-21 15:30:45", "x"]}, lambda v: v == "2014-01-21 15:30:45"),
    ],
    "date": [
        ({"at__date": "2015-12-21"}, lambda v: v[:10] == "2015-12-21"),
        ({"at__date__gt": "2015"}, lambda v: v[:10] > "2015"),
        ({"at__date__lt": "2015-12-22"}, lambda v: v[:10] < "2015-12-22"),
        ({"at__date__startswith": "2015-12"}, lambda v: v.startswith("2015-12")),
    ],
    "time": [
        ({"at__time": "15:16:17"}, lambda v: v[11:19] == "15:16:17"),
        ({"at__time__gt": "15:"}, lambda v: v[11:19] > "15:"),
        ({"at__time__lte": "09:05:00"}, lambda v: v[11:19] <= "09:05:00"),
        ({"at__time__startswith": "15"}, lambda v: v[11:13] == "15"),
    ],
    "date parts": [
        ({"at__year": 2015}, lambda v: v[:4] == "2015"),
        ({"at__year__gte": 2015}, lambda v: int(v[:4]) >= 2015),
        ({"at__month": 12}, lambda v: v[5:7] == "12"),
        ({"at__month__lt": 6}, lambda v: int(v[5:7]) < 6),
        ({"at__day": "21"}, lambda v: v[8:10] == "21"),
        ({"at__day__in": [1, 3]}, lambda v: int(v[8:10]) in (1, 3)),
    ],
    "time parts": [
        ({"at__hour": 15}, lambda v: v[11:13] == "15"),
        ({"at__hour__gt": 10}, lambda v: int(v[11:13]) > 10),
        ({"at__minute__lt": 10}, lambda v: int(v[14:16]) < 10),
        ({"at__second": 0}, lambda v: v[17:19] == "00"),
        ({"at__second__gte": 45}, lambda v: int(v[17:19]) >= 45),
    ],
}

DATE_LEAVES = ["full", "date+date", "number-range+year", "number-range+month", "number-range+day"]

#: index -> (filter groups it answers, the identities of its leaves)
DATETIME_INDEXES = {
    "DateTimeIndex": (
        DateTimeIndex,
        ["full", "date", "time", "date parts", "time parts"],
        [
            *DATE_LEAVES,
            "time+time",
            "number-range+hour",
            "number-range+minute",
            "number-range+second",
        ],
    ),
    "DateSimpleTimeIndex": (
        DateSimpleTimeIndex,
        ["full", "date", "time", "date parts"],
        [*DATE_LEAVES, "time+time"],
    ),
    "SimpleDateTimeIndex": (
        SimpleDateTimeIndex,
        ["full", "date", "time"],
        ["full", "date+date", "time+time"],
    ),
}


def _combine(*groups):
    return [item for group in groups for item in DATETIME_FILTERS[group]]


def _expected(Event, predicate):
    values = {pk: Event(pk).at.get() for pk in Event.collection()}
    return sorted((pk for pk, v in values.items() if v is not None and predicate(v)), key=int)


@pytest.mark.parametrize("name", list(DATETIME_INDEXES))
def test_datetime_indexes(db, consistent, name):
    index, groups, leaves = DATETIME_INDEXES[name]

    class Event(model.RedisModel):
        database = db
        at = fields.StringField(indexable=True, indexes=[index])

    assert identities(Event) == leaves
    for value in DATETIMES.values():
        Event(at=value)
    consistent(Event)

    def check_all():
        for filters, predicate in _combine(*groups):
            expected = _expected(Event, predicate)
            assert found(Event, **filters) == expected, filters
        for group in set(DATETIME_FILTERS) - set(groups):
            for filters, _ in DATETIME_FILTERS[group]:
                # no such prefix: no index answers `at__hour`, `at__hour__gt` is not a filter
                with pytest.raises(
                    (ImplementationError, ValueError), match=f"'{next(iter(filters))}'"
                ):
                    list(Event.collection(**filters))

    check_all()
    # the manual's filters, with their known answers
    assert found(Event, at__gt="2015-12-21 15:") == ["1", "2", "4"]
    assert found(Event, at__date__gt="2015") == ["1", "2", "4", "5"]
    assert found(Event, at__time__gt="15:") == ["1", "3", "4"]
    if "date parts" in groups:
        assert found(Event, at__year=2015) == ["1", "2", "5"]
        assert found(Event, at__year=2015, at__month=12, at__day__gte=22) == ["2"]
    if "time parts" in groups:
        assert found(Event, at__hour=15, at__minute__gt=20) == ["3"]

    # updates move every entry: nothing of the old value stays findable
    Event(1).at.set("2013-07-04 08:01:02")
    Event(4).at.set("2015-12-21 15:16:17")
    consistent(Event)
    assert found(Event, at__date="2016-06-01") == []
    check_all()
    Event(2).delete()
    Event(3).at.delete()
    consistent(Event)
    check_all()
    assert found(Event, at__time="09:05:00") == [] and found(Event, at__date__lt="2014-06") == ["1"]
    for pk in list(Event.collection()):
        Event(pk).delete()
    assert index_keys(db) == []
    consistent(Event)


def test_date_indexes_on_a_date_field(db, consistent):
    class Day(model.RedisModel):
        database = db
        on = fields.StringField(indexes=[DateIndex])
        range_only = fields.StringField(indexes=[DateRangeIndex])
        parts_only = fields.StringField(indexes=[DateIndexParts])

    assert identities(Day, "on") == [
        "date",
        "number-range+year",
        "number-range+month",
        "number-range+day",
    ]
    assert identities(Day, "range_only") == ["date"]
    for value in ["2015-12-21", "2015-01-02", "2016-12-01"]:
        Day(on=value, range_only=value + " 10:00:00", parts_only=value)
    assert found(Day, on__gt="2015-06") == ["1", "3"]
    assert found(Day, on="2015-01-02") == ["2"]
    assert found(Day, on__year=2015) == ["1", "2"]
    assert found(Day, on__month__gte=6) == ["1", "3"]
    assert found(Day, on__day__lte=2) == ["2", "3"]
    assert found(Day, range_only="2016-12-01") == ["3"]  # the time is cut off
    assert found(Day, range_only__lt="2015-12") == ["2"]
    assert found(Day, parts_only__year__gt=2015) == ["3"]
    assert found(Day, parts_only__day=21) == ["1"]
    with pytest.raises(ImplementationError, match="parts_only"):
        list(Day.collection(parts_only="2015-12-21"))
    with pytest.raises(ImplementationError, match="on__hour"):
        list(Day.collection(on__hour=1))
    consistent(Day)
    Day(1).on.set("2017-03-04")
    assert found(Day, on__year=2015) == ["2"] and found(Day, on__month=3) == ["1"]
    consistent(Day)


def test_time_indexes_on_a_time_field(db, consistent):
    class Slot(model.RedisModel):
        database = db
        at = fields.StringField(indexes=[TimeIndex])
        range_only = fields.StringField(indexes=[TimeRangeIndex])
        parts_only = fields.StringField(indexes=[TimeIndexParts])

    assert identities(Slot) == [
        "time",
        "number-range+hour",
        "number-range+minute",
        "number-range+second",
    ]
    for value in ["15:16:17", "09:05:00", "23:59:59"]:
        Slot(at=value, range_only=value + ".5", parts_only=value)
    assert found(Slot, at__gt="15:") == ["1", "3"]
    assert found(Slot, at="09:05:00") == ["2"]
    assert found(Slot, at__hour__lt=10) == ["2"]
    assert found(Slot, at__minute=59) == ["3"]
    assert found(Slot, at__second__in=[0, 17]) == ["1", "2"]
    assert found(Slot, range_only="23:59:59") == ["3"]
    assert found(Slot, parts_only__hour=15) == ["1"]
    consistent(Slot)
    Slot(3).at.set("10:00:00")
    assert found(Slot, at__minute=59) == [] and found(Slot, at__hour__gte=10) == ["1", "3"]
    consistent(Slot)


# other field types ------------------------------------------------------------------------------


def test_instance_hash_field(db, consistent):
    class Meeting(model.RedisModel):
        database = db
        title = fields.InstanceHashField(indexable=True)
        at = fields.InstanceHashField(indexable=True, indexes=[DateTimeIndex])

    Meeting(title="a", at="2015-12-21 15:16:17")
    second = Meeting(title="b", at="2016-01-01 08:00:00")
    assert found(Meeting, at__year=2016, title="b") == ["2"]
    assert found(Meeting, at__hour__gt=12) == ["1"]
    consistent(Meeting)
    second.hmset(at="2015-03-01 20:00:00", title="c")
    assert found(Meeting, at__year=2016) == []
    assert found(Meeting, at__year=2015, at__hour__gt=12) == ["1", "2"]
    consistent(Meeting)
    second.hdel("at")
    assert found(Meeting, at__year=2015) == ["1"]
    consistent(Meeting)
    Meeting(1).delete()
    assert index_keys(db) == []
    consistent(Meeting)


def test_multi_value_field(db, consistent):
    class Trip(model.RedisModel):
        database = db
        days = fields.SetField(indexes=[DateIndex])
        stops = fields.ListField(indexes=[SimpleDateTimeIndex])

    one = Trip(days=["2015-12-21", "2016-01-02"], stops=["2015-12-21 10:00:00"])
    Trip(days=["2015-12-25"], stops=["2015-12-25 09:00:00", "2015-12-25 18:30:00"])
    assert found(Trip, days__year=2016) == ["1"]
    assert found(Trip, days__month=12) == ["1", "2"]
    assert found(Trip, days__day__gt=20) == ["1", "2"]
    assert found(Trip, days__gte="2016") == ["1"]
    assert found(Trip, stops__time__gt="18") == ["2"]
    assert found(Trip, stops__date="2015-12-21") == ["1"]
    consistent(Trip)
    one.days.srem("2016-01-02")
    one.stops.rpush("2016-02-01 19:00:00")
    assert found(Trip, days__year=2016) == []
    assert found(Trip, days__year=2015) == ["1", "2"]
    assert found(Trip, stops__time__gt="18") == ["1", "2"]
    consistent(Trip)
    one.days.sadd("2015-12-25")
    Trip(2).days.srem("2015-12-25")
    assert found(Trip, days="2015-12-25") == ["1"]
    consistent(Trip)


def test_hash_field(db, consistent):
    class Plan(model.RedisModel):
        database = db
        dates = fields.HashField(indexes=[DateIndex])

    Plan(dates={"start": "2015-12-21", "end": "2016-01-03"})
    Plan(dates={"start": "2016-01-01"})
    assert found(Plan, dates__start__year=2016) == ["2"]
    assert found(Plan, dates__end__year=2016) == ["1"]
    assert found(Plan, dates__start__gt="2015-12-22") == ["2"]
    Plan(2).dates.hset("start", "2015-01-01")
    assert found(Plan, dates__start__year=2016) == []
    consistent(Plan)


# uniqueness ------------------------------------------------------------------------------------


def test_uniqueness_is_checked_by_the_first_leaf_only(db, consistent, unchanged):
    class Event(model.RedisModel):
        database = db
        at = fields.StringField(unique=True, indexes=[DateTimeIndex])

    checking = [i.identity for i in Event.get_field("at").indexes if i.handle_uniqueness]
    assert checking == ["full"]
    Event(at="2015-12-21 15:16:17")
    Event(at="2015-12-21 08:00:00")  # the same date
    Event(at="2016-01-01 15:16:17")  # the same time
    with unchanged(), pytest.raises(UniquenessError, match=r"Event\.at"):
        Event(at="2015-12-21 15:16:17")
    with unchanged(), pytest.raises(UniquenessError, match=r"Event\.at"):
        Event(at="2015-12-21 15:16:17.5")  # the same once restricted to date+time
    with unchanged(), pytest.raises(UniquenessError):
        Event(2).at.set("2016-01-01 15:16:17")
    Event(1).at.set("2017-01-01 00:00:00")
    Event(at="2015-12-21 15:16:17")  # free again
    for value in ["2015-12-21 15:16:17", "2015-12-21 08:00:00", "2016-01-01 15:16:17"]:
        assert len(Event.collection(at=value)) == 1
    assert found(Event, at__date="2015-12-21") == ["2", "4"]
    # Indexes exact; a date or a time held twice is not a uniqueness problem.
    assert integrity.check(Event) == []


def test_uniqueness_needs_a_leaf_handling_it(db):
    class Fine(model.RedisModel):
        database = db
        on = fields.StringField(unique=True, indexes=[DateIndex])

    assert [i.identity for i in Fine.get_field("on").indexes if i.handle_uniqueness] == ["date"]
    Fine(on="2015-12-21")
    with pytest.raises(UniquenessError):
        Fine(on="2015-12-21")
    Fine(on="2016-12-21")  # the year parts do not check uniqueness

    for index in [DateIndexParts, DateTimeIndex.configure(handle_uniqueness=False)]:
        with pytest.raises(ImplementationError, match="uniqueness"):

            class Broken(model.RedisModel):
                database = db
                on = fields.StringField(unique=True, indexes=[index])

    Outer = MultiIndexes.compose([DateIndex.configure(handle_uniqueness=False), TextRangeIndex])

    class Nested(model.RedisModel):
        database = db
        on = fields.StringField(unique=True, indexes=[Outer])

    assert [i.identity for i in Nested.get_field("on").indexes if i.handle_uniqueness] == [
        "text-range"
    ]


# maintenance ------------------------------------------------------------------------------------


def test_clean_and_rebuild_indexes(db, consistent):
    class Event(model.RedisModel):
        database = db
        namespace = "m"
        at = fields.StringField()

    values = [f"20{10 + i % 7}-0{1 + i % 9}-1{i % 10} {i % 24:02}:00:0{i % 10}" for i in range(700)]
    for value in values:
        Event(at=value)

    class Event(model.RedisModel):  # the same model, now indexed
        database = db
        namespace = "m"
        at = fields.StringField(indexes=[DateTimeIndex])

    assert found(Event, at__year=2012) == []
    with pytest.raises(AssertionError, match="missing"):  # the integrity error
        consistent(Event)
    assert Event.get_field("at").rebuild_indexes() == 700
    consistent(Event)
    assert len(Event.collection(at__year=2012)) == len([v for v in values if v[:4] == "2012"])
    assert len(Event.collection(at__hour__gte=20)) == len([v for v in values if v[11:13] >= "20"])
    field = Event.get_field("at")

    assert field.clean_indexes(index_class=DateIndexParts) == 3
    assert index_keys(db) == [
        "at:date+date",
        "at:full",
        "at:number-range+hour",
        "at:number-range+minute",
        "at:number-range+second",
        "at:time+time",
    ]
    with pytest.raises(AssertionError, match="missing"):
        consistent(Event)
    assert field.rebuild_indexes(index_class=DateIndexParts) == 700
    consistent(Event)
    assert field.clean_indexes(index_class=NumberRangeIndex) == 6
    assert index_keys(db) == ["at:date+date", "at:full", "at:time+time"]
    assert field.rebuild_indexes(index_class=DateTimeIndex) == 700
    consistent(Event)
    assert field.clean_indexes() == 9
    assert index_keys(db) == []


# errors -----------------------------------------------------------------------------------------


def test_errors(db):
    with pytest.raises(ImplementationError, match="at least one"):
        MultiIndexes.compose([])
    with pytest.raises(ImplementationError, match="not an index class"):
        MultiIndexes.compose([EqualIndex, int])
    with pytest.raises(ImplementationError, match="list of index classes"):
        MultiIndexes.compose(EqualIndex)
    with pytest.raises(ImplementationError, match="list of index classes"):
        MultiIndexes.compose("EqualIndex")
    with pytest.raises(ImplementationError, match="composes no index"):
        MultiIndexes.compose([MultiIndexes])
    with pytest.raises(ImplementationError, match="without ':'"):
        MultiIndexes.compose([EqualIndex], key="a:b")
    with pytest.raises(ImplementationError, match="no prefix of its own"):
        DateTimeIndex.configure(prefix="at")
    with pytest.raises(ImplementationError, match="unknown arguments"):
        DateTimeIndex.configure(bad=1)
    with pytest.raises(ImplementationError, match="composes no index"):

        class Bare(model.RedisModel):
            database = db
            at = fields.StringField(indexes=[MultiIndexes])

    class Event(model.RedisModel):
        database = db
        at = fields.StringField(indexes=[DateTimeIndex])

    with pytest.raises(ImplementationError, match="not instantiated"):
        DateTimeIndex(Event.get_field("at"))
    with pytest.raises(ImplementationError, match="at__year__date"):
        list(Event.collection(at__year__date=1))
    with pytest.raises(ImplementationError, match="at__year__startswith"):
        list(Event.collection(at__year__startswith="20"))


# the manual, as written ----------------------------------------------------------------------


def test_the_manual_definitions_give_the_ready_indexes(db):
    """Section 2.9.2's code, as written (the names broken by the page layout joined), builds
    indexes that behave as those of limpyd.contrib.indexes."""
    import limpyd.contrib.indexes as contrib

    # fmt: off
    DateIndexParts = MultiIndexes.compose([
        NumberRangeIndex.configure(prefix='year', transform=lambda value: value[:4], handle_uniqueness=False, name='YearIndex'),  # noqa: E501
        NumberRangeIndex.configure(prefix='month', transform=lambda value: value[5:7], handle_uniqueness=False, name='MonthIndex'),  # noqa: E501
        NumberRangeIndex.configure(prefix='day', transform=lambda value: value[8:10], handle_uniqueness=False, name='DayIndex'),  # noqa: E501
    ], name='DateIndexParts')
    TimeIndexParts = MultiIndexes.compose([
        NumberRangeIndex.configure(prefix='hour', transform=lambda value: value[0:2], handle_uniqueness=False, name='HourIndex'),  # noqa: E501
        NumberRangeIndex.configure(prefix='minute', transform=lambda value: value[3:5], handle_uniqueness=False, name='MinuteIndex'),  # noqa: E501
        NumberRangeIndex.configure(prefix='second', transform=lambda value: value[6:8], handle_uniqueness=False, name='SecondIndex'),  # noqa: E501
    ], name='TimeIndexParts')
    DateRangeIndex = TextRangeIndex.configure(key='date', transform=lambda value: value[:10], name='DateRangeIndex')  # noqa: E501
    TimeRangeIndex = TextRangeIndex.configure(key='time', transform=lambda value: value[:8], name='TimeRangeIndex')  # noqa: E501
    DateIndex = MultiIndexes.compose([DateRangeIndex, DateIndexParts], name='DateIndex')
    TimeIndex = MultiIndexes.compose([TimeRangeIndex, TimeIndexParts], name='TimeIndex')
    DateSimpleTimeIndex = MultiIndexes.compose([
        TextRangeIndex.configure(key='full', name='FullDateTimeRangeIndex'),
        DateRangeIndex.configure(prefix='date'),
        DateIndexParts,
        TimeRangeIndex.configure(prefix='time', transform=lambda value: value[11:])  # pass only time  # noqa: E501
    ], name='DateSimpleTimeIndex', transform=lambda value: value[:19])  # restrict on date+time
    DateTimeIndex = MultiIndexes.compose([
        DateSimpleTimeIndex,
        TimeIndexParts.configure(transform=lambda value: value[11:]),  # pass only time
    ], name='DateTimeIndex')
    SimpleDateTimeIndex = MultiIndexes.compose([
        TextRangeIndex.configure(key='full', name='FullDateTimeRangeIndex'),
        DateRangeIndex.configure(prefix='date'),
        TimeRangeIndex.configure(prefix='time', transform=lambda value: value[11:])  # pass only time  # noqa: E501
    ], name='SimpleDateTimeIndex', transform=lambda value: value[:19])  # restrict on date+time
    # fmt: on

    manual = dict(locals())
    names = [
        "DateIndexParts", "TimeIndexParts", "DateRangeIndex", "TimeRangeIndex", "DateIndex",
        "TimeIndex", "DateSimpleTimeIndex", "DateTimeIndex", "SimpleDateTimeIndex",
    ]  # fmt: skip
    assert sorted(names) == sorted(set(contrib.__all__) - {"MultiIndexes", "EndsWithIndex"})
    samples = ["2015-12-21 15:16:17", "2015-12-21", "15:16:17", "2016-06-01 23:59:59.250", ""]

    refused = object()

    def normalized(leaf, sample):
        try:
            return leaf.normalize(sample)
        except ValueError:
            return refused

    def shape(index):
        class Model(model.RedisModel):
            database = db
            f = fields.StringField(indexes=[index])

        leaves = Model.get_field("f").indexes
        return (
            [
                (
                    type(leaf).__name__,
                    leaf.identity,
                    leaf.prefix,
                    leaf.handle_uniqueness,
                    sorted(leaf.handled_suffixes, key=str),
                )
                for leaf in leaves
            ],
            [[normalized(leaf, sample) for sample in samples] for leaf in leaves],
        )

    for name in names:
        assert manual[name].__name__ == name
        (manual_leaves, manual_texts), (leaves, texts) = (
            shape(manual[name]),
            shape(getattr(contrib, name)),
        )
        assert manual_leaves == leaves, name
        # the same texts, but for the values that are no date or time: contrib refuses them
        pairs = [
            pair
            for ours, theirs in zip(texts, manual_texts, strict=True)
            for pair in zip(ours, theirs, strict=True)
        ]
        assert all(ours in (theirs, refused) for ours, theirs in pairs), name
        assert any(ours is not refused for ours, _ in pairs), name
        assert all(theirs is not refused for _, theirs in pairs), name


def test_a_unique_datetime_collides_within_its_second_and_says_so(db, unchanged):
    """The first uniqueness-handling leaf keeps 'YYYY-MM-DD HH:MM:SS': the error shows the
    value given and the text that collided (it showed the value as if instance 1 held it)."""

    class Event(model.RedisModel):
        database = db
        at = fields.InstanceHashField(indexes=[DateTimeIndex], unique=True)

    Event(at=str(datetime(2026, 1, 5, 10, 11, 12, 100000)))
    later = str(datetime(2026, 1, 5, 10, 11, 12, 900000))
    kept = "kept as '2026-01-05 10:11:12' by its unique index"
    with (
        unchanged(),
        pytest.raises(UniquenessError, match=rf"^Event\.at: value '{later}' \({kept}\)"),
    ):
        Event(at=later)
    with (
        unchanged(),
        pytest.raises(ValueError, match=r"'2026-1-5 10:11:12' for its FullDateTimeRangeIndex"),
    ):
        Event(at="2026-1-5 10:11:12")
    assert Event(at="2026-01-05 10:11:13").pk.get() == "2"


def test_a_transform_giving_no_text_is_refused_by_name(db, unchanged):
    """A transform returning a bool (or anything to_text refuses): a ValueError naming the
    field, the index and the value (a bare ValueTypeError named nothing); nothing written."""
    Initial = EqualIndex.configure(transform=lambda value: value.startswith("A"), name="Initial")
    Parts = MultiIndexes.compose([EqualIndex], transform=lambda value: [value], name="Parts")

    class Word(model.RedisModel):
        database = db
        text = fields.InstanceHashField(indexes=[Initial])
        other = fields.InstanceHashField(indexes=[Parts])

    for values, where in [({"text": "Abc"}, "Word.text.*Initial"), ({"other": "x"}, "Word.other")]:
        with unchanged(), pytest.raises(ValueError, match=rf"^{where}.*gave .*for the value"):
            Word(**values)


def test_a_transform_with_a_defaulted_parameter_takes_the_value_alone(db):
    """`(value, n=2)` is a one-value transform, not a method `(self, value)`."""

    def first(value, n=2):
        return value[:n]

    class Word(model.RedisModel):
        database = db
        text = fields.InstanceHashField(indexes=[EqualIndex.configure(transform=first)])

    Word(text="abc")
    assert Word.collection(text="ab") == ["1"]


class _Text(str):
    """A str subclass, as a user's own text type."""


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("at", "2026-13-05 10:11:12", "a date and time like"),  # no month 13
        ("at", "2026-02-30 10:11:12", "a date and time like"),  # no February 30
        ("at", "2026-01-05 24:00:00", "a date and time like"),
        ("at", "2026-01-05 10:60:00", "a date and time like"),
        ("at", "2026-01-05T10:11:12", "a date and time like"),  # isoformat()'s T
        ("at", "2026-01-05", "a date and time like"),  # a date alone
        ("at", "2026-01-05 10:11:12garbage", "a date and time like"),
        ("at", "0000-01-05 10:11:12", "a date and time like"),  # no year 0
        ("at", "\uff12\uff10\uff12\uff16-01-05 10:11:12", "a date and time like"),  # fullwidth
        ("at", "", "a date and time like"),
        ("at", _Text("1e3"), "a date and time like"),
        ("day", "2026-1-5", "a date like"),
        ("day", "20260105", "a date like"),
        ("day", "+026-01-05", "a date like"),
        ("day", "2026-01-05 nonsense", "a date and time like"),
        ("day", "nan", "a date like"),
        ("time", "25:00:00", "a time like"),
        ("time", "1:2:3", "a time like"),
        ("time", "10:11:12+1", "a time like"),
        ("time", "10:11", "a time like"),
        ("time", "10:00:00-42:77:99.1", "a time like"),  # no such UTC offset: was taken
        ("time", "10:00:00+24:00", "a time like"),
        ("at", "2026-01-01 10:00:00+99:99", "a date and time like"),
        ("at", "2026-01-01 10:00:00+05:60", "a date and time like"),
    ],
)
def test_date_and_time_indexes_refuse_what_is_no_date_or_time(
    db, unchanged, field, value, expected
):
    """A value these indexes could only index wrongly (month 13 found by `__month=13`, a
    'T' sorting after every ' ' of the same day) is refused, by name, on creation and on
    update, and nothing is written; redis-limpyd indexed whatever the slices gave."""

    class Event(model.RedisModel):
        database = db
        at = fields.InstanceHashField(indexes=[DateTimeIndex])
        day = fields.StringField(indexes=[DateIndex])
        time = fields.InstanceHashField(indexes=[TimeIndex])

    kept = Event(at="2026-01-05 10:11:12", day="2026-01-05", time="10:11:12")
    message = rf"^Event\.{field}: invalid value {re.escape(repr(value))} for its \w+: {expected}"
    with unchanged(), pytest.raises(ValueError, match=message):
        Event(**{field: value})
    with unchanged(), pytest.raises(ValueError, match=message):
        getattr(kept, field).set(value) if field == "day" else getattr(kept, field).hset(value)
    assert Event.collection(at__month=1, day__day=5, time__second=12) == [kept.pk.get()]


@pytest.mark.parametrize(
    ("index", "value", "texts"),
    [
        (DateTimeIndex, "2026-01-05 10:11:12.250000+01:00", ["2026-01-05 10:11:12", "2026-01-05"]),
        (SimpleDateTimeIndex, "2024-02-29 23:59:59", ["2024-02-29 23:59:59", "2024-02-29"]),
        (DateIndex, "2026-01-05 10:11:12", ["2026-01-05", "2026"]),
        (TimeIndex, "23:59:59.5", ["23:59:59", "23"]),
        # Amsterdam's local time before 1937: an offset with seconds
        (DateTimeIndex, "1900-01-01 12:00:00+00:19:32", ["1900-01-01 12:00:00", "1900-01-01"]),
        (TimeIndex, "12:00:00.5-00:19:32.5", ["12:00:00", "12"]),
        (TimeIndex, "12:00:00-23:59", ["12:00:00", "12"]),  # the widest offset a time has
    ],
)
def test_date_and_time_indexes_take_what_str_writes(db, index, value, texts):
    """`str()` of a datetime (fraction of second, UTC offset), a leap day, a date and time
    for a date index: kept as redis-limpyd kept them (the first 19, 10 or 8 characters)."""

    class Event(model.RedisModel):
        database = db
        at = fields.InstanceHashField(indexes=[index])

    leaves = Event.get_field("at").indexes
    assert [leaf.normalize(value) for leaf in leaves[:2]] == texts
    Event(at=value)
    assert Event.collection(at=texts[0]) == ["1"]


def test_a_transform_refusing_a_value_is_named(db, unchanged):
    """A user's transform raising ValueError: the error names the model, the field, the
    index and the value (it came bare, naming nothing), the value given even when an outer
    transform changed it; nothing written."""

    def digits(value):
        if not value.isdigit():
            raise ValueError("digits are expected")
        return value

    Digits = EqualIndex.configure(transform=digits, name="Digits")
    Outer = MultiIndexes.compose([Digits], transform=lambda value: value.strip(), name="Outer")

    class Code(model.RedisModel):
        database = db
        code = fields.InstanceHashField(indexes=[Digits])
        padded = fields.InstanceHashField(indexes=[Outer])

    for values, message in [
        ({"code": "12a"}, r"^Code\.code: invalid value '12a' for its Digits: digits are expected$"),
        (
            {"padded": " 1a "},
            r"^Code\.padded: invalid value '1a' for its Digits: digits are expected "
            r"\(from the value ' 1a ', transformed\)$",
        ),
    ]:
        with unchanged(), pytest.raises(ValueError, match=message):
            Code(**values)
    Code(code="12", padded=" 7 ")
    assert Code.collection(padded="7") == ["1"]


def test_a_long_value_refused_by_a_date_index_is_shown_shortened(db):
    """The message shows the start of the value and its length (it held all of it)."""

    class Event(model.RedisModel):
        database = db
        day = fields.StringField(indexes=[DateIndex])

    with pytest.raises(ValueError, match=r"'xxx+'\.\.\. \(1000000 characters\)") as raised:
        Event(day="x" * 1_000_000)
    assert len(str(raised.value)) < 500
