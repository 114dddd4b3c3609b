"""`ModelStateMachine`: property-test your own models against a pure-Python model of them
(the chapter "State machines" of the documentation)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import note
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from limpyd.exceptions import ImplementationError, UniquenessError
from limpyd.fields import HashField, RedisField
from limpyd.model import RedisModel
from limpyd_testing import strategies as lst
from limpyd_testing.snapshot import snapshot
from limpyd_testing.stateful.batches import BatchRules
from limpyd_testing.stateful.checks import CheckRules
from limpyd_testing.stateful.commands import COLLECTION_OPS, Op, hash_op, list_op, string_op
from limpyd_testing.stateful.config import DatabaseFactory
from limpyd_testing.stateful.core import REFUSALS, MachineCore
from limpyd_testing.stateful.drawing import mixed
from limpyd_testing.stateful.expiry import ExpiryRules
from limpyd_testing.stateful.invalid import (
    WRONG_SCORES,
    disguise_all,
    disguising,
    leaves,
    replace_leaf,
    swap_op,
    wrong_or_risky,
)
from limpyd_testing.stateful.oracle import refused_state
from limpyd_testing.stateful.values import EMPTY, SINGLE, field_kind, is_empty, read_value, text_of


def _held_pks(model: type[RedisModel]) -> Callable[[MachineCore], list[str]]:
    """The pks of `model` the running machine holds."""
    return lambda machine: machine.oracle.pks(model)


class ModelStateMachine(CheckRules, ExpiryRules, BatchRules):
    """A state machine over the instances of `models` (chapter "State machines").

    Class attributes a subclass sets: `models` (required), `database_factory`,
    `field_texts` ({"Model.field": strategy of texts}), `max_instances` (per model),
    `max_queries` (standing filters re-checked after every step), `max_probes`.
    """

    # Rules -------------------------------------------------------------------------------

    def _creation(
        self, model: type[RedisModel], targets: tuple[type[RedisModel], ...]
    ) -> st.SearchStrategy[dict[str, Any]]:
        """`model_values` for `model`, related fields drawing from the existing instances of
        `targets` (the related models that have some), texts often reusing held ones."""
        fields = self._fields(model)
        meta = model._meta
        pools = {target: mixed(st.nothing(), _held_pks(target), 1, 0) for target in targets}
        texts = {
            field.name: self._value_texts(model, field)
            for field in fields
            if not lst.is_related(field)
        }
        keys = {f.name: self._hash_keys(model, f) for f in fields if isinstance(f, HashField)}
        if not meta.pk_field.auto:
            texts[meta.pk_field.name] = mixed(
                self.field_texts.get(f"{model.__name__}.pk", lst.texts(allow_empty=False)),
                lambda machine: [*machine.oracle.pks(model), *machine.oracle.expired[model]],
                distinct=True,
            )
        names = {meta.pk_field.name} | {field.name for field in fields}
        return lst.model_values(model, pks=pools, items=texts, keys=keys).map(
            lambda values: {k: v for k, v in values.items() if k in names}
        )

    @rule(data=st.data())
    def create(self, data: st.DataObject) -> None:
        """Create an instance from `model_values` (uniqueness and pk clashes predicted), its
        values in disguise a quarter of the time (bytes, str Enum members, ints...)."""
        drawn = self._draw_creation(data)
        if drawn is None:
            return
        model, values = drawn
        if data.draw(st.integers(0, 3), label="disguised") == 0:
            values = disguise_all(data, values)
        self._create(model, values)

    @rule(data=st.data())
    def create_wrong(self, data: st.DataObject) -> None:
        """A constructor given a wrong or risky value (a field's, an item's, a hash key's, a
        sorted set member's or score): created as the oracle says, or refused changing
        nothing."""
        drawn = self._draw_creation(data)
        if drawn is None:
            return
        model, values = drawn
        paths = leaves(values)
        if not paths:
            return
        path = data.draw(st.sampled_from(paths), label="leaf")
        wrong = st.sampled_from(WRONG_SCORES) if path[-1] == "score" else wrong_or_risky()
        values = replace_leaf(values, path, data.draw(wrong, label="wrong"))
        self.stats["sent wrong"] += 1
        self._create(model, values, refusable=True)

    def _draw_creation(self, data: st.DataObject) -> tuple[type[RedisModel], dict[str, Any]] | None:
        """A model and creation kwargs for it (None: it has enough instances)."""
        model = data.draw(st.sampled_from(self.oracle.models), label="model")
        if len(self.oracle.data[model]) >= self.max_instances:
            return None
        fields = self._fields(model)
        targets = tuple(
            target
            for target in dict.fromkeys(
                field.require_related_model() for field in fields if lst.is_related(field)
            )
            if self.oracle.data[target]
        )
        values = data.draw(
            self._cached(("create", model, targets), lambda: self._creation(model, targets)),
            label="values",
        )
        return model, values

    def _create(
        self, model: type[RedisModel], values: dict[str, Any], refusable: bool = False
    ) -> None:
        """`model(**values)`, its outcome predicted. `refusable`: it may also be refused
        (`REFUSALS`), changing nothing; values without a stored text must be."""
        meta = model._meta
        what = f"{model.__name__}(**{values!r})"
        try:
            states, adopt = self.oracle.states_of(model, values)
            pk_value = values.get(meta.pk_field.name)
            pk = None if pk_value is None else text_of(pk_value)
        except (TypeError, ValueError):
            self._refuse_creation(what, model, values)
            return
        if not values and not states and not adopt:
            return  # Model() would only make an unsaved instance
        error: type[Exception] | None = None
        expired = self.oracle.expired[model]
        # expired instances hold nothing: their pk and unique values are free (the
        # creation reaps them first)
        met: set[str] = set()
        if pk is not None and pk in self.oracle.data[model]:
            error = UniquenessError
        if pk is not None and pk in expired:
            met.add(pk)
        for name, state in states.items():
            field = meta.fields[name]
            kind = field_kind(field)
            if self.oracle.conflict(model, None, field, EMPTY[kind], state):
                error = UniquenessError
            met |= self.oracle.holders(model, None, field, EMPTY[kind], state, expired)
        if self.oracle.together_conflict(model, None, states):
            error = UniquenessError
        met |= self.oracle.together_holders(model, None, states, expired)
        if any(refused_state(meta.fields[name], state) for name, state in states.items()):
            error = ValueError
        if pk is None and not meta.pk_field.auto:
            # a PKField given None is a wrong value; not given, a missing one
            given = meta.pk_field.name in values
            error = ValueError if given else ImplementationError
        note(f"{what} (expected: {error.__name__ if error else 'success'})")
        self.dirty = True
        before = snapshot(self.database) if error is not None or refusable else None
        try:
            instance = model(**values)
        except (UniquenessError, ImplementationError, *REFUSALS) as exc:
            if not isinstance(exc, error or ()):
                if not (refusable and isinstance(exc, REFUSALS)):
                    raise AssertionError(f"{what}: unexpected {exc!r}") from exc
            self._refused(what, before, {(model, p) for p in met})
            return
        assert error is None, f"{what}: {error.__name__} expected, the instance was created"
        created = instance.pk.get()
        assert created is not None, f"{what}: the instance created has no pk"
        if meta.pk_field.auto:
            self.oracle.counters[model] += 1
            expected_pk = str(self.oracle.counters[model])
            assert created == expected_pk, f"{what}: pk {created!r}, expected {expected_pk!r}"
        else:
            assert created == pk, f"{what}: pk {created!r}, expected {pk!r}"
        reaped = self._reaped(what, {(model, p) for p in met}, {(model, p) for p in met})
        self.stats["created over expired"] += bool(reaped)
        self.oracle.add(model, created, states)
        if meta.default_ttl is not None:
            self.oracle.expiring[model].add(created)
        self.stats["created"] += 1
        for name in states:
            field = meta.fields[name]
            self._touch(model, field, EMPTY[field_kind(field)])
        for field in adopt:
            self.oracle.put(model, created, field, read_value(instance, field))

    def _refuse_creation(self, what: str, model: type[RedisModel], values: dict[str, Any]) -> None:
        """A creation with a value that has no text: it must raise, changing nothing."""
        note(f"{what} (expected: refused)")
        self.dirty = True
        before = snapshot(self.database)
        try:
            model(**values)
        except (UniquenessError, *REFUSALS):
            assert snapshot(self.database) == before, f"{what}: refused, but data changed"
            self.stats["refused"] += 1
            return
        raise AssertionError(f"{what}: created, but a value has no text to store")

    def _can_modify(self, kinds: tuple[str, ...]) -> bool:
        return any(
            field_kind(field) in kinds
            for model in self._models_with_instances()
            for field in self._fields(model)
        )

    def _modify(self, data: st.DataObject, kinds: tuple[str, ...]) -> None:
        """Run one modifier of a field of one of these kinds, with generated arguments."""
        models = [
            model
            for model in self._models_with_instances()
            if any(field_kind(field) in kinds for field in self._fields(model))
        ]
        model = data.draw(st.sampled_from(models), label="model")
        pk = self._instance(data, model)
        candidates = []
        for field in self._fields(model):
            kind = field_kind(field)
            if kind not in kinds:
                continue
            if self._texts(model, field) is not None or not is_empty(
                kind, self.oracle.state(model, pk, field)
            ):
                candidates.append(field)
        if not candidates:
            return
        field = data.draw(st.sampled_from(candidates), label="field")
        kind = field_kind(field)
        assert kind is not None
        old = self.oracle.state(model, pk, field)
        texts = self._texts(model, field)
        if kind == "hash":
            # type-ignored: a hash field is not related: it has texts
            op = hash_op(data, old, texts, self._hash_keys(model, field))  # type: ignore[arg-type]
        elif kind in SINGLE:
            op = string_op(data, kind, old, texts, lst.is_related(field))
        else:
            make = COLLECTION_OPS[kind]
            op = make(data, kind, old, texts)
        self._send(data, model, pk, field, op)

    def _send(
        self, data: st.DataObject, model: type[RedisModel], pk: str, field: RedisField, op: Op
    ) -> None:
        """Run `op` on `field` of instance `pk`, its arguments sometimes disguised."""
        sent = op
        if data.draw(st.integers(0, 3), label="disguised") == 0:
            sent = swap_op(op, disguising(data))
        bound = getattr(model.lazy_connect(pk), field.name)
        self._write(
            f"{model.__name__}({pk!r}).{field.name}.{sent.describe()}",
            lambda: getattr(bound, sent.method)(*sent.args, **sent.kwargs),
            [(model, pk, field, op.new)],
            reply=op.reply,
            error=op.error,
        )

    @precondition(lambda self: self._can_modify(SINGLE))
    @rule(data=st.data())
    def modify_string(self, data: st.DataObject) -> None:
        """A modifier of a StringField or an InstanceHashField."""
        self._modify(data, SINGLE)

    @precondition(lambda self: self._can_modify(("set",)))
    @rule(data=st.data())
    def modify_set(self, data: st.DataObject) -> None:
        """A modifier of a SetField."""
        self._modify(data, ("set",))

    @precondition(lambda self: self._can_modify(("list",)))
    @rule(data=st.data())
    def modify_list(self, data: st.DataObject) -> None:
        """A modifier of a ListField."""
        self._modify(data, ("list",))

    def _lists_to_shorten(self) -> list[tuple[type[RedisModel], str, RedisField]]:
        """The list fields of instances that hold 2+ items or can be given some."""
        return [
            (model, pk, field)
            for model in self._models_with_instances()
            for field in self._fields(model)
            if field_kind(field) == "list"
            for pk in self.oracle.pks(model)
            if self._texts(model, field) is not None
            or len(self.oracle.state(model, pk, field)) >= 2
        ]

    @precondition(lambda self: bool(self._lists_to_shorten()))
    @rule(data=st.data())
    def shorten_list(self, data: st.DataObject) -> None:
        """A pop, LTRIM or LREM on a list of 2+ items (pushed first when it holds fewer):
        trims that keep one end are rare among all the modifiers, and their index changes
        are the easiest to get wrong."""
        model, pk, field = data.draw(st.sampled_from(self._lists_to_shorten()), label="list")
        old = self.oracle.state(model, pk, field)
        if len(old) < 2:
            texts = self._texts(model, field)
            assert texts is not None
            pushed = tuple(data.draw(st.lists(texts, min_size=2, max_size=4), label="pushed"))
            push = Op("rpush", pushed, new=old + pushed, reply=len(old) + len(pushed))
            self._send(data, model, pk, field, push)
            old = self.oracle.state(model, pk, field)
            if len(old) < 2:  # the push was refused (a unique or invalid value)
                return
        self._send(data, model, pk, field, list_op(data, "list", old, None, shorten=True))

    @precondition(lambda self: self._can_modify(("hash",)))
    @rule(data=st.data())
    def modify_hash(self, data: st.DataObject) -> None:
        """A modifier of a HashField."""
        self._modify(data, ("hash",))

    @precondition(lambda self: self._can_modify(("zset",)))
    @rule(data=st.data())
    def modify_zset(self, data: st.DataObject) -> None:
        """A modifier of a SortedSetField."""
        self._modify(data, ("zset",))

    @precondition(lambda self: self._has_instances())
    @rule(data=st.data())
    def hmset(self, data: st.DataObject) -> None:
        """`instance.hmset(**values)` on some InstanceHashFields."""
        model = data.draw(st.sampled_from(self._models_with_instances()), label="model")
        fields = [f for f in self._fields(model) if field_kind(f) == "hashfield"]
        fields = [f for f in fields if self._texts(model, f) is not None]
        if not fields:
            return
        pk = self._instance(data, model)
        chosen = data.draw(
            st.lists(st.sampled_from(fields), min_size=1, unique=True), label="fields"
        )
        # type-ignored: fields with texts only (filtered above)
        values = {f.name: data.draw(self._texts(model, f), label=f.name) for f in chosen}  # type: ignore[arg-type]
        instance = model.lazy_connect(pk)
        self._write(
            f"{model.__name__}({pk!r}).hmset(**{values!r})",
            lambda: instance.hmset(**values),
            [(model, pk, f, values[f.name]) for f in chosen],
            reply=True,
        )

    @precondition(lambda self: self._has_instances())
    @rule(data=st.data())
    def hdel(self, data: st.DataObject) -> None:
        """`instance.hdel(*names)` on some InstanceHashFields."""
        model = data.draw(st.sampled_from(self._models_with_instances()), label="model")
        fields = [f for f in self._fields(model) if field_kind(f) == "hashfield"]
        if not fields:
            return
        pk = self._instance(data, model)
        chosen = data.draw(
            st.lists(st.sampled_from(fields), min_size=1, unique=True), label="fields"
        )
        had = sum(self.oracle.state(model, pk, f) is not None for f in chosen)
        instance = model.lazy_connect(pk)
        names = [f.name for f in chosen]
        self._write(
            f"{model.__name__}({pk!r}).hdel(*{names!r})",
            lambda: instance.hdel(*names),
            [(model, pk, f, None) for f in chosen],
            reply=had,
        )

    @precondition(lambda self: self._has_instances())
    @rule(data=st.data())
    def delete_field(self, data: st.DataObject) -> None:
        """`instance.field.delete()`."""
        drawn = self._instance_field(data)
        if drawn is None:
            return
        model, pk, field = drawn
        kind = field_kind(field)
        had = not is_empty(kind, self.oracle.state(model, pk, field))
        bound = getattr(model.lazy_connect(pk), field.name)
        self._write(
            f"{model.__name__}({pk!r}).{field.name}.delete()",
            bound.delete,
            [(model, pk, field, EMPTY[kind])],
            reply=int(had),
        )

    @precondition(lambda self: self._has_instances())
    @rule(data=st.data())
    def delete_instance(self, data: st.DataObject) -> None:
        """`instance.delete()`: related fields pointing to it are unlinked."""
        model = data.draw(st.sampled_from(self._models_with_instances()), label="model")
        pk = self._instance(data, model)
        note(f"{model.__name__}({pk!r}).delete()")
        self.dirty = True
        for field in self._fields(model):
            self._touch(model, field, self.oracle.state(model, pk, field))
        model.lazy_connect(pk).delete()
        self._reaped(f"{model.__name__}({pk!r}).delete()", set(), set())
        self.oracle.delete(model, pk)


def run_state_machine(
    machine_class: type[ModelStateMachine],
    database_factory: DatabaseFactory | None = None,
    *,
    settings: Settings | None = None,
) -> None:
    """Run `machine_class` as a test (see `ModelStateMachine.run`)."""
    machine_class.run(database_factory=database_factory, settings=settings)
