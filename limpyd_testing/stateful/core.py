"""`MachineCore`: the state of a model machine (its database, oracle, stats) and what its
rules share: what to draw from, and running a write against the oracle's prediction."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from hypothesis import note
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test
from redis.exceptions import RedisError

from limpyd.backends import FakeBackend
from limpyd.database import RedisDatabase
from limpyd.exceptions import ImplementationError, UniquenessError
from limpyd.fields import HashField
from limpyd.fields.base import RedisField
from limpyd.indexes import NumberRangeIndex
from limpyd.model import RedisModel
from limpyd_testing import strategies as lst
from limpyd_testing.snapshot import snapshot
from limpyd_testing.stateful.commands import ANY, SAME
from limpyd_testing.stateful.config import MIN_DEFAULT_TTL, DatabaseFactory, config, use_database
from limpyd_testing.stateful.drawing import mixed, running
from limpyd_testing.stateful.oracle import KNOWN_INDEXES, Oracle, refused_state
from limpyd_testing.stateful.values import EMPTY, field_kind, items_of, raw

#: What a cached builder gives (a strategy).
_Built = TypeVar("_Built")

#: What a write refusing a bad value may raise (limpyd's ValueError, or the server's error).
REFUSALS = (ValueError, RedisError)


class MachineCore(RuleBasedStateMachine):
    """The state of a machine over the instances of `models`, and what its rules share
    (drawing values, running a write and checking its outcome); see `ModelStateMachine`.

    Class attributes a subclass sets: `models` (required), `database_factory`,
    `field_texts` ({"Model.field": strategy of texts}; "Model.field[]" for a HashField's
    keys), `max_instances` (per model),
    `max_queries` (standing filters re-checked after every step).
    """

    models: ClassVar[Sequence[type[RedisModel]]] = ()
    database_factory: ClassVar[DatabaseFactory | None] = None
    field_texts: ClassVar[Mapping[str, st.SearchStrategy[str]]] = {}
    max_instances: ClassVar[int] = 6
    max_queries: ClassVar[int] = 4
    max_probes: ClassVar[int] = 4

    def __init__(self, database_factory: DatabaseFactory | None = None) -> None:
        super().__init__()
        models = list(type(self).models)
        if not models:
            raise ImplementationError(f"{type(self).__name__}: set `models = [...]`")
        for model in models:
            default_ttl = getattr(model._meta, "default_ttl", None)
            if default_ttl is not None and default_ttl < MIN_DEFAULT_TTL:
                raise ImplementationError(
                    f"{type(self).__name__}: instances of {model.__name__} expire after "
                    f"{default_ttl} s (its `ttl`), which could pass during an example: the "
                    f"machine models expiry by the clock only from {MIN_DEFAULT_TTL} s"
                )
        self._check_relations(models)
        self._check_field_texts(models)
        factory = database_factory or type(self).database_factory or config.database_factory
        self._drop: str | None = None
        if factory is None:
            self._drop = f"limpyd-stateful-{uuid.uuid4().hex}"
            self.database = RedisDatabase(backend=FakeBackend(name=self._drop))
        else:
            self.database = factory()
            self.database.client.flushdb()
        #: Databases a rule made on the machine's server (closed at the teardown).
        self.extra_databases: list[RedisDatabase] = []
        self._restore = use_database(models, self.database)
        self.oracle = Oracle(models)
        self.queries: list[tuple[type[RedisModel], dict[str, Any]]] = []
        #: (model, field, values): fields written by the last step and values they held.
        self.touched: list[tuple[type[RedisModel], RedisField, list[tuple[str | None, str]]]] = []
        self.steps = 0
        #: Whether the example made its bulk write (at most one: they are costly).
        self.bulked = False
        #: Whether a write was attempted since the last check (queries write nothing).
        self.dirty = True
        #: What this example did: created, written, refused, queried, matched (for tests).
        self.stats: Counter[str] = Counter()
        running.append(self)

    @classmethod
    def run(
        cls, database_factory: DatabaseFactory | None = None, *, settings: Settings | None = None
    ) -> None:
        """Run the machine as a test: each example on a fresh database from
        `database_factory` (see the chapter "State machines"). `settings` default to the class's
        (`@settings(...)` on it); the deadline is turned off (an example is many steps)."""
        chosen = settings if settings is not None else cls.TestCase.settings
        chosen = Settings(chosen, deadline=None)
        run_state_machine_as_test(lambda: cls(database_factory=database_factory), settings=chosen)

    def teardown(self) -> None:
        """Put the models back on their databases; drop the in-memory server made here, or
        close the factory's client (one per example: the factory closes them at the end of
        the test, and a long run would reach the server's limit of connections), and the
        clients of the databases the rules made."""
        if self in running:
            running.remove(self)
        self._restore()
        for database in self.extra_databases:
            database.client.close()
        if self._drop is not None:
            FakeBackend.drop_server(self._drop)
        else:
            self.database.client.close()

    @staticmethod
    def _check_relations(models: list[type[RedisModel]]) -> None:
        for model in models:
            for field in model._meta.data_fields:
                if lst.is_related(field) and field.related_model not in models:
                    raise ImplementationError(
                        f"{field.describe()} points to {field.to!r}, which is not in "
                        "the machine's `models`: add it"
                    )

    def _check_field_texts(self, models: list[type[RedisModel]]) -> None:
        """Every key of `field_texts` naming one of `models` names one of its fields
        ("Model.field", "Model.pk", "Model.field[]" for a HashField's keys): a misspelt one
        would change nothing. Keys of other models are left alone: a subclass narrowing
        `models` keeps its parent's texts."""
        known = {model.__name__: model for model in models}
        unknown = []
        for key in type(self).field_texts:
            name, _, rest = key.partition(".")
            model = known.get(name)
            if model is None or rest == "pk":
                continue
            field = model._meta.fields.get(rest.removesuffix("[]"))
            if field is None or (rest.endswith("[]") and not isinstance(field, HashField)):
                unknown.append(key)
        if unknown:
            raise ImplementationError(
                f"{type(self).__name__}.field_texts: {', '.join(map(repr, sorted(unknown)))} "
                "name no field of their model (keys are 'Model.field', 'Model.pk', "
                "'Model.field[]' for a HashField's keys)"
            )

    # What to draw from -------------------------------------------------------------------

    def _fields(self, model: type[RedisModel]) -> list[RedisField]:
        """The fields the machine writes: known kinds whose uniqueness it can predict."""
        found = []
        for field in model._meta.data_fields:
            if field_kind(field) is None:
                continue
            if field.unique and any(
                index.handle_uniqueness and not isinstance(index, KNOWN_INDEXES)
                for index in field.indexes
            ):
                continue
            found.append(field)
        return found

    def _pool(self, field: RedisField) -> list[str]:
        """The pks a related field can point to."""
        # type-ignored: called for related fields only (see _texts)
        return self.oracle.pks(field.related_model)  # type: ignore[attr-defined]

    def _held(self, model: type[RedisModel], field: RedisField) -> list[str]:
        """The values `field` holds, over all instances (at most 20)."""
        kind = field_kind(field)
        assert kind is not None
        values = {
            value
            for states in self._all_states(model)
            for _, value in items_of(kind, states.get(field.name, EMPTY[kind]))
        }
        return sorted(values, key=raw)[:20]

    def _all_states(self, model: type[RedisModel]) -> list[dict[str, Any]]:
        """The states of the instances of `model`, expired ones included (their values are
        drawn too: queries must not find them, and unique ones must be free)."""
        oracle = self.oracle
        return [*oracle.data[model].values(), *oracle.expired[model].values()]

    def _held_keys(self, model: type[RedisModel], field: RedisField) -> list[str]:
        keys = {
            k for states in self.oracle.data[model].values() for k in states.get(field.name, {})
        }
        return sorted(keys, key=raw)[:20]

    @classmethod
    def _cached(cls, key: tuple[Any, ...], build: Callable[[], _Built]) -> _Built:
        """A strategy built once per machine class (strategies are costly to build)."""
        cache = cls.__dict__.get("_strategy_cache")
        if cache is None:
            cache = {}
            type.__setattr__(cls, "_strategy_cache", cache)
        if key not in cache:
            cache[key] = build()
        built: _Built = cache[key]  # what `build` gave for this key
        return built

    def _texts(self, model: type[RedisModel], field: RedisField) -> st.SearchStrategy[str] | None:
        """Texts for `field`: its pool for a related field (None if empty), else new texts
        or ones already held."""
        if lst.is_related(field):
            pool = self._pool(field)
            return st.sampled_from(pool) if pool else None
        return self._value_texts(model, field)

    def _value_texts(self, model: type[RedisModel], field: RedisField) -> st.SearchStrategy[str]:
        """Texts for a field that is not related: new texts or ones already held."""
        # unique values clash half the time, others a quarter
        clashing = field.unique or any(field.name in g for g in model._meta.unique_together)
        return self._cached(
            ("texts", model, field.name),
            lambda: mixed(
                self.field_texts.get(f"{model.__name__}.{field.name}", _default_texts(field)),
                lambda machine: machine._held(model, field),
                fresh=1 if clashing else 3,
            ),
        )

    def _hash_keys(self, model: type[RedisModel], field: RedisField) -> st.SearchStrategy[str]:
        return self._cached(
            ("keys", model, field.name),
            lambda: mixed(
                self.field_texts.get(
                    f"{model.__name__}.{field.name}[]", st.one_of(lst.filter_keys(), lst.texts())
                ),
                lambda machine: machine._held_keys(model, field),
            ),
        )

    def _instance(self, data: st.DataObject, model: type[RedisModel]) -> str:
        return data.draw(st.sampled_from(self.oracle.pks(model)), label="pk")

    def _instance_field(
        self, data: st.DataObject
    ) -> tuple[type[RedisModel], str, RedisField] | None:
        """An instance (model, pk) and one of its fields; None when its model has none."""
        model = data.draw(st.sampled_from(self._models_with_instances()), label="model")
        fields = self._fields(model)
        if not fields:
            return None
        pk = self._instance(data, model)
        return model, pk, data.draw(st.sampled_from(fields), label="field")

    def _models_with_instances(self) -> list[type[RedisModel]]:
        return [m for m in self.oracle.models if self.oracle.data[m]]

    def _has_instances(self) -> bool:
        return bool(self._models_with_instances())

    # Running writes ----------------------------------------------------------------------

    def _write(
        self,
        what: str,
        call: Callable[[], Any],
        changes: list[tuple[type[RedisModel], str, RedisField, Any]],
        reply: Any = ANY,
        error: type[Exception] | None = None,
        refusable: bool = False,
    ) -> None:
        """Run a write, check its outcome against the oracle's prediction, record it.
        `refusable`: it may also be refused (`REFUSALS`), changing nothing."""
        met: set[tuple[type[RedisModel], str]] = set()
        together: dict[str, Any] = {}
        # values are checked in Python before anything is sent, uniqueness by the server:
        # a refused value wins over a conflict, whatever the order of the fields
        refused = conflict = False
        for model, pk, field, new in changes:
            if new is not SAME and not callable(new):
                old = self.oracle.state(model, pk, field)
                if refused_state(field, new):
                    refused = True
                elif self.oracle.conflict(model, pk, field, old, new):
                    conflict = True
                expired = self.oracle.expired[model]
                met |= {
                    (model, p) for p in self.oracle.holders(model, pk, field, old, new, expired)
                }
                together[field.name] = new
        if together:
            conflict = conflict or self.oracle.together_conflict(model, pk, together)
            expired = self.oracle.expired[model]
            met |= {(model, p) for p in self.oracle.together_holders(model, pk, together, expired)}
        if error is None:
            error = ValueError if refused else UniquenessError if conflict else None
        note(f"{what} (expected: {error.__name__ if error else 'success'})")
        self.dirty = True
        before = snapshot(self.database) if error is not None or refusable else None
        try:
            result = call()
        except (UniquenessError, *REFUSALS) as exc:
            if not (error is not None and isinstance(exc, error)):
                if not (refusable and isinstance(exc, REFUSALS)):
                    raise AssertionError(f"{what}: unexpected {exc!r}") from exc
            self._refused(what, before, met)
            return
        if error is not None:
            raise AssertionError(f"{what}: {error.__name__} expected, got reply {result!r}")
        self.stats["written"] += 1
        # every unique value it added was checked: the expired holders it met are reaped
        self._reaped(what, met, met)
        if callable(reply):
            assert reply(result), f"{what}: unexpected reply {result!r}"
        elif reply is not ANY:
            assert result == reply, f"{what}: reply {result!r}, expected {reply!r}"
        for model, pk, field, new in changes:
            if new is SAME:
                continue
            old = self.oracle.state(model, pk, field)
            self.oracle.put(model, pk, field, new(result) if callable(new) else new)
            self._touch(model, field, old)

    def _refused(self, what: str, before: Any, met: set[tuple[type[RedisModel], str]]) -> None:
        """A write was refused: it changed nothing, except that it may have reaped expired
        instances it met on the way (checks stop at the first failure, in an order the
        oracle does not model). Then the data is compared with the oracle's by the
        invariant rather than key for key."""
        if not self._reaped(what, met, set()):
            assert snapshot(self.database) == before, f"{what}: refused, but data changed"
        self.stats["refused"] += 1

    def _reaped(
        self,
        what: str,
        allowed: set[tuple[type[RedisModel], str]],
        required: set[tuple[type[RedisModel], str]],
        counter: str = "reaped by writes",
    ) -> set[tuple[type[RedisModel], str]]:
        """The expired instances a write reaped (gone from their collection), which must be
        among those it met (`allowed`) and include those it must have reaped; the oracle
        forgets them (unlinking the references to them)."""
        gone = {
            (model, pk)
            for model in self.oracle.models
            for pk in self.oracle.expired[model]
            if not self._unreaped(model, pk)
        }
        unexpected = sorted((m.__name__, pk) for m, pk in gone - allowed)
        assert not unexpected, f"{what}: reaped expired instances it did not meet: {unexpected}"
        left = sorted((m.__name__, pk) for m, pk in required - gone)
        assert not left, f"{what}: left expired instances it met unreaped: {left}"
        for model, pk in gone:
            self._forget_expired(model, pk)
            self.stats[counter] += 1
        return gone

    def _unreaped(self, model: type[RedisModel], pk: str) -> bool:
        """Whether `pk` is stored as an instance of `model` whose time has passed (not one
        created again with its pk since)."""
        meta = model._meta
        with self.database.client.pipeline(transaction=False) as pipeline:
            pipeline.sismember(meta.collection_key, pk)
            pipeline.zscore(meta.expiry_key, pk)
            pipeline.time()
            present, at, (seconds, microseconds) = pipeline.execute()
        return bool(present) and at is not None and at <= seconds + microseconds / 1e6

    def _forget_expired(self, model: type[RedisModel], pk: str) -> None:
        """The oracle reaps an expired instance (the next check probes its values)."""
        states = self.oracle.expired[model][pk]
        for field in self._fields(model):
            kind = field_kind(field)
            self._touch(model, field, states.get(field.name, EMPTY[kind]))
        self.oracle.reap(model, pk)

    # Expiry ------------------------------------------------------------------------------

    def _server_now(self) -> float:
        seconds, microseconds = self.database.client.time()
        return seconds + microseconds / 1e6

    def _models_with_expired(self) -> list[type[RedisModel]]:
        return [m for m in self.oracle.models if self.oracle.expired[m]]

    def _touch(self, model: type[RedisModel], field: RedisField, old: Any) -> None:
        """Remember that `field` was written: the next check probes its indexes with the
        values it held before and holds now."""
        if not field.indexes:
            return
        kind = field_kind(field)
        assert kind is not None
        values = items_of(kind, old)
        for states in self._all_states(model):
            values += items_of(kind, states.get(field.name, EMPTY[kind]))
        self.touched.append((model, field, values))


def _default_texts(field: RedisField) -> st.SearchStrategy[str]:
    """A field's texts when the machine is not given them: numbers mostly for a field a
    NumberRangeIndex reads as it is (other texts it refuses: a few, to check refusals)."""
    numeric = [index for index in field.indexes if isinstance(index, NumberRangeIndex)]
    if numeric and all(index.untransformed for index in numeric):
        return st.one_of(lst.number_texts(), lst.number_texts(), lst.number_texts(), lst.texts())
    return lst.texts()
