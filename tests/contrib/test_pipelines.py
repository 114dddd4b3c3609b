"""PipelineDatabase (manual 2.7): pipelines, transactions, threads, and indexed writes
refused before anything is sent."""

from __future__ import annotations

import threading

import pytest

from limpyd import fields, model
from limpyd.contrib.collection import ExtendedCollectionManager
from limpyd.contrib.database import PipelineDatabase
from limpyd.contrib.related import FKInstanceHashField, FKStringField, RelatedModel
from limpyd.database import RedisDatabase
from limpyd.exceptions import ImplementationError


@pytest.fixture
def main_database(limpyd_database_factory):
    return limpyd_database_factory(PipelineDatabase)


@pytest.fixture
def Person(main_database):
    class Person(model.RedisModel):
        database = main_database
        namespace = "foo"
        name = fields.StringField()
        city = fields.StringField(indexable=True)
        nick = fields.InstanceHashField()

    Person(name="Jean Dupond", city="Paris")
    Person(name="Francois Martin", city="Paris")
    Person(name="John Smith", city="New York")
    Person(name="John Doe", city="San Francisco")
    Person(name="Paul Durand", city="Paris")
    return Person


def test_pipeline_gets_many_values_in_one_round_trip(Person, main_database, limpyd_commands):
    persons = list(Person.collection(city="Paris").instances())
    with limpyd_commands(main_database) as counted:
        with main_database.pipeline() as pipeline:
            for person in persons:
                person.name.get()
            names = pipeline.execute()
    assert names == ["Jean Dupond", "Francois Martin", "Paul Durand"]
    assert counted.round_trips == 1


def test_plain_writes_are_queued(Person, main_database):
    person = Person(1)
    with main_database.pipeline() as pipeline:
        person.name.set("Jean")
        person.nick.hset("JJ")
        person.hmset(nick="J")
        person.name.get()
        results = pipeline.execute()
    assert results == [True, 1, True, "Jean"]
    assert person.name.get() == "Jean" and person.nick.hget() == "J"


def test_indexed_writes_are_refused_before_sending(Person, main_database, unchanged):
    person = Person(1)
    with unchanged():
        with main_database.pipeline() as pipeline:
            person.name.set("queued")
            with pytest.raises(ImplementationError, match=r"Person\.city"):
                person.city.set("Lyon")
            with pytest.raises(ImplementationError, match=r"^writing Person\.city cannot"):
                person.city.delete()
            with pytest.raises(ImplementationError, match=r"^deleting a Person cannot"):
                person.delete()
            with pytest.raises(ImplementationError):
                Person(name="new")
            pipeline.reset()
    assert Person.collection(city="Paris") == ["1", "2", "5"]


def test_transaction_restarts_on_concurrent_change(main_database, limpyd_database_factory):
    class Page(model.RedisModel):
        database = main_database
        url = fields.StringField(indexable=True)
        hits = fields.StringField()

        def incr_hits(self, interfere=None):
            def do_incr(pipeline):
                previous_value = self.hits.get()
                if interfere:
                    interfere()
                pipeline.multi()
                self.hits.set(int(previous_value) + 1)

            return self.database.transaction(do_incr, *[self.hits])

    page = Page(url="/", hits=0)
    assert page.incr_hits() == [True]
    assert page.hits.get() == "1"
    other = limpyd_database_factory()
    calls = []

    def interfere():
        if not calls:
            other.client.set(page.hits.key, "10")
        calls.append(1)

    assert page.incr_hits(interfere) == [True]
    assert len(calls) == 2
    assert page.hits.get() == "11"


def test_pipeline_is_per_thread_unless_shared(Person, main_database):
    person = Person(1)
    seen = []

    def read():
        seen.append(person.name.get())

    with main_database.pipeline() as pipeline:
        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
        pipeline.execute()
    assert seen == ["Jean Dupond"]

    with main_database.pipeline(share_in_threads=True) as pipeline:
        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
        assert pipeline.execute() == ["Jean Dupond"]
    assert len(seen) == 2 and seen[1] is pipeline  # queued, not answered


def test_a_pipeline_ending_ends_only_itself(Person, main_database):
    """Another thread's own pipeline ending leaves a shared one open: its commands stay
    queued, and an indexed write stays refused."""
    person = Person(1)
    opened, close = threading.Event(), threading.Event()

    def other_thread():
        with main_database.pipeline() as own:
            opened.set()
            close.wait()
            own.execute()

    thread = threading.Thread(target=other_thread)
    thread.start()
    opened.wait()
    with main_database.pipeline(share_in_threads=True) as shared:
        person.nick.hset("a")
        close.set()
        thread.join()
        assert main_database.pipelined
        assert person.name.set("Jean") is shared  # queued
        with pytest.raises(ImplementationError):
            person.city.set("Lyon")
        assert main_database.client.get(person.name.key) == "Jean Dupond"
        assert shared.execute() == [1, True]
    assert not main_database.pipelined
    assert person.name.get() == "Jean" and person.nick.hget() == "a"


def test_a_scan_is_refused_in_a_pipeline(main_database):
    class Bag(model.RedisModel):
        database = main_database
        items = fields.SetField()
        props = fields.HashField()
        ranks = fields.SortedSetField()

    bag = Bag(items=["a"], props={"k": "v"}, ranks={"r": 1})
    with main_database.pipeline() as pipeline:
        for scan in (bag.items.sscan, bag.props.hscan, bag.ranks.zscan):
            with pytest.raises(ImplementationError, match=r"^Bag\.\w+\.\w+scan: a scan"):
                scan()
        assert pipeline.execute() == []  # nothing queued
    assert list(bag.items.sscan()) == ["a"]


def test_an_instance_expiry_is_refused_in_a_pipeline(Person, main_database, unchanged):
    person = Person(1)
    with unchanged():
        with main_database.pipeline() as pipeline:
            person.name.get()
            for what, call in [
                ("expire", lambda: person.expire(10)),
                ("expireat", lambda: person.expireat(2_000_000_000)),
                ("persist", person.persist),
                ("ttl", person.ttl),
                ("reap_expired", Person.reap_expired),
            ]:
                with pytest.raises(ImplementationError, match=rf"Person.*\.{what}: .*nothing was"):
                    call()
            assert pipeline.execute() == ["Jean Dupond"]  # only the read was queued
    assert person.ttl() is None
    assert person.expire(100) and 0 < person.ttl() <= 100


def test_reads_that_need_their_answer_run_at_once(main_database):
    # a filter by a bound field's value, a foreign key's instance, a foreign key standing
    # for its pk: read at once (as collections run), nothing left queued
    class Member(RelatedModel):
        database = main_database
        cluster_group = "club"
        name = fields.InstanceHashField(indexable=True)

    class Team(RelatedModel):
        database = main_database
        cluster_group = "club"
        owner = FKInstanceHashField(Member, related_name="owned")
        coach = FKStringField(Member, related_name="coached")

    ann, bob = Member(name="ann"), Member(name="bob")
    team = Team(owner=ann, coach=bob)
    other = Team(owner=bob)
    extended = Member.collection(manager=ExtendedCollectionManager)
    with main_database.pipeline() as pipeline:
        ann.name.get()
        assert list(extended.filter(name=bob.name)) == [bob.pk.get()]
        assert team.owner.instance() == ann and team.coach.instance() == bob
        with pytest.raises(ImplementationError, match=r"Team\.owner"):
            other.owner.hset(team.coach)  # the pk read at once, the indexed write refused
        assert pipeline.execute() == ["ann"]  # only the queued read
    other.owner.hset(team.coach)
    assert other.owner.get() == bob.pk.get()


def test_index_maintenance_is_refused_in_a_pipeline(Person, main_database, unchanged):
    from limpyd import integrity, maintenance

    city = Person.get_field("city")
    main_database.client.delete(*main_database.client.keys("*:idx:city:*"))
    problems = integrity.check(Person)
    assert problems  # the missing entries a repair would write
    with unchanged():
        with main_database.pipeline() as pipeline:
            for what, call in [
                ("clean_indexes", city.clean_indexes),
                ("rebuild_indexes", city.rebuild_indexes),
                ("rebuilding unique_together", lambda: maintenance.rebuild_together(Person)),
                ("repairing", lambda: integrity.repair(problems)),
            ]:
                with pytest.raises(ImplementationError, match=f"{what}.*nothing was sent"):
                    call()
            assert pipeline.execute() == []
    integrity.repair(problems)
    assert integrity.check(Person) == []


def test_exists_is_queued_for_a_missing_instance_too(Person, main_database):
    """Each call in a pipeline gives one result, in order: `exists()` of an instance that
    does not exist (or is not saved) queues a read answering no, as outside a pipeline."""
    people = [Person.lazy_connect(pk) for pk in ("1", "99", "2")] + [Person()]
    with main_database.pipeline() as pipeline:
        for person in people:
            person.name.exists()
            person.nick.hexists()
        results = pipeline.execute()
    assert results == [1, False, 0, False, 1, False, 0, False]
    assert [person.name.exists() for person in people] == [True, False, True, False]


@pytest.mark.parametrize("watch", [None, 5, 1.5, ["key"], "instance"])
def test_transaction_refuses_what_is_no_key_nor_field(Person, main_database, unchanged, watch):
    """None and an instance failed in redis-py naming nothing; 5 watched a key named '5'."""
    if watch == "instance":
        watch = Person(name="w")
    runs = []

    def bump(pipeline):
        runs.append(1)

    with (
        unchanged(),
        pytest.raises(ImplementationError, match=r"^transaction: cannot watch .* \(of type"),
    ):
        main_database.transaction(bump, watch)
    assert runs == []


def test_hmset_in_a_pipeline_gives_true(main_database):
    """Queued, hmset gives the pipeline, and True in `execute()` as outside one (it gave
    True at once, then HSET's count of new fields: 0 for an overwrite)."""

    class Card(model.RedisModel):
        database = main_database
        city = fields.InstanceHashField()
        zip = fields.InstanceHashField()

    card = Card(city="Paris")
    with main_database.pipeline() as pipeline:
        assert card.hmset(city="Lyon", zip="69000") is pipeline
        assert card.hmset(city="Nice") is pipeline
        assert pipeline.execute() == [True, True]
    assert card.hmget("city", "zip") == ["Nice", "69000"] and card.hmset(zip="06000") is True


def test_transaction_refuses_a_field_of_another_database(Person, main_database, unchanged):
    """WATCH goes to this database's connection and another database's commands are not
    part of the transaction: such a field is refused before anything is sent."""
    elsewhere = RedisDatabase(backend=main_database.backend)

    class Counter(model.RedisModel):
        database = elsewhere
        hits = fields.StringField()

    counter = Counter(hits=1)
    runs = []

    def bump(pipeline):
        runs.append(1)
        pipeline.multi()
        counter.hits.set(2)

    with (
        unchanged(),
        pytest.raises(ImplementationError, match=r"^Counter.hits: watched .* its model uses"),
    ):
        main_database.transaction(bump, counter.hits)
    assert runs == [] and counter.hits.get() == "1"


def test_a_transaction_always_made_stale_gives_up(main_database, limpyd_database_factory):
    """Retried at once and forever (a cluster's slot being moved makes every attempt a
    WatchError: 100% CPU while it lasts): now with limpyd's backoff and bound."""
    from limpyd.exceptions import ConflictError

    class Page(model.RedisModel):
        database = main_database
        hits = fields.StringField()

    page = Page(hits=0)
    other = limpyd_database_factory()
    main_database.max_write_attempts = 4
    main_database.retry_backoff = main_database.retry_backoff_max = 0.001
    runs = []

    def bump(pipeline):
        runs.append(1)
        current = int(page.hits.get())
        other.client.set(page.hits.key, "100")  # another client, every time
        pipeline.multi()
        page.hits.set(current + 1)

    with pytest.raises(ConflictError, match=r"^transaction: gave up after 4 attempts"):
        main_database.transaction(bump, page.hits)
    assert len(runs) == 4 and page.hits.get() == "100"


def test_a_transaction_whose_function_never_calls_multi(main_database, limpyd_database_factory):
    """multi() forgotten (the manual says it is mandatory) while the function writes a
    watched key: the error says what was written and why (it said that nothing was written).
    Functions that never call it and write nothing, or that execute the pipeline themselves,
    work as in redis-py; one that calls it is retried as before."""
    from limpyd.exceptions import ConflictError

    class Page(model.RedisModel):
        database = main_database
        hits = fields.StringField()

    page = Page(hits=0)
    main_database.max_write_attempts = 3
    main_database.retry_backoff = main_database.retry_backoff_max = 0.001
    runs = []

    def bump(pipeline):
        runs.append(1)
        page.hits.incr()  # no multi(): sent at once

    cluster = main_database.backend.kind == "cluster"  # an empty EXEC is not sent there
    if cluster:
        assert main_database.transaction(bump, page.hits) == []
    else:
        with pytest.raises(ConflictError, match=r"after 3 attempts.*never called pipeline\.multi"):
            main_database.transaction(bump, page.hits)
    assert page.hits.get() == str(len(runs)) and len(runs) == (1 if cluster else 3)

    def sold_out(pipeline):  # redis-py's conditional exit: no multi(), nothing written
        if int(page.hits.get()) < 100:
            return "sold out"
        pipeline.multi()
        page.hits.incr()

    assert main_database.transaction(sold_out, page.hits, value_from_callable=True) == "sold out"

    def executes_itself(pipeline):
        pipeline.multi()
        page.hits.incr()
        return pipeline.execute()

    hits = int(page.hits.get())
    assert main_database.transaction(executes_itself, page.hits, value_from_callable=True) == [
        hits + 1
    ]
    other = limpyd_database_factory()

    def bump_once_interfered(pipeline):
        runs.append(2)
        if runs.count(2) == 1:
            other.client.set(page.hits.key, "10")
        pipeline.multi()
        page.hits.incr()

    assert main_database.transaction(bump_once_interfered, page.hits) == [11]
    assert runs.count(2) == 2 and page.hits.get() == "11"


@pytest.mark.parametrize("write", ["set", "hset", "delete_field"])
def test_an_instance_found_missing_is_checked_again_before_a_pipelined_write(
    Person, main_database, unchanged, write
):
    """A write refused with DoesNotExist left the object known to exist: the same write
    queued in a pipeline then ran unchecked, leaving a key no instance owns."""
    from limpyd.exceptions import DoesNotExist

    other = Person(name="gone")
    same = Person(other.pk.get())  # checked: known to exist
    other.delete()
    writes = {
        "set": lambda: same.name.set("x"),
        "hset": lambda: same.nick.hset("x"),
        "delete_field": lambda: same.name.delete(),
    }
    with unchanged():
        with pytest.raises(DoesNotExist, match=r"no instance with pk"):
            writes[write]()
        with main_database.pipeline() as pipeline:
            with pytest.raises(DoesNotExist, match=r"no instance with pk"):
                writes[write]()
            assert pipeline.execute() == []
