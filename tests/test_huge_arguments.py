"""Commands with more arguments than a Lua call can pass (thousands of members at once): the
scripts run them in chunks, with the effect and the reply of the whole command. The oracle
is the server itself, running the same command on a plain key."""

from __future__ import annotations

import pytest

from limpyd import fields, model

pytestmark = pytest.mark.slow

N = 4500  # 9000 arguments for the pair commands: beyond what Lua's unpack takes


@pytest.fixture
def Bulk(db):
    class Bulk(model.RedisModel):
        database = db
        name = fields.StringField(indexable=True)
        props = fields.HashField(indexable=True)
        plain = fields.HashField()
        tags = fields.SetField(indexable=True)
        loose = fields.SetField()
        scores = fields.SortedSetField(indexable=True)
        history = fields.ListField(indexable=True)
        log = fields.ListField()

    return Bulk


def _contents(client, key):
    kind = client.type(key)
    return {
        "none": lambda: None,
        "hash": lambda: client.hgetall(key),
        "set": lambda: sorted(client.smembers(key)),
        "zset": lambda: client.zrange(key, 0, -1, withscores=True),
        "list": lambda: client.lrange(key, 0, -1),
    }[kind]()


MEMBERS = [f"m{i}" for i in range(2 * N)]
PAIRS = {f"k{i}": str(i % 7) for i in range(N)}
SCORES = {f"m{i}": i % 11 for i in range(N)}

CASES = [
    ("props", "hset", (), {"mapping": PAIRS}),
    ("plain", "hset", (), {"mapping": PAIRS}),
    ("props", "hmset", (PAIRS,), {}),
    ("props", "hdel", (*tuple(PAIRS)[: N - 10], "absent"), {}),
    ("tags", "sadd", (*tuple(MEMBERS), "m1"), {}),
    ("loose", "sadd", tuple(MEMBERS), {}),
    ("tags", "srem", (*tuple(MEMBERS[1::2]), "absent"), {}),
    ("scores", "zadd", (SCORES,), {}),
    ("scores", "zadd", (SCORES,), {"nx": True, "ch": True}),
    ("scores", "zrem", tuple(MEMBERS[: N // 2]), {}),
    ("history", "rpush", tuple(MEMBERS), {}),
    ("history", "lpush", tuple(MEMBERS), {}),
    ("log", "lpush", tuple(MEMBERS), {}),
    ("log", "rpushx", tuple(MEMBERS), {}),
]


@pytest.mark.filterwarnings("ignore:Call to deprecated hmset")
@pytest.mark.parametrize(
    "name, method, args, kwargs", CASES, ids=[f"{c[0]}.{c[1]}:{sorted(c[3])}" for c in CASES]
)
def test_a_huge_command_has_the_effect_and_reply_of_the_server(
    db, Bulk, consistent, name, method, args, kwargs
):
    seed = {
        "props": {"k1": "old", "other": "x"},
        "plain": {"k2": "old"},
        "tags": ["m0", "m1", "zz"],
        "loose": ["m3"],
        "scores": {"m0": 50, "zz": 1},
        "history": ["first"],
        "log": ["first"],
    }
    instance = Bulk(name="bulk", **{name: seed[name]})
    field = getattr(instance, name)
    reference = f"{Bulk._meta.hash_tag}:reference"
    db.client.delete(reference)
    Bulk(name="copy", **{name: seed[name]})  # the same data, to copy to the reference key
    copy_key = getattr(Bulk(Bulk.collection(name="copy")[0]), name).key
    db.client.copy(copy_key, reference)

    expected = getattr(db.client, method)(reference, *args, **kwargs)
    reply = getattr(field, method)(*args, **kwargs)

    assert reply == expected
    assert _contents(db.client, field.key) == _contents(db.client, reference)
    db.client.delete(reference)
    consistent(Bulk)


def test_a_huge_creation_and_its_deletion(Bulk, consistent):
    instance = Bulk(name="big", props=PAIRS, tags=MEMBERS, scores=SCORES, history=MEMBERS)
    assert instance.props.hlen() == N
    assert Bulk.collection(tags="m7000") == [instance.pk.get()]
    consistent(Bulk)
    instance.delete()
    assert Bulk.collection(tags="m7000") == []
    consistent(Bulk)


def test_a_filter_on_thousands_of_values(Bulk):
    first = Bulk(name="m10", tags=["m20"])
    second = Bulk(name="n", tags=["m9000"])
    pks = [first.pk.get(), second.pk.get()]
    assert list(Bulk.collection(name__in=MEMBERS)) == pks[:1]
    assert sorted(Bulk.collection(tags__in=[*MEMBERS, "m9000"])) == sorted(pks)
    assert list(Bulk.collection().exclude(tags__in=MEMBERS)) == pks[1:]
