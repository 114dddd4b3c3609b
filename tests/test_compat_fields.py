"""Code written for redis-limpyd, on fields: related fields take instances and bound FK
fields wherever they take a value (reads too), the instance's hash commands refuse to run
empty, `field.exists()`, and `set(ex=...)` expiring a field (refused where it is indexed)."""

from __future__ import annotations

import time

import pytest

from limpyd import fields, model
from limpyd.contrib import related
from limpyd.exceptions import ImplementationError


def declare_models(database):
    """A Person model, and a Team model with every kind of related field pointing to it."""

    class Person(related.RelatedModel):
        cluster_group = "compat"
        name = fields.PKField()

    class Team(related.RelatedModel):
        cluster_group = "compat"
        name = fields.PKField()
        owner = related.FKInstanceHashField(Person, related_name="owned")
        leader = related.FKStringField(Person, related_name="led")
        parent = related.FKStringField("self", related_name="children")
        members = related.M2MSetField(Person, related_name="teams")
        queue = related.M2MListField(Person, related_name="queued")
        ranked = related.M2MSortedSetField(Person, related_name="ranks")

    Person.use_database(database)
    Team.use_database(database)
    return Person, Team


@pytest.fixture
def models(db):
    return declare_models(db)


# Item 2: bound related fields as values, instances in reads ----------------------------------


def test_a_bound_fk_field_is_a_value(models, consistent):
    """`t2.owner.hset(t1.owner)`: the value written is the pk t1.owner points to."""
    Person, Team = models
    ann, bob = Person(name="ann"), Person(name="bob")
    t1 = Team(name="t1", owner=ann, leader=bob)
    t2 = Team(name="t2")
    assert t2.owner.hset(t1.owner) == 1
    assert t2.owner.hget() == "ann"
    assert t2.leader.set(t1.leader) is True
    assert t2.leader.get() == "bob"
    assert t2.owner.hsetnx(t1.leader) == 0  # already set: unchanged
    assert t2.leader.getset(t1.owner) == "bob"
    assert t1.members.sadd(t1.owner, t1.leader) == 2
    assert t1.members.smembers() == {"ann", "bob"}
    assert t1.queue.rpush(t1.owner, t2.owner, t1.leader) == 3
    assert t1.queue.lrange(0, -1) == ["ann", "ann", "bob"]
    assert t1.ranked.zadd({t1.owner: 1, t1.leader: 2}) == 2
    assert t1.ranked.zrange(0, -1) == ["ann", "bob"]
    t3 = Team(name="t3", leader=t1.owner, members=[t1.leader], ranked={t1.owner: 5})
    assert t3.hmset(owner=t1.leader) is True
    assert (t3.leader.get(), t3.owner.hget()) == ("ann", "bob")
    assert (t3.members.smembers(), t3.ranked.zscore("ann")) == ({"bob"}, 5.0)
    assert sorted(ann.owned()) == ["t1", "t2"]
    assert sorted(bob.teams()) == ["t1", "t3"]
    consistent(Person, Team)


def test_bound_fk_fields_in_every_command_taking_a_value(models, consistent):
    """Writes removing or placing values (srem, zrem, lrem, linsert, lset, zincrby...)."""
    Person, Team = models
    ann, bob, cat = Person(name="ann"), Person(name="bob"), Person(name="cat")
    t1 = Team(name="t1", owner=ann, leader=bob)
    team = Team(name="team", members=["ann", "bob"], queue=["ann", "bob"])
    team.ranked.zadd({"ann": 1, "bob": 2})
    assert team.members.srem(t1.owner) == 1
    assert team.members.smembers() == {"bob"}
    assert team.ranked.zincrby(5, t1.owner) == 6.0
    assert team.ranked.zrem(t1.leader) == 1
    assert team.queue.linsert("before", t1.leader, cat) == 3
    assert team.queue.lset(0, t1.leader) is True
    assert team.queue.lrem(count=1, value=t1.leader) == 1  # a value given by keyword too
    assert team.queue.lrange(0, -1) == ["cat", "bob"]
    assert team.queue.lpushx(t1.owner) == 3
    assert team.queue.rpushx(t1.owner) == 4
    assert team.queue.lrange(0, -1) == ["ann", "cat", "bob", "ann"]
    assert team.parent.set(t1) is True
    consistent(Person, Team)


def test_reads_take_instances_and_bound_fk_fields(models):
    """`members.sismember(person)`, `ranked.zscore(person)`: redis-limpyd answered them."""
    Person, Team = models
    ann, bob, cat = Person(name="ann"), Person(name="bob"), Person(name="cat")
    t1 = Team(name="t1", owner=ann, leader=bob)
    team = Team(name="team", members=["ann"], queue=["bob", "ann"])
    team.ranked.zadd({"ann": 1, "bob": 2})
    assert team.members.sismember(ann) == 1
    assert team.members.sismember(bob) == 0
    assert team.members.sismember(t1.owner) == 1
    assert team.members.sismember(value=ann) == 1  # by keyword too
    assert team.members.smismember([ann, t1.leader, cat]) == [1, 0, 0]
    assert team.ranked.zscore(ann) == 1.0
    assert team.ranked.zscore(t1.leader) == 2.0
    assert team.ranked.zscore(cat) is None
    assert team.ranked.zrank(bob) == 1
    assert team.ranked.zrevrank(t1.owner) == 1
    assert team.ranked.zmscore([ann, t1.leader]) == [1.0, 2.0]
    assert team.queue.lpos(ann) == 1
    assert team.queue.lpos(t1.leader) == 0


def test_refused_related_values_name_model_field_and_value(models, unchanged):
    """An empty FK field, an FK pointing to another model, an instance of another model, a
    multi-valued or unbound field: refused before anything is sent, naming what is wrong."""
    Person, Team = models
    ann = Person(name="ann")
    t1 = Team(name="t1")  # owner and leader empty
    other = Team(name="other", parent=t1)
    with unchanged():
        with pytest.raises(ValueError, match=r"Team\.owner: invalid value .*Team\.owner.*empty"):
            other.owner.hset(t1.owner)
        with pytest.raises(ValueError, match=r"Team\.members: .*Team\.leader.*empty"):
            other.members.sadd(t1.leader)
        with pytest.raises(ValueError, match=r"Team\.owner: invalid value .*Team\.parent.*Team"):
            other.owner.hset(other.parent)  # points to a Team, not to a Person
        with pytest.raises(ValueError, match=r"Team\.members: invalid value .*'t1'.*Person"):
            other.members.sismember(t1)
        with pytest.raises(ValueError, match=r"Team\.members: invalid value .*Team\.members"):
            other.members.sadd(t1.members)
        with pytest.raises(ValueError, match=r"Team\.owner: invalid value .*Team\.owner.*bound"):
            other.owner.hset(Team.owner)
        with pytest.raises(ValueError, match=r"Team\.ranked: .*Team\.leader.*empty"):
            other.ranked.zscore(t1.leader)
    assert other.members.sismember(ann) == 0


def test_a_bound_fk_field_is_read_at_once_inside_a_pipeline(limpyd_database_factory):
    """The pk it stands for is needed to queue the command: read at once (as collections
    run), the command queued with it."""
    from limpyd.contrib.database import PipelineDatabase

    main = limpyd_database_factory(PipelineDatabase)
    Person, Team = declare_models(main)
    Person(name="ann")
    t1, t2 = Team(name="t1", owner="ann"), Team(name="t2", members=["ann"])
    with main.pipeline() as pipeline:
        t2.members.sismember(t1.owner)
        t1.members.sismember(t1.owner)
        assert pipeline.execute() == [1, 0]
    with main.pipeline() as pipeline:  # field.exists() is queued as other reads
        t1.owner.exists()
        t2.owner.exists()
        assert pipeline.execute() == [1, 0]


# Item 8: the instance's hmget/hmset/hdel need fields ---------------------------------------


@pytest.fixture
def Card(db):
    class Card(model.RedisModel):
        database = db
        foo = fields.InstanceHashField()
        bar = fields.InstanceHashField(indexable=True)

    return Card


@pytest.mark.parametrize("command", ["hmget", "hmset", "hdel"])
def test_empty_instance_hash_commands_raise(Card, unchanged, command):
    """redis-limpyd raised (Redis refused the empty command): a ValueError naming the model."""
    card = Card(foo="FOO", bar="BAR")
    with (
        unchanged(),
        pytest.raises(
            ValueError, match=rf"Card\.{command}\(\): name at least one InstanceHashField"
        ),
    ):
        getattr(card, command)()
    assert card.hmget("foo", "bar") == ["FOO", "BAR"]


def test_empty_hmset_creates_nothing(Card, db):
    card = Card()
    with pytest.raises(ValueError, match=r"Card\.hmset\(\)"):
        card.hmset()
    assert card._pk is None and list(Card.collection()) == []


# Item 12: field.exists() ------------------------------------------------------------------


@pytest.fixture
def Thing(db):
    class Thing(model.RedisModel):
        database = db
        text = fields.StringField()
        indexed = fields.StringField(indexable=True)
        items = fields.SetField()
        queue = fields.ListField()
        ranks = fields.SortedSetField()
        data = fields.HashField()
        one = fields.InstanceHashField()
        two = fields.InstanceHashField()

    return Thing


def test_field_exists_tells_whether_the_field_has_a_value(Thing):
    """As redis-limpyd: whether the field's key exists (for an InstanceHashField, whether it
    has a value in the instance's hash; for a HashField, `exists(key)` is HEXISTS)."""
    thing = Thing(text="t", one="1")
    names = ["text", "indexed", "items", "queue", "ranks", "one", "two"]
    assert {name: getattr(thing, name).exists() for name in names} == {
        "text": True, "indexed": False, "items": False, "queue": False, "ranks": False,
        "one": True, "two": False,
    }  # fmt: skip
    thing.indexed.set("i")
    thing.items.sadd("a")
    thing.queue.rpush("a")
    thing.ranks.zadd({"a": 1})
    thing.two.hset("2")
    assert all(getattr(thing, name).exists() for name in names)
    assert thing.one.hexists() is True  # redis-limpyd's other name
    assert thing.data.exists() is False and thing.data.exists("k") is False
    thing.data.hset("k", "v")
    assert thing.data.exists("k") is True and thing.data.exists("other") is False
    assert thing.data.exists() is True
    thing.text.delete()
    thing.one.hdel()
    assert thing.text.exists() is False and thing.one.exists() is False


def test_field_exists_is_false_for_an_instance_gone_or_not_saved(Thing):
    """redis-limpyd: False when the instance was deleted, rather than DoesNotExist."""
    thing = Thing(text="t", one="1")
    thing.delete()
    assert thing.text.exists() is False and thing.one.exists() is False
    assert thing.one.hexists() is False
    assert Thing.lazy_connect("404").text.exists() is False
    unsaved = Thing()
    assert unsaved.text.exists() is False and unsaved._pk is None
    with pytest.raises(ImplementationError, match=r"Thing\.text is not bound"):
        Thing.text.exists()


def test_pk_field_exists(Thing, Card):
    """As redis-limpyd's `pk.exists(value=None)`: whether an instance has that pk (by
    default the instance's own)."""
    thing = Thing(text="t")
    assert thing.pk.exists() is True
    assert thing.pk.exists(thing._pk) is True and thing.pk.exists(404) is False
    assert Thing.get_field("pk").exists(thing._pk) is True
    assert Thing().pk.exists() is False
    assert Card(foo="f").pk.exists() is True
    thing.delete()
    assert thing.pk.exists() is False


# Item 13: set() with an expiry ------------------------------------------------------------


def pttl(field):
    """The field's Redis TTL in milliseconds (-1: none, -2: no key)."""
    return field.model._meta.database.connection.pttl(field.key)


@pytest.fixture
def Session(db):
    class Session(model.RedisModel):
        database = db
        token = fields.StringField()
        owner = fields.StringField(indexable=True)
        code = fields.StringField(unique=True)
        label = fields.InstanceHashField()

    return Session


#: SET expiries, and the bounds of the TTL each gives, in milliseconds.
EXPIRIES = [
    ({"ex": 100}, 99_000, 100_000),
    ({"px": 100_000}, 99_000, 100_000),
    ({"exat": 4102444800}, 10**12, 4102444800000),  # in the year 2100
    ({"pxat": 4102444800000}, 10**12, 4102444800000),
]


@pytest.mark.parametrize("expiry, low, high", EXPIRIES, ids=["ex", "px", "exat", "pxat"])
def test_set_with_an_expiry_on_a_field_of_its_own(Session, expiry, low, high):
    """A non-indexed StringField: the expiry is Redis's, as for `field.expire()`."""
    session = Session(token="a")
    assert session.token.set("b", **expiry) is True
    assert session.token.get() == "b"
    assert low < pttl(session.token) <= high
    assert session.token.set("c", keepttl=True) is True
    assert low < pttl(session.token) <= high
    assert session.token.set("d") is True
    assert pttl(session.token) == -1


def test_set_with_an_expiry_expires(Session):
    session = Session(token="a")
    assert session.token.set("b", px=50) is True
    deadline = time.monotonic() + 5
    while session.token.get() is not None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert session.token.exists() is False


def test_set_nx_xx_get_on_a_field_of_its_own(Session):
    session = Session(owner="o")
    assert session.token.set("a", xx=True) is None
    assert session.token.set("a", nx=True, px=10000) is True
    assert session.token.set("b", nx=True) is None
    assert session.token.set("c", xx=True, get=True) == "a"
    assert session.token.get() == "c" and pttl(session.token) == -1


@pytest.mark.parametrize("name", ["owner", "code"])
@pytest.mark.parametrize(
    "expiry",
    [{"ex": 1}, {"px": 1}, {"exat": 4102444800}, {"pxat": 4102444800000}],
    ids=["ex", "px", "exat", "pxat"],
)
def test_set_with_an_expiry_is_refused_on_an_indexed_field(Session, unchanged, name, expiry):
    """Redis would drop the value and leave its index entry (or its uniqueness) behind: a
    clear refusal naming model, field and value, nothing written."""
    session = Session(owner="o", code="c")
    field = getattr(session, name)
    with unchanged(), pytest.raises(ImplementationError) as info:
        field.set("new", **expiry)
    message = str(info.value)
    assert f"Session.{name}" in message and "'new'" in message
    assert "instance.expire" in message
    assert field.get() == {"owner": "o", "code": "c"}[name]


def test_set_options_keeping_no_expiry_work_on_an_indexed_field(Session, consistent):
    session = Session(owner="o", code="c")
    assert session.owner.set("p", keepttl=True) is True
    assert session.owner.set("q", xx=True) is True
    assert session.code.set("d", nx=True) is None
    assert session.code.set("e", xx=True, get=True) == "c"
    assert list(Session.collection(owner="q")) == [session._pk]
    assert list(Session.collection(code="e")) == [session._pk]
    assert pttl(session.owner) == -1
    consistent(Session)
