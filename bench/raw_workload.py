"""The workload in raw redis-py: the minimal Redis work each operation needs, by hand.

This is the floor an ORM can approach, not an ORM: no objects, no checks beyond what the
operation needs, reads pipelined, each write's commands in one MULTI/EXEC transaction after
at most one pipelined read of what it must know (old values for the indexes, a new pk, a
unique value's holder). It takes no lock and runs no script: two clients writing the same
instance at once could leave its indexes stale, which limpyd's atomic writes do not allow.

Key layout (`raw:` prefix): `person:<pk>` hash of the five single-value fields,
`person:<pk>:tags` set, `person:all` set of pks, `person:max_pk` counter,
`person:unique:name:<value>` string holding the pk, `person:idx:<field>:<value>` sets (city,
country, status, tags), `person:idx:age` sorted set scored by age; the same for groups, with
`group:<pk>:members` and the `group:idx:owner:<pk>` / `group:idx:members:<pk>` sets.
"""

from __future__ import annotations

import platform
import sys
from typing import Any

import redis
import workload as w
from counting import Counter
from harness import Op, Workload

P = "raw:person"
G = "raw:group"
P_ALL, G_ALL = f"{P}:all", f"{G}:all"
AGE = f"{P}:idx:age"
INDEXED = ("city", "country", "status")
HASH_FIELDS = ("name", "city", "country", "status", "age")


def idx(field: str, value: str) -> str:
    return f"{P}:idx:{field}:{value}"


def unique(value: str) -> str:
    return f"{P}:unique:name:{value}"


def _pks(values: Any) -> list[int]:
    return sorted(int(pk) for pk in values)


class RawWorkload(Workload):
    impl = "raw"

    def versions(self) -> dict[str, str]:
        found = {
            "python": platform.python_version(),
            "redis-py": redis.__version__,
            "library": "raw redis-py",
            "executable": sys.executable,
        }
        try:
            import fakeredis

            found["fakeredis"] = fakeredis.__version__
        except ImportError:
            pass
        return found

    def setup(self, backend: str, url: str, size: int) -> list[str]:
        options = {"decode_responses": True, "encoding_errors": "surrogateescape", "protocol": 2}
        if backend == "fake":
            import fakeredis

            self.client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), **options)
        else:
            self.client = redis.Redis.from_url(url, **options)
        self.client.flushdb()
        for i in range(1, size + 1):
            pk = self.create_person(w.person_values(i))
            if pk != str(i):
                raise RuntimeError(f"raw: person {i} got pk {pk!r}")
        for g in range(1, min(w.GROUPS, size // 10) + 1):
            spec = w.group_values(g)
            gpk = self.create_group(spec["name"], spec["owner"])
            self.add_members(gpk, spec["members"])
        self._ops = self._make_ops()
        return []

    def counter(self) -> Counter:
        return Counter(self.client)

    @property
    def ops(self) -> dict[str, Op]:
        return self._ops

    # Writes -----------------------------------------------------------------------------

    def create_person(self, values: dict[str, Any]) -> str:
        read = self.client.pipeline(transaction=False)
        read.incr(f"{P}:max_pk")
        read.exists(unique(values["name"]))
        pk, taken = read.execute()
        if taken:
            raise ValueError(f"name {values['name']!r} is taken")
        pk = str(pk)
        tx = self.client.pipeline()
        tx.set(unique(values["name"]), pk)
        tx.hset(f"{P}:{pk}", mapping={k: values[k] for k in HASH_FIELDS})
        for field in INDEXED:
            tx.sadd(idx(field, values[field]), pk)
        tx.zadd(AGE, {pk: float(values["age"])})
        tx.sadd(f"{P}:{pk}:tags", *values["tags"])
        for tag in values["tags"]:
            tx.sadd(idx("tags", tag), pk)
        tx.sadd(P_ALL, pk)
        tx.execute()
        return pk

    def _unindex_person(self, tx: Any, pk: str, data: dict[str, str], tags: Any) -> None:
        tx.delete(f"{P}:{pk}", f"{P}:{pk}:tags", unique(data["name"]))
        for field in INDEXED:
            tx.srem(idx(field, data[field]), pk)
        tx.zrem(AGE, pk)
        for tag in tags:
            tx.srem(idx("tags", tag), pk)
        tx.srem(P_ALL, pk)

    def delete_person(self, pk: str) -> None:
        read = self.client.pipeline(transaction=False)
        read.hgetall(f"{P}:{pk}")
        read.smembers(f"{P}:{pk}:tags")
        data, tags = read.execute()
        tx = self.client.pipeline()
        self._unindex_person(tx, pk, data, tags)
        tx.execute()

    def delete_person_and_relations(self, pk: str) -> None:
        read = self.client.pipeline(transaction=False)
        read.hgetall(f"{P}:{pk}")
        read.smembers(f"{P}:{pk}:tags")
        read.smembers(f"{G}:idx:owner:{pk}")
        read.smembers(f"{G}:idx:members:{pk}")
        data, tags, owned, member_of = read.execute()
        tx = self.client.pipeline()
        self._unindex_person(tx, pk, data, tags)
        for gpk in owned:
            tx.hdel(f"{G}:{gpk}", "owner")
        for gpk in member_of:
            tx.srem(f"{G}:{gpk}:members", pk)
        tx.delete(f"{G}:idx:owner:{pk}", f"{G}:idx:members:{pk}")
        tx.execute()

    def set_indexed(self, pk: str, values: dict[str, str]) -> None:
        """HSET of indexed (not unique) hash fields, their indexes kept exact."""
        names = list(values)
        olds = self.client.hmget(f"{P}:{pk}", names)
        tx = self.client.pipeline()
        tx.hset(f"{P}:{pk}", mapping=values)
        for name, old in zip(names, olds, strict=True):
            if old == values[name]:
                continue
            if old is not None:
                tx.srem(idx(name, old), pk)
            tx.sadd(idx(name, values[name]), pk)
        tx.execute()

    def set_name(self, pk: str, name: str) -> None:
        read = self.client.pipeline(transaction=False)
        read.hget(f"{P}:{pk}", "name")
        read.get(unique(name))
        old, holder = read.execute()
        if holder is not None and holder != pk:
            raise ValueError(f"name {name!r} is taken by {holder}")
        tx = self.client.pipeline()
        tx.hset(f"{P}:{pk}", "name", name)
        if old is not None and old != name:
            tx.delete(unique(old))
        tx.set(unique(name), pk)
        tx.execute()

    def add_tag(self, pk: str, tag: str) -> int:
        tx = self.client.pipeline()
        tx.sadd(f"{P}:{pk}:tags", tag)
        tx.sadd(idx("tags", tag), pk)
        return tx.execute()[0]

    def remove_tag(self, pk: str, tag: str) -> None:
        tx = self.client.pipeline()
        tx.srem(f"{P}:{pk}:tags", tag)
        tx.srem(idx("tags", tag), pk)
        tx.execute()

    def create_group(self, name: str, owner: str) -> str:
        gpk = str(self.client.incr(f"{G}:max_pk"))
        tx = self.client.pipeline()
        tx.hset(f"{G}:{gpk}", mapping={"name": name, "owner": owner})
        tx.sadd(f"{G}:idx:owner:{owner}", gpk)
        tx.sadd(G_ALL, gpk)
        tx.execute()
        return gpk

    def delete_group(self, gpk: str) -> None:
        read = self.client.pipeline(transaction=False)
        read.hget(f"{G}:{gpk}", "owner")
        read.smembers(f"{G}:{gpk}:members")
        owner, members = read.execute()
        tx = self.client.pipeline()
        tx.delete(f"{G}:{gpk}", f"{G}:{gpk}:members")
        if owner is not None:
            tx.srem(f"{G}:idx:owner:{owner}", gpk)
        for pk in members:
            tx.srem(f"{G}:idx:members:{pk}", gpk)
        tx.srem(G_ALL, gpk)
        tx.execute()

    def add_members(self, gpk: str, pks: Any) -> int:
        tx = self.client.pipeline()
        tx.sadd(f"{G}:{gpk}:members", *pks)
        for pk in pks:
            tx.sadd(f"{G}:idx:members:{pk}", gpk)
        return tx.execute()[0]

    def remove_members(self, gpk: str, pks: Any) -> None:
        tx = self.client.pipeline()
        tx.srem(f"{G}:{gpk}:members", *pks)
        for pk in pks:
            tx.srem(f"{G}:idx:members:{pk}", gpk)
        tx.execute()

    # Operations -------------------------------------------------------------------------

    def _make_ops(self) -> dict[str, Op]:
        client = self.client

        def get_pk(_: Any) -> str:
            if not client.sismember(P_ALL, w.GET_PK):
                raise LookupError(w.GET_PK)
            return w.GET_PK

        def get_pk_all(_: Any) -> Any:
            read = client.pipeline(transaction=False)
            read.sismember(P_ALL, w.GET_ALL_PK)
            read.hgetall(f"{P}:{w.GET_ALL_PK}")
            read.smembers(f"{P}:{w.GET_ALL_PK}:tags")
            exists, data, tags = read.execute()
            if not exists:
                raise LookupError(w.GET_ALL_PK)
            return data, tags

        def get_unique(_: Any) -> str:
            pk = client.get(unique(w.UNIQUE_NAME))
            if pk is None:
                raise LookupError(w.UNIQUE_NAME)
            return pk

        def values_100(_: Any) -> list[dict[str, str]]:
            gets = ["#", *(f"{P}:*->{name}" for name in w.VALUE_FIELDS[1:])]
            flat = client.sort(idx("city", w.VALUES_CITY), by="nosort", get=gets)
            width = len(gets)
            return [
                dict(zip(w.VALUE_FIELDS, flat[i : i + width], strict=True))
                for i in range(0, len(flat), width)
            ]

        def person(pk: str) -> dict[str, str]:
            return client.hgetall(f"{P}:{pk}")

        def restore(pk: str) -> Any:
            def cleanup(state: Any, result: Any) -> None:
                values = w.person_values(int(pk))
                self.set_name(pk, values["name"])
                self.set_indexed(pk, {k: values[k] for k in INDEXED})
                self.remove_tag(pk, w.SADD_TAG)

            return cleanup

        def prepare_delete_related(seq: int) -> Any:
            pk = self.create_person(w.new_person_values(f"doomed-{seq}"))
            owned = self.create_group(f"owned-{seq}", pk)
            for gpk in w.DELETE_RELATED_GROUPS:
                self.add_members(gpk, [pk])
            return pk, owned, f"doomed-{seq}"

        def delete_related_answer(state: Any, result: Any) -> Any:
            pk, owned, name = state
            groups = w.DELETE_RELATED_GROUPS
            return [
                client.hget(f"{G}:{owned}", "owner"),
                [bool(client.sismember(f"{G}:{g}:members", pk)) for g in groups],
                [client.scard(f"{G}:{g}:members") for g in groups],
                [pk] if client.exists(unique(name)) else [],
                list(client.sinter(f"{G}:idx:owner:{pk}", G_ALL)),
                list(client.sinter(f"{G}:idx:members:{pk}", G_ALL)),
            ]

        def created_answer(state: Any, pk: str) -> Any:
            data = person(pk)
            return [
                [sorted(client.smembers(f"{P}:{pk}:tags"))],
                sorted(data[k] for k in ("city", "country", "status", "age")),
                data["name"].startswith("created-"),
                client.get(unique(data["name"])) == pk,
                client.scard(idx("city", "city-1")),
            ]

        return {
            "get_pk": Op(get_pk, answer=lambda s, r: r),
            "get_pk_all": Op(get_pk_all, answer=lambda s, r: [sorted(r[0].items()), sorted(r[1])]),
            "get_unique": Op(get_unique, answer=lambda s, r: r),
            "filter_1": Op(
                lambda s: list(client.smembers(idx("city", w.FILTER_CITY))),
                answer=lambda s, r: _pks(r),
            ),
            "filter_3": Op(
                lambda s: list(client.sinter([idx(k, v) for k, v in w.FILTER_3.items()])),
                answer=lambda s, r: _pks(r),
            ),
            "filter_range": Op(
                lambda s: client.zrangebyscore(AGE, w.RANGE[0], f"({w.RANGE[1]}"),
                answer=lambda s, r: _pks(r),
            ),
            "sort_slice": Op(
                lambda s: client.sort(
                    idx("city", w.FILTER_CITY), by=f"{P}:*->name", alpha=True, start=0, num=10
                ),
                answer=lambda s, r: [int(pk) for pk in r],
            ),
            "instances_100": Op(
                # existence checked by intersecting with the collection; no objects
                lambda s: list(client.sinter(idx("city", w.INSTANCES_CITY), P_ALL)),
                answer=lambda s, r: [len(r), _pks(r)],
            ),
            "values_100": Op(
                values_100,
                answer=lambda s, r: sorted(
                    [[row[k] for k in w.VALUE_FIELDS] for row in r], key=lambda x: int(x[0])
                ),
            ),
            "values_list_100": Op(
                lambda s: client.sort(
                    idx("city", w.VALUES_LIST_CITY), by="nosort", get=f"{P}:*->name"
                ),
                answer=lambda s, r: sorted(r),
            ),
            "related_collection": Op(
                lambda s: list(client.smembers(f"{G}:idx:members:{w.RELATED_PK}")),
                answer=lambda s, r: _pks(r),
            ),
            "create_6": Op(
                lambda seq: self.create_person(w.new_person_values(f"created-{seq}")),
                prepare=lambda seq: seq,
                answer=created_answer,
                cleanup=lambda s, pk: self.delete_person(pk),
            ),
            "update_indexed": Op(
                lambda s: self.set_indexed(w.UPDATE_INDEXED_PK, {"city": w.UPDATE_INDEXED_TO}),
                prepare=lambda seq: seq,
                answer=lambda s, r: [
                    client.hget(f"{P}:{w.UPDATE_INDEXED_PK}", "city"),
                    bool(client.sismember(idx("city", w.UPDATE_INDEXED_TO), w.UPDATE_INDEXED_PK)),
                    client.scard(idx("city", w.UPDATE_INDEXED_TO)),
                ],
                cleanup=restore(w.UPDATE_INDEXED_PK),
            ),
            "update_unique": Op(
                lambda seq: self.set_name(w.UPDATE_UNIQUE_PK, f"renamed-{seq}"),
                prepare=lambda seq: seq,
                answer=lambda seq, r: [
                    client.hget(f"{P}:{w.UPDATE_UNIQUE_PK}", "name") == f"renamed-{seq}",
                    _pks(filter(None, [client.get(unique(f"renamed-{seq}"))])),
                    _pks(filter(None, [client.get(unique(f"person-{w.UPDATE_UNIQUE_PK:0>4}"))])),
                ],
                cleanup=restore(w.UPDATE_UNIQUE_PK),
            ),
            "hmset_2": Op(
                lambda s: self.set_indexed(w.HMSET_PK, dict(w.HMSET_TO)),
                prepare=lambda seq: seq,
                answer=lambda s, r: [
                    client.hmget(f"{P}:{w.HMSET_PK}", ["city", "country"]),
                    int(w.HMSET_PK)
                    in _pks(client.sinter([idx(k, v) for k, v in w.HMSET_TO.items()])),
                ],
                cleanup=restore(w.HMSET_PK),
            ),
            "sadd_set": Op(
                lambda s: self.add_tag(w.SADD_PK, w.SADD_TAG),
                prepare=lambda seq: seq,
                answer=lambda s, r: [
                    sorted(client.smembers(f"{P}:{w.SADD_PK}:tags")),
                    _pks(client.smembers(idx("tags", w.SADD_TAG))),
                ],
                cleanup=restore(w.SADD_PK),
            ),
            "delete_indexed": Op(
                lambda s: self.delete_person(s[0]),
                prepare=lambda seq: (
                    self.create_person(w.new_person_values(f"to-delete-{seq}")),
                    f"to-delete-{seq}",
                ),
                answer=lambda s, r: [
                    [s[0]] if client.exists(unique(s[1])) else [],
                    client.scard(idx("city", "city-1")),
                    client.scard(idx("tags", "tag-2")),
                ],
            ),
            "create_fk": Op(
                lambda seq: self.create_group(f"new-group-{seq}", w.FK_OWNER_PK),
                prepare=lambda seq: seq,
                answer=lambda s, gpk: [
                    client.hget(f"{G}:{gpk}", "owner"),
                    int(gpk) in _pks(client.smembers(f"{G}:idx:owner:{w.FK_OWNER_PK}")),
                    client.scard(f"{G}:idx:owner:{w.FK_OWNER_PK}"),
                ],
                cleanup=lambda s, gpk: self.delete_group(gpk),
            ),
            "m2m_sadd_3": Op(
                lambda s: self.add_members(w.M2M_GROUP_PK, w.M2M_PERSON_PKS),
                prepare=lambda seq: seq,
                answer=lambda s, r: [
                    _pks(client.smembers(f"{G}:{w.M2M_GROUP_PK}:members")),
                    [
                        int(w.M2M_GROUP_PK) in _pks(client.smembers(f"{G}:idx:members:{pk}"))
                        for pk in w.M2M_PERSON_PKS
                    ],
                ],
                cleanup=lambda s, r: self.remove_members(w.M2M_GROUP_PK, w.M2M_PERSON_PKS),
            ),
            "delete_related": Op(
                lambda s: self.delete_person_and_relations(s[0]),
                prepare=prepare_delete_related,
                answer=delete_related_answer,
                cleanup=lambda s, r: self.delete_group(s[1]),
            ),
        }
