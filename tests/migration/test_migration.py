"""The migration in this process, on old keys laid out as redis-limpyd lays them (see
test_real_redis_limpyd.py for data the real package writes): what it refuses, what it says,
and that a run interrupted at any point is finished by the next one."""

from __future__ import annotations

from typing import Any

import pytest

from limpyd import migration
from limpyd.cli import main as cli_main
from limpyd.migration import source
from limpyd_testing.integrity import check
from limpyd_testing.snapshot import snapshot

from .conftest import url_of

pytestmark = pytest.mark.limpyd_backends("fake", "redis")

NAMES = ["Group", "Person", "Tag", "Note"]
PATHS = [f"migration.oldapp.models:{name}" for name in NAMES]


def main(argv: list[str]) -> int:
    """The command line in this process, which shares the test's in-memory server."""
    return cli_main(argv, in_process_servers=True)


def write_old(client: Any) -> None:
    """Two persons, a group, a tag, as redis-limpyd stores them (old index keys included)."""
    client.sadd("mig:group:collection", "1")
    client.set("mig:group:max_pk", "1")
    client.set("mig:group:1:name", "admins")
    client.hset("mig:group:1:hash", "rank", "1")
    client.sadd("mig:group:name:admins", "1")
    client.zadd("mig:group:rank:number-range", {"1": 1})
    client.sadd("mig:person:collection", "1", "2")
    client.set("mig:person:max_pk", "7")
    for pk, name, email, age in (("1", "Alice", "a@x", "31"), ("2", "Bob", "b@x", "45")):
        client.set(f"mig:person:{pk}:name", name)
        client.set(f"mig:person:{pk}:age", age)
        client.hset(f"mig:person:{pk}:hash", mapping={"email": email, "city": "Paris"})
        client.sadd(f"mig:person:name:{name}", pk)
    client.hset("mig:person:1:hash", "group", "1")
    client.sadd("mig:person:1:tags", "a", "b")
    client.zadd("mig:person:2:scores", {"m": 1.25})
    client.sadd("mig:person:1:friends", "2")
    client.rpush("mig:person:1:history", "x", "y", "x")
    client.sadd("mig:tag:collection", "py")
    client.set("mig:tag:py:label", "Python")


def models(app: Any) -> list[Any]:
    return [getattr(app, name) for name in NAMES]


def run(app: Any, db: Any, **options: Any) -> int:
    return migration.migrate(models(app), url_of(db), say=lambda line: None, **options)


def assert_migrated(app: Any) -> None:
    alice, bob = app.Person(1), app.Person(2)
    assert alice.tags.smembers() == {"a", "b"} and bob.scores.zscore("m") == 1.25
    assert alice.history.lrange(0, -1) == ["x", "y", "x"]
    assert list(app.Person.collection(name="Bob")) == ["2"]
    assert list(app.Person.collection(age__gt=40)) == ["2"]
    assert set(app.Group(1).members()) == {"1"} and set(bob.friend_of()) == {"1"}
    assert app.Tag("py").label.get() == "Python"
    assert check(*models(app)) == []
    assert app.Person(name="Carol").pk.get() == "8"


def test_migrates_in_place_keeping_the_source(app: Any, db: Any, capsys: Any) -> None:
    write_old(db.client)
    old = snapshot(db)
    assert main(["migrate-from-redis-limpyd", *PATHS, "--url", url_of(db), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert (
        "Person: 2 instance(s) (1 collection, 1 max_pk, 10 instance keys, 2 old index keys)" in out
    )
    assert "Person: would copy 2 instance(s) to 'mig:{person}:person', set max_pk to 7" in out
    assert "Note: no data written by redis-limpyd: skipped" in out
    assert snapshot(db) == old
    assert main(["migrate-from-redis-limpyd", *PATHS, "--url", url_of(db)]) == 0
    out = capsys.readouterr().out
    assert "Person: 2/2 instances copied" in out and "Person.name: indexes rebuilt" in out
    assert out.endswith("done: 4 instances of 3 model(s) migrated\n")
    assert {k: v for k, v in snapshot(db).items() if "{" not in k} == old
    assert_migrated(app)


@pytest.mark.parametrize("stage", ["copy", "rebuild", "verify"])
def test_an_interrupted_run_is_finished_by_the_next(
    app: Any, db: Any, monkeypatch: Any, stage: str
) -> None:
    write_old(db.client)
    monkeypatch.setattr(source, "BATCH", 1)
    calls = {"n": 0}
    target = source.OldModel if stage == "copy" else migration.Migration
    name = {"copy": "states", "rebuild": "rebuild", "verify": "verify"}[stage]
    original = getattr(target, name)

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        # the survey reads the 4 instances one by one, then the copy: interrupted after the
        # group and the first person; the rebuild after the group's indexes
        if calls["n"] == (7 if stage == "copy" else 2 if stage == "rebuild" else 1):
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(app, db)
    monkeypatch.setattr(target, name, original)
    assert run(app, db) == 0
    assert_migrated(app)


def test_a_run_again_changes_nothing(app: Any, db: Any) -> None:
    write_old(db.client)
    assert run(app, db) == 0
    migrated = snapshot(db)
    assert run(app, db) == 0
    assert snapshot(db) == migrated


def test_delete_source_removes_only_the_old_keys(app: Any, db: Any) -> None:
    write_old(db.client)
    db.client.set("mig:other:1:name", "kept")  # another redis-limpyd model's key
    said: list[str] = []
    before = snapshot(db)
    assert (
        migration.migrate(
            models(app), url_of(db), dry_run=True, delete_source=True, say=said.append
        )
        == 0
    )
    assert any(
        line.startswith("Person: would copy 2 instance(s)")
        and line.endswith(", then delete its 14 keys of redis-limpyd")
        for line in said
    ), said
    assert snapshot(db) == before
    assert run(app, db, delete_source=True) == 0
    keys = set(snapshot(db))
    assert "mig:other:1:name" in keys
    assert {key for key in keys if "{" not in key} == {"mig:other:1:name"}
    db.client.delete("mig:other:1:name")
    assert_migrated(app)


@pytest.mark.parametrize("deletions", [1, 2, 3, 5])
def test_an_interrupted_delete_source_is_finished_by_the_next(
    app: Any, db: Any, monkeypatch: Any, deletions: int
) -> None:
    """Stopped after some deletions of old keys, the next run loses no migrated value: a pk
    still listed in the old collection has all its keys (it would read as empty)."""
    write_old(db.client)
    assert run(app, db) == 0
    monkeypatch.setattr(source, "BATCH", 1)
    made = {"n": 0}
    delete = migration.Migration._delete_each

    def interrupted(self: Any, keys: list[str]) -> int:
        made["n"] += 1
        if made["n"] > deletions:
            raise KeyboardInterrupt
        return delete(self, keys)

    monkeypatch.setattr(migration.Migration, "_delete_each", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(app, db, delete_source=True)
    monkeypatch.setattr(migration.Migration, "_delete_each", delete)
    assert run(app, db, delete_source=True) == 0
    assert {key for key in snapshot(db) if "{" not in key} == set()
    assert_migrated(app)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c.set("mig:person:2:age", "old"),
            "Person '2': Person.age: invalid value 'old' for its NumberRangeIndex",
        ),
        (
            lambda c: c.hset("mig:person:2:hash", "email", "a@x"),
            "Person.email is unique, but instances '1', '2' hold the same value 'a@x'",
        ),
        (
            lambda c: c.set("mig:person:2:name", "Alice"),
            "Person: unique_together: instances '1', '2' hold the same name='Alice', city='Paris'",
        ),
        (
            lambda c: (c.delete("mig:person:1:tags"), c.set("mig:person:1:tags", "a")),
            "Person '1': key 'mig:person:1:tags' is not a set: WRONGTYPE",
        ),
        (
            lambda c: c.sadd("mig:person:1:friends", "9"),
            "Person '1': Person.friends points to '9', an instance of Person that neither the "
            "old data nor limpyd's holds",
        ),
        (
            lambda c: (c.sadd("mig:person:collection", "abc"), c.set("mig:person:abc:age", "1")),
            "Person 'abc': not a pk its AutoPKField gives (1, 2, 3...): declare the PKField",
        ),
        (
            lambda c: c.sadd("mig:person:collection", "\u00b2"),  # str.isdigit() says yes
            "Person '\u00b2': not a pk its AutoPKField gives",
        ),
        (lambda c: c.sadd("mig:person:collection", "01"), "Person '01': not a pk its AutoPK"),
        (
            lambda c: (c.sadd("mig:tag:collection", ""), c.set("mig:tag::label", "x")),
            "Tag: an instance of pk '' (a pk cannot be empty)",
        ),
        (
            lambda c: (c.delete("mig:person:collection"), c.set("mig:person:collection", "1")),
            "'mig:person:collection' is a string, not a set",
        ),
        (
            lambda c: (c.delete("mig:person:max_pk"), c.rpush("mig:person:max_pk", "7")),
            "'mig:person:max_pk' is a list, not a string",
        ),
        (
            lambda c: c.set("mig:person:max_pk", "9223372036854775807"),
            "'mig:person:max_pk' holds '9223372036854775807', not a pk counter (an integer "
            "from 0 to 9223372036854775806, as Redis writes one)",
        ),
        (lambda c: c.set("mig:person:max_pk", "07"), "'mig:person:max_pk' holds '07', not a pk"),
        (lambda c: c.set("mig:person:max_pk", "-1"), "'mig:person:max_pk' holds '-1', not a pk"),
        (
            lambda c: c.sadd("mig:person:collection", "9223372036854775807"),
            "Person '9223372036854775807': its AutoPKField's counter could give no pk after",
        ),
        (
            lambda c: c.sadd("mig:person:collection", "99999999999999999999"),
            "Person '99999999999999999999': its AutoPKField's counter could give no pk after",
        ),
        (
            lambda c: c.set("mig:{person}:person:max_pk", "x"),
            "limpyd's 'mig:{person}:person:max_pk' holds 'x', not a pk counter",
        ),
        (
            lambda c: c.sadd("mig:{person}:person:max_pk", "1"),
            "limpyd's 'mig:{person}:person:max_pk' is a set, not a string",
        ),
        (  # the copy wrote, then failed on it (a bare WRONGTYPE, copied instances unindexed)
            lambda c: c.set("mig:{person}:person:expiry", "x"),
            "limpyd's 'mig:{person}:person:expiry' is a string, not a zset",
        ),
        (
            lambda c: c.set("mig:{person}:person:collection", "x"),
            "limpyd's 'mig:{person}:person:collection' is a string, not a set",
        ),
        (  # the link records the rebuild writes on group 1 (exit 1, Group's indexes not built)
            lambda c: c.set("mig:{group}:group:relations:1", "x"),
            "limpyd's link records 'mig:{group}:group:relations:1' are a string, not a hash",
        ),
        (  # the survey of Person, reading it for its references, failed with WRONGTYPE
            lambda c: (c.delete("mig:group:collection"), c.zadd("mig:group:collection", {"1": 1})),
            "'mig:group:collection' cannot be read as a set of pks (another type)",
        ),
    ],
    ids=[
        "invalid-number", "unique", "unique-together", "wrong-type", "dangling", "text-pk",
        "digit-pk", "padded-pk", "empty-pk", "collection-type", "counter-type",
        "counter-last", "counter-padded", "counter-negative", "last-pk", "huge-pk",
        "target-counter", "target-counter-type", "target-expiry-type",
        "target-collection-type", "target-links-type", "related-collection-type",
    ],
)  # fmt: skip
def test_what_limpyd_would_refuse_stops_it_before_any_write(
    app: Any, db: Any, change: Any, message: str
) -> None:
    write_old(db.client)
    change(db.client)
    before = snapshot(db)
    said: list[str] = []
    assert migration.migrate(models(app), url_of(db), say=said.append) == 1
    assert any(message in line for line in said), said
    if "points to" not in message:  # no reference is said dangling where none is
        assert not any("neither the old data" in line for line in said), said
    assert said[-1].startswith("error: nothing was written")
    assert snapshot(db) == before


def test_undeclared_fields_are_reported_not_migrated(app: Any, db: Any) -> None:
    write_old(db.client)
    db.client.set("mig:person:1:nickname", "Al")
    db.client.set("mig:person:2:nickname", "Bo")
    db.client.hset("mig:person:1:hash", "phone", "555")
    said: list[str] = []
    assert migration.migrate(models(app), url_of(db), say=said.append) == 0
    assert (
        "Person: warning: the field 'nickname' is not declared by the limpyd model: not "
        "migrated (2 key(s) hold values, the first 'mig:person:1:nickname')"
    ) in said or (
        "Person: warning: the field 'nickname' is not declared by the limpyd model: not "
        "migrated (2 key(s) hold values, the first 'mig:person:2:nickname')"
    ) in said
    assert (
        "Person: warning: the InstanceHashField 'phone' is not declared by the limpyd model: "
        "not migrated (1 key(s) hold values, the first 'mig:person:1:hash')"
    ) in said
    assert_migrated(app)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["nosuch.models:Person"], "error: cannot import 'nosuch.models:Person': No module named"),
        (["migration.oldapp.models:database"], "is not a limpyd model"),
        (["migration.oldapp.models:Base"], "error: model Base is abstract"),
        (
            ["migration.oldapp.models:Person"],
            "error: Person.group points to migration.oldapp.models:Group, which is not "
            "migrated with it",
        ),
        ([*PATHS, "--url", "http://x"], "error: Unsupported database URL 'http://x'"),
        ([*PATHS, "--url", "redis://127.0.0.1:1/0"], "error: cannot reach the source Redis at "),
        (
            [*PATHS, "--url", "redis://u:s3cret@127.0.0.1:1/0"],
            "cannot reach the source Redis at redis://u:***@127.0.0.1:1/0",
        ),
        ([*PATHS, "--url", "redis://127.0.0.1:1/0?nosuch=1"], "unexpected keyword argument"),
        (PATHS, "error: no data written by redis-limpyd found (no key 'mig:group:collection', "),
        ([*PATHS, "--url", ""], "error: Unsupported database URL ''"),
        ([*PATHS, "--target-url", ""], "error: Unsupported database URL ''"),
    ],
    ids=[
        "no-module",
        "not-a-model",
        "abstract",
        "related",
        "url",
        "unreachable",
        "password",
        "option",
        "no-data",
        "empty-url",
        "empty-target-url",
    ],
)
def test_clear_one_line_errors(
    app: Any, db: Any, capsys: Any, arguments: list[str], message: str
) -> None:
    if "--url" not in arguments:
        arguments = [*arguments, "--url", url_of(db)]
    assert main(["migrate-from-redis-limpyd", *arguments]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert "s3cret" not in err
    assert snapshot(db) == {}


def test_values_a_transformed_unique_index_takes_as_one_are_a_conflict(db: Any) -> None:
    from limpyd import model
    from limpyd.indexes import EqualIndex

    class Login(model.RedisModel):
        database = db
        namespace = "mig"
        name = model.StringField(unique=True, indexes=[EqualIndex.configure(transform=str.lower)])

    db.client.sadd("mig:login:collection", "1", "2", "3")
    for pk, name in (("1", "Ann"), ("2", "ann"), ("3", "Bob")):
        db.client.set(f"mig:login:{pk}:name", name)
    said: list[str] = []
    assert migration.migrate([Login], url_of(db), say=said.append) == 1
    assert (
        "Login: error: Login.name is unique, but instances '1', '2' hold values its index "
        "takes as one: 'Ann', 'ann'"
    ) in said


def test_the_counter_goes_past_every_pk(app: Any, db: Any) -> None:
    write_old(db.client)
    db.client.set("mig:person:max_pk", "1")  # behind pk 2
    db.client.delete("mig:group:max_pk")
    assert run(app, db) == 0
    assert app.Person(name="Carol").pk.get() == "3"
    assert app.Group(name="staff").pk.get() == "2"


def test_an_instance_overwritten_leaves_no_expiry_behind(app: Any, db: Any) -> None:
    """A limpyd instance of the same pk, set to expire, was overwritten by the old data but
    kept its expiry time: the migrated instance was reaped later (its source deleted)."""
    app.Person(name="Zed", email="z@x")  # pk 1 in limpyd's layout, expiring
    app.Person(1).expire(3600)
    write_old(db.client)
    assert run(app, db) == 0
    assert app.Person(1).ttl() is None
    assert app.Person.reap_expired() == 0
    assert_migrated(app)


def test_the_counter_of_a_model_with_a_pk_field_is_not_checked(app: Any, db: Any) -> None:
    """limpyd does not use a PKField model's counter: what it holds stops nothing."""
    write_old(db.client)
    db.client.set("mig:{tag}:tag:max_pk", "junk")
    assert run(app, db) == 0
    assert_migrated(app)


def test_a_unique_value_the_targets_index_lost_is_one_line(app: Any, db: Any) -> None:
    """A limpyd instance holding an old instance's unique value, its index entry lost: the
    survey (which reads the index) misses it; the rebuild refuses the value, said in one
    line with exit status 1 (a traceback, the later indexes not said)."""
    for name in ("Xu", "Wu", "Vu"):  # pks 1 and 2 are replaced by the old ones, 3 is kept
        app.Person(name=name, email=f"{name}@x")
    db.client.hset(app.Person._meta.hash_key("3"), "email", "a@x")  # the index not told
    write_old(db.client)
    said: list[str] = []
    assert migration.migrate(models(app), url_of(db), say=said.append) == 1
    assert said[-2].startswith("error: Person.email.rebuild_indexes(): instance ")
    assert said[-1].startswith("error: the indexes of the target's limpyd data did not show")


def test_a_unique_value_limpyd_already_gives_another_instance_stops_it(app: Any, db: Any) -> None:
    """An old instance's unique value held by a limpyd instance of another pk already in the
    target: the survey missed it, the run copied, then failed rebuilding the index (a
    traceback, the data half migrated)."""
    app.Person(name="Zed", email="z@x")
    app.Person(name="Yan", email="y@x")  # pk 2: replaced by the old Bob, not a conflict
    app.Person(1).delete()
    app.Person(name="Xu", email="a@x")  # pk 3 holds Alice's email, and is kept
    write_old(db.client)
    before = snapshot(db)
    said: list[str] = []
    assert migration.migrate(models(app), url_of(db), say=said.append) == 1
    assert any(
        "Person.email: old instance(s) '1' hold a value that limpyd's instance(s) '3'" in line
        for line in said
    ), said
    assert said[-1].startswith("error: nothing was written")
    assert snapshot(db) == before


def test_a_unique_value_an_expired_instance_holds_says_to_reap_first(app: Any, db: Any) -> None:
    """A limpyd instance whose time has passed holds an old instance's unique value: the
    survey refused it as held (limpyd itself takes the value, reaping it), saying nothing of
    the expiry."""
    holder = app.Person(name="Xu", email="a@x")
    for name in ("Wu", "Vu"):  # pks 2 and 3: 2 is replaced by the old Bob, 3 holds a@x
        app.Person(name=name, email=f"{name}@x")
    app.Person(1).delete()
    app.Person(3).delete()
    holder = app.Person(name="Tu", email="a@x")  # pk 4
    holder.expireat(1)
    write_old(db.client)
    said: list[str] = []
    assert migration.migrate(models(app), url_of(db), say=said.append) == 1
    assert any(
        "limpyd's instance(s) '4' (not migrated over) hold already (expired, not reaped yet: "
        "run `python -m limpyd reap` first)" in line
        for line in said
    ), said
    app.Person.reap_expired()
    assert migration.migrate(models(app), url_of(db), say=said.append) == 0
    check(*models(app))
