"""Errors of limpyd's code on the server (#19 item 8): limpyd's own refusals reach the user as
limpyd exceptions (`RefusedValueError`, a `ValueError`, where a value is at fault), Redis's
refusals as redis-py's exceptions, each with the same message on every backend and nothing
of the server's decoration (`user_script:542:`, `script: <sha>, on @user_script:271.`).

Each test asserts the exact text, and runs on every backend (`--limpyd-backend=all`); the
`evaluated` fixture runs it again with the code evaluated as a script (EVAL), as on a replica.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import redis

from limpyd import fields, lua, model, protocol
from limpyd.contrib.collection import ExtendedCollectionManager
from limpyd.exceptions import DoesNotExist, ImplementationError, RefusedValueError
from limpyd.protocol import Key
from limpyd.refusals import clean

#: What a server adds to an error of a script or function, which no message may hold.
INTERNALS = re.compile(r"user_script|user_function|script:|@user|[0-9a-f]{40}|limpyd_[0-9a-f]{20}")

#: limpyd's exceptions for its own refusals.
LIMPYD_REFUSALS = (RefusedValueError, ImplementationError, DoesNotExist)

SORT_HINT = "; sort with alpha=True to sort it as text"


@pytest.fixture(params=["function", "script"])
def how(request: pytest.FixtureRequest, db) -> Iterator[str]:
    """Each test runs with limpyd's code called as functions (FCALL), then evaluated as a
    script (EVAL), the fallback of a read-only replica: both give the same errors."""
    if request.param == "script":
        lua.SCRIPT.evaluating.add(db.client)
    yield request.param
    lua.SCRIPT.evaluating.discard(db.client)


@pytest.fixture
def Person(db, how):
    class Person(model.RedisModel):
        database = db
        collection_manager = ExtendedCollectionManager
        name = fields.StringField(indexable=True)
        nick = fields.InstanceHashField(indexable=True)
        note = fields.StringField()

    return Person


@pytest.fixture
def Named(db, how):
    class Named(model.RedisModel):
        database = db
        collection_manager = ExtendedCollectionManager
        code = fields.PKField()

    return Named


def raised(expected: type[Exception], message: str, call) -> Exception:
    """The exception `call()` raises: exactly of class `expected`, with exactly `message`,
    and nothing of the server's decoration."""
    with pytest.raises(Exception) as info:
        call()
    error = info.value
    assert type(error) is expected, repr(error)
    assert str(error) == message
    assert not INTERNALS.search(str(error)), str(error)
    assert error.__cause__ is None  # no chained reply shows the server's text again
    assert error.__context__ is None or error.__suppress_context__
    return error


# Numeric sorts of values that are no numbers -----------------------------------------------


@pytest.mark.parametrize(
    "by, field, value",
    [
        ("name", "name", "n"),
        ("-name", "name", "n"),
        ("nick", "nick", "x y"),
        (["name", "nick"], "name", "n"),
        (["note", "name"], "note", "a\nb é"),
    ],
)
def test_sorting_numerically_on_text_names_model_field_and_value(
    Person, unchanged, by, field, value
):
    Person(name="n", nick="x y", note="a\nb é")
    Person(name="2", nick="3", note="4")
    with unchanged():
        error = raised(
            RefusedValueError,
            f"Person.{field}: cannot sort numerically on value {value!r} (instance '1')"
            + SORT_HINT,
            lambda: list(Person.collection().sort(by=by)),
        )
    assert isinstance(error, ValueError)
    assert list(Person.collection().sort(by=by, alpha=True))  # as the message says


def test_a_numeric_sort_takes_the_numbers_a_number_range_index_takes(Person, unchanged):
    """Decimals and infinities (as Redis's SORT and a NumberRangeIndex take them) sort as
    numbers; what only Lua's or C's reading takes is refused."""
    values = ["3", "inf", "-INF", "1e3", ".5", "-2.", "+7"]
    for value in values:
        Person(name=value, nick=value)
    for by in ("name", "-nick"):
        found = [Person(pk).name.get() for pk in Person.collection().sort(by=by)]
        assert found == sorted(values, key=float, reverse=by.startswith("-"))
    for text in ["infinity", "nan", " 1", "0x10", "1_0"]:
        odd = Person(name=text)
        with unchanged(), pytest.raises(RefusedValueError, match=f"value {text!r}"):
            list(Person.collection().sort(by="name"))
        odd.delete()


def test_sorting_numerically_on_text_pks(Named):
    Named(code="10")
    Named(code="abc")
    message = "Named.code: cannot sort numerically on value 'abc' (instance 'abc')" + SORT_HINT
    raised(RefusedValueError, message, lambda: list(Named.collection().sort(by="pk")))
    raised(RefusedValueError, message, lambda: list(Named.collection().sort(by="pk").values("pk")))
    assert list(Named.collection()) == ["10", "abc"]  # the default order never refuses


def test_of_several_values_no_number_the_smallest_pk_is_named(Named, Person, unchanged):
    """The refusal names the value of the smallest pk (bytes order), on every backend: it
    named the first the set's order gave, which differs between Redis and the fake."""
    for code in ["b", "10", "a", "9", "A", "ab", "B"]:
        Named(code=code)
    message = "Named.code: cannot sort numerically on value 'A' (instance 'A')" + SORT_HINT
    for _ in range(3):
        raised(RefusedValueError, message, lambda: list(Named.collection().sort(by="pk")))
    for name in ["zed", "3", "Emily", "John", "2", "alice"]:
        Person(name=name, nick="1")
    with unchanged():
        for by in ("name", "-name", ["nick", "name"]):
            raised(
                RefusedValueError,
                "Person.name: cannot sort numerically on value 'zed' (instance '1')" + SORT_HINT,
                lambda by=by: list(Person.collection().sort(by=by)),
            )


def test_a_long_value_is_shortened_in_the_message(Person):
    Person(name="x" * 500)
    message = (
        f"Person.name: cannot sort numerically on value {'x' * 200!r}... (500 bytes) "
        "(instance '1')" + SORT_HINT
    )
    raised(RefusedValueError, message, lambda: list(Person.collection().sort(by="name")))


# Intersections and stored collections -------------------------------------------------------


def test_intersecting_with_a_key_of_another_type(Person, db, unchanged):
    Person(name="1")
    key = Person._meta.stored_key("text")  # a key of the model's cluster slot
    db.connection.set(key, "not a set")
    with unchanged():
        raised(
            RefusedValueError,
            f"Person collection: cannot intersect with key {key!r}: it holds a string, not a "
            "set, sorted set or list",
            lambda: list(Person.collection().intersect(key)),
        )


def test_a_stored_collection_that_is_gone(Person):
    Person(name="1")
    key = Person._meta.stored_key("gone")
    raised(
        DoesNotExist,
        f"Person: the stored collection {key!r} expired or was deleted, or held an empty "
        "result (for which store() writes no key): run the collection again",
        lambda: list(Person.collection().from_stored(key)),
    )


def test_a_score_redis_refuses_in_a_write(db, how, unchanged, monkeypatch):
    """A score the Python checks let through is refused by the write's probe (see
    test_hostile_writes): the same `RefusedValueError` everywhere."""
    from limpyd.fields import sortedsets

    class Player(model.RedisModel):
        database = db
        scores = fields.SortedSetField()

    monkeypatch.setattr(sortedsets, "double_error", lambda text: None)
    with unchanged():
        raised(
            RefusedValueError,
            "Player: Redis refused a value of this write (value is not a valid float); nothing "
            "was written",
            lambda: Player(scores={"game": "nan"}),
        )


# What Redis refuses: redis-py's exceptions, undecorated --------------------------------------


@pytest.mark.parametrize("field", ["name", "note"])  # indexed (simulated first), or not
def test_a_command_redis_refuses_keeps_redis_py_class_and_text(Person, unchanged, field):
    person = Person(name="abc", note="abc")
    with unchanged():
        raised(
            redis.ResponseError,
            "value is not an integer or out of range",
            lambda: getattr(person, field).incr(),
        )


def test_a_wrong_type_met_by_a_query_stays_a_redis_error(Person, db):
    person = Person(name="1")
    db.connection.delete(person.note.key)
    db.connection.hset(person.note.key, "a", "b")  # a hash where a string is expected
    with pytest.raises(redis.ResponseError) as info:
        list(Person.collection().sort(by="note"))
    assert not isinstance(info.value, LIMPYD_REFUSALS)
    assert str(info.value).startswith("WRONGTYPE Operation against a key holding the wrong kind")
    assert not INTERNALS.search(str(info.value))


# Calls limpyd's code cannot run (hand-built arguments) ------------------------------------


def test_a_call_the_code_cannot_run_is_an_implementation_error(db, how, unchanged):
    with unchanged():
        raised(
            ImplementationError,
            "limpyd's code on the server refused the call: unknown instruction nonsense",
            lambda: lua.APPLY(db.client, ["nonsense", "list", Key("{t}:k"), ""], guard="{t}:p"),
        )
        raised(  # raised by Lua's error(), outside any pcall: Redis decorates it most
            ImplementationError,
            "limpyd's code on the server refused the call: no declared key at 2",
            lambda: lua.APPLY(db.client, [protocol.PROBE, 1, protocol.NEW_PK, 2], guard="{t}:p"),
        )


# The decoration of each server --------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "limpyd: x",
        "user_function:1364: limpyd: x",
        "user_script:542: limpyd: x script: 06ffd14a3b4c5d6e7f8091a2b3c4d5e6f708192a, on "
        "@user_script:271.",
        "user_function:12: limpyd: x script: limpyd_9806dbbc0ed11838dc97_apply, on "
        "@user_function:25.",
        "ERR user_function:12: limpyd: x script: on @user_function:25.",
        "Error running script (call to f_06ffd14a): @user_script:?: limpyd: x",
        'user_script:1: [string "local function build()..."]:120: limpyd: x\nstack traceback:\n'
        "\t[C]: in function 'error'",
    ],
)
def test_clean_strips_every_server_s_decoration(text):
    assert clean(text) == "limpyd: x"


def test_clean_keeps_a_plain_redis_error():
    text = "WRONGTYPE Operation against a key holding the wrong kind of value"
    assert clean(text) == text
