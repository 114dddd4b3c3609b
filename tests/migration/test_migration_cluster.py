"""The migration on a Redis Cluster: redis-limpyd's keys have no hash tag, so one model's
old keys lie in many slots, where one DEL of several keys is refused (a pipeline's), or
made a transaction across slots (a client's)."""

from __future__ import annotations

from typing import Any

import pytest

from limpyd import fields, migration, model
from limpyd_testing.integrity import check

pytestmark = pytest.mark.limpyd_backends("cluster")


def test_copy_and_delete_source_on_a_cluster(db: Any) -> None:
    class Person(model.RedisModel):
        database = db
        namespace = "migc"
        name = fields.StringField(indexable=True)
        city = fields.InstanceHashField(indexable=True)
        tags = fields.SetField()

    client = db.client
    for pk in range(1, 31):  # spread over the slots
        client.sadd("migc:person:collection", str(pk))
        client.set(f"migc:person:{pk}:name", f"n{pk}")
        client.hset(f"migc:person:{pk}:hash", "city", f"c{pk % 3}")
        client.sadd(f"migc:person:{pk}:tags", "a", str(pk))
    client.set("migc:person:max_pk", "30")
    client.sadd("migc:person:name:n1", "1")  # an old index key
    url = db.backend.url
    said: list[str] = []
    assert migration.migrate([Person], url, say=said.append) == 0, said
    assert migration.migrate([Person], url, delete_source=True, say=said.append) == 0, said
    old = [f"migc:person:{pk}:{name}" for pk in range(1, 31) for name in ("name", "hash", "tags")]
    old += ["migc:person:collection", "migc:person:max_pk", "migc:person:name:n1"]
    assert [key for key in old if client.exists(key)] == []
    assert check(Person) == []
    assert len(Person.collection(city="c1")) == 10
    assert Person(7).name.get() == "n7" and Person(7).tags.smembers() == {"a", "7"}
    assert Person(name="new").pk.get() == "31"
