"""The fault-injection rig: one database reached through a `FaultProxy`, and an oracle.

The models live in db 0 of a dedicated server. The client under test reaches db 0 through
the proxy; a direct client reads the truth. A *mirror*, db 1 of the same server, holds a
copy of db 0: each operation runs through the proxy on db 0, then, without faults, on the
mirror. The mirror's result is what the operation does when it fully happens, so after
each operation db 0 must equal either its state before (nothing happened) or the mirror
(everything happened, once):

- a success must have fully happened, with the mirror's reply;
- a refusal (a documented limpyd exception) must have changed nothing, and be the mirror's;
- a `redis.ConnectionError` may leave either state (the outcome of an interrupted write is
  unknown), nothing in between, and an operation whose connection was cut must end with it;
- nothing else may come out.

Writes are compared with a snapshot of every key of the db (types and contents).
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from limpyd import fields, lua
from limpyd.collection import CollectionManager
from limpyd.contrib import related
from limpyd.database import RedisDatabase
from limpyd.exceptions import LimpydException
from limpyd.model import RedisModel

from .proxy import Fault, FaultProxy

__all__ = ["Outcome", "Rig", "is_apply", "make_models", "random_operation", "snapshot"]

MAIN_DB, MIRROR_DB = 0, 1
NAMES = ["ann", "bob", "cid", "dee", "a:b", "x*y"]
CITIES = ["paris", "rome", "oslo", "s p"]
#: The limpyd function applying a write (FCALL name n keys(n) args...), and the same code
#: evaluated as a script (EVALSHA sha n keys(n) apply args...).
_APPLY_FUNCTION = lua.SCRIPT.function("apply").encode()
_SCRIPT_CALLS = (b"EVALSHA", b"EVAL")


def is_apply(args: list[bytes]) -> bool:
    """Whether a request is the call applying a limpyd write."""
    if len(args) < 3:
        return False
    if args[0].upper() == b"FCALL":
        return args[1] == _APPLY_FUNCTION
    if args[0].upper() not in _SCRIPT_CALLS or len(args) < 4:
        return False
    mode = 3 + int(args[2])
    return len(args) > mode and args[mode] == b"apply"


def make_models(db: RedisDatabase) -> dict[str, type[RedisModel]]:
    class Account(related.RelatedModel):
        cluster_group = "rig"
        database = db
        namespace = "faults"
        name = fields.StringField(unique=True)
        email = fields.InstanceHashField(unique=True)
        city = fields.InstanceHashField(indexable=True)
        note = fields.InstanceHashField()
        tags = fields.SetField(indexable=True)
        log = fields.ListField(indexable=True)
        scores = fields.SortedSetField(indexable=True)
        attrs = fields.HashField(indexable=True)
        counter = fields.StringField()

    class Group(related.RelatedModel):
        cluster_group = "rig"
        database = db
        namespace = "faults"
        code = fields.StringField(indexable=True)
        owner = related.FKInstanceHashField(Account, related_name="owned")
        members = related.M2MSetField(Account, related_name="memberships")
        queue = related.M2MListField(Account, related_name="queued")

    return {"Account": Account, "Group": Group}


def snapshot(client: redis.Redis) -> dict[str, tuple[str, Any]]:
    """{key: (type, content)} of every key, in two pipelined round trips."""
    keys = sorted(client.scan_iter(count=1000))
    with client.pipeline(transaction=False) as pipeline:
        for key in keys:
            pipeline.type(key)
        kinds = pipeline.execute()
    with client.pipeline(transaction=False) as pipeline:
        for key, kind in zip(keys, kinds, strict=True):
            if kind == "string":
                pipeline.get(key)
            elif kind == "hash":
                pipeline.hgetall(key)
            elif kind == "set":
                pipeline.smembers(key)
            elif kind == "list":
                pipeline.lrange(key, 0, -1)
            elif kind == "zset":
                pipeline.zrange(key, 0, -1, withscores=True)
            else:
                pipeline.type(key)
        contents = pipeline.execute()
    return {
        key: (kind, sorted(content) if kind == "set" else content)
        for key, kind, content in zip(keys, kinds, contents, strict=True)
    }


def _differences(a: dict[str, Any], b: dict[str, Any]) -> str:
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return "; ".join(f"{k}: {a.get(k)!r} / {b.get(k)!r}" for k in keys[:4]) or "none"


@dataclass(frozen=True)
class Outcome:
    """How an operation ended: ok (with its normalized result), refused (a documented
    exception), lost (a ConnectionError), or unexpected (anything else)."""

    kind: str
    value: Any = None

    def __str__(self) -> str:
        return f"{self.kind} {self.value!r}"[:300]


def _normalized(result: Any) -> Any:
    if isinstance(result, RedisModel):
        return ("instance", result._pk)
    if isinstance(result, CollectionManager):
        return list(result)
    return result


def run_outcome(action: Callable[[dict[str, type[RedisModel]]], Any], models: Any) -> Outcome:
    try:
        return Outcome("ok", _normalized(action(models)))
    except redis.ConnectionError as error:
        return Outcome("lost", f"{type(error).__name__}: {error}")
    except (LimpydException, redis.ResponseError) as error:
        return Outcome("refused", type(error).__name__)
    except Exception:
        return Outcome("unexpected", traceback.format_exc())


@dataclass
class Step:
    """One operation run through the proxy, checked against the mirror."""

    name: str
    actual: Outcome
    reference: Outcome
    faults: list[Fault]
    problems: list[str] = field(default_factory=list)
    applied: bool | None = None  # for a lost operation: did it happen?


class Rig:
    """The databases of one fault test (see the module docstring)."""

    def __init__(self, server_url: str, proxy: FaultProxy, style: str) -> None:
        self.proxy = proxy
        self.style = style
        self.direct_db = RedisDatabase.from_url(f"{server_url.rsplit('/', 1)[0]}/{MAIN_DB}")
        self.mirror_db = RedisDatabase.from_url(f"{server_url.rsplit('/', 1)[0]}/{MIRROR_DB}")
        if style == "url":
            self.db = RedisDatabase.from_url(f"{proxy.url}/{MAIN_DB}")
        else:  # the keyword arguments of redis.Redis, as the README shows first
            self.db = RedisDatabase(host=proxy.host, port=proxy.port, db=MAIN_DB)
        self.models = make_models(self.db)
        self.direct = make_models(self.direct_db)
        self.mirror = make_models(self.mirror_db)
        self.client = self.direct_db.client
        self.mirror_client = self.mirror_db.client
        self.client.flushdb()
        self.mirror_client.flushdb()

    def close(self) -> None:
        for database in (self.db, self.direct_db, self.mirror_db):
            database.client.close()

    def resync(self) -> None:
        """Make the mirror a copy of db 0."""
        self.mirror_client.flushdb()
        keys = list(self.client.scan_iter(count=1000))
        with self.client.pipeline(transaction=False) as pipeline:
            for key in keys:
                pipeline.copy(key, key, destination_db=MIRROR_DB, replace=True)
            pipeline.execute()

    def pks(self, model: str) -> list[str]:
        return sorted(self.client.smembers(self.direct[model]._meta.collection_key), key=int)

    def step(self, name: str, action: Callable[[dict[str, Any]], Any]) -> Step:
        """Run `action(models)` through the proxy, then on the mirror; judge the result."""
        before = snapshot(self.client)
        self.proxy.take_faults()
        actual = run_outcome(action, self.models)
        faults = self.proxy.take_faults()
        reference = run_outcome(action, self.mirror)
        after, expected = snapshot(self.client), snapshot(self.mirror_client)
        step = Step(name, actual, reference, faults)
        problems = step.problems
        happened = f"{name}: {actual} (reference: {reference}; faults: {[str(f) for f in faults]})"
        if actual.kind == "unexpected":
            problems.append(f"undocumented exception from {happened}")
        if reference.kind not in ("ok", "refused"):
            problems.append(f"the reference run failed: {happened}")
        elif actual.kind == "ok":
            if reference.kind != "ok" or actual.value != reference.value:
                problems.append(f"success with another result than the reference: {happened}")
            if after != expected:
                problems.append(
                    f"success, but not exactly what the operation does: {happened}; "
                    f"{_differences(after, expected)}"
                )
        elif actual.kind == "refused":
            if reference != actual:
                problems.append(f"refused, but the reference was not: {happened}")
            if after != before:
                problems.append(
                    f"refused, yet data changed: {happened}; {_differences(after, before)}"
                )
        elif actual.kind == "lost":
            step.applied = after == expected and after != before
            if after not in (before, expected):
                problems.append(
                    f"interrupted and half done: {happened}; vs before: "
                    f"{_differences(after, before)}; vs done: {_differences(after, expected)}"
                )
        if faults and actual.kind != "lost":
            # A cut connection reaches the caller: nothing is sent again behind its back.
            problems.append(f"a connection was cut, yet the caller was not told: {happened}")
        if after != expected:
            self.resync()
        return step


def random_operation(
    rng: random.Random, step: int, accounts: list[str], groups: list[str]
) -> tuple[str, Callable[[dict[str, Any]], Any]]:
    """A random operation (a name, and a function of the models), every random choice made
    here so that running it twice does the same thing."""
    token = f"k{step}"
    name, email, city = rng.choice(NAMES), rng.choice(NAMES) + "@x", rng.choice(CITIES)
    account = rng.choice(accounts) if accounts and rng.random() < 0.95 else "404"
    group = rng.choice(groups) if groups and rng.random() < 0.95 else "404"
    other = rng.choice(accounts) if accounts else None
    number = rng.randint(0, 9)

    def on_account(method: Callable[[Any], Any]) -> Callable[[dict[str, Any]], Any]:
        return lambda models: method(models["Account"].lazy_connect(account))

    def on_group(method: Callable[[Any], Any]) -> Callable[[dict[str, Any]], Any]:
        return lambda models: method(models["Group"].lazy_connect(group))

    choices: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        (
            "create account",
            lambda models: models["Account"](
                name=name, city=city, tags=[token], log=[token], scores={token: number}
            ),
        ),
        ("create account (email)", lambda models: models["Account"](name=token, email=email)),
        ("set name", on_account(lambda a: a.name.set(name))),
        ("hmset", on_account(lambda a: a.hmset(email=email, city=city))),
        ("city", on_account(lambda a: a.city.hset(city))),
        ("note", on_account(lambda a: a.note.hset(token))),
        ("sadd", on_account(lambda a: a.tags.sadd(token, city))),
        ("srem", on_account(lambda a: a.tags.srem(city))),
        ("rpush", on_account(lambda a: a.log.rpush(token))),
        ("lpop", on_account(lambda a: a.log.lpop())),
        ("zadd", on_account(lambda a: a.scores.zadd({token: number}))),
        ("zincrby", on_account(lambda a: a.scores.zincrby(1, city))),
        ("hash hset", on_account(lambda a: a.attrs.hset(city, token))),
        ("hash hdel", on_account(lambda a: a.attrs.hdel(city))),
        ("incr", on_account(lambda a: a.counter.incr())),
        ("field delete", on_account(lambda a: a.tags.delete())),
        ("hdel", on_account(lambda a: a.hdel("email", "city"))),
        ("delete account", on_account(lambda a: a.delete())),
        ("set code", on_group(lambda g: g.code.set(city))),
        ("delete group", on_group(lambda g: g.delete())),
        (
            "query",
            lambda models: models["Account"].collection(city=city).sort(by="name", alpha=True),
        ),
        ("read", on_account(lambda a: a.hgetall())),
        ("related", on_account(lambda a: a.owned())),
    ]
    if other is not None:  # relations only to existing accounts: no dangling pk
        choices += [
            (
                "create group",
                lambda models: models["Group"](code=city, owner=other, members=[other]),
            ),
            ("fk", on_group(lambda g: g.owner.hset(other))),
            ("m2m sadd", on_group(lambda g: g.members.sadd(other))),
            ("m2m rpush", on_group(lambda g: g.queue.rpush(other))),
        ]
    return rng.choice(choices)
