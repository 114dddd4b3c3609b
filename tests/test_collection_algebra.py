"""Beyond the manual: exclude, set algebra on collections, isnull and __all lookups."""

from __future__ import annotations

import pytest

from limpyd import fields, model
from limpyd.contrib.collection import ExtendedCollectionManager
from limpyd.exceptions import ImplementationError


@pytest.fixture
def Person(db):
    class Person(model.RedisModel):
        database = db
        name = fields.InstanceHashField(indexable=True)
        city = fields.StringField(indexable=True)
        age = fields.InstanceHashField(indexable=True)
        tags = fields.SetField(indexable=True)
        plain = fields.StringField()

    Person(name="ann", city="Paris", age=30, tags=["a", "b"])
    Person(name="bob", city="Paris", age=40, tags=["b"])
    Person(name="cid", city="Rome", tags=["a", "c"])
    Person(name="dan", age=30)
    return Person


def test_exclude(Person):
    assert Person.collection().exclude(city="Paris") == ["3", "4"]
    assert Person.collection(age=30).exclude(city="Paris") == ["4"]
    assert Person.collection().exclude(city="Paris", age=30) == ["2", "3", "4"]
    assert Person.collection().exclude(city="Paris").exclude(name="dan") == ["3"]
    assert Person.collection().exclude(tags__in=["a", "b"]).sort(by="name", alpha=True) == ["4"]


def test_set_algebra(Person):
    paris, thirty = Person.collection(city="Paris"), Person.collection(age=30)
    assert paris | thirty == ["1", "2", "4"]
    assert paris & thirty == ["1"]
    assert paris - thirty == ["2"]
    assert paris ^ thirty == ["2", "4"]
    combined = (paris | thirty).sort(by="name", alpha=True, desc=True)
    assert combined[:2] == ["4", "2"]
    assert [p.pk.get() for p in (paris | thirty).instances()] == ["1", "2", "4"]
    assert (paris | thirty)(tags="b") == ["1", "2"]
    assert ((paris | thirty) - Person.collection(name="bob")) == ["1", "4"]
    with pytest.raises(ImplementationError):
        paris[:1] | thirty


def test_algebra_on_extended_collections_keeps_values(Person):
    paris = Person.collection(manager=ExtendedCollectionManager, city="Paris")
    rome = Person.collection(manager=ExtendedCollectionManager, city="Rome")
    assert (paris | rome).values_list("name", flat=True) == ["ann", "bob", "cid"]


def test_combining_different_models_is_refused(Person, db):
    class Other(model.RedisModel):
        database = db
        name = fields.StringField(indexable=True)

    with pytest.raises(ImplementationError, match="Person and Other"):
        Person.collection() | Other.collection()


def test_isnull(Person):
    assert Person.collection(city__isnull=True) == ["4"]
    assert Person.collection(city__isnull=False) == ["1", "2", "3"]
    assert Person.collection(age__isnull=True) == ["3"]
    assert Person.collection(age__isnull=False, city="Paris") == ["1", "2"]
    with pytest.raises(ImplementationError, match="isnull"):
        list(Person.collection(tags__isnull=True))
    with pytest.raises(ImplementationError, match="isnull"):
        list(Person.collection(city__isnull="yes"))
    with pytest.raises(ImplementationError, match="plain"):
        list(Person.collection(plain__isnull=True))


def test_all(Person):
    assert Person.collection(tags__all=["a", "b"]) == ["1"]
    assert Person.collection(tags__all=["a"]) == ["1", "3"]
    assert Person.collection(tags__in=["b", "c"]) == ["1", "2", "3"]
    assert Person.collection(tags__all=[]) == ["1", "2", "3", "4"]
    with pytest.raises(ImplementationError, match="tags__all"):
        list(Person.collection(tags__all="a"))
    with pytest.raises(ImplementationError, match=r"Person\.name"):
        list(Person.collection(name__all=["ann"]))


def test_round_trips_and_no_temporary_keys(Person, db, limpyd_commands):
    list(Person.collection())
    before = set(db.scan_keys())
    query = ((Person.collection(city="Paris") | Person.collection(age=30)) ^
             Person.collection(tags__all=["a", "c"])).exclude(name="bob")  # fmt: skip
    with limpyd_commands() as counted:
        result = list(query.sort(by="name", alpha=True)[0:10])
        isnull = list(Person.collection(city__isnull=True))
    assert result == ["1", "3", "4"] and isnull == ["4"]
    assert counted.round_trips == 2
    assert set(db.scan_keys()) == before


def test_multi_key_sort(db):
    class Person(model.RedisModel):
        database = db
        lastname = fields.InstanceHashField()
        birth_year = fields.StringField()

    rows = [("Doe", 1960), ("Smith", 1950), ("Doe", 1970), ("Abe", 1960), ("Doe", 1970), ("doe", 1)]
    for lastname, year in rows:
        Person(lastname=lastname, birth_year=year)
    expected = sorted(
        range(1, 7), key=lambda pk: (rows[pk - 1][0].encode(), -rows[pk - 1][1], str(pk))
    )
    got = Person.collection().sort(by=["lastname", "-birth_year"], alpha=[True, False])
    assert got == [str(pk) for pk in expected]
    assert got[1:3] == [str(pk) for pk in expected][1:3]
    by_year = Person.collection().sort(
        by=["birth_year", "lastname"], alpha=[False, True], desc=True
    )
    assert by_year == ["3", "5", "1", "4", "2", "6"]
    with pytest.raises(ImplementationError, match="one alpha per field"):
        Person.collection().sort(by=["lastname"], alpha=[True, False])
    with pytest.raises(Exception, match="sort numerically"):
        list(Person.collection().sort(by=["lastname", "birth_year"]))


def test_endswith_index(db, consistent):
    from limpyd.contrib.indexes import EndsWithIndex
    from limpyd.indexes import EqualIndex

    class File(model.RedisModel):
        database = db
        name = fields.StringField(indexes=[EqualIndex, EndsWithIndex], unique=True)
        tags = fields.SetField(indexes=[EndsWithIndex])

    names = ["a.txt", "b.TXT", "c.txt.gz", "txt", "", "é.txt", "x\x00.txt"]
    for name in names:
        File(name=name, tags=[name, "k.py"])
    for suffix in ("txt", ".txt", "", "x", "é.txt", "\x00.txt", "gz"):
        expected = sorted(str(i + 1) for i, n in enumerate(names) if n.endswith(suffix))
        assert sorted(File.collection(name__endswith=suffix)) == expected, suffix
    assert sorted(File.collection(tags__endswith=".py")) == [str(i) for i in range(1, 8)]
    File(1).name.set("a.md")
    assert "1" not in File.collection(name__endswith=".txt")
    assert File.collection(name="a.md") == ["1"]
    consistent(File)


def test_endswith_compares_bytes(db, consistent):
    """A suffix is one of the value's bytes: two lone surrogates standing for bytes 80 C2
    are not the character U+0080 (bytes C2 80), though reversed they would spell it."""
    from limpyd.contrib.indexes import EndsWithIndex

    class Blob(model.RedisModel):
        database = db
        data = fields.StringField(indexes=[EndsWithIndex])

    values = [b"\x80\xc2", "\x80", "é", b"\xa9\xc3", b"z\xff", "\x00\xff"]
    for value in values:
        Blob(data=value)
    raws = [v if isinstance(v, bytes) else v.encode() for v in values]
    for suffix in (b"\x80\xc2", "\x80", b"\x80", b"\xc2", "é", b"\xa9", b"\xff", b"\x00\xc3\xbf"):
        wanted = suffix if isinstance(suffix, bytes) else suffix.encode()
        expected = sorted(str(i + 1) for i, v in enumerate(raws) if v.endswith(wanted))
        assert sorted(Blob.collection(data__endswith=suffix)) == expected, suffix
    assert Blob.collection(data__endswith=b"\x80\xc2") == ["1"]
    consistent(Blob)
