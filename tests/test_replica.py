"""Queries never write: every kind of query answers on a read-only replica, as on its
primary; `store()`, the one query that writes, is refused there; a query leaves a user's
keys alone, whatever their names."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from limpyd import fields, lua
from limpyd.contrib import related
from limpyd.contrib.collection import ExtendedCollectionManager
from limpyd.contrib.indexes import EndsWithIndex
from limpyd.database import RedisDatabase
from limpyd.indexes import NumberRangeIndex, TextRangeIndex
from limpyd_testing.server import RedisServerExecutor

pytestmark = pytest.mark.slow


def make_models(db: RedisDatabase) -> dict[str, Any]:
    class Person(related.RelatedModel):
        cluster_group = "replica"
        database = db
        namespace = "replica"
        collection_manager = ExtendedCollectionManager
        name = fields.InstanceHashField(indexes=[TextRangeIndex, EndsWithIndex])
        city = fields.StringField(indexable=True)
        age = fields.InstanceHashField(indexes=[NumberRangeIndex])
        tags = fields.SetField(indexable=True)
        scores = fields.SortedSetField()

    class Team(related.RelatedModel):
        cluster_group = "replica"
        database = db
        namespace = "replica"
        code = fields.PKField()
        lead = related.FKInstanceHashField(Person, related_name="leading")
        members = related.M2MSetField(Person, related_name="teams")

    return {"Person": Person, "Team": Team}


def queries(models: dict[str, Any]) -> dict[str, Any]:
    """Every kind of query, each a function of the models giving a comparable answer."""
    Person, Team = models["Person"], models["Team"]
    c = Person.collection
    ranking = f"{Person._meta.hash_tag}:ranking"  # in the model's slot (a cluster needs it)
    return {
        "all": lambda: sorted(c()),
        "len": lambda: len(c()),
        "bool": lambda: bool(c(city="Nowhere")),
        "one field": lambda: sorted(c(city="Paris")),
        "two fields": lambda: sorted(c(city="Paris", tags="b")),
        "__in": lambda: sorted(c(city__in=["Paris", "Rome"])),
        "__all": lambda: sorted(c(tags__all=["a", "b"])),
        "range": lambda: sorted(c(age__gte=30)),
        "prefix": lambda: sorted(c(name__startswith="a")),
        "suffix": lambda: sorted(c(name__endswith="n")),
        "isnull": lambda: sorted(c(city__isnull=True)),
        "exclude": lambda: sorted(c().exclude(city="Paris")),
        "exclude nothing": lambda: sorted(c().exclude()),
        "algebra": lambda: sorted((c(city="Paris") | c(age=30)) ^ c(tags="a")),
        "difference": lambda: sorted(c(city="Paris") - c(age=30)),
        "sort alpha slice": lambda: list(c().sort(by="name", alpha=True, desc=True)[1:3]),
        "sort numeric": lambda: list(c(age__gte=0).sort(by="age")),
        "default order slice": lambda: list(c()[1:3]),
        "index": lambda: c()[2],
        "first": lambda: c(city="Paris").sort(by="name", alpha=True)[0],
        "get": lambda: Person.get(name="bob").pk.get(),
        "exists": lambda: Person.exists(name="cid"),
        "instances": lambda: [p.name.hget() for p in c(city="Paris").instances().sort(by="pk")],
        "values": lambda: list(c(city="Paris").values("name", "age").sort(by="pk")),
        "values_list": lambda: list(c().sort(by="name", alpha=True).values_list("name", flat=True)),
        "by score": lambda: list(c().sort(by_score=ranking)),
        "intersect": lambda: sorted(c().intersect(ranking, ["1", "3", "99"])),
        "related": lambda: sorted(Person.get(1).teams()),
        "related filtered": lambda: sorted(Team.collection(lead=1, members=2)),
    }  # fmt: skip


def fill(models: dict[str, Any]) -> None:
    Person, Team = models["Person"], models["Team"]
    ann = Person(name="ann", city="Paris", age=30, tags=["a", "b"])
    bob = Person(name="bob", city="Paris", age=40, tags=["b"])
    cid = Person(name="cid", city="Rome", tags=["a", "c"])
    Person(name="dan", age=30)
    Person.database.client.zadd(f"{Person._meta.hash_tag}:ranking", {"1": 3, "2": 1, "3": 2})
    Team(code="core", lead=ann, members=[ann, bob])
    Team(code="docs", lead=cid, members=[ann])


@pytest.fixture(scope="module")
def replicated(redis_server_path: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """The models on a primary and on a read-only replica of it, both started here, the
    primary filled."""
    with RedisServerExecutor(redis_server_path) as primary:
        follow = ("--replicaof", primary.host, str(primary.port))
        with RedisServerExecutor(redis_server_path, extra_args=follow) as replica:
            on_primary = RedisDatabase.from_url(primary.url)
            on_replica = RedisDatabase.from_url(replica.url)
            deadline = time.monotonic() + 20
            while on_replica.client.info("replication")["master_link_status"] != "up":
                assert time.monotonic() < deadline, "the replica never caught up"
                time.sleep(0.05)
            primary_models = make_models(on_primary)
            fill(primary_models)
            assert on_primary.client.wait(1, 10_000) == 1
            yield primary_models, make_models(on_replica)


@pytest.mark.limpyd_backends("redis")
def test_every_query_answers_on_a_replica_as_on_its_primary(limpyd_backend, replicated):
    on_primary, on_replica = replicated
    assert on_replica["Person"].database.client.info("replication")["role"] == "slave"
    expected = {name: ask() for name, ask in queries(on_primary).items()}
    answered = {name: ask() for name, ask in queries(on_replica).items()}
    assert answered == expected
    # not vacuous: the answers are those of the data
    assert expected["one field"] == ["1", "2"] and expected["related"] == ["core", "docs"]
    assert expected["algebra"] == ["2", "3", "4"] and expected["by score"] == ["4", "2", "3", "1"]


@pytest.mark.limpyd_backends("redis")
def test_store_is_refused_on_a_replica(limpyd_backend, replicated):
    Person = replicated[1]["Person"]
    with pytest.raises(redis.ReadOnlyError):
        Person.collection(city="Paris").store()


@pytest.mark.limpyd_backends("redis")
def test_a_replica_without_limpyds_library_answers_too(limpyd_backend, replicated):
    """A replica whose primary lost limpyd's library (FUNCTION FLUSH) cannot load it (it is
    read-only): its clients run the same code as EVAL_RO scripts, with the same answers, and
    `store()` is still refused."""
    on_primary, on_replica = replicated
    expected = {name: ask() for name, ask in queries(on_primary).items()}
    primary = on_primary["Person"].database
    primary.connection.function_flush()
    assert primary.client.wait(1, 10_000) == 1
    replica = RedisDatabase.from_url(on_replica["Person"].database.backend.describe())
    assert replica.connection.function_list() == []
    fresh = make_models(replica)
    assert {name: ask() for name, ask in queries(fresh).items()} == expected
    assert replica.client in lua.SCRIPT.evaluating
    assert replica.connection.function_list() == []
    with pytest.raises(redis.ReadOnlyError):
        fresh["Person"].collection(city="Paris").store()


def test_queries_leave_keys_of_any_name_alone(db, unchanged):
    models = make_models(db)
    fill(models)
    for name in ("__limpyd_query__:1", "__limpyd_query__:2", "__limpyd_scratch__"):
        db.client.set(name, "mine")
    with unchanged():
        answers = {name: ask() for name, ask in queries(models).items()}
    assert answers["two fields"] == ["1", "2"] and answers["__in"] == ["1", "2", "3"]
    assert [db.client.get(k) for k in ("__limpyd_query__:1", "__limpyd_scratch__")] == ["mine"] * 2
