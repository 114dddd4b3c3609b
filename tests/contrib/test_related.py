"""Related fields (manual 2.6): relations, related collections, and the propagation of
updates and deletions, atomically and in O(1) round trips."""

from __future__ import annotations

import pytest

from limpyd import fields
from limpyd.contrib import related
from limpyd.contrib.related import (
    FKInstanceHashField,
    FKStringField,
    M2MListField,
    M2MSetField,
    M2MSortedSetField,
)
from limpyd.exceptions import ImplementationError


def test_first_example(db, consistent):
    class Person(related.RelatedModel):
        cluster_group = "related"
        database = db
        name = fields.PKField()

    class Group(related.RelatedModel):
        cluster_group = "related"
        database = db
        name = fields.PKField()
        private = fields.StringField(indexable=True)  # the manual filters on it: indexable
        owner = related.FKInstanceHashField("Person")
        members = related.M2MSetField("Person", related_name="membership")

    core_devs = Group(name="limpyd core devs", private=0)
    ybon = Person(name="ybon")
    twidi = Person(name="twidi")
    assert core_devs.owner.hset(ybon) == 1
    assert core_devs.members.sadd(twidi, ybon._pk) == 2
    assert core_devs.members.smembers() == {"ybon", "twidi"}
    assert ybon.group_set(private=0) == ["limpyd core devs"]
    assert twidi.membership() == ["limpyd core devs"]
    consistent(Person, Group)


def test_to_forms_and_late_definition(db):
    class Group(related.RelatedModel):
        cluster_group = "related"
        database = db
        name = fields.StringField()
        owner = FKStringField("Person")
        parent = FKStringField("self", related_name="children")
        elsewhere = FKStringField("my_namespace:Person", related_name="remote_groups")

    class Person(related.RelatedModel):  # defined after the field pointing to it
        cluster_group = "related"
        database = db
        name = fields.StringField()

    def remote():
        class Person(related.RelatedModel):
            cluster_group = "related"
            database = db
            namespace = "my_namespace"

        return Person

    RemotePerson = remote()
    assert Group.get_field("elsewhere").related_model is RemotePerson
    assert Group.get_field("owner").related_model is Person
    assert Group.get_field("parent").related_model is Group
    person = Person(name="p")
    parent = Group(name="parent", owner=person)
    child = Group(name="child", parent=parent)
    assert person.group_set() == [parent.pk.get()]
    assert parent.children() == [child.pk.get()]
    assert child.parent.instance() == parent
    assert parent.parent.instance() is None

    class Other(related.RelatedModel):
        cluster_group = "related"
        database = db
        boss = FKStringField(Person, related_name="bossed")

    assert Other.get_field("boss").related_model is Person


def test_related_name_templates_and_clashes(db):
    class Person(related.RelatedModel):
        cluster_group = "related"
        database = db
        name = fields.StringField()

    class BaseGroup(related.RelatedModel):
        cluster_group = "related"
        database = db
        namespace = "groups"
        abstract = True
        name = fields.StringField()
        owner = FKStringField("Person", related_name="%(namespace)s_%(model)s_set")

    # the manual's namespace is "groups"; Person lives in "" so give the full name
    class PublicGroup(BaseGroup):
        owner = FKStringField(":Person", related_name="%(namespace)s_%(model)s_set")

    class PrivateGroup(BaseGroup):
        owner = FKStringField(":Person", related_name="%(namespace)s_%(model)s_set")

    person = Person(name="p")
    public = PublicGroup(name="pub", owner=person)
    private = PrivateGroup(name="priv", owner=person)
    assert person.groups_publicgroup_set() == [public.pk.get()]
    assert person.groups_privategroup_set() == [private.pk.get()]

    with pytest.raises(ImplementationError, match="both want the related collection 'clash'"):

        class Clashing(related.RelatedModel):
            cluster_group = "related"
            database = db
            a = FKStringField(Person, related_name="clash")
            b = FKStringField(Person, related_name="clash")

    with pytest.raises(ImplementationError, match="already an attribute"):

        class Shadowing(related.RelatedModel):
            cluster_group = "related"
            database = db
            a = FKStringField(Person, related_name="delete")


def test_same_database_required(db, limpyd_database_factory):
    other = limpyd_database_factory()  # another database (on the same server)

    class Person(related.RelatedModel):
        cluster_group = "related"
        database = db

    with pytest.raises(ImplementationError, match="same database"):

        class Elsewhere(related.RelatedModel):
            cluster_group = "related"
            database = other
            owner = FKStringField(Person)


@pytest.fixture
def models(db):
    class Person(related.RelatedModel):
        cluster_group = "related"
        database = db
        name = fields.PKField()
        following = M2MSetField("self", related_name="followers")

    class Group(related.RelatedModel):
        cluster_group = "related"
        database = db
        name = fields.PKField()
        private = fields.StringField(default=0, indexable=True)
        owner = FKStringField("Person", related_name="owned_groups")
        admin = FKInstanceHashField("Person", related_name="administered")
        members = M2MSetField("Person", related_name="membership")
        queue = M2MListField("Person", related_name="queued_in")
        ranking = M2MSortedSetField("Person", related_name="ranked_in")

    return Person, Group


def test_related_collections(models):
    Person, Group = models
    group1 = Group(name="group 1")
    group2 = Group(name="group 2", private=1)
    person1 = Person(name="person 1")
    group1.owner.set(person1)
    group2.owner.set(person1)
    assert Group.collection(owner=person1.pk.get()) == ["group 1", "group 2"]
    assert person1.owned_groups() == ["group 1", "group 2"]
    assert person1.owned_groups(private=1) == ["group 2"]
    owned = person1.owned_groups()
    assert owned.filter(private=1) == ["group 2"]
    assert group1.owner.instance() == person1


def test_m2m_callable(models):
    Person, _ = models
    foo = Person(name="Foo")
    bar = Person(name="Bar")
    baz = Person(name="Baz")
    foo.following.sadd(bar, baz)
    baz.following.sadd(bar)
    assert bar.followers() == ["Baz", "Foo"]
    assert bar.followers().values_list("name", flat=True) == ["Baz", "Foo"]
    assert foo.following.smembers() == {"Bar", "Baz"}
    assert foo.following() == ["Bar", "Baz"]
    assert foo.following().values_list("name", flat=True) == ["Bar", "Baz"]
    assert list(foo.following.collection()) == list(foo.following())


def test_instances_accepted_everywhere(models, consistent):
    Person, Group = models
    a, b, c = Person(name="a"), Person(name="b"), Person(name="c")
    group = Group(name="g", owner=a, admin=b, members=[a, "b"], queue=[c, c, a], ranking={a: 1})
    group.ranking.zadd({b: 2}, c=3)
    group.queue.rpush(b, "a")
    assert group.ranking.zrange(0, -1) == ["a", "b", "c"]
    assert group.queue.lrange(0, -1) == ["c", "c", "a", "b", "a"]
    assert group.hmget("admin") == ["b"]
    with pytest.raises(ValueError, match=r"Group\.owner"):
        group.owner.set(group)
    consistent(Person, Group)


def test_fk_change_moves_between_related_collections(models, consistent):
    Person, Group = models
    a, b = Person(name="a"), Person(name="b")
    group = Group(name="g", owner=a, admin=a)
    group.owner.set(b)
    group.admin.hset(b)
    assert a.owned_groups() == [] and b.owned_groups() == ["g"]
    assert a.administered() == [] and b.administered() == ["g"]
    group.owner.delete()
    assert b.owned_groups() == []
    consistent(Person, Group)


def test_deletion_propagates_to_every_relation(models, consistent, db):
    Person, Group = models
    a, b = Person(name="a"), Person(name="b")
    groups = [
        Group(name=f"g{i}", owner=a, admin=a, members=[a, b], queue=[a, b, a], ranking={a: 1, b: 2})
        for i in range(3)
    ]
    b.following.sadd(a)
    a.following.sadd(a, b)
    a.delete()
    for group in groups:
        assert group.owner.get() is None
        assert group.admin.hget() is None
        assert group.members.smembers() == {"b"}
        assert group.queue.lrange(0, -1) == ["b"]
        assert group.ranking.zrange(0, -1) == ["b"]
    assert b.following.smembers() == set()
    assert b.membership() == ["g0", "g1", "g2"]
    assert Group.collection(owner="a") == [] and Group.collection(members="a") == []
    consistent(Person, Group)
    assert not [k for k in db.scan_keys() if ":a:" in k or k.endswith(":a")]


@pytest.mark.parametrize("referencing", [1, 20])
def test_deletion_round_trips_do_not_grow(models, limpyd_commands, referencing):
    Person, Group = models
    target = Person(name="t")
    for i in range(referencing):
        Group(name=f"g{i}", owner=target, admin=target, members=[target], queue=[target],
              ranking={target: i})  # fmt: skip
    Person(name="warm").delete()
    with limpyd_commands() as counted:
        target.delete()
    assert counted.round_trips == 1
    assert Group.collection(members="t") == []


def test_refused_deletion_changes_nothing(models, unchanged):
    from limpyd.exceptions import DoesNotExist

    Person, Group = models
    a = Person(name="a")
    Group(name="g", owner=a, members=[a])
    ghost = Person.lazy_connect("ghost")
    with unchanged(), pytest.raises(DoesNotExist):
        ghost.delete()


def test_a_pk_holding_the_text_that_stood_for_the_referencing_pk(db):
    """Link records stood for the referencing pk with a fixed text, found by searching: a
    pk holding it had its index keys cut there, and deleting it left the entries of the
    instances pointing to it (stale, found by filters and related collections). Now a
    fresh nonce, which the records never hold: they are the same as before for other pks."""
    from limpyd.contrib.related import FKInstanceHashField, M2MSetField, RelatedModel
    from limpyd_testing import integrity

    class Person(RelatedModel):
        database = db
        cluster_group = "marked"
        id = fields.PKField()

    class Group(RelatedModel):
        database = db
        cluster_group = "marked"
        owner = FKInstanceHashField(Person, related_name="owned")
        members = M2MSetField(Person, related_name="groups")

    marked = "q\x00limpyd-referencing-pk\x00z"
    person = Person(id=marked)
    group = Group(owner=person, members=[person, Person(id="plain")])
    assert Group.get_field("owner").link_record("x") == Group.get_field("owner").link_record("x")
    integrity.assert_consistent(Person, Group)
    person.delete()
    assert group.owner.hget() is None and group.members.smembers() == {"plain"}
    assert Group.collection(owner=marked) == [] and Group.collection(members=marked) == []
    Person(id=marked)
    assert list(Person(marked).owned()) == [] and list(Person(marked).groups()) == []
    integrity.assert_consistent(Person, Group)


def test_a_related_name_clash_of_models_of_one_name_names_their_namespaces(db):
    """Two models named Group in namespaces 'a' and 'b' pointing to Person: the clash was
    reported as 'Group.owner and Group.owner'."""
    from limpyd.contrib.related import FKInstanceHashField, RelatedModel

    class Person(RelatedModel):
        database = db
        cluster_group = "clash"

    class Group(RelatedModel):
        database = db
        cluster_group = "clash"
        namespace = "a"
        owner = FKInstanceHashField(Person)

    message = r"Group\.owner \(namespace 'b'\) and Group\.owner \(namespace 'a'\) both want"
    with pytest.raises(ImplementationError, match=message):

        class Group(RelatedModel):
            database = db
            cluster_group = "clash"
            namespace = "b"
            owner = FKInstanceHashField(Person)
