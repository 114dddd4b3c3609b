"""The workload through an ORM: the very same lines run on limpyd and on redis-limpyd 2.1.2.

Both libraries are imported as `limpyd` and share the manual's API, so only the database's
construction differs (`make_database`). Each worker process imports one of them: the project's
limpyd in the project's environment, redis-limpyd in its own virtualenv.
"""

from __future__ import annotations

import platform
import sys
from typing import Any

import workload as w
from harness import Op, Workload

import limpyd
from limpyd import fields
from limpyd.contrib.collection import ExtendedCollectionManager
from limpyd.contrib.database import PipelineDatabase
from limpyd.contrib.related import FKInstanceHashField, M2MSetField, RelatedModel
from limpyd.indexes import NumberRangeIndex

#: redis-py options every implementation's client gets: str replies, RESP2.
CLIENT_OPTIONS = {"encoding_errors": "surrogateescape", "protocol": 2}
#: What limpyd's FakeBackend.server_info reports for fakeredis, which has no INFO command.
FAKE_SERVER_VERSION = (7, 0, 0)


def _pks(values: Any) -> list[int]:
    return sorted(int(pk) for pk in values)


class OrmWorkload(Workload):
    def __init__(self, impl: str) -> None:
        self.impl = impl
        self.is_redis_limpyd = impl == "redis-limpyd"
        version = getattr(limpyd, "EXACT_VERSION", None) or getattr(limpyd, "__version__", "")
        if self.is_redis_limpyd != (getattr(limpyd, "EXACT_VERSION", None) is not None):
            raise RuntimeError(f"worker {impl!r} imported limpyd {version} from {limpyd.__file__}")
        self.library_version = version
        self._ops: dict[str, Op] = {}

    def versions(self) -> dict[str, str]:
        import redis

        found = {
            "python": platform.python_version(),
            "redis-py": redis.__version__,
            "library": f"{self.impl} {self.library_version}",
            "imported from": limpyd.__file__,
            "executable": sys.executable,
        }
        try:
            import fakeredis

            found["fakeredis"] = fakeredis.__version__
        except ImportError:
            pass
        return found

    # Database -------------------------------------------------------------------------------

    def make_database(self, backend: str, url: str) -> tuple[Any, list[str]]:
        notes: list[str] = []
        if not self.is_redis_limpyd:
            if backend == "fake":
                from limpyd.backends import FakeBackend

                return PipelineDatabase(backend=FakeBackend(name="bench")), notes
            from limpyd.backends import RedisBackend

            return PipelineDatabase(backend=RedisBackend(url=url, **CLIENT_OPTIONS)), notes
        if backend == "redis":
            from urllib.parse import urlsplit

            parts = urlsplit(url)
            settings = {"host": parts.hostname, "port": parts.port, "db": int(parts.path[1:])}
            # redis-limpyd adds decode_responses=True itself.
            return PipelineDatabase(**settings, **CLIENT_OPTIONS), notes
        return self._fake_redis_limpyd_database(notes), notes

    def _fake_redis_limpyd_database(self, notes: list[str]) -> Any:
        """redis-limpyd on fakeredis: try as it is, then with its version check answered."""
        import fakeredis

        server = fakeredis.FakeServer()

        def fake_client() -> Any:
            return fakeredis.FakeRedis(server=server, decode_responses=True, **CLIENT_OPTIONS)

        class AsIs(PipelineDatabase):
            def connect(self, **settings: Any) -> Any:
                client = fake_client()
                self._connection = client  # what ensure_redis_versions' INFO goes through
                self.ensure_redis_versions()
                return client

        try:
            AsIs(host="fake", port=0, db=0).connection.ping()
        except Exception as error:
            notes.append(
                "redis-limpyd's connection checks the server version with INFO, which fakeredis "
                f"does not implement ({type(error).__name__}: {error}); the worker answers "
                f"that check with {'.'.join(map(str, FAKE_SERVER_VERSION))}, as limpyd's "
                "FakeBackend.server_info does; nothing else is changed"
            )
        else:
            notes.append("redis-limpyd's version check passed on fakeredis as it is")

        class FakeVersioned(PipelineDatabase):
            def connect(self, **settings: Any) -> Any:
                self._redis_version = FAKE_SERVER_VERSION
                return fake_client()

        return FakeVersioned(host="fake", port=0, db=0)

    def client(self) -> Any:
        db = self.db
        return db.client if not self.is_redis_limpyd else db.connection

    def counter(self) -> Any:
        from counting import Counter

        return Counter(self.client())

    def start_counting(self, counter: Any) -> None:
        counter.install()
        if self.is_redis_limpyd:
            # redis-limpyd's PipelineDatabase builds its pipeline class itself, not through
            # client.pipeline(): count it when it is made.
            make = type(self.db).pipeline.__get__(self.db)

            def counted_pipeline(*args: Any, **kwargs: Any) -> Any:
                return counter.instrument_pipeline(make(*args, **kwargs))

            self.db.pipeline = counted_pipeline

    def stop_counting(self, counter: Any) -> None:
        counter.uninstall()
        self.db.__dict__.pop("pipeline", None)

    # Data set ---------------------------------------------------------------------------

    def setup(self, backend: str, url: str, size: int) -> list[str]:
        self.db, notes = self.make_database(backend, url)
        self.client().flushdb()
        db = self.db

        class Person(RelatedModel):
            database = db
            collection_manager = ExtendedCollectionManager
            name = fields.InstanceHashField(unique=True)
            city = fields.InstanceHashField(indexable=True)
            country = fields.InstanceHashField(indexable=True)
            status = fields.InstanceHashField(indexable=True)
            age = fields.InstanceHashField(indexable=True, indexes=[NumberRangeIndex])
            tags = fields.SetField(indexable=True)

        class Group(RelatedModel):
            database = db
            collection_manager = ExtendedCollectionManager
            name = fields.InstanceHashField()
            owner = FKInstanceHashField(Person, related_name="owned_groups")
            members = M2MSetField(Person, related_name="membership")

        self.Person, self.Group = Person, Group
        for i in range(1, size + 1):
            person = Person(**w.person_values(i))
            if person.pk.get() != str(i):
                raise RuntimeError(f"{self.impl}: person {i} got pk {person.pk.get()!r}")
        for g in range(1, min(w.GROUPS, size // 10) + 1):
            spec = w.group_values(g)
            group = Group(name=spec["name"], owner=spec["owner"])
            group.members.sadd(*spec["members"])
        self._ops = self._make_ops()
        return notes

    def build_instance(self, pk: str) -> Any:
        return self.Person.lazy_connect(pk)

    @property
    def ops(self) -> dict[str, Op]:
        return self._ops

    # Operations -------------------------------------------------------------------------

    def _make_ops(self) -> dict[str, Op]:
        Person, Group, db = self.Person, self.Group, self.db

        def person_state(person: Any) -> list[Any]:
            return [sorted(person.hgetall().items()), sorted(person.tags.smembers())]

        def get_pk(_: Any) -> Any:
            return Person(w.GET_PK)

        def get_pk_all(_: Any) -> Any:
            person = Person(w.GET_ALL_PK)
            with db.pipeline(transaction=False) as pipeline:
                person.hgetall()
                person.tags.smembers()
                data, tags = pipeline.execute()
            return data, tags

        def read_ops() -> dict[str, Op]:
            return {
                "get_pk": Op(get_pk, answer=lambda s, r: r.pk.get()),
                "get_pk_all": Op(
                    get_pk_all, answer=lambda s, r: [sorted(r[0].items()), sorted(r[1])]
                ),
                "get_unique": Op(
                    lambda s: Person.get(name=w.UNIQUE_NAME), answer=lambda s, r: r.pk.get()
                ),
                "filter_1": Op(
                    lambda s: list(Person.collection(city=w.FILTER_CITY)),
                    answer=lambda s, r: _pks(r),
                ),
                "filter_3": Op(
                    lambda s: list(Person.collection(**w.FILTER_3)), answer=lambda s, r: _pks(r)
                ),
                "filter_range": Op(
                    lambda s: list(Person.collection(age__gte=w.RANGE[0], age__lt=w.RANGE[1])),
                    answer=lambda s, r: _pks(r),
                ),
                "sort_slice": Op(
                    lambda s: list(
                        Person.collection(city=w.FILTER_CITY).sort(by="name", alpha=True)[0:10]
                    ),
                    answer=lambda s, r: [int(pk) for pk in r],
                ),
                "instances_100": Op(
                    lambda s: list(Person.collection(city=w.INSTANCES_CITY).instances()),
                    answer=lambda s, r: [len(r), _pks(i.pk.get() for i in r)],
                ),
                "values_100": Op(
                    lambda s: list(Person.collection(city=w.VALUES_CITY).values(*w.VALUE_FIELDS)),
                    answer=lambda s, r: sorted(
                        [[row[k] for k in w.VALUE_FIELDS] for row in r], key=lambda x: int(x[0])
                    ),
                ),
                "values_list_100": Op(
                    lambda s: list(
                        Person.collection(city=w.VALUES_LIST_CITY).values_list("name", flat=True)
                    ),
                    answer=lambda s, r: sorted(r),
                ),
                "related_collection": Op(
                    lambda s: list(s.membership()),
                    prepare=lambda seq: Person(w.RELATED_PK),
                    answer=lambda s, r: _pks(r),
                ),
            }

        # Writes: each repetition leaves the data set as it found it.
        def create_6(seq: int) -> Any:
            return Person(**w.new_person_values(f"created-{seq}"))

        def created_answer(state: Any, person: Any) -> Any:
            name = person.name.hget()
            return [
                person_state(person)[1:],
                sorted(person.hmget("city", "country", "status", "age")),
                name.startswith("created-"),
                _pks(Person.collection(name=name)) == [int(person.pk.get())],
                len(Person.collection(city="city-1")),
            ]

        def updating(pk: str) -> Any:
            return lambda seq: (Person(pk), seq)

        def update_indexed(state: Any) -> Any:
            return state[0].city.hset(w.UPDATE_INDEXED_TO)

        def update_unique(state: Any) -> Any:
            return state[0].name.hset(f"renamed-{state[1]}")

        def hmset_2(state: Any) -> Any:
            return state[0].hmset(**w.HMSET_TO)

        def sadd_set(state: Any) -> Any:
            return state[0].tags.sadd(w.SADD_TAG)

        def prepare_delete(seq: int) -> Any:
            return Person(**w.new_person_values(f"to-delete-{seq}")), f"to-delete-{seq}"

        def delete_indexed(state: Any) -> Any:
            return state[0].delete()

        def create_fk(state: Any) -> Any:
            return Group(name=f"new-group-{state[1]}", owner=state[0])

        def m2m_prepare(seq: int) -> Any:
            return Group(w.M2M_GROUP_PK), [Person(pk) for pk in w.M2M_PERSON_PKS]

        def m2m_sadd_3(state: Any) -> Any:
            group, persons = state
            return group.members.sadd(*persons)

        def prepare_delete_related(seq: int) -> Any:
            person = Person(**w.new_person_values(f"doomed-{seq}"))
            owned = Group(name=f"owned-{seq}", owner=person)
            groups = [Group(pk) for pk in w.DELETE_RELATED_GROUPS]
            for group in groups:
                group.members.sadd(person)
            return person, owned, groups, person.pk.get(), f"doomed-{seq}"

        def delete_related(state: Any) -> Any:
            return state[0].delete()

        def delete_related_answer(state: Any, result: Any) -> Any:
            _, owned, groups, pk, name = state
            return [
                owned.owner.hget(),
                [pk in group.members.smembers() for group in groups],
                [len(group.members.smembers()) for group in groups],
                list(Person.collection(name=name)),
                list(Group.collection(owner=pk)),
                list(Group.collection(members=pk)),
            ]

        def restore(pk: str) -> Any:
            def cleanup(state: Any, result: Any) -> None:
                values = w.person_values(int(pk))
                person = state[0]
                person.hmset(**{k: v for k, v in values.items() if k != "tags"})
                person.tags.srem(w.SADD_TAG)

            return cleanup

        return {
            **read_ops(),
            "create_6": Op(
                lambda s: create_6(s),
                prepare=lambda seq: seq,
                answer=created_answer,
                cleanup=lambda s, person: person.delete(),
            ),
            "update_indexed": Op(
                update_indexed,
                prepare=updating(w.UPDATE_INDEXED_PK),
                answer=lambda s, r: [
                    s[0].city.hget(),
                    int(s[0].pk.get()) in _pks(Person.collection(city=w.UPDATE_INDEXED_TO)),
                    len(Person.collection(city=w.UPDATE_INDEXED_TO)),
                ],
                cleanup=restore(w.UPDATE_INDEXED_PK),
            ),
            "update_unique": Op(
                update_unique,
                prepare=updating(w.UPDATE_UNIQUE_PK),
                answer=lambda s, r: [
                    s[0].name.hget() == f"renamed-{s[1]}",
                    _pks(Person.collection(name=f"renamed-{s[1]}")),
                    _pks(Person.collection(name=f"person-{int(w.UPDATE_UNIQUE_PK):04d}")),
                ],
                cleanup=restore(w.UPDATE_UNIQUE_PK),
            ),
            "hmset_2": Op(
                hmset_2,
                prepare=updating(w.HMSET_PK),
                answer=lambda s, r: [
                    s[0].hmget("city", "country"),
                    int(w.HMSET_PK) in _pks(Person.collection(**w.HMSET_TO)),
                ],
                cleanup=restore(w.HMSET_PK),
            ),
            "sadd_set": Op(
                sadd_set,
                prepare=updating(w.SADD_PK),
                answer=lambda s, r: [
                    sorted(s[0].tags.smembers()),
                    _pks(Person.collection(tags=w.SADD_TAG)),
                ],
                cleanup=restore(w.SADD_PK),
            ),
            "delete_indexed": Op(
                delete_indexed,
                prepare=prepare_delete,
                answer=lambda s, r: [
                    list(Person.collection(name=s[1])),
                    len(Person.collection(city="city-1")),
                    len(Person.collection(tags="tag-2")),
                ],
            ),
            "create_fk": Op(
                create_fk,
                prepare=lambda seq: (Person(w.FK_OWNER_PK), seq),
                answer=lambda s, group: [
                    group.owner.hget(),
                    int(group.pk.get()) in _pks(s[0].owned_groups()),
                    len(s[0].owned_groups()),
                ],
                cleanup=lambda s, group: group.delete(),
            ),
            "m2m_sadd_3": Op(
                m2m_sadd_3,
                prepare=m2m_prepare,
                answer=lambda s, r: [
                    _pks(s[0].members.smembers()),
                    [int(w.M2M_GROUP_PK) in _pks(p.membership()) for p in s[1]],
                ],
                cleanup=lambda s, r: s[0].members.srem(*s[1]),
            ),
            "delete_related": Op(
                delete_related,
                prepare=prepare_delete_related,
                answer=delete_related_answer,
                cleanup=lambda s, r: s[1].delete(),
            ),
        }
