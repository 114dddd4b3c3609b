"""Round-trip budgets of the features beyond the manual (warm: the script is loaded).

Queries, whatever their lookups, algebra or sort keys, are one round trip, and expired
instances are filtered out in that same round trip; expiry writes are one; reaping is four
whatever the number of expired instances (their states read in one script call, their
deletions, references included, sent in one pipeline).
"""

from __future__ import annotations

import pytest

from limpyd import fields, model
from limpyd.contrib import related
from limpyd.contrib.collection import ExtendedCollectionManager
from limpyd.contrib.indexes import EndsWithIndex
from limpyd.indexes import EqualIndex


@pytest.fixture
def models(db):
    class Person(related.RelatedModel):
        cluster_group = "round_trips_beyond"
        database = db
        collection_manager = ExtendedCollectionManager
        unique_together = [("file", "city")]
        name = fields.InstanceHashField(indexable=True)
        city = fields.InstanceHashField(indexable=True)
        age = fields.InstanceHashField(indexable=True)
        file = fields.InstanceHashField(indexable=True, indexes=[EqualIndex, EndsWithIndex])
        tags = fields.SetField(indexable=True)

    class Group(related.RelatedModel):
        cluster_group = "round_trips_beyond"
        database = db
        members = related.M2MSetField(Person, related_name="groups")

    people = []
    for i in range(12):
        odd = {"city": "Paris", "tags": ["a", "b"]} if i % 2 else {"tags": ["a"]}
        people.append(Person(name=f"n{i % 3}", age=str(i), file=f"f{i}.txt", **odd))
    Group(members=people[:6])
    people[0].expireat(0)  # expired, not reaped: every query below must leave it out
    return Person, Group, people


QUERIES = {
    "isnull": lambda P: list(P.collection(city__isnull=True)),
    "all": lambda P: list(P.collection(tags__all=["a", "b"])),
    "endswith": lambda P: list(P.collection(file__endswith="1.txt")),
    "exclude": lambda P: list(P.collection(name="n1").exclude(age="1")),
    "union": lambda P: list(P.collection(name="n1") | P.collection(name="n2")),
    "difference, sorted, sliced, instances": lambda P: list(
        (P.collection(name="n1") - P.collection(tags="b")).sort(by="age").instances()[0:3]
    ),
    "multi-key sort, sliced, values": lambda P: list(
        P.collection().sort(by=["name", "-age"], alpha=[True, False]).values("pk", "age")[2:7]
    ),
    "together": lambda P: list(P.collection(file="f1.txt", city="Paris")),
}


@pytest.mark.parametrize("query", sorted(QUERIES))
def test_queries_are_one_round_trip(models, limpyd_commands, query):
    Person, _, people = models
    expired = people[0].pk.get()
    with limpyd_commands() as counted:
        found = QUERIES[query](Person)
    assert counted.round_trips == 1, counted.names
    assert found, "the query should find someone"
    pks = {
        item.pk.get()
        if isinstance(item, model.RedisModel)
        else item["pk"]
        if isinstance(item, dict)
        else item
        for item in found
    }
    assert expired not in pks


def test_related_collection_leaves_expired_out_in_one_round_trip(models, limpyd_commands):
    _, Group, people = models
    group = Group.collection().instances()[0]
    with limpyd_commands() as counted:
        members = list(group.members())
    assert counted.round_trips == 1
    assert sorted(members, key=int) == [p.pk.get() for p in people[1:6]]


def test_expiry_writes_are_one_round_trip(models, limpyd_commands):
    _, _, people = models
    person = people[1]
    for call in (
        lambda: person.expire(100),
        lambda: person.expireat(10**10),
        lambda: person.ttl(),
        lambda: person.persist(),
    ):
        with limpyd_commands() as counted:
            call()
        assert counted.round_trips == 1, counted.names
    assert person.ttl() is None


@pytest.mark.parametrize("expired", [1, 3, 6])
def test_reaping_is_four_round_trips_whatever_the_number(
    models, limpyd_commands, consistent, expired
):
    Person, Group, people = models
    for person in people[1:expired]:  # people[0] has expired already
        person.expireat(0)
    with limpyd_commands() as counted:
        assert Person.reap_expired() == expired
    assert counted.round_trips == 4, counted.names
    reaped = {p.pk.get() for p in people[:expired]}
    assert not reaped & set(Person.collection())
    group = Group.collection().instances()[0]
    assert group.members.smembers() == {p.pk.get() for p in people[:6]} - reaped
    consistent(Person, Group)


def test_reaping_a_pk_whose_instance_is_gone(models, db, consistent):
    """A write the batch cannot apply (here: no such instance) is tried alone."""
    Person, Group, _ = models
    db.connection.zadd(Person._meta.expiry_key, {"999": 0})
    assert Person.reap_expired() == 1  # people[0]; 999 is no instance
    assert db.connection.zscore(Person._meta.expiry_key, "999") is None
    assert Person.reap_expired() == 0
    consistent(Person, Group)
