"""`Model.create_many(rows)`: each row atomic with its indexes and checks, ceil(N / batch)
round trips; a refused row is reported by position and writes nothing."""

from __future__ import annotations

import pytest

from limpyd import fields, model
from limpyd.exceptions import CreateManyError, UniquenessError, UnknownFieldError


@pytest.fixture
def Person(db):
    class Person(model.RedisModel):
        database = db
        name = fields.InstanceHashField(indexable=True, unique=True)
        city = fields.StringField(indexable=True, default="Paris")
        tags = fields.SetField(indexable=True)
        scores = fields.SortedSetField()

    return Person


def test_rows_are_created_in_batches(Person, limpyd_commands, consistent):
    Person(name="warm-up")  # the script is known to the server
    rows = [{"name": f"p{i}", "tags": ["a", f"t{i % 3}"]} for i in range(10)]
    with limpyd_commands() as counted:
        created = Person.create_many(rows, batch_size=4)
    assert counted.round_trips == 3, counted.names
    assert [p.pk.get() for p in created] == [str(i) for i in range(2, 12)]
    assert [p.name.hget() for p in created] == [row["name"] for row in rows]
    assert sorted(Person.collection(tags="t1"), key=int) == ["3", "6", "9"]
    assert len(Person.collection(city="Paris")) == 11  # defaults apply
    consistent(Person)


def test_refused_rows_are_reported_by_position_and_write_nothing(Person, db, consistent):
    Person(name="held")
    rows = [
        {"name": "a"},
        {"name": "held"},  # held by an existing instance
        {"name": "b", "scores": {"m": "nan"}},  # refused before anything is sent
        {"nickname": "c"},  # no such field
        {"name": "a"},  # held by row 0, created just before in the same batch
        {"name": "d", "tags": ["x"]},
    ]
    with pytest.raises(CreateManyError) as caught:
        Person.create_many(rows, batch_size=10)
    error = caught.value
    assert sorted(error.errors) == [1, 2, 3, 4]
    assert isinstance(error.errors[1], UniquenessError) and "held" in str(error.errors[1])
    assert isinstance(error.errors[2], ValueError) and "nan" in str(error.errors[2])
    assert isinstance(error.errors[3], UnknownFieldError)
    assert isinstance(error.errors[4], UniquenessError)
    assert "row 1" in str(error) and "row 4" in str(error) and "Person" in str(error)
    assert [i and i.pk.get() for i in error.instances] == ["2", None, None, None, None, "3"]
    assert sorted(Person.collection(), key=int) == ["1", "2", "3"]  # no pk used by a refusal
    assert Person.collection(name="b") == [] and not [k for k in db.scan_keys() if ":4:" in k]
    consistent(Person)


def test_hostile_rows_change_nothing(Person, unchanged):
    import enum

    class City(str, enum.Enum):
        ROME = "Rome"

    Person(name="held")
    hostile = [
        {"name": "held"},
        {"name": "n", "scores": {"m": float("nan")}},
        {"name": "i", "scores": {"m": "inf!"}},
        {"name": "e", "scores": {"m": ""}},
        {"name": "h", "scores": {"m": 10**400}},
        {"name": "t", "tags": object()},
        {"pk": "1"},
    ]
    with unchanged(), pytest.raises(CreateManyError) as caught:
        Person.create_many(hostile)
    assert sorted(caught.value.errors) == list(range(len(hostile)))
    created = Person.create_many([{"name": b"bytes", "city": City.ROME, "tags": ["1e3", ""]}])
    assert created[0].name.hget() == "bytes" and Person.collection(city="Rome") == ["2"]


def test_rows_that_are_no_mappings_are_refused_by_position(Person, unchanged):
    """A row that is a list, None, a string...: refused by position, naming the model and
    the row (a list gave dict()'s message, None a bare TypeError); the other rows created.
    Rows that are a string or one mapping (a common slip) are refused whole."""
    Person(name="held")
    rows = [["name", "x"], None, "name", {"name": "ok"}, 5, [("name", "y")]]
    with pytest.raises(CreateManyError) as caught:
        Person.create_many(rows)
    assert sorted(caught.value.errors) == [0, 1, 2, 4, 5]
    assert all(
        isinstance(e, ValueError) and str(e).startswith("Person: a row is a mapping")
        for e in caught.value.errors.values()
    )
    assert "not NoneType None" in str(caught.value.errors[1])
    assert [i and i.name.hget() for i in caught.value.instances] == [
        None, None, None, "ok", None, None,
    ]  # fmt: skip
    for whole in ("ab", b"ab", {"name": "z"}, 5, None):
        with unchanged(), pytest.raises(ValueError, match=r"^Person\.create_many: rows are"):
            Person.create_many(whole)


def test_rows_read_as_dict_reads_them_are_taken(Person):
    """Rows with keys() and [] that are no Mapping (sqlite3.Row): taken, as dict() takes
    them."""
    import sqlite3

    connection = sqlite3.connect(":memory:")
    connection.row_factory = sqlite3.Row
    rows = connection.execute("select 'ann' as name union all select 'bob'").fetchall()
    assert sorted(p.name.hget() for p in Person.create_many(rows)) == ["ann", "bob"]
    connection.close()


def test_a_row_without_values_is_an_unsaved_instance_as_model_gives(db, limpyd_commands):
    """`Model()` without values nor defaults has no pk and writes nothing: so does such a row
    of create_many (it created an instance holding nothing, in the collection)."""

    class Tag(model.RedisModel):
        database = db
        name = fields.StringField(indexable=True)

    assert Tag().pk.get() is None
    with limpyd_commands() as counted:
        assert [t.pk.get() for t in Tag.create_many([{}, {}])] == [None, None]
    assert counted.round_trips == 0
    created = Tag.create_many([{}, {"name": "a"}, {}])
    assert [t.pk.get() for t in created] == [None, "1", None]
    assert Tag.collection() == ["1"]
    created[0].name.set("b")  # its first write creates it
    assert sorted(Tag.collection(), key=int) == ["1", "2"]


def test_pk_rows_and_expired_holders(db, consistent):
    class Code(model.RedisModel):
        database = db
        code = fields.PKField()
        label = fields.InstanceHashField(unique=True)

    old = Code(code="x", label="l1")
    seconds, micro = db.client.time()
    old.expireat(seconds + micro / 1e6 - 1)  # expired, not reaped: its pk and label are free
    with pytest.raises(CreateManyError) as caught:
        Code.create_many([{"code": "x", "label": "l1"}, {"code": "y"}, {"code": "y"}])
    assert list(caught.value.errors) == [2]
    assert sorted(Code.collection()) == ["x", "y"] and Code.get(label="l1").pk.get() == "x"
    consistent(Code)


def test_a_cold_server_and_empty_input(Person, db, limpyd_commands, forget_code, limpyd_backend):
    forget_code()
    with limpyd_commands() as counted:
        assert len(Person.create_many([{"name": "a"}, {"name": "b"}])) == 2
    # the batch, then the code loaded and the batch again, in one pipeline (a batch is one
    # anyway); on a cluster the load goes to every primary first
    assert counted.round_trips == (3 if limpyd_backend == "cluster" else 2), counted.names
    assert Person.create_many([]) == []
    for bad in (0, -1, 1.5, True, "10"):
        with pytest.raises(ValueError, match="batch_size"):
            Person.create_many([{"name": "c"}], batch_size=bad)
    assert len(Person.collection()) == 2


def test_a_row_that_keeps_conflicting_is_reported_with_the_others_created(
    Person, db, monkeypatch, consistent
):
    """A ConflictError of one row (made stale at every attempt) is that row's error: the
    others are created and CreateManyError lists it (the whole call raised ConflictError,
    saying nothing was written, with row 0 written and row 2 never tried)."""
    from limpyd import protocol, writes
    from limpyd.exceptions import ConflictError
    from limpyd.protocol import Key

    original = writes.Write.arguments
    guarded = Key(f"{Person._meta.prefix}:guarded")  # a state that never is ["never"]

    def arguments(self):
        args = original(self)
        if "blocked" in args:
            return [*args[:2], protocol.GUARD, "string", guarded, "", 1, "never", *args[2:]]
        return args

    monkeypatch.setattr(writes.Write, "arguments", arguments)
    db.max_write_attempts, db.retry_backoff, db.retry_backoff_max = 2, 0.001, 0.001
    with pytest.raises(CreateManyError) as caught:
        Person.create_many([{"name": "first"}, {"name": "blocked"}, {"name": "last"}])
    assert list(caught.value.errors) == [1]
    assert isinstance(caught.value.errors[1], ConflictError)
    assert [None if i is None else i.name.hget() for i in caught.value.instances] == [
        "first", None, "last"
    ]  # fmt: skip
    assert sorted(Person.collection()) == ["1", "2"]
    consistent(Person)


def test_many_expired_holders_of_unique_values_are_reaped_without_conflict(db, consistent):
    """60 expired instances each holding one of a write's unique values: each is reaped as
    the write meets it, and the write succeeds (it gave up after 50 attempts, as if made
    stale by concurrent writes, with no other client)."""

    class Team(model.RedisModel):
        database = db
        members = fields.SetField(unique=True)

    teams = [Team(members=[f"m{i}"]) for i in range(60)]
    seconds, micro = db.client.time()
    for team in teams:
        team.expireat(seconds + micro / 1e6 - 1)
    db.max_write_attempts, db.retry_backoff, db.retry_backoff_max = 10, 0.001, 0.001
    team = Team(members=[f"m{i}" for i in range(60)])
    assert team.pk.get() == "61" and Team.collection() == ["61"]
    consistent(Team)
