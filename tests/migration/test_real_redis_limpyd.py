"""The migration of data written by the REAL redis-limpyd (1.3.2 and 2.1.2, each in its own
virtualenv), run as a user runs it, read back through limpyd's models.

Real server only: the old package writes from another process, which the in-memory fake
cannot serve.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from limpyd.exceptions import UniquenessError
from limpyd_testing.integrity import check
from limpyd_testing.snapshot import snapshot

from .conftest import MODELS, run_command, url_of, write_old

pytestmark = [pytest.mark.slow, pytest.mark.limpyd_backends("redis")]


def old_keys(state: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in state.items() if "{" not in key}


def assert_migrated(app: Any, summary: dict[str, Any]) -> None:
    """Everything redis-limpyd wrote, read through limpyd."""
    Person, Group, Tag, Note = app.Person, app.Group, app.Tag, app.Note
    alice, bob, carol = (Person(pk) for pk in summary["persons"])
    admins, staff, empty = (Group(pk) for pk in summary["groups"])
    # values of every field type
    assert alice.name.get() == "Alice" and alice.bio.get() == "likes: colons"
    assert alice.hmget("email", "city") == ["alice@example.com", "Paris"]
    assert alice.age.get() == "31"
    assert alice.tags.smembers() == {"a", "b"}
    assert alice.history.lrange(0, -1) == ["x", "y", "x"]
    assert alice.scores.zrange(0, -1, withscores=True) == [("art", 3.0), ("math", 12.5)]
    assert alice.props.hgetall() == {"color": "red", "size": "M"}
    assert bob.bio.get() is None and carol.history.lrange(0, -1) == []
    assert Tag("py").label.get() == "Python" and Note(1).text.get() == "first"
    # filters through every kind of index
    assert set(Person.collection(city="Paris")) == {alice.pk.get(), carol.pk.get()}
    assert list(Person.collection(age__gte=30, age__lt=40)) == [alice.pk.get()]
    assert list(Person.collection(tags="b").sort()) == [alice.pk.get(), bob.pk.get()]
    assert list(Person.collection(history="y")) == [alice.pk.get()]
    assert list(Person.collection(props__color="blue")) == [carol.pk.get()]
    assert list(Person.collection(email="bob@example.com")) == [bob.pk.get()]
    assert list(Tag.collection(label__startswith="Py")) == ["py"]
    assert list(Group.collection(rank__gt=1)) == [staff.pk.get()]
    assert list(Group.collection(name="empty")) == [empty.pk.get()]
    # related collections, both ways
    assert set(admins.members()) == {alice.pk.get()}
    assert set(alice.friend_of()) == {bob.pk.get()}
    assert set(Tag("py").fans()) == {alice.pk.get()}
    assert bob.mentors.lrange(0, -1) == [alice.pk.get(), alice.pk.get()]
    assert set(alice.mentees()) == {bob.pk.get()}
    assert admins.leaders.zrange(0, -1, withscores=True) == [(alice.pk.get(), 1.5)]
    assert set(alice.leads()) == {admins.pk.get()}
    # uniqueness holds, nothing written when refused
    with pytest.raises(UniquenessError):
        Person(name="Eve", email="alice@example.com")
    with pytest.raises(UniquenessError):
        Person(name="Alice", city="Paris")  # unique_together, built by the migration
    with pytest.raises(UniquenessError):
        Group(name="admins")
    assert check(Person, Group, Tag, Note) == []
    # the pk counters go on from redis-limpyd's
    new = Person(name="Dan")
    assert new.pk.get() == str(int(summary["person_max_pk"]) + 1)
    # deleting a migrated instance updates what points to it
    admins.delete()
    assert alice.group.hget() is None
    alice.delete()
    assert bob.mentors.lrange(0, -1) == [] and bob.friends.smembers() == set()
    assert check(Person, Group, Tag, Note) == []


def test_in_place(app: Any, db: Any, redis_limpyd: tuple[str, Path]) -> None:
    python = redis_limpyd[1]
    summary = write_old(python, db)
    written = snapshot(db)
    url = url_of(db)

    dry = run_command(*MODELS, "--url", url, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "Person: would copy 3 instance(s) to 'mig:{person}:person'" in dry.stdout
    assert "dry run: nothing was written" in dry.stdout
    assert snapshot(db) == written

    done = run_command(*MODELS, "--url", url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Person: 3/3 instances copied" in done.stdout
    assert "integrity check: 0 problem(s)" in done.stdout
    migrated = snapshot(db)
    assert old_keys(migrated) == written  # the source is kept

    again = run_command(*MODELS, "--url", url)  # idempotent
    assert again.returncode == 0, again.stdout + again.stderr
    assert snapshot(db) == migrated

    assert_migrated(app, summary)


def test_target_url_and_delete_source(
    app: Any, db: Any, limpyd_database_factory: Any, redis_limpyd: tuple[str, Path]
) -> None:
    python = redis_limpyd[1]
    source = limpyd_database_factory(db=15)
    summary = write_old(python, source)
    done = run_command(
        *MODELS, "--url", url_of(source), "--target-url", url_of(db), "--delete-source"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Person: " in done.stdout and "keys of redis-limpyd deleted" in done.stdout
    assert snapshot(source) == {}
    assert all("{" in key for key in snapshot(db))
    assert_migrated(app, summary)


def test_unique_conflict_is_reported_and_nothing_written(
    app: Any, db: Any, redis_limpyd: tuple[str, Path]
) -> None:
    python = redis_limpyd[1]
    summary = write_old(python, db, "conflict")
    written = snapshot(db)
    done = run_command(*MODELS, "--url", url_of(db))
    assert done.returncode == 1
    alice, bob = summary["persons"][:2]
    assert (
        f"Person: error: Person.email is unique, but instances {alice!r}, {bob!r} hold the same "
        "value 'alice@example.com'"
    ) in done.stdout
    assert "nothing was written" in done.stdout
    assert snapshot(db) == written
