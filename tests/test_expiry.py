"""Beyond the manual: expiring instances, gone everywhere at once, reaped with their index
entries and references."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest

from limpyd import fields, model
from limpyd.contrib import related
from limpyd.contrib.collection import ExtendedCollectionManager
from limpyd.exceptions import DoesNotExist, ImplementationError


@pytest.fixture
def models(db):
    class Person(related.RelatedModel):
        cluster_group = "expiry"
        database = db
        collection_manager = ExtendedCollectionManager
        name = fields.InstanceHashField(indexable=True)
        city = fields.StringField(indexable=True)

    class Group(related.RelatedModel):
        cluster_group = "expiry"
        database = db
        owner = related.FKStringField(Person, related_name="owned")
        members = related.M2MSetField(Person, related_name="groups")

    return Person, Group


def server_now(db):
    seconds, microseconds = db.client.time()
    return seconds + microseconds / 1e6


def test_expired_instance_is_gone_for_every_read(models, db, consistent):
    Person, Group = models
    ann, bob = Person(name="ann", city="Paris"), Person(name="bob", city="Paris")
    group = Group(owner=ann, members=[ann, bob])
    assert ann.ttl() is None
    ann.expireat(server_now(db) - 1)  # already past: no sleeping needed
    assert Person.collection() == ["2"]
    assert Person.collection(city="Paris") == ["2"]
    assert Person.collection(city="Paris").values_list("name", flat=True) == ["bob"]
    assert group.members() == ["2"]
    assert not Person.exists(1) and not Person.exists(name="ann")
    with pytest.raises(DoesNotExist):
        Person(1)
    with pytest.raises(DoesNotExist):
        Person.get(name="ann")
    assert ann.owned() == ["1"]  # the group itself is alive; its owner is not
    # the next write meeting it reaps it, references and index entries included
    with pytest.raises(DoesNotExist):
        ann.name.hset("again")
    assert group.owner.get() is None and group.members.smembers() == {"2"}
    assert not [k for k in db.scan_keys() if ":person:obj:1:" in k]
    consistent(Person, Group)


def test_real_time_passes(models, db, consistent):
    Person, _ = models
    person = Person(name="short")
    assert person.expire(0.3) is True
    assert 0 < person.ttl() <= 0.3
    assert Person.collection(name="short") == ["1"]
    time.sleep(0.5)
    assert Person.collection(name="short") == []
    assert Person.reap_expired() == 1
    assert Person.reap_expired() == 0
    assert not [k for k in db.scan_keys() if ":obj:" in k or ":idx:" in k]
    consistent(Person)


def test_persist_and_default_ttl(db, consistent):
    class Session(model.RedisModel):
        database = db
        ttl = 100
        token = fields.StringField(unique=True)

    class Child(Session):
        pass

    class Forever(Session):
        ttl = None

    session = Session(token="a")
    assert 99 < session.ttl() <= 100
    assert 99 < Child(token="b").ttl() <= 100
    assert Forever(token="c").ttl() is None
    assert session.persist() is True and session.ttl() is None
    assert session.persist() is False
    session.expireat(server_now(db) - 1)
    Session(token="a")  # the expired holder is reaped: its unique value is free
    assert Session.collection(token="a") == ["2"]
    consistent(Session)
    for wrong, shown in [("soon", "'soon'"), (10**400, "an int of 1329 bits"), (0, "0"),
                         (float("nan"), "nan"), (True, "True")]:  # fmt: skip
        with pytest.raises(ImplementationError, match=rf"Model Bad: ttl .*\(got {shown}\)"):
            type("Bad", (model.RedisModel,), {"database": db, "ttl": wrong, "__module__": "m"})


def test_expired_pk_can_be_created_again(db):
    class Named(model.RedisModel):
        database = db
        name = fields.PKField()
        color = fields.StringField(indexable=True)

    old = Named(name="x", color="red")
    old.expire(-1)
    new = Named(name="x", color="blue")
    assert new.color.get() == "blue" and Named.collection(color="red") == []


def test_unique_member_held_by_an_expired_instance_is_free(db, consistent):
    """A one-round-trip sadd meeting an expired holder of its value reaps it and writes."""

    class Badge(model.RedisModel):
        database = db
        codes = fields.SetField(unique=True)
        tags = fields.SetField(indexable=True)

    old, new = Badge(codes=["a"], tags=["t"]), Badge(codes=["b"])
    old.expireat(server_now(db) - 1)
    assert new.codes.sadd("a", "c") == 2
    assert sorted(Badge.collection(codes="a")) == ["2"] and Badge.collection(tags="t") == []
    assert not db.client.exists(old.codes.key)  # reaped, with its keys
    consistent(Badge)


def test_command_line_reap(models, db, capsys, monkeypatch):
    import sys
    import types

    from limpyd.cli import main

    Person, _ = models
    Person(name="a").expire(-1)
    Person(name="b")
    module = types.ModuleType("limpyd_reap_models")
    module.Person = Person
    monkeypatch.setitem(sys.modules, "limpyd_reap_models", module)
    assert main(["reap", "limpyd_reap_models:Person"], in_process_servers=True) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"reaping Person on {db.backend.describe()} (the models own database)\n")
    assert "Person: 1 expired instance(s) reaped" in out
    assert Person.collection() == ["2"]


@pytest.mark.parametrize("batch", [2, 100])
def test_reaping_goes_on_past_an_instance_another_client_corrupted(
    models, db, monkeypatch, capsys, batch
):
    """An expired instance whose key another client made a list is left as it is and
    named; the others are reaped (the first batch only were, at each run), and the
    command line says so in one line."""
    import sys
    import types

    from limpyd import expiry
    from limpyd.cli import main
    from limpyd.exceptions import RefusedValueError

    Person, _ = models
    monkeypatch.setattr(expiry, "REAP_BATCH", batch)
    people = [Person(name=f"p{i}") for i in range(6)]
    for person in people:
        person.expire(-1)
    key = people[0].name.key
    db.client.delete(key)
    db.client.rpush(key, "junk")
    said = "Person.reap_expired(): 5 expired instance(s) reaped, 1 left as they were, refused: "
    with pytest.raises(RefusedValueError, match="^" + re.escape(f"{said}Person: the key {key!r}")):
        Person.reap_expired()
    assert db.client.smembers(Person._meta.collection_key) == {people[0].pk.get()}
    module = types.ModuleType("limpyd_reap_corrupt")
    module.Person = Person
    monkeypatch.setitem(sys.modules, "limpyd_reap_corrupt", module)
    assert main(["reap", "limpyd_reap_corrupt:Person"], in_process_servers=True) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "0 expired instance(s) reaped, 1 left as they were" in err[0]


def test_field_expiry(db):
    class Cache(model.RedisModel):
        database = db
        value = fields.StringField()
        items = fields.SetField()
        indexed = fields.StringField(indexable=True)
        inner = fields.InstanceHashField()

    cache = Cache(value="v", items=["a"], indexed="i", inner="x")
    assert cache.value.ttl() == -1
    assert cache.value.expire(100) is True
    assert 99 <= cache.value.ttl() <= 100
    assert cache.value.persist() is True and cache.value.ttl() == -1
    assert cache.items.expire(100) is True
    for field in (cache.indexed, cache.inner, cache.pk):
        with pytest.raises(ImplementationError, match="expire"):
            field.expire(10)
    assert cache.value.expire(timedelta(minutes=2)) is True and cache.value.ttl() > 100
    assert cache.value.expire("50") is True and cache.value.ttl() <= 50


class Seconds(int):
    """An int subclass: taken as its int."""


@pytest.mark.parametrize(
    "seconds",
    ["abc", 1.5, 2.0, float("nan"), float("inf"), 10**30, -(10**30), "", " 5", "05", "-0",
     "1e3", True, None, b"5", [5]],
    ids=repr,
)  # fmt: skip
def test_a_field_expiry_is_a_whole_number_checked_before_anything_is_sent(db, seconds):
    class Cache(model.RedisModel):
        database = db
        value = fields.StringField()

    cache = Cache(value="v")
    cache.value.expire(Seconds(100))
    before = db.client.pexpiretime(cache.value.key)
    with pytest.raises(ValueError, match=r"^Cache\.value\.expire: invalid value"):
        cache.value.expire(seconds)
    assert db.client.pexpiretime(cache.value.key) == before
    assert cache.value.expire(-1) is True and cache.value.get() is None  # Redis: gone now


def test_sadd_of_a_held_reference_to_an_expired_instance(models, db):
    """Only new references are checked: adding one the set holds already, to an instance
    expired but not reaped yet, changes nothing and is not refused."""
    Person, Group = models
    ann, bob = Person(name="ann"), Person(name="bob")
    group = Group(members=[ann, bob])
    ann.expireat(server_now(db) - 1)
    assert group.members.sadd(ann) == 0
    with pytest.raises(DoesNotExist):
        Group(members=[bob]).members.sadd(ann)


def test_ttl_of_an_instance_gone_is_does_not_exist(db, limpyd_commands):
    """Deleted through another object, or reaped: ttl() raised nothing and answered None
    ("does not expire"), where expire() and persist() raise DoesNotExist. One round trip."""

    class Session(model.RedisModel):
        database = db
        ttl = 3600
        name = fields.InstanceHashField()

    kept, deleted, reaped = Session(name="a"), Session(name="b"), Session(name="c")
    with limpyd_commands() as counted:
        assert 3500 < kept.ttl() <= 3600
    assert counted.round_trips == 1
    Session(deleted.pk.get()).delete()
    reaped.expireat(server_now(db) - 1)
    assert reaped.ttl() == 0.0  # its time passed, not reaped yet
    Session.reap_expired()
    for gone in (deleted, reaped):
        with pytest.raises(DoesNotExist, match=rf"^Session: no instance with pk '{gone.pk.get()}'"):
            gone.ttl()
    kept.persist()
    assert kept.ttl() is None


@pytest.mark.parametrize("ttl", [None, 100])
def test_a_creation_clears_an_expiry_time_left_under_its_pk(db, ttl):
    """An expiry time of a pk in no collection (another client's, a partial restore): a new
    instance of that pk was expired at once, and the next reap deleted it."""
    from limpyd import integrity

    declared = {"database": db, "id": fields.PKField(), "email": fields.StringField(unique=True)}
    if ttl is not None:
        declared["ttl"] = ttl
    Account = type(model.RedisModel)("Account", (model.RedisModel,), declared)
    db.client.zadd(Account._meta.expiry_key, {"bob": 1})
    assert [str(p) for p in integrity.check(Account)] == [
        f"Account: orphan: the expiry time of 'bob' in {Account._meta.expiry_key!r} belongs to "
        "no instance"
    ]
    bob = Account(id="bob", email="bob@x")
    assert Account.exists(pk="bob")
    assert (bob.ttl() is None) if ttl is None else (90 < bob.ttl() <= 100)
    assert Account.reap_expired() == 0
    assert Account.collection(email="bob@x") == ["bob"]
    assert integrity.check(Account) == []


@pytest.mark.parametrize(
    "bad", [" 10", "1_0", "10 ", "0x10", "nan", "inf", "1e999", "", True, None, [10], "\ud800"]
)
def test_instance_expiry_takes_numbers_as_redis_reads_them(models, db, unchanged, bad):
    """float() took texts as ' 10' and '1_0', which every other number of limpyd refuses;
    numbers of any type (Decimal, Fraction) are still taken."""
    from decimal import Decimal
    from fractions import Fraction

    person = models[0](name="p")
    for what in ("expire", "expireat"):
        with unchanged(), pytest.raises(ValueError, match=rf"\.{what}: invalid value"):
            getattr(person, what)(bad)
    assert person.expire("10") is True and 0 < person.ttl() <= 10
    assert person.expire(Decimal("20")) is True and 10 < person.ttl() <= 20
    assert person.expire(Fraction(61, 2)) is True and 20 < person.ttl() <= 30.5


@pytest.mark.limpyd_backends("fake")  # (it steps in between the fake server's commands)
def test_ttl_reads_the_instance_and_its_time_at_once(db, monkeypatch):
    """ttl() read membership, expiry time and clock in a plain pipeline: a deletion landing
    between them showed an instance that always has a ttl as not expiring (None)."""

    class Session(model.RedisModel):
        database = db
        ttl = 1000
        token = fields.StringField()

    session = Session(token="t")
    socket_class = type(db.client._own_connection().get_socket())
    process = socket_class._process_command
    deleted = []

    def stepping_in(socket, fields_):
        process(socket, fields_)
        if fields_[0].upper() == b"SISMEMBER" and not deleted:
            deleted.append(1)
            Session(session.pk.get()).delete()  # another write, right after that read

    monkeypatch.setattr(socket_class, "_process_command", stepping_in)
    with pytest.raises(DoesNotExist):
        session.ttl()
