"""Atomic, lock-free writes.

A write is built in Python and run by one call of the `apply` Lua script: first its checks
(the instance exists or its pk is free, the states it was computed from are unchanged,
no other instance holds a unique value), then its commands. A failed check writes nothing.
A changed state means another client wrote in between: the write is computed again from
fresh reads, a bounded number of times with a randomized backoff (`ConflictError` after).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from redis.exceptions import ResponseError

from limpyd import plans, protocol
from limpyd.commands import Command, parse
from limpyd.exceptions import (
    ConflictError,
    DoesNotExist,
    ImplementationError,
    RefusedValueError,
    UniquenessError,
)
from limpyd.lua import APPLY, READ
from limpyd.plans import State
from limpyd.protocol import Key, placeholder
from limpyd.refusals import clean, missing_instance, translate
from limpyd.text import ESCAPE, escape_value

if TYPE_CHECKING:
    from limpyd.database import RedisDatabase
    from limpyd.fields.base import RedisField
    from limpyd.model import RedisModel

__all__ = [
    "CONFLICT",
    "REAPED",
    "Rewrite",
    "Write",
    "again",
    "apply_all",
    "modify",
    "read_states",
    "retry_on_conflict",
    "rewrite_many",
]

#: The apply function's refusal of a key holding another type than a write needs there (see
#: `type_refusal` in keytypes.lua and native/keytypes.py).
_KEY_TYPE_REFUSAL = re.compile(r"key (.*) holds a (\w+), not a (\w+)", re.S)

#: What an attempt returns when a concurrent write made it stale.
CONFLICT: Any = type("Conflict", (), {"__repr__": lambda self: "CONFLICT"})()

#: What an attempt returns when it reaped an expired instance in its way (holding a unique
#: value, or the pk being created): tried again at once, not a conflict (each reap removes
#: one of the expired instances there are).
REAPED: Any = type("Reaped", (), {"__repr__": lambda self: "REAPED"})()

T = TypeVar("T")


#: What a reap returns when the instance is no longer expired (re-created, or its expiry
#: changed) or is gone: it was left alone.
SKIPPED: Any = type("Skipped", (), {"__repr__": lambda self: "SKIPPED"})()

#: Test hook: called as `before_reap(model, pks)` after expired instances were found and
#: before their reaping runs (by `reap_expired`, or by a write that met one), to interleave
#: concurrent writes in tests. None in normal use.
before_reap: Callable[[type[RedisModel], list[str]], None] | None = None


class Write:
    """The checks and commands of one atomic write on the instance `pk` of `model`.

    A write that creates the instance (`creating`) checks the pk is free, deletes every key
    the instance could have (leftovers of any past path never show through), and adds it to
    the collection last. With `new=True`, `pk` is a placeholder from `placeholder()`: the
    script takes the counter's next value as pk once every check passed (a refused
    creation consumes nothing) and puts it where the placeholder is; `run` then sets
    `self.pk` to it. A write `reaping` an instance only applies if it is still expired.
    """

    def __init__(
        self,
        model: type[RedisModel],
        pk: str,
        creating: bool = False,
        reaping: bool = False,
        new: bool = False,
    ) -> None:
        self.model = model
        self.pk = pk
        self.token = pk if new else None
        self.creating = creating or new
        self.checks: list[Any] = []
        if not new:
            meta = model._meta
            check = protocol.REAPING if reaping else protocol.FREE if creating else protocol.EXISTS
            self.checks += [check, Key(meta.collection_key), pk, Key(meta.expiry_key)]
        self.commands: list[Any] = []
        self._unique: list[tuple[str, str]] = []  # (what, its value shown) of each check
        self._references: list[tuple[str, type[RedisModel], str]] = []

    def guard(self, kind: str, key: str, sub: str, state: list[str]) -> None:
        """Fail with CONFLICT if this state changed since it was read (nothing to guard on
        a new pk: its keys are deleted first)."""
        if self.token is None:
            self.checks += [protocol.GUARD, kind, Key(key), sub, len(state), *state]

    def unique(
        self, what: str, value: Any, check: tuple[str, str, str, str], kept: str | None = None
    ) -> None:
        """Fail with UniquenessError if another instance holds `value` (see apply.lua);
        `kept`: the value as the index checking it keeps it, when it transforms it."""
        how, key, low, high = check
        expiry = Key(self.model._meta.expiry_key)
        self.checks += [
            protocol.UNIQUE,
            len(self._unique),
            how,
            Key(key),
            low,
            high,
            self.pk,
            expiry,
        ]
        shown = repr(value) if kept is None else f"{value!r} (kept as {kept!r} by its unique index)"
        self._unique.append((what, shown))

    def require_instance(
        self, what: str, model: type[RedisModel], pk: str, held: RedisField | None = None
    ) -> None:
        """Fail with DoesNotExist unless the instance `pk` of `model` exists (a reference
        `what` is about to store), or the field `held` of this instance (a set, sorted set
        or single value) holds it already when the write runs: a held reference is not
        checked again (it may point to an instance whose time passed, not reaped yet)."""
        meta = model._meta
        collection, expiry = Key(meta.collection_key), Key(meta.expiry_key)
        self.checks += [protocol.REFERENCE, len(self._references), collection, pk, expiry]
        if held is None:
            self.checks.append("")
        else:
            key, sub = held.state_location(self.pk)
            self.checks += [held.state_kind, Key(key), sub]
        self._references.append((what, model, pk))

    def expire_in(self, seconds: float) -> None:
        """The instance expires `seconds` from now (the server's time)."""
        self.commands += self._expiry(seconds)

    def _expiry(self, seconds: float) -> list[Any]:
        command = ("ZADD", self.model._meta.expiry_key, self.pk)
        return [protocol.EXPIRE, seconds, *protocol.encode_command(command, self.token)]

    def call(self, *args: Any) -> None:
        self.commands += [protocol.CALL, *protocol.encode_command(args, self.token)]

    def call_per_member(
        self, kind: str, key: str, present: bool, plans: dict[str, list[Any]]
    ) -> None:
        """For each member of `plans` that `key` (a set or sorted set: `kind`) holds
        (`present`) or does not hold when the write runs, its commands."""
        self.commands += [protocol.PER_MEMBER, kind, Key(key), "1" if present else "0", len(plans)]
        for member, commands in plans.items():
            self.commands += [member, len(commands)]
            for command in commands:
                self.commands += protocol.encode_command(command, self.token)

    def value_entries(
        self, when: str, field: RedisField, commands: list[tuple[Any, ...]], raw: str
    ) -> None:
        """The index `commands` of the single value of `field` before this write (`when`
        'old') or after it ('new'), `raw` standing for the value in them (see apply.lua)."""
        key, sub = field.state_location(self.pk)
        self.commands += [protocol.VALUE_ENTRIES, when, field.state_kind, Key(key), sub, *ESCAPE]
        self.commands.append(len(commands))
        for command in commands:
            self.commands += protocol.encode_template(command, raw, escape_value(raw))

    def unlink_references(self, links: str, pk: str) -> None:
        """Unlink the instance `pk` (being deleted) from every instance pointing to it, as
        the link records in the hash `links` describe (see contrib.related)."""
        self.commands += [protocol.UNLINK, Key(links), pk]

    def call_for_reply(self, *args: Any) -> None:
        """A command whose reply `run` returns."""
        self.commands += [protocol.CALL_FOR_REPLY, *protocol.encode_command(args, self.token)]

    def arguments(self) -> list[Any]:
        """The arguments of the apply script for this write."""
        meta = self.model._meta
        probe = [protocol.PROBE, Key(meta.probe_key)]
        if not self.creating:
            return [*probe, *self.checks, *self.commands]
        first: list[Any] = []
        if self.token is not None:
            first = [protocol.NEW_PK, Key(meta.max_pk_key), Key(meta.collection_key)]
        keys = sorted({field.key_for(self.pk) for field in meta.data_fields})
        if keys:
            first += [protocol.CALL, *protocol.encode_command(("DEL", *keys), self.token)]
        last = [
            protocol.CALL,
            *protocol.encode_command(("SADD", meta.collection_key, self.pk), self.token),
        ]
        if meta.default_ttl:
            last += self._expiry(meta.default_ttl)
        else:  # a time left under this pk (by another client) would expire the new instance
            last += [
                protocol.CALL,
                *protocol.encode_command(("ZREM", meta.expiry_key, self.pk), self.token),
            ]
        return [*probe, *self.checks, *first, *self.commands, *last]

    def run(self, database: RedisDatabase) -> Any:
        """Apply the write; its reply, or CONFLICT (SKIPPED for a reap that did not apply).
        Raises DoesNotExist / UniquenessError, or ValueError for a value Redis refused."""
        guard = self.model._meta.probe_key
        return self.result(APPLY(database.client, self.arguments(), guard=guard, model=self.model))

    def result(self, outcome: list[Any]) -> Any:
        """What `run` gives for the apply script's `outcome`."""
        status = outcome[0]
        if status == "OK":
            if self.token is not None:
                self.pk, self.token = outcome[2], None
            return outcome[1]
        if status == "CONFLICT":
            return CONFLICT
        if status in ("LIVE", "GONE"):
            return SKIPPED
        if status == "INVALID":
            detail = clean(outcome[1])
            mistyped = _KEY_TYPE_REFUSAL.fullmatch(detail)
            if mistyped is not None:  # a key another client wrote, not a value of the write
                key, held, want = mistyped.groups()
                raise RefusedValueError(
                    f"{self.model.__name__}: the key '{key}' holds a {held}, not a {want} "
                    "(another client wrote it: see limpyd.integrity); nothing was written"
                )
            raise RefusedValueError(
                f"{self.model.__name__}: Redis refused a value of this write ({detail}); "
                "nothing was written"
            )
        if status == "EXPIRED":
            # Its time has passed but it was not reaped yet: reap it, then it is gone (and
            # its pk is free: a creation is tried again).
            self.model._reap_expired_pk(self.pk)
            if self.creating:
                return REAPED
        if status == "DANGLING":
            what, model, pk = self._references[int(outcome[1])]
            raise DoesNotExist(f"{what}: no {model.__name__} instance with pk {pk!r} to refer to")
        if status == "REAP":
            self.model._reap_expired_pk(outcome[1])
            return REAPED
        if status == "UNIQUE":
            what, shown = self._unique[int(outcome[1])]
            raise UniquenessError(
                f"{what}: value {shown} is already held by instance {outcome[2]!r}"
            )
        if status == "PKEXISTS":
            raise UniquenessError(
                f"{self.model.__name__}.{self.model._meta.pk_field.name}: an instance with pk "
                f"{self.pk!r} already exists"
            )
        raise missing_instance(self.model, self.pk)


#: Why most of limpyd's writes cannot wait in a pipeline.
_ATOMIC = "it reads the current data and updates indexes atomically"


def refuse_in_pipeline(database: RedisDatabase, what: str, why: str = _ATOMIC) -> None:
    """Refuse `what` while `database` queues commands in a pipeline: it needs answers (or
    runs round trips of its own) now, `why`; nothing is queued or sent."""
    if database.pipelined:
        raise ImplementationError(
            f"{what} cannot be done in a pipeline: {why} (do it outside the pipeline); "
            "nothing was sent"
        )


def again(result: Any) -> bool:
    """Whether an attempt's `result` asks for another one (CONFLICT or REAPED)."""
    return result is CONFLICT or result is REAPED


def retry_on_conflict(database: RedisDatabase, attempt: Callable[[], T], what: str) -> T:
    """Run `attempt` until it returns neither CONFLICT (a bounded number of times, with
    backoff) nor REAPED (at once)."""
    delay = database.retry_backoff
    conflicts = 0
    while conflicts < database.max_write_attempts:
        result = attempt()
        if result is REAPED:
            continue
        if result is not CONFLICT:
            return result
        conflicts += 1
        time.sleep(random.uniform(0, delay))
        delay = min(delay * 2, database.retry_backoff_max)
    raise ConflictError(
        f"{what}: gave up after {database.max_write_attempts} attempts, each made stale by "
        "a concurrent write; nothing was written"
    )


# Write procedures ---------------------------------------------------------------------------


def read_states(database: RedisDatabase, wanted: list[tuple[RedisField, str]]) -> list[State]:
    """The current states of these (field, pk) pairs, in one round trip."""
    if not wanted:
        return []
    args: list[Any] = []
    for field, pk in wanted:
        key, sub = field.state_location(pk)
        args += [protocol.STATE, field.state_kind, Key(key), sub]
    model = wanted[0][0].model
    states: list[list[str]] = READ(database.client, args, guard=model._meta.probe_key, model=model)
    return states


def apply_all(database: RedisDatabase, writes: list[Write]) -> list[Any]:
    """The apply function's outcome for each write, in one pipeline (the calls the server
    did not know the code for sent again once it is loaded: see `LuaScript.call_many`)."""
    calls = [(write.arguments(), write.model._meta.probe_key) for write in writes]
    return APPLY.many(database.client, calls) if calls else []


def _existence_forgotten_on_refusal(instance: RedisModel, run: Callable[[], Any]) -> Any:
    """`run()`; a DoesNotExist it raises makes `instance` unknown to exist: a pipelined write
    on it checks it again (it queued, unchecked, a key the instance no longer owns)."""
    try:
        return run()
    except DoesNotExist:
        instance._connected = False
        raise


def modify(field: RedisField, build: Callable[[str], Command]) -> Any:
    """Run one modifier of `field` (`build(pk)` gives the command), indexes kept exact
    (see `_modify`)."""
    instance = field.bound_instance
    return _existence_forgotten_on_refusal(instance, lambda: _modify(field, instance, build))


def _modify(field: RedisField, instance: RedisModel, build: Callable[[str], Command]) -> Any:
    """Run one modifier of `field` (`build(pk)` gives the command), indexes kept exact.

    Not indexed: one round trip. `sadd`/`srem`/`zadd`/`zincrby`/`zrem` under indexes whose
    entries name their values: one round trip, the entries planned from the command's own
    members. Other
    indexed ones: the command is first simulated on a scratch copy of the field (its reply
    and new state, one round trip), then the new state is written with its index changes,
    checked against the state the simulation started from.
    """
    model = type(instance)
    database = model._meta.database
    creating = instance._pk is None
    if creating:
        model._meta.pk_field.require_auto()
    pk = placeholder() if creating else instance._require_pk()
    if database.pipelined:
        if creating or field.indexes:
            refuse_in_pipeline(
                database, f"{field.describe()}: writing an indexable field or creating an instance"
            )
        command = build(pk)
        instance._ensure_exists()
        return database.connection.execute_command(*command.args, **command.options)
    connection = database.client

    command = build(pk)
    value_wise = bool(field.indexes) and plans.value_wise(field, creating, command)
    if not field.indexes or value_wise or plans.member_wise(field, creating, command):
        read_back = plans.counter_read_back(command)

        def attempt_blind() -> Any:
            write = Write(model, pk, creating, new=creating)
            if field.indexes and not value_wise:
                plans.plan_member_changes(write, field, command)
            write.call_for_reply(*command.args)
            if value_wise:
                value = plans.new_value(command)
                plans.plan_value_changes(write, field, None if value is None else [value])
            if read_back is not None:
                write.call_for_reply(*read_back)
            reply = write.run(database)
            return reply if again(reply) else (write.pk, reply)

        pk, reply = retry_on_conflict(
            database, attempt_blind, f"{field.describe()}.{command.name.lower()}"
        )
        if read_back is not None:
            reply = int(reply)
    else:
        kind, (key, sub) = field.state_kind, field.state_location(pk)
        scratch = Key(model._meta.scratch_key)
        simulate = [protocol.SIMULATE, kind, Key(key), sub, scratch, len(command.args) - 1]
        simulate += [command.args[0], *command.args[2:]]
        partners = model._meta.together_partners(field)
        for partner in partners:
            partner_key, partner_sub = partner.state_location(pk)
            simulate += [protocol.STATE, partner.state_kind, Key(partner_key), partner_sub]

        def attempt() -> Any:
            (old, outcome, new), *partner_states = READ(
                connection, simulate, guard=model._meta.probe_key, model=model
            )
            if outcome[0] == "E":  # Redis refused the command
                if not creating and not model._meta.pk_exists(pk):  # LSET: "no such key"
                    raise missing_instance(model, pk)
                raise translate(ResponseError(outcome[1]), model)
            write = Write(model, pk, creating, new=creating)
            write.guard(kind, key, sub, old)
            for partner, state in zip(partners, partner_states, strict=True):
                write.guard(partner.state_kind, *partner.state_location(pk), state)
            for change in field.transition(write.pk, old, new):
                write.call(*change)
            plans.plan_index_changes(write, field, old, new)
            others = {p.name: s for p, s in zip(partners, partner_states, strict=True)}
            plans.plan_together(write, {**others, field.name: old}, {**others, field.name: new})
            result = write.run(database)
            if again(result):
                return result
            if plans.counter_read_back(command) is not None:
                return write.pk, plans.counter_value(field, command, new)
            return write.pk, outcome[1]

        pk, reply = retry_on_conflict(
            database, attempt, f"{field.describe()}.{command.name.lower()}"
        )
    if creating:
        instance._saved(pk)
    return parse(connection, command, reply)


class Rewrite:
    """A write of `commands` (then `reply`, whose result `run` returns, then `last`) on an
    existing instance, knowing they leave each target field in the given state: the indexes
    of those fields are updated in the same atomic write (one round trip, plus one to read
    the current states when a target's index changes cannot be found by the script)."""

    def __init__(
        self,
        instance: RedisModel,
        targets: list[tuple[RedisField, State]],
        commands: list[tuple[Any, ...]],
        reply: tuple[Any, ...] | None = None,
        last: list[tuple[Any, ...]] | None = None,
        prepare: Callable[[Write], None] | None = None,
        reaping: bool = False,
    ) -> None:
        self.instance, self.model = instance, type(instance)
        self.pk = instance._require_pk()
        indexed = [(field, state) for field, state in targets if field.indexes]
        #: Single values whose index entries the script finds, and fields read first.
        self.found = [(f, state) for f, state in indexed if plans.found_by_script(f, state == [])]
        self.indexed = [target for target in indexed if target not in self.found]
        self.read = [field for field, _ in self.indexed]
        partners = self.model._meta.together_partners
        for field, _ in targets:
            self.read += [p for p in partners(field) if p not in self.read]
        self.reads = [(field, self.pk) for field in self.read]
        self.commands, self.reply, self.last = commands, reply, last or []
        self.prepare, self.reaping = prepare, reaping

    def run(self) -> Any:
        """Apply the write, again while it conflicts; the reply of `reply`."""
        return _existence_forgotten_on_refusal(self.instance, self._run)

    def _run(self) -> Any:
        model, database = self.model, self.model._meta.database
        if database.pipelined:
            if self.indexed or self.found or self.last:
                named = ", ".join(field.describe() for field, _ in [*self.indexed, *self.found])
                what = f"deleting a {model.__name__}" if self.last else f"writing {named}"
                refuse_in_pipeline(database, what)
            self.instance._ensure_exists()
            for command in [*self.commands, *([self.reply] if self.reply else [])]:
                database.connection.execute_command(*command)
            return database.connection

        def attempt() -> Any:
            return self.write(read_states(database, self.reads)).run(database)

        return retry_on_conflict(database, attempt, f"{model.__name__} {self.pk!r}")

    def write(self, olds: list[State]) -> Write:
        """The write, knowing the current states of `self.reads`."""
        pk = self.pk
        write = Write(self.model, pk, reaping=self.reaping)
        for field, old in zip(self.read, olds, strict=True):
            write.guard(field.state_kind, *field.state_location(pk), old)
        for command in self.commands:
            write.call(*command)
        if self.reply is not None:
            write.call_for_reply(*self.reply)
        for (field, new), old in zip(self.indexed, olds[: len(self.indexed)], strict=True):
            plans.plan_index_changes(write, field, old, new)
        for field, new in self.found:
            plans.plan_value_changes(write, field, new)
        before = {field.name: old for field, old in zip(self.read, olds, strict=True)}
        plans.plan_together(write, before, {**before, **{f.name: s for f, s in self.indexed}})
        if self.prepare is not None:
            self.prepare(write)
        for command in self.last:
            write.call(*command)
        return write


def rewrite_many(database: RedisDatabase, plans: list[Rewrite]) -> list[bool]:
    """Run these rewrites in two round trips: their states read in one script call, their
    writes sent in one pipeline (each still its own atomic script call). Which ones were
    applied: a write refused for any reason (a conflict, an instance gone, an unloaded
    script...) is left for the caller to run alone, with its usual retries and errors."""
    if not plans or database.pipelined:
        return [False] * len(plans)
    olds = read_states(database, [read for plan in plans for read in plan.reads])
    writes = []
    for plan in plans:
        writes.append(plan.write(olds[: len(plan.reads)]))
        olds = olds[len(plan.reads) :]
    return [isinstance(o, list) and o[0] == "OK" for o in apply_all(database, writes)]
