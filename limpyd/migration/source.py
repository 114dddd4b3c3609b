"""Reading what redis-limpyd wrote: a model's old keys and its instances' values."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import redis

from limpyd.maintenance import batches

if TYPE_CHECKING:
    from limpyd.model import RedisModel

__all__ = ["BATCH", "SHOWN", "Instance", "MigrationError", "OldModel", "old_prefix"]

#: Instances read, or keys classified or deleted, per round trip.
BATCH = 500
#: Problems of one kind listed in full before the rest is only counted.
SHOWN = 20

State = list[str]


class MigrationError(Exception):
    """What stops a migration before it writes anything (one line for the user)."""


def old_prefix(model: type[RedisModel]) -> str:
    """What redis-limpyd's keys of `model` start with: `<namespace>:<model name>`."""
    return f"{model._meta.namespace}:{model._meta.name}"


def in_batches(items: Iterable[str]) -> Iterator[list[str]]:
    """`items` in lists of BATCH."""
    return batches(items, BATCH)  # BATCH read now: the tests shrink it


@dataclass
class Instance:
    """An instance as redis-limpyd stored it: its fields' states, and what is wrong."""

    pk: str
    states: dict[str, State] = field(default_factory=dict)
    #: Where it holds values of fields the limpyd model does not declare: (field, key).
    undeclared: list[tuple[str, str]] = field(default_factory=list)
    #: What stops the migration (a key of another type than the field's).
    errors: list[str] = field(default_factory=list)


class OldModel:
    """A model's data as redis-limpyd stored it, read through `client`."""

    def __init__(self, model: type[RedisModel], client: redis.Redis) -> None:
        self.model = model
        self.client = client
        self.prefix = old_prefix(model)
        self.collection_key = f"{self.prefix}:collection"
        self.max_pk_key = f"{self.prefix}:max_pk"
        meta = model._meta
        self.fields = meta.data_fields
        self.hash_fields = [f for f in self.fields if f.state_kind == "hashfield"]
        self.keyed_fields = [f for f in self.fields if f.state_kind != "hashfield"]
        for unknown in (f for f in self.keyed_fields if f.state_kind not in _READERS):
            raise MigrationError(f"{unknown.describe()}: cannot migrate a {type(unknown).__name__}")

    def key(self, pk: str, name: str) -> str:
        """The key of the field `name` (`hash`: the InstanceHashFields) of the instance `pk`."""
        return f"{self.prefix}:{pk}:{name}"

    def instance_keys(self, pks: list[str]) -> list[str]:
        """The keys of the declared fields of these instances."""
        names = (["hash"] if self.hash_fields else []) + [f.name for f in self.keyed_fields]
        return [self.key(pk, name) for pk in pks for name in names]

    def pop_pks(self) -> list[str]:
        """Up to BATCH pks taken out of redis-limpyd's collection (SPOP)."""
        return cast("list[str]", self.client.spop(self.collection_key, BATCH))

    def pks(self) -> Iterator[str]:
        """The pks of redis-limpyd's collection, with SSCAN."""
        return self.client.sscan_iter(self.collection_key, count=BATCH)

    def states(self, pks: list[str]) -> list[Instance]:
        """What these instances hold: every field that has a value, read in one round trip."""
        with self.client.pipeline(transaction=False) as pipeline:
            for pk in pks:
                if self.hash_fields:
                    pipeline.hgetall(self.key(pk, "hash"))
                for f in self.keyed_fields:
                    _READERS[f.state_kind][0](pipeline, self.key(pk, f.name))
            replies = iter(pipeline.execute(raise_on_error=False))
        return [self._instance(pk, replies) for pk in pks]

    def _instance(self, pk: str, replies: Iterator[Any]) -> Instance:
        """The instance `pk` from its replies (the next ones of `replies`)."""
        found = Instance(pk)
        if self.hash_fields:
            reply = next(replies)
            declared = {f.name for f in self.hash_fields}
            if isinstance(reply, Exception):
                found.errors.append(self._wrong_type(pk, "hash", "a hash", reply))
            for name, value in {} if isinstance(reply, Exception) else reply.items():
                if name in declared:
                    found.states[name] = [value]
                else:
                    found.undeclared.append((f"InstanceHashField {name!r}", self.key(pk, "hash")))
        for f in self.keyed_fields:
            reply = next(replies)
            _, state_of, expected = _READERS[f.state_kind]
            if isinstance(reply, Exception):
                found.errors.append(self._wrong_type(pk, f.name, expected, reply))
            elif state := state_of(reply):
                found.states[f.name] = state
        return found

    def _wrong_type(self, pk: str, name: str, expected: str, error: Exception) -> str:
        return (
            f"{self.model.__name__} {pk!r}: key {self.key(pk, name)!r} is not {expected}: {error}"
        )


def _zrange(pipeline: Any, key: str) -> None:
    # scores as Redis prints them: written back, they give the same doubles
    pipeline.zrange(key, 0, -1, withscores=True, score_cast_func=str)


#: By state kind: how to read a key of that kind, its reply as a state, what it should be.
_READERS: dict[str, tuple[Callable[[Any, str], Any], Callable[[Any], State], str]] = {
    "string": (lambda p, k: p.get(k), lambda r: [] if r is None else [r], "a string"),
    "set": (lambda p, k: p.smembers(k), lambda r: sorted(r), "a set"),
    "list": (lambda p, k: p.lrange(k, 0, -1), list, "a list"),
    "zset": (_zrange, lambda r: [x for pair in r for x in pair], "a sorted set"),
    "hash": (
        lambda p, k: p.hgetall(k),
        lambda r: [x for pair in r.items() for x in pair],
        "a hash",
    ),
}
