"""ExtendedCollectionManager (manual 2.8)."""

from __future__ import annotations

import re
import time

import pytest

from limpyd import fields, model
from limpyd.contrib.collection import (
    DEFAULT_STORE_TTL,
    SORTED_SCORE,
    ExtendedCollectionManager,
)
from limpyd.database import RedisDatabase
from limpyd.exceptions import DoesNotExist, ImplementationError, InvalidQueryError


@pytest.fixture
def Person(db):
    class Person(model.RedisModel):
        database = db
        collection_manager = ExtendedCollectionManager
        firstname = fields.InstanceHashField(indexable=True)
        lastname = fields.InstanceHashField(indexable=True)
        birth_year = fields.InstanceHashField(indexable=True)
        city = fields.StringField(indexable=True)
        friends = fields.SortedSetField()
        buddies = fields.SetField()

    Person(firstname="John", lastname="Smith", birth_year=1960, city="New York")
    Person(firstname="John", lastname="Doe", birth_year=1965, city="Paris")
    Person(firstname="Emily", lastname="Smith", birth_year=1950, city="New York")
    Person(firstname="Susan", lastname="Doe", birth_year=1960, city="New York")
    return Person


def test_values(Person):
    john = {"pk": "1", "firstname": "John", "lastname": "Smith", "birth_year": "1960"}
    jon = {"pk": "2", "firstname": "John", "lastname": "Doe", "birth_year": "1965"}
    assert Person.collection(firstname="John").values() == [
        {**john, "city": "New York"},
        {**jon, "city": "Paris"},
    ]
    assert Person.collection(firstname="John").values("pk", "lastname") == [
        {"pk": "1", "lastname": "Smith"},
        {"pk": "2", "lastname": "Doe"},
    ]
    assert Person.collection(firstname="John").values().primary_keys() == ["1", "2"]


def test_values_list(Person):
    assert Person.collection(firstname="John").values_list() == [
        ("1", "John", "Smith", "1960", "New York"),
        ("2", "John", "Doe", "1965", "Paris"),
    ]
    assert Person.collection(firstname="John").values_list("pk", "lastname") == [
        ("1", "Smith"),
        ("2", "Doe"),
    ]
    assert Person.collection(firstname="John").values_list("lastname", flat=True) == [
        "Smith",
        "Doe",
    ]
    with pytest.raises(ImplementationError, match="flat"):
        Person.collection().values_list("pk", "lastname", flat=True)
    with pytest.raises(ImplementationError, match="friends"):
        Person.collection().values("friends")


def test_values_cost_one_round_trip(Person, limpyd_commands):
    for i in range(50):
        Person(firstname="Many", lastname=str(i))
    list(Person.collection(firstname="John"))
    with limpyd_commands() as counted:
        rows = list(Person.collection(firstname="Many").values("lastname"))
    assert len(rows) == 50 and counted.round_trips == 1


def test_chaining_filters_changes_the_collection(Person):
    collection = Person.collection(firstname="John")
    want_to_filter_by_city = True
    if want_to_filter_by_city:
        collection.filter(city="New York")
    assert collection == ["1"]
    assert collection.filter(lastname="Doe") == []


def test_intersections(Person):
    my_friends = [1, 2, 3]
    john_people = list(Person.collection(firstname="John"))
    result = Person.collection(city="New York").intersect(john_people, my_friends)
    assert result == ["1"]
    current_user = Person(4)
    current_user.buddies.sadd(1, 3)
    current_user.friends.zadd({"3": 1985, "1": 1990, "2": 2000})
    assert Person.collection(city="New York").intersect(current_user.buddies) == ["1", "3"]
    assert Person.collection().intersect({"2", "4"}, ("4",)) == ["4"]
    assert Person.collection().intersect(current_user.friends.key) == ["1", "2", "3"]
    with pytest.raises(ImplementationError):
        Person.collection().intersect(current_user.city)


def test_sort_by_score_and_sorted_score(Person):
    current_user = Person(4)
    current_user.friends.zadd({"3": 1985, "1": 1990, "2": 2000})
    collection = Person.collection(city=current_user.city)  # a field, read at evaluation
    collection.intersect(current_user.friends)
    collection.sort(by_score=current_user.friends)
    assert collection == ["3", "1"]
    assert collection.values("lastname", SORTED_SCORE) == [
        {"lastname": "Smith", "sorted_score": "1985"},
        {"lastname": "Smith", "sorted_score": "1990"},
    ]
    assert Person.collection().sort(by_score=current_user.friends.key, desc=True)[:2] == ["2", "1"]
    with pytest.raises(ImplementationError, match=SORTED_SCORE):
        list(Person.collection().values(SORTED_SCORE))
    assert Person.collection().sort(by=Person.get_field("birth_year")) == ["3", "1", "4", "2"]


def test_a_field_named_sorted_score_is_read_as_a_field(db):
    """SORTED_SCORE is the score of a `by_score` sort unless the model has a field of that
    name: `values()` failed asking for a `by_score` sort, and with one gave the scores in
    place of the field's values."""

    class Player(model.RedisModel):
        database = db
        collection_manager = ExtendedCollectionManager
        name = fields.InstanceHashField()
        sorted_score = fields.InstanceHashField()
        board = fields.SortedSetField()

    first = Player(name="a", sorted_score="42")
    Player(name="b", sorted_score="7")
    first.board.zadd({"1": 5, "2": 1})
    rows = [
        {"pk": "1", "name": "a", "sorted_score": "42"},
        {"pk": "2", "name": "b", "sorted_score": "7"},
    ]
    assert sorted(Player.collection().values(), key=repr) == rows
    assert Player.collection().sort(by_score=first.board).values() == rows[::-1]
    assert Player.collection().values_list(SORTED_SCORE, flat=True).sort(by="name", alpha=True) == [
        "42",
        "7",
    ]
    stored = Player.collection().values("name", SORTED_SCORE).store()
    assert sorted(stored, key=repr) == [
        {"name": "a", "sorted_score": "42"},
        {"name": "b", "sorted_score": "7"},
    ]


def test_field_filter_values_are_read_at_evaluation(Person):
    susan = Person(4)
    collection = Person.collection(lastname=susan.lastname)
    assert collection == ["2", "4"]
    susan.lastname.hset("Smith")
    assert Person.collection(lastname=susan.lastname) == ["1", "3", "4"]


def test_store_and_from_stored(Person, db):
    current_user = Person(4)
    current_user.friends.zadd({"3": 1985, "1": 1990, "2": 2000})
    collection = Person.collection(city="New York")
    collection.intersect(current_user.friends)
    collection.sort(by_score=current_user.friends)
    stored_collection = collection.store(ttl=3600)
    stored_key = stored_collection.stored_key
    assert 3500 < db.client.ttl(stored_key) <= 3600
    assert stored_collection.values("pk", "lastname")[0:1] == [{"pk": "3", "lastname": "Smith"}]
    again = Person.collection().from_stored(stored_key)
    assert again.values("pk", "lastname")[1:2] == [{"pk": "1", "lastname": "Smith"}]
    assert again.primary_keys() == ["3", "1"]
    db.client.persist(stored_key)
    mine = f"{Person._meta.hash_tag}:my-key"  # in the model's slot (a cluster needs it)
    forever = collection.store(key=mine, ttl=None)
    assert forever.stored_key == mine and db.client.ttl(mine) == -1
    default = collection.store()
    assert 0 < db.client.ttl(default.stored_key) <= DEFAULT_STORE_TTL
    instances = Person.collection(firstname="John").instances().store()
    assert [p.pk.get() for p in instances] == ["1", "2"]
    nobody = Person.collection(firstname="Nobody").store()
    assert list(nobody) == [] and not db.client.exists(nobody.stored_key)  # no key stored
    with pytest.raises(DoesNotExist, match="run the collection again"):
        list(Person.collection().from_stored(nobody.stored_key))
    db.client.delete(stored_key)
    with pytest.raises(DoesNotExist):
        list(Person.collection().from_stored(stored_key))
    assert not [k for k in db.scan_keys() if "__limpyd" in k]


def test_store_refuses_a_key_of_a_model(Person, db, unchanged):
    """Storing over the collection, an index, an instance's data or another model's keys
    would break that model: refused before anything is sent. Its stored keys are fine."""

    class Other(model.RedisModel):
        database = db
        name = fields.StringField(indexable=True)

    Other(name="o")
    meta = Person._meta
    keys = [
        meta.collection_key,
        Person.get_field("city").indexes[0].value_key("Paris", None),
        meta.hash_key("1"),
        meta.prefix + ":anything",
        Other._meta.collection_key,
    ]
    collection = Person.collection(city="New York")
    for key in keys:
        with unchanged(), pytest.raises(ValueError, match=r"^Person.*store\(key=.*nothing was"):
            collection.store(key=key, ttl=None)
    stored = collection.store(key=meta.stored_key("mine"), ttl=None)
    assert stored.primary_keys() == ["1", "3", "4"]
    assert list(Person.collection(city="Paris")) == ["2"]


def test_store_refuses_a_key_of_a_model_of_another_database(Person, db, unchanged):
    """A model of another database object on the same server: its keys have the layout of
    a model's, which is enough to refuse them."""
    elsewhere = RedisDatabase(backend=db.backend)

    class Remote(model.RedisModel):
        database = elsewhere
        namespace = "far"
        name = fields.StringField(indexable=True)

    Remote(name="r")
    collection = Person.collection(city="New York")
    remote = Remote._meta
    for key in [remote.collection_key, remote.instance_key("1", "name"), remote.max_pk_key]:
        with unchanged(), pytest.raises(ValueError, match=r"^Person.*layout of a model"):
            collection.store(key=key, ttl=None)
    assert list(Remote.collection(name="r")) == ["1"]
    mine = f"{Person._meta.hash_tag}:far:{{x}}:collection-ish"  # a key of the user's
    assert collection.store(key=mine, ttl=None).primary_keys() == ["1", "3", "4"]


def test_a_sliced_collection_is_not_sorted_or_intersected_again(Person):
    """A slice is a window of the rows: sorting or intersecting it again would pick other
    rows (the first ones of the new order), so it is refused, as filtering it is."""
    window = Person.collection().sort(by="birth_year")[:2]
    assert window == ["3", "1"]
    for again in (
        lambda: window.sort(by="-birth_year"),
        lambda: window.sort(by_score=Person(4).friends),
        lambda: window.intersect(["1", "2"]),
        lambda: window.filter(city="Paris"),
    ):
        with pytest.raises(ImplementationError, match=r"^Person collection: cannot .* after slic"):
            again()
    assert window == ["3", "1"]  # unchanged by the refusals
    assert Person.collection().sort(by="-birth_year")[:2] == ["2", "4"]


@pytest.mark.parametrize("by", [5, b"city", "", "-", ["city", 3]])
def test_sort_by_something_else_than_a_name_is_refused(Person, by):
    with pytest.raises(InvalidQueryError, match=r"^Person collection: sort\(by="):
        Person.collection().sort(by=by)


def test_sort_by_a_list_of_fields_and_names(Person):
    fields_given = [Person.get_field("lastname"), "firstname"]
    assert Person.collection().sort(by=fields_given, alpha=True) == ["2", "4", "3", "1"]
    with pytest.raises(InvalidQueryError, match="a field of Person is expected"):
        Person.collection().sort(by=[_Stranger.name])


class _Stranger(model.RedisModel):
    database = RedisDatabase()
    name = fields.StringField()


@pytest.mark.parametrize(
    ("command", "kind"), [("hset", "hash"), ("sadd", "set"), ("rpush", "list")]
)
def test_sort_by_score_of_a_key_of_another_type_is_refused_by_name(Person, db, command, kind):
    key = f"{Person._meta.hash_tag}:scores"
    getattr(db.client, command)(key, *(["f", "1"] if command == "hset" else ["1"]))
    with pytest.raises(ValueError, match=rf"^Person collection: .*sorted set at key .*a {kind}$"):
        list(Person.collection().sort(by_score=key))
    db.client.delete(key)
    db.client.zadd(key, {"2": 1, "1": 2})
    assert Person.collection().intersect(key).sort(by_score=key) == ["2", "1"]


def test_from_stored_of_a_key_of_another_type_is_refused_by_name(Person, db):
    key = f"{Person._meta.hash_tag}:not-stored"
    db.client.sadd(key, "1", "2")
    with pytest.raises(ValueError, match=r"^Person collection: .*list at key .*: it holds a set$"):
        list(Person.collection().from_stored(key))
    assert db.client.smembers(key) == {"1", "2"}


def test_sorted_score_without_a_score_sort_names_the_model(Person):
    with pytest.raises(InvalidQueryError, match=f"^Person collection: values.*{SORTED_SCORE}"):
        list(Person.collection().values("lastname", SORTED_SCORE))


@pytest.mark.parametrize("space", ["", "ar->row"])
def test_values_read_by_the_server_match_the_instances(db, space):
    """values() of a stored set (one filter) reads the rows with one SORT_RO whose GET
    patterns name the instances' keys (even under a namespace holding '->'); an expired
    instance or a slice gives the same rows another way; missing values are None."""

    class Row(model.RedisModel):
        database = db
        namespace = space
        collection_manager = ExtendedCollectionManager
        name = fields.PKField()
        kind = fields.InstanceHashField(indexable=True)
        label = fields.InstanceHashField()
        note = fields.StringField()

    pks = ["10", "9", "a\x00b", "é", "x*y", "p->q", "\udcff"]
    for i, pk in enumerate(pks):
        row = Row(name=pk, kind="k")
        if i % 2:
            row.label.hset(f"l{i}")
            row.note.set(f"n\x00{i}")
    expected = [(pk, Row(pk).label.hget(), Row(pk).note.get()) for pk in Row.collection(kind="k")]
    assert [row[1] is None for row in expected].count(True) == 4
    got = list(Row.collection(kind="k").values_list("pk", "label", "note"))
    assert got == expected
    assert list(Row.collection(kind="k").values_list("pk", "label", "note")[0:]) == expected
    dicts = list(Row.collection(kind="k").values("note", "pk"))
    assert dicts == [{"note": note, "pk": pk} for pk, _, note in expected]
    Row("9").expire(0.05)
    time.sleep(0.1)
    alive = [row for row in expected if row[0] != "9"]
    assert list(Row.collection(kind="k").values_list("pk", "label", "note")) == alive


@pytest.mark.parametrize(
    "ttl",
    [
        0,
        -1,
        0.5,
        60.0,
        float("nan"),
        float("inf"),
        "abc",
        "0x5",
        " 5",
        "",
        "060",
        "\u0665",
        b"60",
        ["60"],
        True,
        10**15,
        2**63,
    ],
)
def test_store_refuses_a_ttl_that_is_not_whole_seconds(Person, db, unchanged, ttl):
    # a ttl of 0 or less deleted the stored key at once (int(0.5) is 0), one too big made
    # EXPIRE fail after the key was written
    mine = f"{Person._meta.hash_tag}:my-key"
    db.client.rpush(mine, "precious")
    with unchanged():
        with pytest.raises(ValueError, match=r"Person\.collection\(\)\.store\(ttl=.*nothing"):
            Person.collection(city="New York").store(key=mine, ttl=ttl)
    assert db.client.lrange(mine, 0, -1) == ["precious"]


def test_store_takes_whole_seconds_as_int_text_or_timedelta(Person, db):
    from datetime import timedelta

    for ttl, most in [(1, 1), ("5", 5), (timedelta(minutes=2), 120), (10**15 - 1, 10**15 - 1)]:
        stored = Person.collection(city="New York").store(ttl=ttl)
        assert 0 < db.client.ttl(stored.stored_key) <= most
        assert sorted(stored) == sorted(Person.collection(city="New York"))


def test_the_script_checks_a_store_ttl_before_writing(Person, db, monkeypatch):
    # a hand-built call: the ORM's check bypassed, the script refuses before the first write
    from limpyd.contrib import collection as extended

    monkeypatch.setattr(extended, "whole_seconds", lambda ttl: ttl)
    monkeypatch.setattr(extended, "_MAX_STORE_TTL", 10**30)
    mine = f"{Person._meta.hash_tag}:my-key"
    db.client.rpush(mine, "precious")
    for ttl in (10**15, 10**20):
        with pytest.raises(ImplementationError, match="ttl is a whole number of seconds of at"):
            Person.collection(city="New York").store(key=mine, ttl=ttl)
        assert db.client.lrange(mine, 0, -1) == ["precious"] and db.client.ttl(mine) == -1


def test_a_bound_field_read_at_evaluation_is_refused_naming_the_filter(db):
    """A bound field's value is read when the collection is evaluated: one the field or its
    index refuses (no value) raised a bare ValueError naming no filter; now the filter's
    InvalidQueryError, as for a value given at once."""

    class City(model.RedisModel):
        database = db
        collection_manager = ExtendedCollectionManager
        name = fields.StringField(indexable=True)

    paris, empty = City(name="Paris"), City(name="x")
    empty.name.delete()
    deferred = City.collection(name=empty.name)  # nothing read yet
    message = r"^City\.name: invalid value None .*\(filter name\)$"
    with pytest.raises(InvalidQueryError, match=message):
        list(deferred)
    with pytest.raises(InvalidQueryError, match=message):
        City.collection(name=None)
    assert City.collection(name=paris.name) == [paris.pk.get()]


def test_sort_by_score_flags_are_bools(Person):
    """`sort(by_score=...)` took any `alpha` and `desc`: `desc=2` sorted ascending (compared
    with '1' on the server), `alpha=None` failed in redis-py naming nothing."""
    from limpyd.exceptions import InvalidQueryError

    board = Person(1).friends
    board.zadd({"1": 3, "2": 20, "3": 100})
    for name, bad in (("desc", 2), ("desc", "yes"), ("desc", None), ("alpha", "yes"),
                      ("alpha", None), ("alpha", [True])):  # fmt: skip
        with pytest.raises(InvalidQueryError, match=rf"sort\({name}={re.escape(repr(bad))}\)"):
            Person.collection().sort(by_score=board, **{name: bad})
    scored = Person.collection(pk__in=["1", "2", "3"])
    assert list(scored.sort(by_score=board, desc=1)) == ["3", "2", "1"]
    assert list(scored.sort(by_score=board, alpha=True)) == ["3", "2", "1"]  # '100' < '20'
    assert list(scored.sort(by_score=board, alpha=0)) == ["1", "2", "3"]


@pytest.mark.parametrize(
    "bad",
    [
        b"{person}:board",
        ["{person}:board"],
        "",
        5,
        1.5,
        float("nan"),
        True,
        object(),
        "instance",
        "unbound",
    ],
    ids=["bytes", "list", "empty", "int", "float", "nan", "bool", "object", "instance", "unbound"],
)
def test_sort_by_score_takes_a_key_or_a_bound_sorted_set(Person, db, bad):
    """`sort(by_score=...)` took anything, sorting by the key its str() named (b'board' read
    "b'board'", an instance "<Person ...>"): a silently wrong order. Refused by name now."""
    board = f"{Person._meta.hash_tag}:board"  # in the model's slot, for a cluster
    db.client.zadd(board, {"1": 3, "2": 2, "3": 1, "4": 0})
    if bad == "instance":
        bad = Person(1)
    elif bad == "unbound":
        bad = Person.friends
    with pytest.raises(InvalidQueryError, match=r"^Person collection: sort\(by_score="):
        Person.collection().sort(by_score=bad)
    assert list(Person.collection().sort(by_score=board)) == ["4", "3", "2", "1"]
