"""The stress workload: what one worker does, what it saw, and the checks made on all of it.

A worker (a process on the real server, a thread on fakeredis) runs `ops` random operations
on two related models through its own `RedisDatabase`: creations with unique values drawn
from small pools (so workers collide), updates of unique and indexed fields, `hmset`,
multi-value modifiers, foreign-key and many-to-many changes, and deletions of instances
other workers point to or write to. Each operation's outcome is logged with its start and
end times (`time.monotonic()`, one clock for every process of the machine), so that the
checks can tell whether a refusal was justified at the time it happened.

Only the worker that created an instance changes its unique fields, so the history of a
unique value of an instance is the sequence of that worker's successful writes, ended by
the instance's deletion (by any worker).
"""

from __future__ import annotations

import ast
import random
import re
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from limpyd import fields, writes
from limpyd.contrib import related
from limpyd.database import RedisDatabase
from limpyd.exceptions import ConflictError, DoesNotExist, UniquenessError
from limpyd.indexes import NumberRangeIndex, TextRangeIndex

__all__ = [
    "CITIES",
    "NAMES",
    "Log",
    "check_logs",
    "counting_conflicts",
    "make_models",
    "run_worker",
]

#: Unique values every worker draws from: small pools, so creations and updates collide.
NAMES = [f"n{i}" for i in range(40)]
EMAILS = [f"e{i}@x" for i in range(12)]
CODES = [f"c:{i}*" for i in range(10)]
CITIES = ["paris", "rome", "oslo", "lima", "x:y", "a b"]
TAGS = [f"t{i}" for i in range(8)]
#: (model, field) of every unique field of the workload.
UNIQUE_FIELDS = [("Person", "name"), ("Person", "email"), ("Team", "code")]


def make_models(db: RedisDatabase) -> dict[str, Any]:
    """The workload's models, hosted by `db` (each worker has its own database object)."""

    class Person(related.RelatedModel):
        cluster_group = "workload"
        database = db
        namespace = "stress"
        name = fields.StringField(unique=True)
        email = fields.InstanceHashField(unique=True)
        city = fields.InstanceHashField(indexable=True)
        age = fields.InstanceHashField(indexes=[NumberRangeIndex])
        tags = fields.SetField(indexable=True)
        nicknames = fields.ListField(indexable=True)
        ranks = fields.SortedSetField(indexable=True)
        attrs = fields.HashField(indexable=True)
        visits = fields.StringField()

    class Team(related.RelatedModel):
        cluster_group = "workload"
        database = db
        namespace = "stress"
        code = fields.StringField(indexes=[TextRangeIndex], unique=True)
        owner = related.FKInstanceHashField(Person, related_name="owned_teams")
        leader = related.FKStringField(Person, related_name="led_teams")
        members = related.M2MSetField(Person, related_name="teams")
        queue = related.M2MListField(Person, related_name="queued_in")
        ranking = related.M2MSortedSetField(Person, related_name="ranked_in")

    return {"Person": Person, "Team": Team}


#: CPython 3.11's parser is not safe across threads (`ast.literal_eval` from several threads
#: at once can raise "SystemError: AST constructor recursion depth mismatch"): workers parse
#: the messages they read one at a time.
_PARSING = threading.Lock()


def _literal(text: str) -> Any:
    """`ast.literal_eval(text)`, one thread at a time."""
    with _PARSING:
        return ast.literal_eval(text)


_UNIQUE_MESSAGE = re.compile(r"(\w+)\.(\w+): value (.*) is already held by instance (.*)", re.S)


def parse_uniqueness_error(message: str) -> tuple[str, str, str, str] | None:
    """(model, field, value, holder pk) named by a UniquenessError's message, if it names them."""
    match = _UNIQUE_MESSAGE.fullmatch(message)
    if match is None:
        return None
    model, field_name, value, holder = match.groups()
    try:
        return model, field_name, _literal(value), _literal(holder)
    except (ValueError, SyntaxError):
        return None


_REFERENCE_MESSAGE = re.compile(r"\w+\.\w+: no (\w+) instance with pk (.*) to refer to", re.S)


def missing_reference(message: str) -> tuple[str, str] | None:
    """(model, pk) of the missing instance a DoesNotExist names as the target of a relation
    (the write is refused rather than leave a dangling reference); None otherwise."""
    match = _REFERENCE_MESSAGE.fullmatch(message)
    if match is None:
        return None
    try:
        return match.group(1), _literal(match.group(2))
    except (ValueError, SyntaxError):
        return None


# What a worker logs ----------------------------------------------------------------------------


@dataclass
class Log:
    """Everything one worker did and observed (picklable: it crosses process boundaries)."""

    worker: int
    started: float = 0.0
    ended: float = 0.0
    attempts: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    #: Pks this worker created / deleted, by model.
    created: dict[str, list[str]] = field(default_factory=dict)
    deleted: dict[str, list[tuple[str, float, float]]] = field(default_factory=dict)
    #: (model, field, pk, value, start, end): a successful write gave that unique value.
    holds: list[tuple[str, str, str, str, float, float]] = field(default_factory=list)
    #: (model, field, value, holder, own pk or None, start, end, values tried for field).
    refusals: list[tuple[str, str, str, str, str | None, float, float, tuple[str, ...]]] = field(
        default_factory=list
    )
    #: (model, pk, start, end): a write raised DoesNotExist.
    missing: list[tuple[str, str, float, float]] = field(default_factory=list)
    conflict_errors: int = 0
    #: Writes made stale by a concurrent one, computed again (counted in this process).
    retries: int = 0
    errors: list[str] = field(default_factory=list)


class _Counter:
    def __init__(self) -> None:
        self.value = 0
        self.lock = threading.Lock()

    def add(self) -> None:
        with self.lock:
            self.value += 1


@contextmanager
def counting_conflicts() -> Iterator[_Counter]:
    """Count the writes that came back CONFLICT (each one is computed again), in this
    process, by wrapping `Write.run`."""
    counter = _Counter()
    original = writes.Write.run

    def run(self: writes.Write, database: RedisDatabase) -> Any:
        result = original(self, database)
        if result is writes.CONFLICT:
            counter.add()
        return result

    writes.Write.run = run  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        writes.Write.run = original  # type: ignore[method-assign]


# One worker ------------------------------------------------------------------------------------


class _Worker:
    def __init__(self, db: RedisDatabase, number: int, seed: int) -> None:
        self.models = make_models(db)
        self.Person, self.Team = self.models["Person"], self.models["Team"]
        self.rng = random.Random(seed)
        self.log = Log(worker=number)
        #: pk -> {field: value} of the unique values this worker believes its instances hold.
        self.mine: dict[str, dict[str, dict[str, str]]] = {"Person": {}, "Team": {}}
        self.known: dict[str, list[str]] = {"Person": [], "Team": []}

    # Choosing targets -----------------------------------------------------------------------

    def refresh(self) -> None:
        self.known = {name: list(model.collection()) for name, model in self.models.items()}

    def any_pk(self, model: str) -> str | None:
        """A pk from the last listing, often one of the first few (they are contended)."""
        pks = self.known[model]
        if not pks:
            return None
        if self.rng.random() < 0.5:
            return self.rng.choice(pks[:4])
        return self.rng.choice(pks)

    def own_pk(self, model: str) -> str | None:
        pks = list(self.mine[model])
        return self.rng.choice(pks) if pks else None

    # Running one operation ------------------------------------------------------------------

    def attempt(
        self,
        name: str,
        model: str,
        pk: str | None,
        tried: dict[str, str],
        action: Callable[[], Any],
    ) -> Any:
        """Run `action`; log its outcome. `tried`: the unique values it writes, by field."""
        log = self.log
        log.attempts += 1
        start = time.monotonic()
        try:
            result = action()
        except UniquenessError as error:
            end = time.monotonic()
            log.outcomes[f"{name}: refused (unique)"] += 1
            parsed = parse_uniqueness_error(str(error))
            if parsed is None:
                log.errors.append(f"{name}: unreadable UniquenessError {error}")
                return None
            err_model, err_field, value, holder = parsed
            log.refusals.append(
                (err_model, err_field, value, holder, pk, start, end, tuple(tried.values()))
            )
            if err_model != model or err_field not in tried or tried[err_field] != value:
                log.errors.append(f"{name}: refusal {error} names a value it did not write")
            return None
        except DoesNotExist as error:
            end = time.monotonic()
            log.outcomes[f"{name}: does not exist"] += 1
            reference = missing_reference(str(error))
            if reference is not None:  # the instance a relation was to point to
                log.missing.append((*reference, start, end))
            elif pk is None:
                log.errors.append(f"{name}: DoesNotExist without a target: {error}")
            else:
                log.missing.append((model, pk, start, end))
                self.mine[model].pop(pk, None)
            return None
        except ConflictError:
            log.outcomes[f"{name}: conflict error"] += 1
            log.conflict_errors += 1
            return None
        except Exception:
            log.outcomes[f"{name}: unexpected error"] += 1
            log.errors.append(f"{name} on {model} {pk}: {traceback.format_exc()}")
            return None
        end = time.monotonic()
        log.outcomes[f"{name}: ok"] += 1
        if name.startswith("create"):
            pk = result._pk
            log.created.setdefault(model, []).append(pk)
            self.mine[model][pk] = {}
        elif name.startswith("delete"):
            log.deleted.setdefault(model, []).append((pk, start, end))
            self.mine[model].pop(pk, None)
        for field_name, value in tried.items():
            assert pk is not None
            log.holds.append((model, field_name, pk, value, start, end))
            if pk in self.mine[model]:
                self.mine[model][pk][field_name] = value
        return result

    def step(self) -> None:
        rng, Person, Team = self.rng, self.Person, self.Team
        roll = rng.random()
        if roll < 0.14:
            tried = {"name": rng.choice(NAMES)}
            if rng.random() < 0.5:
                tried["email"] = rng.choice(EMAILS)
            values = {
                **tried,
                "city": rng.choice(CITIES),
                "age": rng.randint(0, 99),
                "tags": rng.sample(TAGS, 2),
                "nicknames": [rng.choice(TAGS)],
                "ranks": {rng.choice(TAGS): rng.randint(0, 9)},
                "attrs": {"k": rng.choice(CITIES)},
            }
            self.attempt("create person", "Person", None, tried, lambda: Person(**values))
        elif roll < 0.20:
            tried = {"code": rng.choice(CODES)}
            values: dict[str, Any] = {**tried}
            target = self.any_pk("Person")
            if target is not None:
                values["owner"] = target
                values["members"] = [target]
            self.attempt("create team", "Team", None, tried, lambda: Team(**values))
        elif roll < 0.28:
            pk = self.own_pk("Person")
            if pk is None:
                return
            tried = {"name": rng.choice(NAMES)}
            person = Person.lazy_connect(pk)
            self.attempt("set name", "Person", pk, tried, lambda: person.name.set(tried["name"]))
        elif roll < 0.36:
            pk = self.own_pk("Person")
            if pk is None:
                return
            tried = {"email": rng.choice(EMAILS)}
            city = rng.choice(CITIES)
            person = Person.lazy_connect(pk)
            self.attempt(
                "hmset", "Person", pk, tried, lambda: person.hmset(email=tried["email"], city=city)
            )
        elif roll < 0.40:
            pk = self.own_pk("Team")
            if pk is None:
                return
            tried = {"code": rng.choice(CODES)}
            team = Team.lazy_connect(pk)
            self.attempt("set code", "Team", pk, tried, lambda: team.code.set(tried["code"]))
        elif roll < 0.66:
            pk = self.any_pk("Person")
            if pk is None:
                return
            person = Person.lazy_connect(pk)
            tag, city = rng.choice(TAGS), rng.choice(CITIES)
            actions: list[tuple[str, Callable[[], Any]]] = [
                ("sadd", lambda: person.tags.sadd(tag)),
                ("srem", lambda: person.tags.srem(tag)),
                ("rpush", lambda: person.nicknames.rpush(tag)),
                ("lrem", lambda: person.nicknames.lrem(0, tag)),
                ("zincrby", lambda: person.ranks.zincrby(1, tag)),
                ("zadd", lambda: person.ranks.zadd({tag: rng.randint(0, 9)})),
                ("hash hset", lambda: person.attrs.hset(tag, city)),
                ("hash hdel", lambda: person.attrs.hdel(tag)),
                ("city hset", lambda: person.city.hset(city)),
                ("age hincrby", lambda: person.age.hincrby(1)),
                ("incr", lambda: person.visits.incr()),
            ]
            name, action = rng.choice(actions)
            self.attempt(name, "Person", pk, {}, action)
        elif roll < 0.84:
            pk, target = self.any_pk("Team"), self.any_pk("Person")
            if pk is None or target is None:
                return
            team = Team.lazy_connect(pk)
            actions = [
                ("fk hset", lambda: team.owner.hset(target)),
                ("fk set", lambda: team.leader.set(target)),
                ("m2m sadd", lambda: team.members.sadd(target)),
                ("m2m srem", lambda: team.members.srem(target)),
                ("m2m rpush", lambda: team.queue.rpush(target)),
                ("m2m zadd", lambda: team.ranking.zadd({target: rng.randint(0, 9)})),
            ]
            name, action = rng.choice(actions)
            self.attempt(name, "Team", pk, {}, action)
        elif roll < 0.93:
            pk = self.any_pk("Person")
            if pk is not None:
                person = Person.lazy_connect(pk)
                self.attempt("delete person", "Person", pk, {}, person.delete)
        elif roll < 0.96:
            pk = self.any_pk("Team")
            if pk is not None:
                team = Team.lazy_connect(pk)
                self.attempt("delete team", "Team", pk, {}, team.delete)
        else:
            city = rng.choice(CITIES)
            query: Callable[[], Any] = rng.choice(
                [
                    lambda: list(Person.collection(city=city).sort(by="name", alpha=True)),
                    lambda: list(Person.collection(age__gte=50, tags=rng.choice(TAGS))),
                    lambda: list(Team.collection(code__startswith="c:1")),
                ]
            )
            self.attempt("query", "Person", None, {}, query)

    def run(self, ops: int, ready: Callable[[], None]) -> Log:
        self.refresh()
        ready()
        self.log.started = time.monotonic()
        for number in range(ops):
            if number % 16 == 0:
                self.refresh()
            self.step()
        self.log.ended = time.monotonic()
        return self.log


def run_worker(
    db: RedisDatabase, number: int, seed: int, ops: int, ready: Callable[[], None]
) -> Log:
    """Run one worker's `ops` operations on `db`, after `ready()` returns (a barrier)."""
    worker = _Worker(db, number, seed)
    try:
        return worker.run(ops, ready)
    except Exception:
        worker.log.errors.append(f"worker {number} crashed: {traceback.format_exc()}")
        worker.log.ended = time.monotonic()
        return worker.log


def process_main(url: str, number: int, seed: int, ops: int, barrier: Any, queue: Any) -> None:
    """Entry point of a worker process: its own connection, conflict count, and log."""
    db = RedisDatabase.from_url(url)
    with counting_conflicts() as conflicts:
        log = run_worker(db, number, seed, ops, lambda: barrier.wait(timeout=120))
    log.retries = conflicts.value
    queue.put(log)
    db.client.close()


# Many writers on one instance --------------------------------------------------------------------


@dataclass
class HotLog:
    """What one worker of the hot-spot run wrote successfully (its tokens, in order)."""

    worker: int
    started: float = 0.0
    ended: float = 0.0
    attempts: int = 0
    pushed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    increments: int = 0
    hash_increments: int = 0
    counted: int = 0
    conflict_errors: int = 0
    retries: int = 0
    errors: list[str] = field(default_factory=list)


def run_hot_spot(
    db: RedisDatabase, number: int, pk: str, ops: int, ready: Callable[[], None]
) -> HotLog:
    """`ops` writes of every kind to the same instance `pk` as every other worker."""
    person = make_models(db)["Person"].lazy_connect(pk)
    log = HotLog(worker=number)
    ready()
    log.started = time.monotonic()
    for step in range(ops):
        token = f"w{number}-{step}"
        kind = step % 5
        log.attempts += 1
        try:
            if kind == 0:
                person.nicknames.rpush(token)
                log.pushed.append(token)
            elif kind == 1:
                person.tags.sadd(token)
                log.added.append(token)
            elif kind == 2:
                person.ranks.zincrby(1, "hits")
                log.increments += 1
            elif kind == 3:
                person.age.hincrby(1)
                log.hash_increments += 1
            else:
                person.visits.incr()
                log.counted += 1
        except ConflictError:
            log.conflict_errors += 1
        except Exception:
            log.errors.append(f"worker {number} step {step}: {traceback.format_exc()}")
            break
    log.ended = time.monotonic()
    return log


def hot_process_main(url: str, number: int, pk: str, ops: int, barrier: Any, queue: Any) -> None:
    db = RedisDatabase.from_url(url)
    with counting_conflicts() as conflicts:
        try:
            log = run_hot_spot(db, number, pk, ops, lambda: barrier.wait(timeout=120))
        except Exception:
            log = HotLog(worker=number, errors=[traceback.format_exc()])
    log.retries = conflicts.value
    queue.put(log)
    db.client.close()


def check_hot_spot(logs: list[HotLog], person: Any) -> list[str]:
    """Every successful write is in the instance exactly once, in each worker's order."""
    problems = [error for log in logs for error in log.errors]
    items = person.nicknames.lrange(0, -1)
    pushed = [token for log in logs for token in log.pushed]
    if sorted(items) != sorted(pushed):
        problems.append(
            f"list: {len(items)} items for {len(pushed)} successful pushes "
            f"(lost {sorted(set(pushed) - set(items))[:5]}, extra "
            f"{sorted(set(items) - set(pushed))[:5]}, repeated "
            f"{[t for t, n in Counter(items).items() if n > 1][:5]})"
        )
    for log in logs:
        mine = [token for token in items if token.startswith(f"w{log.worker}-")]
        if mine != log.pushed:
            problems.append(f"list: worker {log.worker}'s pushes are out of order")
    members = person.tags.smembers()
    added = {token for log in logs for token in log.added}
    if members != added:
        problems.append(f"set: {len(members)} members for {len(added)} successful adds")
    expectations = [
        ("zincrby", person.ranks.zscore("hits"), sum(log.increments for log in logs)),
        ("hincrby", person.age.hget(), sum(log.hash_increments for log in logs)),
        ("incr", person.visits.get(), sum(log.counted for log in logs)),
    ]
    for name, value, count in expectations:
        if float(value or 0) != count:
            problems.append(f"{name}: value {value!r} after {count} successful increments")
    return problems


# The checks -------------------------------------------------------------------------------------


def check_logs(logs: list[Log], models: dict[str, Any]) -> list[str]:
    """Every broken guarantee, as a message; `models` are bound to a database that reads
    the final state."""
    problems = [error for log in logs for error in log.errors]
    deleted: dict[tuple[str, str], tuple[float, float]] = {}
    for log in logs:
        for model, entries in log.deleted.items():
            for pk, start, end in entries:
                if (model, pk) in deleted:
                    problems.append(f"{model} {pk} deleted twice")
                deleted[model, pk] = (start, end)

    # Creations and deletions add up to the collection.
    for name, model in models.items():
        created = [pk for log in logs for pk in log.created.get(name, [])]
        gone = [pk for (model_name, pk) in deleted if model_name == name]
        present = set(model.collection())
        if len(created) != len(set(created)):
            problems.append(f"{name}: a pk was created twice")
        if len(created) != len(present) + len(gone):
            problems.append(
                f"{name}: {len(created)} successful creations != {len(present)} in the "
                f"collection + {len(gone)} successful deletions"
            )
        if set(created) - set(gone) != present:
            problems.append(
                f"{name}: the collection {sorted(present)} is not created - deleted "
                f"(ghosts: {sorted(present - set(created))}, lost: "
                f"{sorted(set(created) - set(gone) - present)})"
            )

    # The history of each unique value: held from the write that gave it to the end of the
    # next write of that field of that instance, or of the instance's deletion.
    holds: dict[tuple[str, str, str], list[tuple[float, float, str]]] = {}
    for log in logs:
        for model, field_name, pk, value, start, end in log.holds:
            holds.setdefault((model, field_name, pk), []).append((start, end, value))
    intervals: dict[tuple[str, str, str], list[tuple[str, float, float]]] = {}
    last_value: dict[tuple[str, str, str], str] = {}
    for (model, field_name, pk), history in holds.items():
        history.sort()
        ending = deleted.get((model, pk), (0.0, float("inf")))[1]
        for position, (start, _, value) in enumerate(history):
            until = history[position + 1][1] if position + 1 < len(history) else ending
            intervals.setdefault((model, field_name, value), []).append((pk, start, until))
        last_value[model, field_name, pk] = history[-1][2]

    for log in logs:
        for model, field_name, value, holder, own, start, end, tried in log.refusals:
            if holder == own:
                problems.append(f"{model}.{field_name}={value!r} refused to its own holder {own}")
            held = [
                (pk, since, until)
                for pk, since, until in intervals.get((model, field_name, value), [])
                if pk == holder and since < end and until > start
            ]
            if not held:
                problems.append(
                    f"{model}.{field_name}={value!r} refused (holder {holder!r}) at "
                    f"[{start:.6f}, {end:.6f}] but no instance held it then: "
                    f"{intervals.get((model, field_name, value), [])}"
                )
            if value not in tried:
                problems.append(f"{model}.{field_name}: refusal of {value!r} not tried {tried}")
        for model, pk, start, end in log.missing:
            when = deleted.get((model, pk))
            if when is None or when[0] > end:
                problems.append(
                    f"{model} {pk}: DoesNotExist at [{start:.6f}, {end:.6f}] but it was "
                    f"deleted at {when}"
                )

    # No unique value held twice; live instances hold the value last written to them.
    for model_name, field_name in UNIQUE_FIELDS:
        model = models[model_name]
        values: dict[str, list[str]] = {}
        for pk in model.collection():
            instance = model(pk)
            value = getattr(instance, field_name).get()
            if value is not None:
                values.setdefault(value, []).append(pk)
            expected = last_value.get((model_name, field_name, pk))
            if value != expected:
                problems.append(
                    f"{model_name} {pk}.{field_name} is {value!r}, its last successful write "
                    f"gave {expected!r}"
                )
        for value, pks in values.items():
            if len(pks) > 1:
                problems.append(f"{model_name}.{field_name}={value!r} held by {pks}")
            if len(model.collection(**{field_name: value})) != 1:
                problems.append(f"{model_name}.{field_name}={value!r}: index disagrees")
    return problems


def summary(logs: list[Log], backend: str, workers: int, ops: int) -> dict[str, Any]:
    """The figures of a run: operations per second, outcomes, retries."""
    started = min(log.started for log in logs)
    ended = max(log.ended for log in logs)
    attempts = sum(log.attempts for log in logs)
    outcomes: Counter[str] = Counter()
    for log in logs:
        outcomes.update(log.outcomes)
    kinds: Counter[str] = Counter()
    for name, count in outcomes.items():
        kinds[name.split(": ", 1)[1]] += count
    return {
        "backend": backend,
        "workers": workers,
        "ops per worker": ops,
        "operations": attempts,
        "seconds": round(ended - started, 2),
        "ops/s": round(attempts / (ended - started)) if ended > started else 0,
        "ok": kinds["ok"],
        "refused (unique)": kinds["refused (unique)"],
        "does not exist": kinds["does not exist"],
        "conflict errors": sum(log.conflict_errors for log in logs),
        "conflict retries": sum(log.retries for log in logs),
    }
