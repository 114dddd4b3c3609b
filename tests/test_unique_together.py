"""Beyond the manual: `unique_together`, enforced atomically on create, update and hmset."""

from __future__ import annotations

import pytest

from limpyd import fields, model
from limpyd.exceptions import ImplementationError, UniquenessError


@pytest.fixture
def Place(db):
    class Place(model.RedisModel):
        database = db
        unique_together = [("city", "name")]
        city = fields.InstanceHashField()
        name = fields.InstanceHashField(indexable=True)
        street = fields.StringField()
        kind = fields.InstanceHashField()

    return Place


def test_created_and_refused(Place, unchanged, consistent):
    Place(city="Paris", name="Louvre")
    Place(city="Rome", name="Louvre")
    Place(city="Paris", name="Orsay")
    Place(city="Paris")  # a missing value never collides
    Place(city="Paris")
    with unchanged(), pytest.raises(UniquenessError) as error:
        Place(city="Paris", name="Louvre", street="rue")
    message = str(error.value)
    assert "Place.(city, name)" in message and "('Paris', 'Louvre')" in message
    assert Place.collection(city="Paris", name="Louvre") == ["1"]
    consistent(Place)


def test_updates_and_hmset(Place, unchanged, consistent, limpyd_commands):
    louvre = Place(city="Paris", name="Louvre")
    orsay = Place(city="Paris", name="Orsay")
    with unchanged(), pytest.raises(UniquenessError):
        orsay.name.hset("Louvre")
    with unchanged(), pytest.raises(UniquenessError):
        orsay.hmset(name="Louvre", kind="museum")
    orsay.city.hset("Lyon")
    orsay.name.hset("Louvre")  # (Lyon, Louvre) is free
    with unchanged(), pytest.raises(UniquenessError):
        orsay.city.hset("Paris")
    louvre.hmset(city="Rome", name="Colosseum")
    with limpyd_commands() as counted:
        orsay.hmset(city="Paris", name="Louvre")
    assert counted.round_trips <= 3
    louvre.hdel("name")
    Place(city="Rome", name="Colosseum")
    consistent(Place)


def test_delete_frees_the_combination(Place, consistent):
    first = Place(city="Paris", name="Louvre")
    first.name.delete()
    Place(city="Paris", name="Louvre").delete()
    Place(city="Paris", name="Louvre")
    first.hmset(name="Louvre2")
    first.delete()
    consistent(Place)


def test_declaration_errors(db):
    with pytest.raises(ImplementationError, match="not a group"):

        class Single(model.RedisModel):
            database = db
            unique_together = [("a",)]
            a = fields.StringField()

    with pytest.raises(ImplementationError, match="'tags' is not"):

        class Multi(model.RedisModel):
            database = db
            unique_together = [("a", "tags")]
            a = fields.StringField()
            tags = fields.SetField()


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        (None, r"None is not a list of groups"),  # was a bare TypeError
        ("ab", r"'ab' is not a list of groups"),
        ([("a", "a")], r"\('a', 'a'\) is not a group of different field names"),  # was taken
        ([("a", "b"), ("b", "a")], r"the group \('b', 'a'\) is given twice"),  # two keys
        ([5], r"5 is not a group"),
        ([("a", ["b"])], r"\('a', \['b'\]\) is not a group"),  # was a bare TypeError
        ({("a", "b")}, r"\{\('a', 'b'\)\} is not a list of groups"),
        ([iter(("a", "b"))], r"<tuple_iterator .*> is not a group"),  # was read, then lost
    ],
)
def test_unique_together_declarations_refused_by_name(db, groups, message):
    with pytest.raises(ImplementationError, match=rf"^Pair\.unique_together: {message}"):

        class Pair(model.RedisModel):
            database = db
            unique_together = groups
            a = fields.StringField()
            b = fields.StringField()


def test_rebuilding_refuses_a_combination_held_twice(db, unchanged):
    """Made unique_together over data where two instances share the values: the rebuild
    raises a ValueError naming both, the combinations as they were."""
    from limpyd.maintenance import rebuild_together

    class Seat(model.RedisModel):
        database = db
        row = fields.InstanceHashField()
        number = fields.InstanceHashField()

    for row, number in (("a", "1"), ("a", "2"), ("a", "1")):
        Seat(row=row, number=number)

    class Seat(model.RedisModel):  # type: ignore[no-redef]
        database = db
        unique_together = [("row", "number")]
        row = fields.InstanceHashField()
        number = fields.InstanceHashField()

    with unchanged(), pytest.raises(ValueError, match=r"^Seat: .*instances '1' and '3' hold"):
        rebuild_together(Seat)
    Seat(3).number.hset("3")
    assert rebuild_together(Seat) == 3
    with pytest.raises(UniquenessError):
        Seat(row="a", number="2")
