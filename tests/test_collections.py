"""The manual's Collections chapter (2.5) and the list behaviour of collections."""

from __future__ import annotations

import enum
import itertools
import re

import pytest

from limpyd import fields, model
from limpyd.collection import CollectionManager
from limpyd.exceptions import (
    DoesNotExist,
    ImplementationError,
    RefusedValueError,
    UnknownFieldError,
)
from limpyd.indexes import EqualIndex, NumberRangeIndex, TextRangeIndex


@pytest.fixture
def Person(db):
    class Person(model.RedisModel):
        database = db
        firstname = fields.InstanceHashField(indexable=True)
        lastname = fields.InstanceHashField(indexable=True)
        nickname = fields.InstanceHashField(indexable=True, indexes=[TextRangeIndex])
        birth_year = fields.InstanceHashField(indexable=True, indexes=[NumberRangeIndex])

        def __repr__(self):
            return '<[%s] %s "%s" %s (%s)>' % tuple(
                [self.pk.get(), *self.hmget("firstname", "nickname", "lastname", "birth_year")]
            )

    Person(firstname="John", lastname="Smith", nickname="Joe", birth_year=1960)
    Person(firstname="John", lastname="Doe", nickname="Jon", birth_year=1965)
    Person(firstname="Emily", lastname="Smith", nickname="Emma", birth_year=1950)
    Person(firstname="Susan", lastname="Doe", nickname="Sue", birth_year=1960)
    return Person


def reprs(collection):
    return [repr(x) for x in collection]


JOHN = '<[1] John "Joe" Smith (1960)>'
JON = '<[2] John "Jon" Doe (1965)>'
EMILY = '<[3] Emily "Emma" Smith (1950)>'
SUSAN = '<[4] Susan "Sue" Doe (1960)>'


def test_filtering(Person):
    assert Person.collection(firstname="John") == ["1", "2"]
    assert Person.collection(firstname="john", lastname="Smith") == []  # case matters
    assert Person.collection(firstname="John", lastname="Smith") == ["1"]
    assert Person.collection(birth_year=1965) == ["2"]
    assert Person.collection(birth_year=1965, lastname="Smith") == []
    assert repr(Person.collection(firstname="John")) == "['1', '2']"


def test_get_and_exists_with_filters(Person):
    assert repr(Person.get(firstname="Emily")) == EMILY
    with pytest.raises(ValueError):
        Person.get(firstname="John")
    with pytest.raises(DoesNotExist):
        Person.get(firstname="Nobody")
    assert Person.exists(lastname="Doe") and not Person.exists(lastname="Nobody")


def test_slicing_and_sorting(Person):
    assert Person.collection(firstname="John")[1:2] == ["2"]
    assert Person.collection(firstname="John").sort(by="lastname", alpha=True) == ["2", "1"]
    assert Person.collection(firstname="John").sort(by="lastname", alpha=True)[1:2] == ["1"]
    assert Person.collection().sort(by="birth_year") == ["3", "1", "4", "2"]
    assert Person.collection().sort(by="-birth_year") == ["2", "4", "1", "3"]
    assert Person.collection().sort(by="birth_year", desc=True) == ["2", "4", "1", "3"]
    assert Person.collection().sort(by="pk") == ["1", "2", "3", "4"]
    assert Person.collection().sort(by="id" if False else "pk", desc=True) == ["4", "3", "2", "1"]


def test_instances(Person):
    johns = Person.collection(firstname="John")
    assert reprs(johns.instances()) == [JOHN, JON]
    assert reprs(johns.instances().sort(by="lastname", alpha=True)) == [JON, JOHN]
    assert reprs(johns.sort(by="lastname", alpha=True).instances()) == [JON, JOHN]
    assert repr(johns.sort(by="lastname", alpha=True).instances()[0]) == JON
    assert johns.instances().primary_keys() == ["1", "2"]
    assert len(Person.collection().instances(skip_exist_test=True)) == 4
    assert reprs(Person.collection().instances(lazy=True)[:1]) == [JOHN]


def test_indexing_examples(Person):
    assert reprs(Person.collection(firstname__eq="John").instances()) == [JOHN, JON]
    assert reprs(Person.collection(firstname__in=["John", "Susan"]).instances()) == [
        JOHN,
        JON,
        SUSAN,
    ]
    assert reprs(Person.collection(nickname__startswith="Jo").instances()) == [JOHN, JON]
    assert reprs(Person.collection(nickname__gte="Jo").instances()) == [JOHN, JON, SUSAN]
    assert reprs(Person.collection(nickname__gt="Jo").instances()) == [JOHN, JON, SUSAN]
    assert reprs(Person.collection(nickname__gt="Jon").instances()) == [SUSAN]
    assert reprs(Person.collection(nickname__gte="E", nickname__lte="J").instances()) == [EMILY]
    assert reprs(Person.collection(nickname__gte="E", nickname__lte="Jz").instances()) == [
        JOHN, JON, EMILY]  # fmt: skip
    assert reprs(Person.collection(birth_year__eq=1960).instances()) == [JOHN, SUSAN]
    assert reprs(Person.collection(birth_year__gt=1960).instances()) == [JON]
    assert reprs(Person.collection(birth_year__gte=1960).instances()) == [JOHN, JON, SUSAN]
    assert reprs(Person.collection(birth_year__gt=1940, birth_year__lte=1950).instances()) == [
        EMILY]  # fmt: skip
    assert reprs(
        Person.collection(
            birth_year__gte=1960, lastname="Doe", nickname__startswith="S"
        ).instances()
    ) == [SUSAN]
    assert Person.collection(firstname__in=[]) == []
    assert Person.collection(birth_year__lt=1950) == []


def test_laziness_sends_nothing_until_needed(Person, limpyd_commands):
    with limpyd_commands() as counted:
        results = (
            Person.collection(firstname="John").sort(by="lastname", alpha=True)[0:5].instances()
        )
    assert counted.round_trips == 0
    with limpyd_commands() as counted:
        assert len(results) == 2 and next(iter(results)).pk.get() == "2"
    assert counted.round_trips <= 2


def test_manager_subclassing(Person):
    class MyOwnCollectionManager(CollectionManager):
        def first_pk(self):
            return self[0]

    assert Person.collection(firstname="John", manager=MyOwnCollectionManager).first_pk() == "1"
    Person.collection_manager = MyOwnCollectionManager
    try:
        assert Person.collection(lastname="Doe").first_pk() == "2"
    finally:
        del Person.collection_manager


def test_sort_errors(Person, db):
    class WithSet(model.RedisModel):
        database = db
        tags = fields.SetField()
        text = fields.StringField()

    WithSet(text="abc")
    with pytest.raises(ImplementationError, match=r"WithSet\.tags"):
        WithSet.collection().sort(by="tags")
    with pytest.raises(RefusedValueError, match=r"^WithSet\.text: cannot sort numerically"):
        list(WithSet.collection().sort(by="text"))
    assert list(WithSet.collection().sort(by="text", alpha=True)) == ["1"]
    assert not [k for k in db.scan_keys() if "__limpyd" in k]


def test_sort_alpha_is_a_bool(db):
    """`alpha=[False]` with one name was read as its truth (an alpha sort), and a list with
    a list of names as one bool per name: a value that is no bool is refused by name."""
    from limpyd.exceptions import InvalidQueryError

    class Num(model.RedisModel):
        database = db
        n = fields.InstanceHashField()

    for value in ("10", "9", "100"):
        Num(n=value)
    for bad in ([False], "no", None, 2, 0.0):
        message = rf"^Num collection: sort\(alpha={re.escape(repr(bad))}\): True or False"
        with pytest.raises(InvalidQueryError, match=message):
            Num.collection().sort(by="n", alpha=bad)
    with pytest.raises(InvalidQueryError, match=r"sort\(alpha='no'\)"):
        Num.collection().sort(by=["n"], alpha=["no"])
    assert list(Num.collection().sort(by="n", alpha=0)) == ["2", "1", "3"]
    assert list(Num.collection().sort(by="n", alpha=1)) == ["1", "3", "2"]
    assert list(Num.collection().sort(by=["n"], alpha=[False])) == ["2", "1", "3"]


def test_sort_desc_is_a_bool_and_indices_are_integers(db):
    """`desc=None` sorted descending (None != False) and `desc=2` as given: refused by name,
    as `alpha` is; `collection[None]` failed adding 1 to None."""
    from limpyd.exceptions import InvalidQueryError

    class Num(model.RedisModel):
        database = db
        n = fields.InstanceHashField()

    for value in ("10", "9", "100"):
        Num(n=value)
    for bad in (None, 2, "yes", [True], 1.0):
        message = rf"^Num collection: sort\(desc={re.escape(repr(bad))}\): True or False"
        for by in ("n", ["n"], None):
            with pytest.raises(InvalidQueryError, match=message):
                Num.collection().sort(by=by, desc=bad)
    assert list(Num.collection().sort(by="n", desc=1)) == ["3", "1", "2"]
    assert list(Num.collection().sort(desc=0)) == ["1", "2", "3"]
    with pytest.raises(TypeError, match=r"^Num collection indices must be integers or slices, not"):
        Num.collection()[None]


def test_an_int_enum_index_is_its_number(db):
    """redis-py sent an IntEnum bound as its repr (`<Step.TWO: 2>`), which the query read as
    no bound: `collection[Step.TWO]` gave the first pk, `[Step.TWO:]` all of them."""

    class Step(enum.IntEnum):
        ONE = 1
        TWO = 2

    class Num(model.RedisModel):
        database = db
        n = fields.InstanceHashField()

    for value in "abcde":
        Num(n=value)
    pks = list(Num.collection())
    assert Num.collection()[Step.TWO] == pks[2]
    assert Num.collection()[Step.TWO :] == pks[2:]
    assert Num.collection()[1 : Step.TWO] == pks[1:2]
    assert Num.collection()[:: Step.TWO] == pks[::2]
    assert Num.collection().sort(by="n", alpha=True)[Step.ONE : -Step.ONE] == pks[1:-1]


def test_sort_without_by_is_the_default_order_and_its_reverse(db):
    """`sort()` orders by pk as the collection does (text pks by bytes, decimals as
    numbers): it sorted numerically and refused text pks; `sort(by='pk')` stays numeric,
    as redis-limpyd's."""

    class Tag(model.RedisModel):
        database = db
        id = fields.PKField()
        v = fields.InstanceHashField()

    for pk in ["b", "a", "10", "c", "9"]:
        Tag(id=pk, v="x")
    default = list(Tag.collection())
    assert default == ["10", "9", "a", "b", "c"]
    assert list(Tag.collection().sort()) == default
    assert list(Tag.collection().sort(desc=True)) == default[::-1]
    with pytest.raises(RefusedValueError, match=r"cannot sort numerically on value 'a'"):
        list(Tag.collection().sort(by="pk"))
    for pk in ["a", "b", "c"]:
        Tag(pk).delete()
    assert list(Tag.collection().sort()) == ["9", "10"]
    assert list(Tag.collection().sort(desc=True)) == ["10", "9"]


#: 70: beyond the 64 positions from either end that a slice selects without sorting.
LENGTHS = [0, 1, 2, 5, 7, 70]
BOUNDS = [None, *range(-5, 6)]
STEPS = [None, -3, -2, -1, 1, 2, 3]


@pytest.mark.parametrize("length", LENGTHS)
def test_every_slice_matches_python(db, length):
    class Item(model.RedisModel):
        database = db
        rank = fields.StringField(indexable=True)

    for i in range(length):
        Item(rank=str((i * 7) % length))
    sorted_collection = Item.collection().sort(by="rank")
    unsorted_collection = Item.collection()
    expected_sorted = list(sorted_collection)
    expected_unsorted = list(unsorted_collection)
    assert len(expected_sorted) == length
    for start, stop, step in itertools.product(BOUNDS, BOUNDS, STEPS):
        piece = slice(start, stop, step)
        assert list(sorted_collection[piece]) == expected_sorted[piece], piece
        assert list(unsorted_collection[piece]) == expected_unsorted[piece], piece
    for index in range(-length - 2, length + 2):
        if -length <= index < length:
            assert sorted_collection[index] == expected_sorted[index]
        else:
            with pytest.raises(IndexError):
                sorted_collection[index]
    for piece in [slice(s, s + 2) for s in (-66, -65, -64, -2, 62, 63, 64)] + [slice(64, None, -1)]:
        assert list(sorted_collection[piece]) == expected_sorted[piece], piece
    if length >= 5:
        assert list(sorted_collection[1:][::-1][1:3]) == expected_sorted[1:][::-1][1:3]
        assert list(sorted_collection[::2][-2:]) == expected_sorted[::2][-2:]
    with pytest.raises(ValueError):
        list(sorted_collection[::0])


def test_ties_break_by_pk_identically(db):
    class Tie(model.RedisModel):
        database = db
        name = fields.PKField()
        score = fields.InstanceHashField()

    for name in ("b", "a", "d", "c", "10", "9"):
        Tie(name=name, score="1")
    assert Tie.collection().sort(by="score") == ["10", "9", "a", "b", "c", "d"]
    assert Tie.collection().sort(by="score", desc=True) == ["d", "c", "b", "a", "9", "10"]
    assert Tie.collection().sort(by="score", alpha=True) == ["10", "9", "a", "b", "c", "d"]
    assert Tie.collection() == ["10", "9", "a", "b", "c", "d"]  # non-numeric pks: byte-wise


def test_instances_skip_vanished(Person):
    collection = Person.collection(lastname="Doe").instances()
    Person(2).delete()
    assert reprs(collection) == [SUSAN]


def test_no_temporary_key_survives(Person, db):
    before = set(db.scan_keys())
    list(
        Person.collection(firstname__in=["John", "Susan"], nickname__gte="A").sort(
            by="nickname", alpha=True
        )[1:]
    )
    len(Person.collection(birth_year__gte=1950, lastname__in=["Doe"]))
    with pytest.raises(RefusedValueError, match=r"^Person\.nickname: cannot sort numerically"):
        list(Person.collection(firstname__in=["John"]).sort(by="nickname"))
    assert set(db.scan_keys()) == before


def test_query_round_trips(Person, limpyd_commands):
    list(Person.collection(firstname="John"))  # the script is loaded
    with limpyd_commands() as counted:
        list(
            Person.collection(
                firstname__in=["John", "Susan"], lastname="Doe", birth_year__gte=1900
            ).sort(by="nickname", alpha=True)[0:2]
        )
    assert counted.round_trips == 1
    with limpyd_commands() as counted:
        assert len(Person.collection(lastname="Doe")) == 2
    assert counted.round_trips == 1
    with limpyd_commands() as counted:
        people = list(Person.collection().instances())
    assert counted.round_trips == 1 and len(people) == 4


def test_configure_prefix_and_transform(db, consistent):
    def reverse_value(value):
        return value[::-1]

    class MyModel(model.RedisModel):
        database = db
        myfield = fields.StringField(indexable=True, indexes=[
            EqualIndex,
            TextRangeIndex.configure(prefix="rev", transform=reverse_value),
        ])  # fmt: skip

    MyModel(myfield="bar")
    MyModel(myfield="baz")
    assert MyModel.collection(myfield="bar") == ["1"]
    assert MyModel.collection(myfield__rev="rab") == ["1"]
    assert MyModel.collection(myfield__rev__startswith="z") == ["2"]
    with pytest.raises(ImplementationError, match="myfield__startswith"):
        list(MyModel.collection(myfield__startswith="b"))
    consistent(MyModel)

    class Method(EqualIndex):
        pass

    UpperIndex = Method.configure(transform=lambda self, value: value.upper(), name="Upper")
    assert UpperIndex.__name__ == "Upper"

    class Other(model.RedisModel):
        database = db
        word = fields.StringField(indexes=[UpperIndex])

    Other(word="hello")
    assert Other.collection(word="HELLO") == ["1"]

    with pytest.raises(ImplementationError, match="uniqueness"):

        class Broken(model.RedisModel):
            database = db
            word = fields.StringField(
                unique=True, indexes=[EqualIndex.configure(handle_uniqueness=False)]
            )

    with pytest.raises(ImplementationError, match="unknown arguments"):
        EqualIndex.configure(nope=1)
    with pytest.raises(ImplementationError, match="without ':'"):
        EqualIndex.configure(prefix="a:b")


def test_clean_and_rebuild_indexes(db, consistent):
    class Before(model.RedisModel):
        database = db
        namespace = "v"
        name = fields.StringField()
        tags = fields.SetField()

    for i in range(1200):
        Before(name=f"n{i % 7}", tags=[f"t{i % 3}", "all"])

    class Before(model.RedisModel):
        database = db
        namespace = "v"
        name = fields.StringField(indexable=True, indexes=[EqualIndex, TextRangeIndex])
        tags = fields.SetField(indexable=True)

    assert Before.collection(name="n1") == []
    assert Before.get_field("name").rebuild_indexes() == 1200
    assert Before.get_field("tags").rebuild_indexes() == 1200
    assert len(Before.collection(name="n1")) == len([i for i in range(1200) if i % 7 == 1])
    assert len(Before.collection(name__startswith="n", tags="t0")) == 400
    consistent(Before)
    assert Before.get_field("name").clean_indexes(index_class=TextRangeIndex) == 1
    assert len(Before.collection(name="n1")) > 0
    assert not [k for k in db.scan_keys() if "text-range" in k]
    Before.get_field("name").clean_indexes()
    assert not [k for k in db.scan_keys() if ":idx:name:" in k]


@pytest.mark.parametrize(
    ("pks", "expected"),
    [
        # canonical integers: sorted as numbers without a comparison function
        (["10", "9", "-3", "0", "100", "-20"], ["-20", "-3", "0", "9", "10", "100"]),
        # one not canonical ('007'), or too long to be exact in a double: the general path
        (["10", "9", "007", "100"], ["007", "9", "10", "100"]),
        (
            ["12345678901234567", "2", "12345678901234566"],
            ["2", "12345678901234566", "12345678901234567"],
        ),
        # one not a number: byte-wise
        (["10", "9", "x"], ["10", "9", "x"]),
    ],
)
def test_default_order_by_pk(db, pks, expected):
    class Thing(model.RedisModel):
        database = db
        id = fields.PKField()
        name = fields.StringField(indexable=True)

    for pk in pks:
        Thing(id=pk, name="x")
    assert list(Thing.collection()) == expected
    alpha = "x" in pks  # sort() by pk is numeric unless told otherwise
    assert list(Thing.collection(name="x").sort(desc=True, alpha=alpha)) == expected[::-1]
    assert list(Thing.collection(name="x")[1:3]) == expected[1:3]


def test_fields_named_with_a_trailing_underscore_take_suffixes(db):
    class Kind(model.RedisModel):
        database = db
        class_ = fields.StringField(indexes=[EqualIndex, NumberRangeIndex])
        props_ = fields.HashField(indexable=True)

    Kind(class_="5", props_={"a": "x", "_b": "y"}), Kind(class_="7")
    assert Kind.collection(class___eq="5") == ["1"]  # `class_` + `__eq`
    assert Kind.collection(class___gt=5) == ["2"]
    assert sorted(Kind.collection(class___in=["5", "7"])) == ["1", "2"]
    assert Kind.collection(props___a="x") == ["1"]
    assert Kind.collection(props____b="y") == ["1"]  # the hash key `_b`
    with pytest.raises(UnknownFieldError, match="has no field 'clas'"):
        Kind.collection(clas___eq="5")


def test_a_trailing_underscore_field_beside_its_plain_name(db):
    """`attrs___eq` is `attrs_` + `eq` (as documented), even when a field `attrs` exists:
    it was read as the hash key `_eq` of `attrs`, and `name_` could not be filtered."""

    class Both(model.RedisModel):
        database = db
        attrs = fields.HashField(indexable=True)
        attrs_ = fields.InstanceHashField(indexable=True)
        name = fields.StringField(indexable=True)
        name_ = fields.StringField(indexes=[EqualIndex, TextRangeIndex])

    Both(attrs={"_eq": "x", "k": "v"}, attrs_="x", name="y", name_="y")
    Both(attrs={"_eq": "x"}, attrs_="z", name="z", name_="z")
    assert Both.collection(attrs___eq="x") == ["1"]
    assert Both.collection(attrs_="x") == ["1"] and Both.collection(attrs__k="v") == ["1"]
    assert Both.collection(name___eq="y") == ["1"]
    assert Both.collection(name___gt="y") == ["2"]
    assert Both.collection(name="z") == ["2"]


def test_rebuilding_a_unique_index_refuses_a_value_held_twice(db, unchanged):
    """Made unique over data where two instances share a value: the rebuild raises a
    ValueError naming both, the indexes as they were (it wrote both in the unique index)."""

    class Account(model.RedisModel):
        database = db
        namespace = "r"
        email = fields.InstanceHashField()

    for email in ("ann@x.org", "bob@x.org", "ann@x.org"):
        Account(email=email)

    class Account(model.RedisModel):  # type: ignore[no-redef]
        database = db
        namespace = "r"
        email = fields.InstanceHashField(unique=True)

    with unchanged(), pytest.raises(ValueError, match=r"instance '3'.*'ann@x\.org'.*'1' holds"):
        Account.get_field("email").rebuild_indexes()
    Account(3).email.hset("cat@x.org")  # no index yet: nothing to refuse it
    assert Account.get_field("email").rebuild_indexes() == 3
    assert Account.get(email="ann@x.org").pk.get() == "1"
