"""Relations are known to the database, not only to the Python process: deleting an instance
unlinks it from the related fields pointing to it even in a process that never imported
their models (the link records, see limpyd.contrib.related), transforming indexes and
`unique_together` combinations included."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from limpyd import fields
from limpyd.contrib import related
from limpyd.contrib.related import FKInstanceHashField, FKStringField, M2MListField
from limpyd.exceptions import UniquenessError
from limpyd.indexes import EqualIndex, TextRangeIndex
from limpyd_testing.integrity import check

GROUPS = """
    import os

    from limpyd import fields
    from limpyd.contrib.related import RelatedModel
    from limpyd.database import RedisDatabase

    database = RedisDatabase.from_url(os.environ["LIMPYD_TEST_URL"])


    class Group(RelatedModel):
        cluster_group = "relation_registry"
        database = database
        namespace = "app"
        name = fields.PKField()
        title = fields.StringField()
"""

PERSONS = """
    from limpyd import fields
    from limpyd.contrib.related import (
        FKInstanceHashField, FKStringField, M2MListField, M2MSetField, RelatedModel,
    )
    from limpyd.indexes import EqualIndex, NumberRangeIndex, TextRangeIndex

    from app_groups import Group, database


    class Person(RelatedModel):
        cluster_group = "relation_registry"
        database = database
        namespace = "app"
        name = fields.PKField()
        group = FKStringField(Group, indexes=[EqualIndex, TextRangeIndex])
        groups = M2MSetField(Group, related_name="members")
        queue = M2MListField(Group, related_name="queued", indexes=[EqualIndex, NumberRangeIndex])
        tagged = FKInstanceHashField(
            Group,
            related_name="tagging",
            indexes=[EqualIndex.configure(transform=lambda v: "tag-" + v)],
        )
"""


@pytest.fixture
def app(db, tmp_path, monkeypatch):
    """The modules `app_groups` and `app_persons` in tmp_path, on the test's database;
    `app(*names)` imports these modules afresh and returns them."""
    (tmp_path / "app_groups.py").write_text(textwrap.dedent(GROUPS))
    (tmp_path / "app_persons.py").write_text(textwrap.dedent(PERSONS))
    monkeypatch.setenv("LIMPYD_TEST_URL", db.backend.describe())
    monkeypatch.syspath_prepend(str(tmp_path))

    def load(*names):
        for name in ("app_persons", "app_groups"):
            sys.modules.pop(name, None)
        return [importlib.import_module(name) for name in names]

    yield load
    for name in ("app_persons", "app_groups"):
        sys.modules.pop(name, None)


def _run(tmp_path: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("how", ["delete", "reap"])
def test_deletion_in_a_process_that_never_imported_the_referencing_model(
    app, db, limpyd_backend, tmp_path, how
):
    """Group(2) deleted (or reaped) by a process knowing only `app_groups`: every field of
    Person pointing to it is unlinked, index entries included. On the real server the
    deleting process is a new interpreter; fakeredis servers live in one process, so there a
    fresh import of `app_groups` alone (a new database object, hosting only Group) does it."""
    groups, persons = app("app_groups", "app_persons")
    Group, Person = groups.Group, persons.Person
    one, two = Group(name="1"), Group(name="2")
    ann = Person(name="ann", group=two, groups=[one, two], queue=[two, one, two], tagged=two)
    bob = Person(name="bob", group=one, groups=[one], queue=[one], tagged=one)
    if how == "reap":
        two.expireat(1)

    if limpyd_backend == "redis":
        if how == "delete":
            _run(tmp_path, "-c", "import app_groups; app_groups.Group('2').delete()")
        else:
            assert "1 expired instance(s) reaped" in _run(
                tmp_path, "-m", "limpyd", "reap", "app_groups:Group"
            )
    else:
        (alone,) = app("app_groups")
        assert [m.__name__ for m in alone.database.models.values()] == ["Group"]
        if how == "delete":
            alone.Group("2").delete()
        else:
            assert alone.Group.reap_expired() == 1

    assert not Group.exists("2")
    assert ann.group.get() is None and ann.tagged.hget() is None
    assert ann.groups.smembers() == {"1"} and ann.queue.lrange(0, -1) == ["1"]
    assert (bob.group.get(), bob.groups.smembers(), bob.tagged.hget()) == ("1", {"1"}, "1")
    for name in ("group", "groups", "queue"):
        assert Person.collection(**{name: "2"}) == []
    assert Person.collection(tagged="tag-2") == [] and Person.collection(tagged="tag-1") == ["bob"]
    assert sorted(one.members()) == ["ann", "bob"] and one.queued() == ["ann", "bob"]
    assert check(Person, Group) == []
    assert Group._meta.links_key("2") not in set(db.scan_keys())


def test_link_records_describe_each_incoming_field(db):
    """Each write that adds a reference records, in the target's link hash, how to unlink it;
    the records go with the target."""

    class Target(related.RelatedModel):
        cluster_group = "relation_registry"
        database = db
        name = fields.PKField()
        title = fields.StringField()

    class Holder(related.RelatedModel):
        cluster_group = "relation_registry"
        database = db
        one = FKStringField(Target, indexes=[TextRangeIndex])  # found through a lex range
        many = M2MListField(Target, related_name="held")

    target = Target(name="t")
    holder = Holder(one=target, many=[target, target])
    records = db.client.hgetall(Target._meta.links_key("t"))
    assert sorted(records) == [Holder._meta.link_id("many"), Holder._meta.link_id("one")]
    assert Holder._meta.link_id("one") == ":{relation_registry}:holder:one"
    target.delete()
    assert not db.client.exists(Target._meta.links_key("t"))
    assert holder.one.get() is None and holder.many.lrange(0, -1) == []
    assert check(Target, Holder) == []


def test_fk_with_a_transforming_index_is_unlinked(db, consistent):
    """Defect: the transformed entry of a deleted pk stayed in the index; and an instance
    whose value transforms to the same entry (a non-injective transform) keeps its value."""

    class Team(related.RelatedModel):
        cluster_group = "relation_registry"
        database = db
        name = fields.PKField()
        title = fields.StringField()

    class Player(related.RelatedModel):
        cluster_group = "relation_registry"
        database = db
        name = fields.PKField()
        team = FKStringField(
            Team,
            indexes=[
                EqualIndex.configure(transform=lambda v: v[:1]),
                TextRangeIndex.configure(transform=lambda v: v.upper(), prefix="upper"),
            ],
        )

    red, rose = Team(name="red"), Team(name="rose")
    a, b = Player(name="a", team=red), Player(name="b", team=rose)
    red.delete()
    assert a.team.get() is None
    assert b.team.get() == "rose"
    assert Player.collection(team="r") == ["b"]
    assert Player.collection(team__upper="ROSE") == ["b"]
    assert Player.collection(team__upper="RED") == []
    consistent(Team, Player)


@pytest.mark.parametrize("partner", ["plain", "non-ascii", "hashed"])
def test_fk_in_unique_together_frees_the_combination(db, consistent, partner):
    """Defect: deleting the team cleared `seat.team` but the combination stayed held, so
    re-creating the team and a seat with the same values raised UniquenessError."""
    number = fields.InstanceHashField() if partner == "hashed" else fields.StringField()

    class Team(related.RelatedModel):
        cluster_group = "relation_registry"
        database = db
        name = fields.PKField()
        title = fields.StringField()

    class Seat(related.RelatedModel):
        cluster_group = "relation_registry"
        database = db
        team = FKInstanceHashField(Team) if partner == "hashed" else FKStringField(Team)
        row = number
        unique_together = [("team", "row")]

    # the script computes the keys' text lengths from bytes as Python does: valid utf-8 (2,
    # 3, 4 bytes), lone bytes, an encoded surrogate, an overlong, a truncated sequence
    odd = [
        b"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
        b"\xff1",
        b"\xed\xa0\x80",
        b"\xc0\x80",
        b"\xe2\x82A",
    ]
    values = (
        [v.decode("utf-8", "surrogateescape") for v in odd] if partner == "non-ascii" else ["7"]
    )
    team = Team(name="x")
    for value in values:
        Seat(team=team, row=value)
    with pytest.raises(UniquenessError):
        Seat(team=team, row=values[0])
    team.delete()
    assert [k for k in db.scan_keys() if "__together__" in k] == []
    again = Team(name="x")
    for value in values:
        Seat(team=again, row=value)
    consistent(Team, Seat)


def test_rebuild_indexes_writes_the_link_records_again(db, consistent):
    """Link records lost (or describing indexes the field no longer has) are written again
    by `rebuild_indexes`, so deleting the target still unlinks it."""

    class Target(related.RelatedModel):
        cluster_group = "relation_registry"
        database = db
        name = fields.PKField()
        title = fields.StringField()

    class Holder(related.RelatedModel):
        cluster_group = "relation_registry"
        database = db
        one = FKStringField(Target)

    target = Target(name="t")
    holder = Holder(one=target)
    db.client.delete(Target._meta.links_key("t"))
    assert Holder.get_field("one").rebuild_indexes() == 1
    target.delete()
    assert holder.one.get() is None and Holder.collection(one="t") == []
    consistent(Target, Holder)
