"""Collections as code written for redis-limpyd uses them (issue 18: items 4, 6, 10, 11, 12):
stored collections, filters checked when given, ValueErrors, identity, instances as pks."""

from __future__ import annotations

import pytest

from limpyd import fields, model
from limpyd.collection import CollectionManager
from limpyd.contrib.collection import ExtendedCollectionManager
from limpyd.contrib.related import FKInstanceHashField, RelatedModel
from limpyd.exceptions import DoesNotExist, ImplementationError, UnknownFieldError
from limpyd.indexes import NumberRangeIndex, TextRangeIndex

MANAGERS = [CollectionManager, ExtendedCollectionManager]


@pytest.fixture
def Place(db):
    class Place(model.RedisModel):
        database = db
        collection_manager = ExtendedCollectionManager
        name = fields.InstanceHashField(indexable=True, indexes=[TextRangeIndex])
        kind = fields.StringField(indexable=True)
        plain = fields.StringField()
        floors = fields.InstanceHashField(indexable=True, indexes=[NumberRangeIndex])
        tags = fields.SetField(indexable=True)
        data = fields.HashField(indexable=True)
        neighbours = fields.SetField()
        ranking = fields.SortedSetField()

    Place(name="tower", kind="office", floors=40)
    Place(name="barn", kind="farm", floors=1)
    Place(name="castle", kind="monument", floors=4)
    Place(name="abbey", kind="monument", floors=2)
    return Place


# Item 4: store() ---------------------------------------------------------------------------


def test_store_keeps_exactly_the_pks_in_order(Place, db):
    """The stored list holds the result's pks in its order, nothing else, whatever the
    collection's sort and output; reading it back gives them in that order."""
    cases = [
        (Place.collection(), ["1", "2", "3", "4"]),
        (Place.collection().sort(by="-name", alpha=True), ["1", "3", "2", "4"]),
        (Place.collection(kind="monument").sort(by="floors"), ["4", "3"]),
        (Place.collection().sort(desc=True)[1:3], ["3", "2"]),
        (Place.collection().values("name").sort(by="name", alpha=True), ["4", "2", "3", "1"]),
        (
            Place.collection().values_list("kind", flat=True).sort(by="-floors"),
            ["1", "3", "4", "2"],
        ),
        (Place.collection(kind="monument").instances(), ["3", "4"]),
    ]
    for collection, pks in cases:
        stored = collection.store()
        assert db.client.lrange(stored.stored_key, 0, -1) == pks
        assert list(stored.primary_keys()) == pks
        assert list(Place.collection().from_stored(stored.stored_key)) == pks
    names = Place.collection().sort(by="name", alpha=True).values_list("name", flat=True).store()
    assert list(names) == ["abbey", "barn", "castle", "tower"]
    twice = Place.collection(kind="monument").store().filter(floors__gt=3).store()
    assert db.client.lrange(twice.stored_key, 0, -1) == ["3"]


def test_store_of_an_empty_result(Place, db):
    """An empty result stores no key (Redis holds no empty list), as redis-limpyd's SORT ...
    STORE: the stored collection knows it is empty, at every evaluation and chaining; a key
    given is emptied; `from_stored` of a missing key raises DoesNotExist (see decisions)."""
    mine = f"{Place._meta.hash_tag}:mine"
    db.client.rpush(mine, "1", "2")
    empty = Place.collection(kind="castle").sort(by="name", alpha=True).store(key=mine)
    assert empty.stored_key == mine and not db.client.exists(mine)
    assert list(empty) == [] and len(empty) == 0 and not empty
    assert list(empty.values("name")) == [] and list(empty.primary_keys().filter(kind="farm")) == []
    with pytest.raises(IndexError):
        empty[0]
    Place(name="castle", kind="castle")
    assert list(empty) == []  # what was stored: nothing
    again = empty.store()
    assert list(again) == [] and not db.client.exists(again.stored_key)
    with pytest.raises(DoesNotExist, match=r"Place.*stored collection"):
        list(Place.collection().from_stored(mine))
    # the key expired or deleted: a non-empty stored collection says so
    full = Place.collection(kind="monument").store()
    db.client.delete(full.stored_key)
    with pytest.raises(DoesNotExist):
        list(full)


# Item 6: invalid filters -------------------------------------------------------------------


BAD_FILTERS = [
    ("name__building", "x", ImplementationError, r"Place\.name.*name__building"),
    ("plain", "x", ImplementationError, r"Place\.plain.*plain"),
    ("plain__startswith", "x", ImplementationError, r"Place\.plain.*plain__startswith"),
    ("name__eq__gt", "x", ImplementationError, r"Place\.name.*name__eq__gt"),
    ("data", "x", ImplementationError, r"Place\.data.*data"),
    ("data__k__eq__x", "x", ImplementationError, r"Place\.data.*data__k__eq__x"),
    ("kind__gt", "x", ImplementationError, r"Place\.kind.*kind__gt"),
    ("pk__gt", 1, ImplementationError, r"Place\.pk.*pk__gt"),
    ("nope", "x", UnknownFieldError, r"Place.*'nope'.*nope='x'"),
    ("nope__eq", "x", UnknownFieldError, r"Place.*'nope'.*nope__eq"),
    ("name__all", ["x"], ImplementationError, r"Place\.name.*name__all"),
    ("tags__isnull", True, ImplementationError, r"Place\.tags.*tags__isnull"),
    # bad values of valid filters: refused when given too
    ("kind__in", 5, ImplementationError, r"Place\.kind.*kind__in"),
    ("pk__in", "abc", ImplementationError, r"Place\.pk.*pk__in"),
    ("tags__all", "a", ImplementationError, r"Place\.tags.*tags__all"),
    ("kind__isnull", "yes", ImplementationError, r"Place\.kind.*kind__isnull"),
    ("floors__gt", "abc", ValueError, r"Place\.floors.*'abc'"),
]


@pytest.mark.parametrize("manager", MANAGERS)
@pytest.mark.parametrize(("key", "value", "error", "message"), BAD_FILTERS)
def test_invalid_filters_are_refused_when_given(
    Place, limpyd_commands, manager, key, value, error, message
):
    """collection(), exclude() and filter() check each filter when given, before any round
    trip; the error names the model, the field and the filter, and is a ValueError (as
    redis-limpyd's) as well as an ImplementationError where it is about the filter."""
    with limpyd_commands() as counted:
        with pytest.raises(error, match=message) as raised:
            Place.collection(manager=manager, **{key: value})
        with pytest.raises(error, match=message):
            Place.collection(manager=manager, kind="farm").exclude(**{key: value})
        if manager is ExtendedCollectionManager:
            collection = Place.collection(manager=manager, kind="farm")
            with pytest.raises(error, match=message):
                collection.filter(**{key: value})
            assert list(collection) == ["2"]  # unchanged by the refused filter
    assert counted.round_trips == (1 if manager is ExtendedCollectionManager else 0)
    assert isinstance(raised.value, ValueError)


def test_a_filter_with_a_field_value_is_checked_when_given(Place):
    """A bound field as a filter value is read at evaluation (ExtendedCollectionManager),
    but the filter itself is checked when given."""
    barn = Place(2)
    with pytest.raises(ImplementationError, match=r"Place\.plain"):
        Place.collection(plain=barn.kind)
    collection = Place.collection(kind=barn.kind)
    barn.kind.set("monument")
    assert list(collection) == ["2", "3", "4"]


def test_an_iterator_filter_value_is_read_once(Place):
    """An iterator given to `__in` is read when given: the collection can be evaluated again
    (sorted, sliced, counted) with the same values."""
    collection = Place.collection(kind__in=(kind for kind in ["farm", "office"]))
    assert list(collection) == ["1", "2"]
    assert list(collection.sort(by="name", alpha=True)) == ["2", "1"]
    assert len(collection) == 2


# Item 10: ValueErrors ----------------------------------------------------------------------


def test_values_and_intersect_errors_are_value_errors(Place, db):
    """The manual's and redis-limpyd's ValueError for values_list(flat=True) of several
    fields, values() of a multi-value field, intersect() of an unsupported source (at the
    call) or of a key holding no set, sorted set or list (at evaluation)."""
    place = Place(1)
    with pytest.raises(ValueError, match="flat"):
        Place.collection().values_list("name", "kind", flat=True)
    with pytest.raises(ValueError, match="flat"):
        Place.collection().values_list(flat=True)
    with pytest.raises(ValueError, match=r"Place\.tags"):
        Place.collection().values("tags")
    for source in ({}, {"1": 1}, 1, None, Place.get_field("neighbours"), place.kind):
        with pytest.raises(ValueError, match="Place"):
            Place.collection().intersect(source)
    string_key, hash_key = f"{Place._meta.hash_tag}:s", f"{Place._meta.hash_tag}:h"
    db.client.set(string_key, "1")
    db.client.hset(hash_key, "1", "1")
    for key in (string_key, hash_key):
        collection = Place.collection().intersect(key)
        with pytest.raises(ValueError, match=rf"Place.*{key}"):
            list(collection)
    with pytest.raises(ValueError, match="by_score"):
        Place.collection().sort(by="name", by_score=place.ranking)
    with pytest.raises(ValueError, match=r"Place\.tags"):
        Place.collection().sort(by_score=place.tags)
    place.neighbours.sadd(2, 3)
    assert list(Place.collection().intersect(place.neighbours)) == ["2", "3"]


# Item 11: identity -------------------------------------------------------------------------


@pytest.mark.parametrize("manager", MANAGERS)
def test_collections_compare_by_identity(Place, limpyd_commands, manager):
    """Two collections are equal only when they are the same object (redis-limpyd's
    behaviour; comparing contents would run both queries). A collection equals a list or
    tuple of its results, as redis-limpyd's slices (lists) did."""
    collection = Place.collection(manager=manager, kind="monument")
    same = Place.collection(manager=manager, kind="monument")
    with limpyd_commands() as counted:
        assert collection == collection
        assert collection != same and not (collection == same)
        assert len({collection, same, collection}) == 2
    assert counted.round_trips == 0
    assert collection == ["3", "4"] and collection == ("3", "4") and collection != ["4", "3"]
    assert collection[0:1] == ["3"]
    if manager is ExtendedCollectionManager:
        assert collection.store() != collection
        assert collection.filter(floors__lt=3) == collection  # filter() returns it
        assert collection == ["4"]


# Item 12: instances as filter values -------------------------------------------------------


@pytest.mark.parametrize("manager", MANAGERS)
def test_the_pk_is_filtered_with_an_instance(db, manager):
    """pk=instance (and `id=` for a pk field named id, and `__in` of instances) filter on
    the instance's pk; an instance of another model is refused, naming model and field."""

    class Numbered(model.RedisModel):
        id = fields.AutoPKField()
        name = fields.InstanceHashField(indexable=True)
        database = db

    class Other(model.RedisModel):
        label, database = fields.StringField(), db

    first, second = Numbered(name="a"), Numbered(name="b")
    assert list(Numbered.collection(manager=manager, pk=second)) == ["2"]
    assert list(Numbered.collection(manager=manager, id=first)) == ["1"]
    assert list(Numbered.collection(manager=manager, id__eq=first, name="a")) == ["1"]
    assert list(Numbered.collection(manager=manager, pk__in=[first, "2"])) == ["1", "2"]
    assert Numbered.get(pk=second).name.hget() == "b"
    assert list(Numbered.collection(manager=manager).exclude(id=first)) == ["2"]
    with pytest.raises(ValueError, match=r"Numbered\.id.*Other"):
        Numbered.collection(manager=manager, pk=Other(label="x"))


def test_an_unsaved_instance_as_a_pk_filter(db):
    """The base collection needs the instance's pk when given; ExtendedCollectionManager
    reads it at evaluation, as redis-limpyd did."""

    class Thing(model.RedisModel):
        database = db
        collection_manager = ExtendedCollectionManager
        name = fields.InstanceHashField(indexable=True)

    thing = Thing()
    with pytest.raises(DoesNotExist, match="not saved"):
        Thing.collection(manager=CollectionManager, pk=thing)
    collection, by_field = Thing.collection(pk=thing), Thing.collection(pk=thing.pk)
    thing.name.hset("saved now")
    assert list(collection) == list(by_field) == [thing.pk.get()]


@pytest.mark.parametrize("manager", MANAGERS)
def test_a_foreign_key_is_filtered_with_an_instance(db, manager):
    """A related field is filtered with instances as with pks (checked when given)."""

    class Owner(RelatedModel):
        database, cluster_group = db, "compat-related"
        name = fields.PKField()

    class Pet(RelatedModel):
        database, cluster_group = db, "compat-related"
        owner = FKInstanceHashField(Owner, related_name="pets")
        name = fields.InstanceHashField(indexable=True)

    ann, bob = Owner(name="ann"), Owner(name="bob")
    Pet(name="rex", owner=ann)
    Pet(name="tom", owner=bob)
    Pet(name="kit", owner=ann)
    assert list(Pet.collection(manager=manager, owner=ann)) == ["1", "3"]
    assert list(Pet.collection(manager=manager, owner__in=[bob, "ann"])) == ["1", "2", "3"]
    with pytest.raises(ValueError, match=r"Pet\.owner.*Pet"):
        Pet.collection(manager=manager, owner=Pet(1))
