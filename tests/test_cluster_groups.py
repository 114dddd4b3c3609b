"""Units of co-location (`cluster_group`), the cluster URLs, and what a cluster refuses."""

from __future__ import annotations

import pytest
from redis.crc import key_slot
from redis.exceptions import RedisClusterException

from limpyd import fields, model
from limpyd.backends import RedisClusterBackend, backend_from_url
from limpyd.backends.cluster import CrossSlotError, parse_cluster_url
from limpyd.contrib import related
from limpyd.contrib.collection import ExtendedCollectionManager
from limpyd.database import RedisDatabase
from limpyd.exceptions import ImplementationError

#: A cluster backend never connected to (nothing is sent before a client is used).
UNUSED_CLUSTER = RedisClusterBackend(startup_nodes=[("127.0.0.1", 1)])


def _slot(key: str) -> int:
    return key_slot(key.encode())


def test_every_key_of_a_group_has_its_hash_tag(db):
    class Shop(model.RedisModel):
        database = db
        namespace = "app"
        cluster_group = "sales"
        name = fields.StringField(indexable=True, unique=True)
        tags = fields.SetField(indexable=True)

    class Branch(Shop):
        pass

    class Order(model.RedisModel):
        database = db
        namespace = "app"
        cluster_group = Shop  # a model: its group
        total = fields.StringField(indexable=True)

    class Alone(model.RedisModel):
        database = db
        namespace = "app"
        name = fields.StringField(indexable=True)

    assert Branch._meta.cluster_group == Order._meta.cluster_group == "sales"
    assert Alone._meta.cluster_group == "alone"
    assert Shop._meta.prefix == "app:{sales}:shop" and Alone._meta.prefix == "app:{alone}:alone"
    Shop(name="a", tags=["x"]), Branch(name="b"), Order(total="3"), Alone(name="c")
    keys = list(db.scan_keys())
    grouped = [k for k in keys if not k.startswith("app:{alone}")]
    assert len(grouped) > 8 and all("{sales}" in k for k in grouped)
    assert len({_slot(k) for k in grouped}) == 1
    assert {_slot(k) for k in keys} - {_slot(grouped[0])}  # Alone is elsewhere


@pytest.mark.parametrize("bad", ["", "a:b", "a{b", "b}", "*", "x?", "[x]", "a\\b", "\n", 3, b"g"])
def test_invalid_groups_and_namespaces_are_refused(db, bad):
    with pytest.raises(ImplementationError, match=r"Model Bad: invalid cluster_group"):

        class Bad(model.RedisModel):
            database = db
            cluster_group = bad

    if isinstance(bad, str) and bad and set(bad) & set("{}"):
        with pytest.raises(ImplementationError, match=r"Model Worse: invalid namespace"):

            class Worse(model.RedisModel):
                database = db
                namespace = bad


@pytest.mark.limpyd_backends("fake", "redis")  # models a cluster would refuse, then a cluster
def test_related_models_of_different_groups_are_refused_on_a_cluster_only(db):
    class Author(related.RelatedModel):
        namespace = "groups"
        database = db

    class Book(related.RelatedModel):  # another group: fine off a cluster
        namespace = "groups"
        database = db
        author = related.FKStringField(Author)

    with pytest.raises(ImplementationError) as refused:
        db.connect(backend=UNUSED_CLUSTER)
    message = str(refused.value)
    assert "Book" in message and "Author" in message and "cluster_group" in message
    assert db.backend is not UNUSED_CLUSTER  # refused: the database did not move

    cluster_db = RedisDatabase(backend=UNUSED_CLUSTER)

    class Writer(related.RelatedModel):
        database = cluster_db

    with pytest.raises(ImplementationError, match=r"Novel.*Writer.*cluster_group"):

        class Novel(related.RelatedModel):
            database = cluster_db
            writer = related.FKStringField(Writer)

    class Poem(related.RelatedModel):
        database = cluster_db
        cluster_group = Writer
        writer = related.FKStringField(Writer)

    assert Poem._meta.cluster_group == Writer._meta.cluster_group == "writer"


def test_cluster_urls():
    nodes, options = parse_cluster_url(
        "redis+cluster://u:p%40ss@h1:7000,[::1]:7001/0?socket_timeout=2.5"
    )
    assert nodes == [("h1", 7000), ("::1", 7001)]
    assert options == {"username": "u", "password": "p@ss", "socket_timeout": 2.5}
    assert parse_cluster_url("rediss+cluster://h:1")[1] == {"ssl": True}
    backend = backend_from_url("redis+cluster://127.0.0.1:7000,127.0.0.1:7001")
    assert isinstance(backend, RedisClusterBackend) and backend.kind == "cluster"
    assert backend.describe() == "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"
    for bad in ("redis+cluster://h:1/2", "redis+cluster://h", "redis+cluster://h:x", "redis://h:1"):
        with pytest.raises(ValueError):
            parse_cluster_url(bad)
    with pytest.raises(ValueError, match="only db 0") as refused:
        parse_cluster_url("redis+cluster://u:secret@h:1/3")
    assert "secret" not in str(refused.value) and "***@h:1/3" in str(refused.value)
    with pytest.raises(ValueError, match="only db 0"):
        RedisClusterBackend(startup_nodes=[("h", 1)], db=1)
    with pytest.raises(ValueError, match="either a url or startup_nodes"):
        RedisClusterBackend()


@pytest.mark.limpyd_backends("cluster")
def test_a_transaction_watching_keys_of_several_slots_is_refused(limpyd_database_factory):
    from limpyd.contrib.database import PipelineDatabase

    db = limpyd_database_factory(PipelineDatabase)

    class Left(model.RedisModel):
        database = db
        x = fields.StringField()

    class Right(model.RedisModel):
        database = db
        x = fields.StringField()

    left, right = Left(x="a"), Right(x="b")
    for watched in ((left.x, right.x), (left.x.key, "elsewhere")):
        with pytest.raises(CrossSlotError, match=r"2 hash slots .*cluster_group"):
            db.transaction(lambda pipeline: pipeline.multi(), *watched)
    assert left.x.get() == "a"
    assert db.transaction(lambda pipeline: (pipeline.multi(), left.x.set("c")), left.x) == [True]
    assert left.x.get() == "c"


@pytest.mark.limpyd_backends("cluster")
def test_a_query_across_slots_is_refused_before_anything_is_sent(db):
    class Person(model.RedisModel):
        database = db
        name = fields.StringField(indexable=True)

    Person(name="a")
    db.client.sadd("elsewhere", "1")
    extended = Person.collection(manager=ExtendedCollectionManager)
    with pytest.raises(CrossSlotError, match=r"'elsewhere'.*cluster_group"):
        extended.intersect("elsewhere").store(key=f"{Person._meta.hash_tag}:out")
    assert not db.client.exists(f"{Person._meta.hash_tag}:out")  # refused before it was sent
    mine = f"{Person._meta.hash_tag}:mine"
    db.client.sadd(mine, "1")
    assert list(Person.collection(manager=ExtendedCollectionManager).intersect(mine)) == ["1"]


def test_the_raw_clients_multi_key_commands_span_slots(db):
    """redis-py splits EXISTS, DELETE, UNLINK and the nonatomic MGET/MSET by slot in a
    pipeline it takes with `pipeline()`: limpyd's cluster client made it a transaction,
    which failed (AttributeError)."""
    client = db.client
    keys = [f"spread:{i}" for i in range(12)]
    if db.backend.kind == "cluster":
        assert len({_slot(key) for key in keys}) > 1
        other = next(key for key in keys if _slot(key) != _slot(keys[0]))
        with pytest.raises(RedisClusterException), client.pipeline() as pipeline:
            pipeline.set(keys[0], "a").set(other, "b").execute()  # still a transaction
    for key in keys:
        client.set(key, key)
    assert client.exists(*keys) == 12 and client.exists(keys[0]) == 1
    assert client.delete(*keys[:4]) == 4 and client.unlink(*keys[4:8]) == 4
    assert client.exists(*keys) == 4
    if db.backend.kind == "cluster":
        assert client.mget_nonatomic(keys[8:]) == keys[8:]
        client.mset_nonatomic({key: "x" for key in keys[:3]})
        assert client.exists(*keys) == 7
