"""What related fields refuse, before anything is written: values of another model (a
subclass included: its instances have keys of their own), targets that could not unlink
the fields pointing to them, and moves that would split a relation across databases."""

from __future__ import annotations

import pytest

from limpyd import fields, model
from limpyd.contrib import related
from limpyd.contrib.collection import ExtendedCollectionManager
from limpyd.contrib.related import FKInstanceHashField, FKStringField, M2MSetField
from limpyd.exceptions import ImplementationError, InvalidQueryError
from limpyd.indexes import NumberRangeIndex


@pytest.fixture
def people(db):
    class Person(related.RelatedModel):
        cluster_group = "related"
        database = db
        collection_manager = ExtendedCollectionManager
        name = fields.InstanceHashField(indexable=True)

    class Employee(Person):
        """A concrete subclass: keys of its own."""

    class Group(related.RelatedModel):
        cluster_group = "related"
        database = db
        collection_manager = ExtendedCollectionManager
        name = fields.InstanceHashField(indexable=True)
        owner = FKInstanceHashField(Person, related_name="owned")
        members = M2MSetField(Person, related_name="membership")

    class Team(related.RelatedModel):
        cluster_group = "related"
        database = db
        lead = FKStringField(Employee, related_name="led")

    return Person, Employee, Group, Team


def test_an_instance_of_a_subclass_is_not_one_of_the_target(people, unchanged, consistent):
    Person, Employee, Group, Team = people
    Person(name="p")  # pk 1, as the employee's
    employee = Employee(name="e")
    group = Group(name="g")
    team = Team(lead=employee)
    with unchanged():
        with pytest.raises(ValueError, match=r"Group\.owner: invalid value <Employee .*a Person"):
            Group(name="h", owner=employee)
        with pytest.raises(ValueError, match=r"Group\.owner: .*<Employee"):
            group.owner.hset(employee)
        with pytest.raises(ValueError, match=r"Group\.members: .*<Employee"):
            group.members.sadd(employee)
        with pytest.raises(ValueError, match=r"Group\.owner: .*points to a Employee, a Person"):
            group.owner.hset(team.lead)  # a bound FK to the subclass
    assert group.owner.hget() is None and group.members.smembers() == set()
    consistent(Person, Employee, Group, Team)


def test_a_collection_takes_instances_of_its_own_model_only(people):
    Person, Employee, _, _ = people
    person, employee = Person(name="p"), Employee(name="e")
    assert Person.collection(pk=person) == [person.pk.get()]
    with pytest.raises(InvalidQueryError, match=r"<Employee .*a Person or its pk"):
        list(Person.collection(pk=employee))
    with pytest.raises(InvalidQueryError, match="a Person or its pk"):
        list(Person.collection(pk__in=[person, employee]))
    with pytest.raises(InvalidQueryError, match="a Person or its pk"):
        list(Person.collection().intersect([employee]))


def test_a_plain_model_cannot_be_pointed_to(db):
    class Plain(model.RedisModel):
        cluster_group = "related"
        database = db
        name = fields.StringField()

    with pytest.raises(ImplementationError, match=r"invalid `to` Plain: .*a RelatedModel"):
        FKStringField(Plain)

    class Abstract(related.RelatedModel):
        abstract = True

    with pytest.raises(ImplementationError, match="invalid `to` Abstract: an abstract model"):
        M2MSetField(Abstract)


def test_a_plain_model_named_later_is_refused_when_used(db, unchanged):
    class Group(related.RelatedModel):
        cluster_group = "related"
        database = db
        owner = FKStringField("Plain")

    class Plain(model.RedisModel):  # resolved by name: known once defined
        cluster_group = "related"
        database = db
        name = fields.StringField()

    plain = Plain(name="p")
    with unchanged():
        with pytest.raises(ImplementationError, match=r"Group\.owner: invalid related model Plain"):
            Group(owner=plain.pk.get())


def test_a_related_field_needs_an_index_finding_its_holders(db):
    class Person(related.RelatedModel):
        cluster_group = "related"
        database = db

    with pytest.raises(ImplementationError, match=r"Group\.rank: a related field needs an Equal"):

        class Group(related.RelatedModel):
            cluster_group = "related"
            database = db
            rank = FKStringField(Person, indexes=[NumberRangeIndex])

    assert db.get_model("group") is None


def test_models_of_a_relation_moved_apart_refuse_to_link(db, limpyd_database_factory, unchanged):
    other = limpyd_database_factory()

    class Base(related.RelatedModel):
        abstract = True
        cluster_group = "related"
        database = db

    class Person(Base):
        name = fields.StringField(indexable=True)

    class Group(Base):
        owner = FKStringField(Person, related_name="owned")

    group = Group(owner=Person(name="p"))
    Person.use_database(other)  # alone (the next step may be moving Group)
    moved = Person(name="q")
    with unchanged():
        with pytest.raises(ImplementationError, match=r"Group\.owner: the related model Person"):
            Group(owner=moved)
        with pytest.raises(ImplementationError, match="must use the same database"):
            group.owner.instance()
    Group.use_database(other)  # the relation is whole again
    assert db.get_model("group") is None and other.get_model("group") is Group
    linked = Group(owner=moved)
    moved.delete()
    assert linked.owner.get() is None


def test_a_refused_move_of_a_model_with_its_own_database(db, limpyd_database_factory):
    other = limpyd_database_factory()

    class Person(related.RelatedModel):
        cluster_group = "related"
        database = db
        name = fields.StringField()

    class Group(related.RelatedModel):
        cluster_group = "related"
        database = db
        owner = FKStringField(Person, related_name="owned")

    with pytest.raises(ImplementationError, match="must use the same database"):
        Group.use_database(other)
    assert Group.__dict__["database"] is db and db.get_model("group") is Group
    assert other.get_model("group") is None
    assert Group(owner=Person(name="p")).owner.get() == "1"


def test_store_takes_a_key_of_text(people, unchanged):
    _, _, Group, _ = people
    Group(name="g")
    with unchanged():
        for key in (b"mykey", "", 1, ["a"]):
            with pytest.raises(ValueError, match=r"Group.collection\(\).store\(key=.*non-empty"):
                Group.collection().store(key=key)


def test_sort_by_a_field_of_another_model_is_refused(db, people):
    Person, _, Group, _ = people
    Group(name="b"), Group(name="a")
    with pytest.raises(InvalidQueryError, match=r"sort\(by=Person.name\): a field of Group"):
        Group.collection().sort(by=Person.get_field("name"), alpha=True)

    class Base(related.RelatedModel):
        abstract = True
        collection_manager = ExtendedCollectionManager
        title = fields.StringField()

    class Book(Base):
        cluster_group = "related"
        database = db

    Book(title="b"), Book(title="a")
    assert Book.collection().sort(by=Base.get_field("title"), alpha=True) == ["2", "1"]


def test_a_related_collection_filters_on_other_fields(people):
    Person, _, Group, _ = people
    person = Person(name="p")
    Group(name="g", owner=person), Group(name="h", owner=person)
    assert person.owned(name="h") == ["2"]
    with pytest.raises(InvalidQueryError, match=r"owned of .*filters on Group\.owner itself"):
        person.owned(owner=person)


def test_the_machines_move_a_chain_of_relations_in_any_order(db, limpyd_database_factory):
    from limpyd_testing.stateful.config import use_database

    other = limpyd_database_factory()

    class C(related.RelatedModel):
        cluster_group = "related"
        database = db
        name = fields.StringField(indexable=True)

    class B(related.RelatedModel):
        cluster_group = "related"
        database = db
        c = FKStringField(C)

    class A(related.RelatedModel):
        cluster_group = "related"
        database = db
        b = FKStringField(B)

    restore = use_database([A, B, C], other)  # A refuses until B is there, B until C is
    assert [m.database for m in (A, B, C)] == [other] * 3
    restore()
    assert [m.database for m in (A, B, C)] == [db] * 3 and db.get_model("a") is A


def test_a_refused_move_puts_back_the_definition_it_replaced(db, limpyd_database_factory):
    other = limpyd_database_factory()

    def person(database):
        class Person(related.RelatedModel):
            cluster_group = "related"
            namespace = "redefined"

        Person.use_database(database)
        return Person

    def group(database, target):
        class Group(related.RelatedModel):  # the same definition each time (module, name)
            cluster_group = "related"
            namespace = "redefined"
            database = None
            owner = FKStringField(target, related_name="groups")

        Group.use_database(database)
        return Group

    here = group(db, person(db))
    there = group(other, person(other))
    with pytest.raises(ImplementationError, match="must use the same database"):
        there.use_database(db)
    assert db.get_model("group", "redefined") is here
    assert there.database is other and other.get_model("group", "redefined") is there


def test_a_related_collection_refuses_lookups_on_its_relation(people):
    Person = people[0]
    person, other = Person(name="p"), Person(name="q")
    for lookup in ({"owner__eq": other}, {"owner__in": [person, other]}):
        with pytest.raises(InvalidQueryError, match=r"filters on Group\.owner itself"):
            person.owned(**lookup)


def test_from_stored_takes_a_key_of_text(people):
    _, _, Group, _ = people
    Group(name="g")
    key = Group.collection().store(key="mine:{related}").stored_key  # its slot on a cluster
    assert Group.collection().from_stored(key) == ["1"]
    for wrong in (b"mine", "", None, 1):
        with pytest.raises(ValueError, match=r"from_stored\(key=.*a key is a non-empty str"):
            Group.collection().from_stored(wrong)


def test_a_related_collection_filters_on_a_field_named_as_its_own_with_an_underscore(db):
    """`owner___eq` names `owner_`, not the relation `owner`: it was refused as a filter on
    the relation itself."""

    class Boss(related.RelatedModel):
        cluster_group = "related"
        database = db
        name = fields.InstanceHashField(indexable=True)

    class Desk(related.RelatedModel):
        cluster_group = "related"
        database = db
        owner = FKInstanceHashField(Boss, related_name="desks")
        owner_ = fields.InstanceHashField(indexable=True)

    boss = Boss(name="b")
    Desk(owner=boss, owner_="z"), Desk(owner=boss, owner_="y")
    assert boss.desks(owner___eq="z") == ["1"]
    with pytest.raises(InvalidQueryError, match=r"it filters on Desk\.owner itself"):
        boss.desks(owner__eq=boss)


@pytest.mark.parametrize("name", ["_pk", "_connected", "_bound_fields"])
def test_a_related_name_taken_by_each_instance_is_refused(db, name):
    """Set by `__init__` on every instance, these names hid the related collection."""

    class Host(related.RelatedModel):
        cluster_group = "related"
        database = db

    with pytest.raises(ImplementationError, match=f"related name '{name}' is already an attr"):

        class Guest(related.RelatedModel):
            cluster_group = "related"
            database = db
            host = FKStringField(Host, related_name=name)


def test_a_unique_field_of_several_pks_checks_uniqueness_with_entries_of_its_own(db):
    """Deleting a target removes its pk's entries from the instances holding it: a unique
    M2M checked by a NumberRangeIndex ('1' and '01' one number) or a transform lost the
    check of the pk the holder kept, and another instance could take it."""
    from limpyd.indexes import EqualIndex

    class Target(related.RelatedModel):
        database = db
        id = fields.PKField()

    for indexes in ([EqualIndex, NumberRangeIndex], [EqualIndex.configure(transform=str.lower)]):
        with pytest.raises(ImplementationError, match=r"a unique M2MSetField checks uniqueness"):

            class Holder(related.RelatedModel):
                database = db
                cluster_group = Target
                m = M2MSetField(Target, related_name="ms", unique=True, indexes=indexes)

    class Kept(related.RelatedModel):  # no uniqueness by the shared entries: accepted
        database = db
        cluster_group = Target
        m = M2MSetField(
            Target,
            related_name="kept",
            unique=True,
            indexes=[EqualIndex, NumberRangeIndex.configure(handle_uniqueness=False)],
        )
        one = FKStringField(
            Target, related_name="ones", unique=True, indexes=[EqualIndex, NumberRangeIndex]
        )

    one, zero_one = Target(id="1"), Target(id="01")
    kept = Kept(m=[one, zero_one], one=one)
    one.delete()
    assert kept.m.smembers() == {"01"}
    assert Kept(m=[Target(id="1.0")]).m.smembers() == {"1.0"}
