"""The migration's steps, and `migrate`, what the command runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import redis

from limpyd.backends import backend_from_url
from limpyd.backends.base import redact_url
from limpyd.database import RedisDatabase
from limpyd.fields.pk import counter_value
from limpyd.integrity import check
from limpyd.maintenance import SCAN_COUNT, rebuild_indexes, rebuild_together
from limpyd.migration.source import SHOWN, MigrationError, OldModel, in_batches
from limpyd.migration.survey import KINDS, Survey, survey
from limpyd.refusals import is_wrong_type
from limpyd.text import glob_escape

if TYPE_CHECKING:
    from limpyd.model import RedisModel

__all__ = ["Migration", "migrate"]


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
        """Survey every model and say what was found; the surveys of those with data."""
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
        """Say what the survey of a model found."""
        meta = result.model._meta
        name = result.model.__name__
        if not result.found:
            self.say(f"{name}: no data written by redis-limpyd: skipped")
            return
        keys = ", ".join(f"{result.keys[kind]} {kind}" for kind in KINDS if kind in result.keys)
        present: int | str
        try:
            present = meta.database.client.scard(meta.collection_key)
        except redis.ResponseError as error:  # another type: an error of the survey says so
            if not is_wrong_type(error):
                raise
            present = "an unknown number of"
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

    def plan(self, result: Survey, delete_source: bool) -> None:
        """Say what a run would write (and delete) for this model."""
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
            + (
                f", then delete its {sum(result.keys.values())} keys of redis-limpyd"
                if delete_source
                else ""
            )
        )

    def copy(self, result: Survey) -> None:
        """Write every instance as limpyd creates it (its keys deleted first, and the expiry
        time of a limpyd instance of the same pk with them: migrated instances do not
        expire)."""
        model, old = result.model, result.old
        meta = model._meta
        client = meta.database.client
        done = 0
        for pks in in_batches(old.pks()):
            with client.pipeline(transaction=False) as pipeline:
                for instance in old.states(pks):
                    pk = instance.pk
                    for key in sorted({f.key_for(pk) for f in meta.data_fields}):
                        pipeline.delete(key)  # one by one: a cluster pipeline takes no more
                    for name, state in instance.states.items():
                        for command in meta.fields[name].transition(pk, [], state):
                            pipeline.execute_command(*command)
                    pipeline.zrem(meta.expiry_key, pk)
                    pipeline.sadd(meta.collection_key, pk)
                pipeline.execute()
            done += len(pks)
            self.say(f"{model.__name__}: {done}/{result.instances} instances copied")
        if result.max_pk is not None:
            # the survey checked the counter (a str: clients decode responses)
            current = counter_value(cast("str | None", client.get(meta.max_pk_key))) or 0
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
        problems = check(
            *self.models, progress=lambda task, done, total: self.say(f"{task}: {done}/{total}")
        )
        for problem in problems[:SHOWN]:
            self.say(f"integrity: {problem}")
        if len(problems) > SHOWN:
            self.say(f"integrity: ... and {len(problems) - SHOWN} more problems")
        self.say(f"integrity check: {len(problems)} problem(s)")
        return not problems

    def delete_source(self, result: Survey) -> None:
        """Delete every old key of the model (all under its old prefix): the instances
        first, each batch's pks out of the old collection before their keys go, so that a
        run stopped midway leaves only whole instances listed (a listed pk whose keys were
        gone would read as an empty instance, and the next run would copy it so)."""
        old = result.old
        deleted = 0
        while pks := old.pop_pks():
            deleted += self._delete_each(old.instance_keys(pks))
        pattern = glob_escape(old.prefix) + ":*"
        for keys in in_batches(self.source.scan_iter(match=pattern, count=SCAN_COUNT)):
            deleted += self._delete_each(keys)
        self.say(f"{result.model.__name__}: {deleted} keys of redis-limpyd deleted")

    def _delete_each(self, keys: list[str]) -> int:
        """Delete old keys, a DEL each in one round trip (old keys have no hash tag: on a
        cluster, one DEL of several is refused, or made a transaction across slots)."""
        with self.source.pipeline(transaction=False) as pipeline:
            for key in keys:
                pipeline.delete(key)
            return sum(pipeline.execute())


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
    target = url if target_url is None else target_url
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
            shown = redact_url(url if where == "source" else target)
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
            migration.plan(result, delete_source)
        say("dry run: nothing was written")
        return 0
    for result in surveys:
        migration.copy(result)
    try:
        for result in surveys:
            migration.rebuild(result.model)
    except ValueError as error:  # the target held limpyd data its indexes did not show
        say(f"error: {error}")
        say(
            "error: the indexes of the target's limpyd data did not show all it holds (run "
            "`python -m limpyd check` on it); the source is kept"
        )
        return 1
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
    for f in (f for model in models for f in model._meta.data_fields if f.references):
        # type-ignored: a field with `references` is a contrib.related field (not imported here)
        related = f.related_model  # type: ignore[attr-defined]
        if related not in models:
            # type-ignored: a field with `references` is a contrib.related field (not imported here)
            target = f"{related.__module__}:{related.__name__}" if related else repr(f.to)  # type: ignore[attr-defined]
            raise MigrationError(
                f"{f.describe()} points to {target}, which is not migrated with it: add it "
                "to the models of the command (its references would dangle)"
            )
