"""Migrate a database written by redis-limpyd (1.3.x or 2.x) to limpyd's key layout.

`python -m limpyd migrate-from-redis-limpyd app.models:Person ... --url URL` (see
`docs/coming-from-redis-limpyd.md`). redis-limpyd keeps a model's keys under
`<namespace>:<model>` (`ns:person:collection`, `ns:person:max_pk`, `ns:person:<pk>:<field>`,
`ns:person:<pk>:hash` for the InstanceHashFields, and its index keys
`ns:person:<field>:...`); limpyd's layout is in `limpyd.keys`. Given the limpyd models
declaring the same names, the migration:

1. surveys the old data: its keys, every instance's values (read, never written), the
   values limpyd's indexes would refuse and the unique values two instances hold; any of
   these stops it before anything is written;
2. copies every instance's values with the commands limpyd's own creations send (each
   instance's keys deleted first, so a run again overwrites), then the pk counter;
3. rebuilds every index, `unique_together` combination and related link record with
   `limpyd.maintenance` (old index keys are not read: they are derived data);
4. checks the result with the integrity checker (`limpyd_testing.integrity`);
5. deletes the old keys, only with `delete_source` and a clean check.

Old keys and new keys never share a name (limpyd's keys have the `{group}` hash tag after
the namespace), so a migration in place, interrupted or run again, is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis

from limpyd.backends import backend_from_url
from limpyd.database import RedisDatabase
from limpyd.exceptions import ImplementationError
from limpyd.maintenance import batches, rebuild_indexes, rebuild_together
from limpyd.text import glob_escape

if TYPE_CHECKING:
    from limpyd.fields.base import RedisField
    from limpyd.model import RedisModel

__all__ = ["MigrationError", "migrate", "old_prefix"]

#: Instances read, or keys classified or deleted, per round trip.
BATCH = 500
#: Problems of one kind listed in full before the rest is only counted.
SHOWN = 20

State = list[str]

#: The kinds of old keys, in the order the survey reports them.
KINDS = ("collection", "max_pk", "instance keys", "old index keys", "keys of undeclared fields")


class MigrationError(Exception):
    """What stops a migration before it writes anything (one line for the user)."""


def old_prefix(model: type[RedisModel]) -> str:
    """What redis-limpyd's keys of `model` start with: `<namespace>:<model name>`."""
    return f"{model._meta.namespace}:{model._meta.name}"


def _batches(items: Iterable[str]) -> Iterator[list[str]]:
    return batches(items, BATCH)  # BATCH read now: the tests shrink it


# Reading redis-limpyd's data ----------------------------------------------------------------


@dataclass
class Instance:
    """An instance as redis-limpyd stored it: its fields' states, and what is wrong."""

    pk: str
    states: dict[str, State] = field(default_factory=dict)
    #: Where it holds values of fields the limpyd model does not declare: (field, key).
    undeclared: list[tuple[str, str]] = field(default_factory=list)
    #: What stops the migration (a key of another type than the field's).
    errors: list[str] = field(default_factory=list)


class Lines:
    """Lines of one kind for the user: all counted, the first SHOWN kept."""

    def __init__(self) -> None:
        self.count = 0
        self.shown: list[str] = []

    def add(self, line: str) -> None:
        self.count += 1
        if len(self.shown) < SHOWN:
            self.shown.append(line)

    def __bool__(self) -> bool:
        return self.count > 0


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

    def pks(self) -> Iterator[str]:
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


# The survey -----------------------------------------------------------------------------------


@dataclass
class Survey:
    """What a model's old data holds, and what stops its migration."""

    old: OldModel
    instances: int = 0
    max_pk: int | None = None
    keys: dict[str, int] = field(default_factory=dict)
    #: Values that stop the migration (invalid for an index, unique values held twice...).
    errors: Lines = field(default_factory=Lines)
    #: What is not migrated, values of fields the limpyd model does not declare: by field,
    #: how many keys hold some, and the first one.
    undeclared: dict[str, tuple[int, str]] = field(default_factory=dict)

    def not_migrated(self, what: str, key: str) -> None:
        count, first = self.undeclared.get(what, (0, key))
        self.undeclared[what] = (count + 1, first)

    @property
    def model(self) -> type[RedisModel]:
        return self.old.model

    @property
    def found(self) -> bool:
        return bool(self.instances or self.max_pk is not None or any(self.keys.values()))


def survey(old: OldModel) -> Survey:
    """Read (never write) a model's old keys and values."""
    result = Survey(old)
    client = old.client
    raw_max = client.get(old.max_pk_key)
    if raw_max is not None:
        try:
            result.max_pk = int(raw_max)
        except ValueError:
            result.errors.add(f"{old.max_pk_key!r} holds {raw_max!r}, not a number")
    _count_keys(old, result)
    #: who holds each unique value (or combination): {what: {pk: the value as held}}
    holders: dict[Any, dict[str, str]] = {}
    meta = old.model._meta
    for pks in _batches(old.pks()):
        instances = old.states(pks)
        for line in _dangling(old, instances):
            result.errors.add(line)
        for instance in instances:
            result.instances += 1
            if instance.pk.isdigit() and old.model._meta.pk_field.auto:
                # the counter must be past every pk, whatever max_pk said
                result.max_pk = max(result.max_pk or 0, int(instance.pk))
            for what, key in instance.undeclared:
                result.not_migrated(what, key)
            for line in instance.errors:
                result.errors.add(line)
            for name, state in instance.states.items():
                _check_values(meta.fields[name], instance.pk, state, holders, result.errors)
            for group in meta.unique_together:
                if meta.together_key(group, instance.states) is not None:
                    values = tuple(instance.states[name][0] for name in group)
                    holders.setdefault(("together", group, values), {})[instance.pk] = ""
    for what, held in holders.items():
        if len(held) > 1:
            result.errors.add(_conflict(old.model, what, held))
    return result


def _dangling(old: OldModel, instances: list[Instance]) -> list[str]:
    """The references of these instances to instances the old data does not hold."""
    meta = old.model._meta
    references = [
        (instance.pk, f, value)
        for instance in instances
        for name, state in instance.states.items()
        if (f := meta.fields[name]).references
        for _, value in f.items_of(state)
    ]
    with old.client.pipeline(transaction=False) as pipeline:
        for _, f, value in references:
            related = f.require_related_model()  # type: ignore[attr-defined]
            pipeline.sismember(f"{old_prefix(related)}:collection", value)
        found = pipeline.execute()
    return [
        f"{old.model.__name__} {pk!r}: {f.describe()} points to {value!r}, an instance of "
        f"{f.require_related_model().__name__} that the old data does not hold"  # type: ignore[attr-defined]
        for (pk, f, value), exists in zip(references, found, strict=True)
        if not exists
    ]


def _check_values(
    f: RedisField, pk: str, state: State, holders: dict[Any, dict[str, str]], errors: Lines
) -> None:
    """Compute the index entries of a value (an index refusing it is an error) and note who
    holds each unique value."""
    for hkey, value in f.items_of(state):
        for index in f.indexes:
            try:
                index.entries(value, pk, hkey)
                check = index.unique_check(value, pk, hkey) if f.unique else None
            except (ValueError, ImplementationError) as error:
                errors.add(f"{f.model.__name__} {pk!r}: {error}")
                continue
            if check is not None and index.handle_uniqueness:
                holders.setdefault((f.name, hkey, check), {})[pk] = value


def _conflict(model: type[RedisModel], what: tuple[Any, ...], holders: dict[str, str]) -> str:
    pks = sorted(holders, key=_pk_order)
    held = ", ".join(repr(pk) for pk in pks[:SHOWN])
    held += f" (and {len(pks) - SHOWN} more)" if len(pks) > SHOWN else ""
    if what[0] == "together":
        same = ", ".join(f"{n}={v!r}" for n, v in zip(what[1], what[2], strict=True))
        return f"{model.__name__}: unique_together: instances {held} hold the same {same}"
    name, hkey = what[0], what[1]
    where = f"{model.__name__}.{name}" + (f"[{hkey!r}]" if hkey is not None else "")
    values = sorted(set(holders.values()))
    if len(values) == 1:
        return f"{where} is unique, but instances {held} hold the same value {values[0]!r}"
    shown = ", ".join(map(repr, values[:SHOWN]))
    return f"{where} is unique, but instances {held} hold values its index takes as one: {shown}"


def _pk_order(pk: str) -> tuple[int, str]:
    return (int(pk), "") if pk.isdigit() else (1 << 62, pk)


def _count_keys(old: OldModel, result: Survey) -> None:
    """Sort the old keys: instance keys (copied), index keys and others (rebuilt or left)."""
    client = old.client
    start = len(old.prefix) + 1
    names = {f.name for f in old.keyed_fields} | ({"hash"} if old.hash_fields else set())
    counts = result.keys
    pattern = glob_escape(old.prefix) + ":*"
    for keys in _batches(client.scan_iter(match=pattern, count=BATCH)):
        rests = [key[start:] for key in keys]
        splits = [rest.rpartition(":") for rest in rests]
        with client.pipeline(transaction=False) as pipeline:
            for pk, _, _ in splits:
                pipeline.sismember(old.collection_key, pk)
            members = pipeline.execute()
        for key, rest, (_, _, name), member in zip(keys, rests, splits, members, strict=True):
            if rest in ("collection", "max_pk"):
                kind = rest
            elif member and name in names:
                kind = "instance keys"
            elif member:
                kind = "keys of undeclared fields"
                result.not_migrated(f"field {name!r}", key)
            else:
                kind = "old index keys"
            counts[kind] = counts.get(kind, 0) + 1


# The migration --------------------------------------------------------------------------------


class Migration:
    """A migration of `models` from `source` (a redis-py client) to their database."""

    def __init__(
        self,
        models: list[type[RedisModel]],
        source: redis.Redis,
        say: Callable[[str], None] = print,
    ) -> None:
        self.models = models
        self.source = source
        self.say = say
        self.olds = [OldModel(model, source) for model in models]

    def survey(self) -> list[Survey]:
        surveys = []
        for old in self.olds:
            self.say(
                f"{old.model.__name__}: surveying the keys of redis-limpyd under {old.prefix!r}"
            )
            surveys.append(survey(old))
            self.describe(surveys[-1])
        found = [s for s in surveys if s.found]
        if not found:
            wanted = ", ".join(repr(old.collection_key) for old in self.olds)
            raise MigrationError(f"no data written by redis-limpyd found (no key {wanted})")
        return found

    def describe(self, result: Survey) -> None:
        meta = result.model._meta
        name = result.model.__name__
        if not result.found:
            self.say(f"{name}: no data written by redis-limpyd: skipped")
            return
        keys = ", ".join(f"{result.keys[kind]} {kind}" for kind in KINDS if kind in result.keys)
        present = meta.database.client.scard(meta.collection_key)
        self.say(
            f"{name}: {result.instances} instance(s) ({keys}); "
            f"{present} instance(s) already in limpyd's layout under {meta.prefix!r}"
        )
        if meta.default_ttl:
            self.say(f"{name}: note: its ttl is not given to migrated instances (expire() does)")
        for what, (count, first) in result.undeclared.items():
            self.say(
                f"{name}: warning: the {what} is not declared by the limpyd model: not "
                f"migrated ({count} key(s) hold values, the first {first!r})"
            )
        for line in result.errors.shown:
            self.say(f"{name}: error: {line}")
        if result.errors.count > SHOWN:
            self.say(f"{name}: ... and {result.errors.count - SHOWN} more errors")

    def plan(self, result: Survey) -> None:
        """Say what `run` would write for this model."""
        meta = result.model._meta
        indexed = [f.name for f in meta.data_fields if f.indexes]
        self.say(
            f"{result.model.__name__}: would copy {result.instances} instance(s) to {meta.prefix!r}"
            + (f", set max_pk to {result.max_pk} at least" if result.max_pk is not None else "")
            + (f", rebuild the indexes of {', '.join(indexed)}" if indexed else "")
            + (
                f" and {len(meta.unique_together)} unique_together group(s)"
                if meta.unique_together
                else ""
            )
        )

    def copy(self, result: Survey) -> None:
        """Write every instance as limpyd creates it (its keys deleted first)."""
        model, old = result.model, result.old
        meta = model._meta
        client = meta.database.client
        done = 0
        for pks in _batches(old.pks()):
            with client.pipeline(transaction=False) as pipeline:
                for instance in old.states(pks):
                    pk = instance.pk
                    keys = sorted({f.key_for(pk) for f in meta.data_fields})
                    if keys:
                        pipeline.delete(*keys)
                    for name, state in instance.states.items():
                        for command in meta.fields[name].transition(pk, [], state):
                            pipeline.execute_command(*command)
                    pipeline.sadd(meta.collection_key, pk)
                pipeline.execute()
            done += len(pks)
            self.say(f"{model.__name__}: {done}/{result.instances} instances copied")
        if result.max_pk is not None:
            current = int(client.get(meta.max_pk_key) or 0)
            if current < result.max_pk:
                client.set(meta.max_pk_key, result.max_pk)
            self.say(f"{model.__name__}: max_pk {max(current, result.max_pk)}")

    def rebuild(self, model: type[RedisModel]) -> None:
        """Rebuild the indexes, combinations and link records of `model` from its data."""
        meta = model._meta
        for f in meta.data_fields:
            if f.indexes:
                count = rebuild_indexes(f)
                self.say(f"{f.describe()}: indexes rebuilt ({count} instances)")
        if meta.unique_together:
            count = rebuild_together(model)
            self.say(f"{model.__name__}: unique_together combinations rebuilt ({count} instances)")

    def verify(self) -> bool:
        """Run the integrity checker on the models; whether they are consistent."""
        try:
            from limpyd_testing.integrity import check
        except ImportError:  # pragma: no cover - shipped with limpyd
            self.say("verification skipped: limpyd_testing is not importable")
            return True
        problems = check(*self.models, progress=self.say)
        for problem in problems[:SHOWN]:
            self.say(f"integrity: {problem}")
        if len(problems) > SHOWN:
            self.say(f"integrity: ... and {len(problems) - SHOWN} more problems")
        self.say(f"integrity check: {len(problems)} problem(s)")
        return not problems

    def delete_source(self, result: Survey) -> None:
        """Delete every old key of the model (all under its old prefix)."""
        pattern = glob_escape(result.old.prefix) + ":*"
        deleted = 0
        for keys in _batches(self.source.scan_iter(match=pattern, count=BATCH)):
            deleted += self.source.delete(*keys)
        self.say(f"{result.model.__name__}: {deleted} keys of redis-limpyd deleted")


def migrate(
    models: list[type[RedisModel]],
    url: str,
    target_url: str | None = None,
    *,
    dry_run: bool = False,
    delete_source: bool = False,
    say: Callable[[str], None] = print,
) -> int:
    """Migrate `models` from the redis-limpyd database at `url` to limpyd's layout, at
    `target_url` (default: in place); the exit status (0: done and consistent, 1: refused or
    inconsistent). MigrationError for what stops it at once (no data, server unreachable,
    related models missing)."""
    _check_models(models)
    target = target_url or url
    try:
        source = backend_from_url(url).client()
        target_backend = backend_from_url(target)
    except ValueError as error:
        raise MigrationError(str(error)) from None
    databases = {id(m.database): m.database for m in models if m.database is not None}
    for database in databases.values():
        database.connect(backend=target_backend)
    orphans = [m for m in models if m.database is None]
    if orphans:
        shared = RedisDatabase(backend=target_backend)
        for model in orphans:
            model.use_database(shared)
    for where, client in (("source", source), ("target", models[0]._meta.database.client)):
        try:
            client.ping()
        except redis.RedisError as error:
            shown = url if where == "source" else target
            raise MigrationError(f"cannot reach the {where} Redis at {shown}: {error}") from None
    migration = Migration(models, source, say)
    surveys = migration.survey()
    if any(s.errors for s in surveys):
        say(
            "error: nothing was written: fix the data above in the source first (or the "
            "declarations of the limpyd models), then run the migration again"
        )
        return 1
    if dry_run:
        for result in surveys:
            migration.plan(result)
        say("dry run: nothing was written")
        return 0
    for result in surveys:
        migration.copy(result)
    for result in surveys:
        migration.rebuild(result.model)
    if not migration.verify():
        say("error: the migrated data is not consistent (see above); the source is kept")
        return 1
    if delete_source:
        for result in surveys:
            migration.delete_source(result)
    say(f"done: {sum(s.instances for s in surveys)} instances of {len(surveys)} model(s) migrated")
    return 0


def _check_models(models: list[type[RedisModel]]) -> None:
    """Concrete models, and the models their related fields point to among them."""
    if not models:
        raise MigrationError("no model given")
    for model in models:
        if model._meta.abstract:
            raise MigrationError(f"model {model.__name__} is abstract: give its concrete models")
    for model in models:
        for f in model._meta.data_fields:
            related = getattr(f, "related_model", None) if hasattr(f, "related_model") else None
            if hasattr(f, "related_model") and related not in models:
                target = f"{related.__module__}:{related.__name__}" if related else repr(f.to)  # type: ignore[attr-defined]
                raise MigrationError(
                    f"{f.describe()} points to {target}, which is not migrated with it: add it "
                    "to the models of the command (its references would dangle)"
                )
