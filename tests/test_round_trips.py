"""Round-trip budgets (manual operations, counted on both backends).

"Cold" runs start with the server not knowing limpyd's code (FUNCTION FLUSH), so the first
call pays FCALL's miss, then FUNCTION LOAD, then the call again: two round trips more than
"warm" runs, the steady state.
"""

from __future__ import annotations

import pytest

from limpyd import creations, fields, model
from limpyd.fields.base import CHUNK


@pytest.fixture
def Item(db):
    class Item(model.RedisModel):
        database = db
        name = fields.InstanceHashField(unique=True)
        color = fields.InstanceHashField(indexable=True)
        size = fields.InstanceHashField(indexable=True)
        tags = fields.SetField(indexable=True)
        slug = fields.StringField(unique=True)
        notes = fields.ListField()
        plain = fields.StringField()

    return Item


@pytest.fixture(params=["cold", "warm"])
def temperature(request, db, forget_code):
    forget_code()
    if request.param == "warm":
        db.connection.ping()  # any limpyd call below loads the script first
    return request.param


def _cost(warm: int, temperature: str, loading: int) -> int:
    """The round trips of a call that costs `warm` once the server knows limpyd's code
    (`loading` more on a server that lacks it)."""
    return warm if temperature == "warm" else warm + loading


def _warm_up(Item, temperature):
    if temperature == "warm":
        Item(plain="warm-up").delete()


VALUES = dict(name="n", color="c", size="s", tags=["a", "b"], slug="sl", notes=["x"], plain="p")


def test_create_with_every_field(Item, limpyd_commands, temperature, loading_round_trips):
    _warm_up(Item, temperature)
    with limpyd_commands() as counted:
        Item(**VALUES)
    assert counted.round_trips == _cost(1, temperature, loading_round_trips), counted.names


def test_a_creation_sets_each_hash_with_one_command(Item, db):
    # the script checks and runs fewer commands: the InstanceHashFields' values go in one HSET
    write = creations.creation(Item, VALUES)()
    assert write.commands.count("HSET") == 1
    i = write.commands.index("HSET")
    assert write.commands[i - 1 : i + 8] == [8, "HSET", "", "name", "n", "color", "c", "size", "s"]
    pk = Item(**VALUES).pk.get()
    assert Item(pk).hmget("name", "color", "size") == ["n", "c", "s"]


def test_a_creation_of_many_hash_fields_chunks_its_hset(db):
    names = [f"f{i}" for i in range(CHUNK // 2 + 3)]  # more pairs than a command carries
    Wide = type(
        "Wide",
        (model.RedisModel,),
        {
            "database": db,
            **{name: fields.InstanceHashField(indexable=name == "f0") for name in names},
        },
    )
    values = {name: f"v{name}" for name in names}
    write = creations.creation(Wide, values)()
    assert write.commands.count("HSET") == 2
    instance = Wide(**values)
    assert instance.hmget(*names) == [values[name] for name in names]
    assert Wide.collection(f0="vf0") == [instance.pk.get()]


def test_update_of_an_indexed_field(
    Item, limpyd_commands, temperature, forget_code, loading_round_trips
):
    item = Item(**VALUES)
    if temperature == "cold":
        forget_code()
    # one round trip: the script finds the entries of the value it replaces, or of the
    # members a set command touches; a unique value is checked before anything is written
    for update, warm in (
        (lambda: item.color.hset("d"), 1),
        (lambda: item.slug.set("other"), 1),
        (lambda: item.tags.sadd("z"), 1),
        (lambda: item.tags.srem("z", "y"), 1),
        (lambda: item.name.hset("m"), 1),
        (lambda: item.size.hset("3"), 1),
        (lambda: item.size.hincrby(2), 1),
        (lambda: item.slug.append("-x"), 2),  # a unique value only the server computes
    ):
        with limpyd_commands() as counted:
            update()
        assert counted.round_trips == _cost(warm, temperature, loading_round_trips), counted.names
        temperature = "warm"  # the first update loaded the code


def test_update_of_a_plain_field(
    Item, limpyd_commands, temperature, forget_code, loading_round_trips
):
    item = Item(**VALUES)
    if temperature == "warm":
        item.plain.set("q")
    else:
        forget_code()
    with limpyd_commands() as counted:
        item.plain.append("x")
    assert counted.round_trips == _cost(1, temperature, loading_round_trips), counted.names


def test_hmset_of_several_indexed_fields(
    Item, limpyd_commands, temperature, forget_code, loading_round_trips
):
    item = Item(**VALUES)
    if temperature == "cold":
        forget_code()
    with limpyd_commands() as counted:
        item.hmset(name="n2", color="c2", size="s2")
    assert counted.round_trips == _cost(1, temperature, loading_round_trips), counted.names
    assert item.hmget("name", "color", "size") == ["n2", "c2", "s2"]


def test_delete_of_an_indexed_instance(
    Item, limpyd_commands, temperature, forget_code, loading_round_trips
):
    item = Item(**VALUES)
    if temperature == "cold":
        forget_code()
    with limpyd_commands() as counted:
        item.delete()
    assert counted.round_trips == _cost(1, temperature, loading_round_trips), counted.names
    assert not Item.exists(item.pk.get())


def test_load_by_pk(Item, limpyd_commands, temperature):
    item = Item(**VALUES)
    with limpyd_commands() as counted:
        loaded = Item(item.pk.get())
    assert counted.round_trips == 1
    assert loaded == item


def test_collection_is_one_round_trip_whatever_its_size(Item, limpyd_commands, temperature):
    for i in range(30):
        Item(color="same", size=str(i % 3), plain=str(i))
    _warm_up(Item, "warm")
    with limpyd_commands() as counted:
        found = list(Item.collection(color="same", size="1").sort(by="-size").instances())
    assert len(found) == 10
    assert counted.round_trips == 1


def test_relating_is_one_round_trip(db, limpyd_commands, consistent):
    """An FK set and an M2M sadd check their new references in the script, and skip those
    the field holds (which may point to an instance whose time passed, not reaped yet)."""
    from limpyd.contrib import related

    class Person(related.RelatedModel):
        cluster_group = "round_trips"
        database = db
        name = fields.PKField()

    class Team(related.RelatedModel):
        cluster_group = "round_trips"
        database = db
        boss = related.FKInstanceHashField(Person, related_name="bossed")
        crew = related.M2MSetField(Person, related_name="crews")

    ann, bob = Person(name="ann"), Person(name="bob")
    team = Team(boss=ann, crew=[ann])
    ann.expireat(0)  # its time passed, not reaped: held references stay writable
    for write in (
        lambda: team.crew.sadd(bob, ann),
        lambda: team.boss.hset(ann),
        lambda: team.boss.hset(bob),
        lambda: team.crew.srem(bob),
    ):
        with limpyd_commands() as counted:
            write()
        assert counted.round_trips == 1, counted.names
    assert team.crew.smembers() == {"ann"} and team.boss.hget() == "bob"
    Person.reap_expired()
    consistent(Person, Team)
