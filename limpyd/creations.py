"""Creations: of one instance, or of many in batches, each one atomic write (see `writes`)
with its checks and index entries, all or nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from limpyd import plans
from limpyd.exceptions import (
    ConflictError,
    DoesNotExist,
    ImplementationError,
    UniquenessError,
)
from limpyd.fields.base import chunked
from limpyd.protocol import placeholder
from limpyd.writes import CONFLICT, Write, again, apply_all, refuse_in_pipeline, retry_on_conflict

if TYPE_CHECKING:
    from limpyd.database import RedisDatabase
    from limpyd.model import RedisModel

__all__ = ["create", "create_many", "creation"]


def creation(model: type[RedisModel], values: dict[str, Any]) -> Callable[[], Write]:
    """Check `values` (the pk included for a PKField) for a new instance of `model`; the
    function making the write that creates it (a new one for each attempt)."""
    meta = model._meta
    pk_field = meta.pk_field
    values = dict(values)
    given = pk_field.name in values
    given_pk = values.pop(pk_field.name, None)
    states = {name: meta.fields[name].state_of(value) for name, value in values.items()}
    new = given_pk is None and (pk_field.auto or not given)  # a PKField given None: refused
    if new:
        pk_field.require_auto()
        pk = placeholder()
    else:
        pk = pk_field.normalize(given_pk)

    def build() -> Write:
        write = Write(model, pk, creating=True, new=new)
        fields = [(meta.fields[name], state) for name, state in states.items()]
        for command in _one_hset_per_hash(
            [command for field, state in fields for command in field.transition(pk, [], state)]
        ):
            write.call(*command)
        for field, state in fields:
            plans.plan_index_changes(write, field, [], state)
        plans.plan_together(write, {}, states)
        return write

    return build


def _one_hset_per_hash(commands: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """`commands` with the HSETs of each hash (a new instance's InstanceHashFields) made
    one, where the first was: fewer commands for the script to check and run."""
    pairs: dict[str, list[Any]] = {}
    merged: list[Any] = []  # commands, and hash keys standing for their HSETs
    for command in commands:
        if command[0] != "HSET":
            merged.append(command)
            continue
        if command[1] not in pairs:
            pairs[command[1]] = []
            merged.append(command[1])
        pairs[command[1]] += command[2:]
    out: list[tuple[Any, ...]] = []
    for item in merged:
        out += [item] if type(item) is tuple else chunked("HSET", (item,), pairs[item])
    return out


def create(instance: RedisModel, values: dict[str, Any]) -> str:
    """Create `instance` with these field values (pk included for a PKField): all or nothing.

    Every value is checked before anything is sent; one round trip.
    """
    model = type(instance)
    database = model._meta.database
    refuse_in_pipeline(database, f"creating a {model.__name__} instance")
    return _create_alone(database, creation(model, values), model)


def _create_alone(
    database: RedisDatabase, build: Callable[[], Write], model: type[RedisModel]
) -> str:
    def attempt() -> Any:
        write = build()
        result = write.run(database)
        return result if again(result) else write.pk

    pk: str = retry_on_conflict(database, attempt, f"creating a {model.__name__}")
    return pk


#: What refuses a row of `create_many` (the others are created).
_REFUSALS = (UniquenessError, DoesNotExist, ValueError, ImplementationError, ConflictError)


def create_many(
    model: type[RedisModel], rows: list[dict[str, Any]], batch_size: int
) -> list[str | Exception]:
    """Create an instance per row, each atomically with its indexes and checks, `batch_size`
    rows per round trip (one pipeline of script calls); the pk of each, or what refused it
    (a refused row writes nothing). A row whose script met a concurrent change or an
    expired holder to reap is created again alone, with the usual retries."""
    database = model._meta.database
    refuse_in_pipeline(database, f"creating {model.__name__} instances")
    results: list[str | Exception] = []
    for start in range(0, len(rows), batch_size):
        planned: list[tuple[int, Callable[[], Write], Write]] = []
        for position in range(start, min(start + batch_size, len(rows))):
            results.append("")
            try:
                build = creation(model, rows[position])
                planned.append((position, build, build()))
            except _REFUSALS as error:
                results[position] = error
        for (position, build, write), outcome in zip(
            planned, apply_all(database, [w for _, _, w in planned]), strict=True
        ):
            try:
                done = CONFLICT if isinstance(outcome, Exception) else write.result(outcome)
                if again(done):
                    results[position] = _create_alone(database, build, model)
                else:
                    results[position] = write.pk
            except _REFUSALS as error:
                results[position] = error
    return results
