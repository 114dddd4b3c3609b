"""The expiry rules: instances expiring now or later, `persist()`, reaping by
`reap_expired()` and by writes on expired instances, and both racing with a client that
creates the expired pk again."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from limpyd import writes
from limpyd.exceptions import DoesNotExist
from limpyd.model import RedisModel
from limpyd.text import glob_escape
from limpyd_testing.snapshot import snapshot
from limpyd_testing.stateful.core import MachineCore
from limpyd_testing.stateful.values import EMPTY, field_kind, read_value


class ExpiryRules(MachineCore):
    """Rules making instances expire, and reaping them."""

    def _expiry_only(self, what: str, before: dict[str, Any], model: type[RedisModel]) -> None:
        """Only the model's expiry times changed: every other key is as it was."""
        key = model._meta.expiry_key
        after = {k: v for k, v in snapshot(self.database).items() if k != key}
        assert after == {k: v for k, v in before.items() if k != key}, (
            f"{what}: changed other keys than the expiry times"
        )

    @precondition(lambda self: self._has_instances())
    @rule(data=st.data())
    def expire_now(self, data: st.DataObject) -> None:
        """`instance.expireat(server time - 1)`: gone at once for every read, as if deleted
        (related fields pointing to it included), but its data, index entries and the
        references to it stay until it is reaped."""
        model = data.draw(st.sampled_from(self._models_with_instances()), label="model")
        pk = self._instance(data, model)
        what = f"{model.__name__}({pk!r}).expireat(now - 1)"
        note(what)
        self.dirty = True
        before = snapshot(self.database)
        assert model.lazy_connect(pk).expireat(self._server_now() - 1) is True, what
        self._expiry_only(what, before, model)
        for field in self._fields(model):
            self._touch(model, field, self.oracle.state(model, pk, field))
        self.oracle.expire(model, pk)
        self.stats["expired"] += 1

    @precondition(lambda self: self._has_instances())
    @rule(data=st.data())
    def expire_later(self, data: st.DataObject) -> None:
        """`instance.expire(seconds)`, far in the future: only `ttl()` tells."""
        model = data.draw(st.sampled_from(self._models_with_instances()), label="model")
        pk = self._instance(data, model)
        seconds = data.draw(st.integers(3600, 10**7), label="seconds")
        what = f"{model.__name__}({pk!r}).expire({seconds})"
        note(what)
        self.dirty = True
        instance = model.lazy_connect(pk)
        before = snapshot(self.database)
        assert instance.expire(seconds) is True, what
        self._expiry_only(what, before, model)
        ttl = instance.ttl()
        assert ttl is not None and seconds - 60 < ttl <= seconds, f"{what}: ttl() is {ttl!r}"
        self.oracle.expiring[model].add(pk)
        self.stats["expiring"] += 1

    @precondition(lambda self: self._has_instances())
    @rule(data=st.data())
    def persist(self, data: st.DataObject) -> None:
        """`instance.persist()`: whether it had an expiry time; `ttl()` is None after."""
        model = data.draw(st.sampled_from(self._models_with_instances()), label="model")
        pk = self._instance(data, model)
        what = f"{model.__name__}({pk!r}).persist()"
        note(what)
        self.dirty = True
        instance = model.lazy_connect(pk)
        had = pk in self.oracle.expiring[model]
        before = snapshot(self.database)
        result = instance.persist()
        assert result is had, f"{what} is {result!r}, expected {had!r}"
        self._expiry_only(what, before, model)
        assert instance.ttl() is None, f"{what}: ttl() is {instance.ttl()!r} after"
        self.oracle.expiring[model].discard(pk)
        self.stats["persisted"] += had

    @rule(data=st.data())
    def reap_expired(self, data: st.DataObject) -> None:
        """`Model.reap_expired()`: the number of its expired instances, none of whose keys,
        index entries or references remain after."""
        models = self._models_with_expired() or self.oracle.models
        model = data.draw(st.sampled_from(models), label="model")
        what = f"{model.__name__}.reap_expired()"
        note(what)
        self.dirty = True
        due = list(self.oracle.expired[model])
        reaped = model.reap_expired()
        self._check_reaped(what, model, due, reaped)

    def _check_reaped(
        self, what: str, model: type[RedisModel], due: list[str], reaped: int
    ) -> None:
        """`reap_expired()` returned `reaped` and reaped exactly these pks."""
        assert reaped == len(due), f"{what} is {reaped}, expected {len(due)} ({due!r})"
        meta = model._meta
        client = self.database.client
        left = [pk for pk in due if self._unreaped(model, pk)]
        assert not left, f"{what}: {left!r} still stored as expired instances"
        for pk in due:
            keys = list(client.scan_iter(match=glob_escape(meta.instance_key(pk, "")) + "*"))
            assert not keys, f"{what}: keys of the reaped {pk!r} remain: {keys!r}"
            assert client.zscore(meta.expiry_key, pk) is None, f"{what}: {pk!r} still expires"
            self._forget_expired(model, pk)
        self._reaped(what, set(), set())
        self.stats["reaped"] += reaped

    # Races: an expired pk created again while it is being reaped --------------------------

    def _racing_models(self) -> list[type[RedisModel]]:
        """Models with expired instances whose pk can be given (not an AutoPKField)."""
        return [m for m in self._models_with_expired() if not m._meta.pk_field.auto]

    def _recreate(
        self, model: type[RedisModel], pk: str, reap: Callable[[RedisModel], object]
    ) -> None:
        """Another client reaps the expired `pk` (with `reap`) and creates an instance with
        that pk again, with its defaults only; the oracle follows."""
        note(f"(another client) reaps {model.__name__}({pk!r}) and creates it again")
        reap(model.lazy_connect(pk))
        self._forget_expired(model, pk)
        values = {model._meta.pk_field.name: pk}
        states, adopt = self.oracle.states_of(model, values)
        instance = model(**values)
        self.oracle.add(model, pk, states)
        if model._meta.default_ttl is not None:
            self.oracle.expiring[model].add(pk)
        for field in self._fields(model):
            self._touch(model, field, EMPTY[field_kind(field)])
        for field in adopt:
            self.oracle.put(model, pk, field, read_value(instance, field))
        self.stats["raced"] += 1

    @precondition(lambda self: self._racing_models())
    @rule(data=st.data())
    def reap_race(self, data: st.DataObject) -> None:
        """`reap_expired()` while another client creates again one of the pks it listed,
        between its listing and its deletes (`writes.rewrite_many` wrapped): the new
        instance survives, the count is that of the instances still expired."""
        model = data.draw(st.sampled_from(self._racing_models()), label="model")
        what = f"{model.__name__}.reap_expired() (racing)"
        note(what)
        self.dirty = True
        due = list(self.oracle.expired[model])
        raced: list[str] = []
        original = writes.rewrite_many

        def racing(database: Any, plans: list[Any]) -> list[bool]:
            if plans and not raced:
                raced.append(data.draw(st.sampled_from([p.pk for p in plans]), label="raced"))
                self._recreate(model, raced[0], RedisModel._reap)
            return original(database, plans)

        writes.rewrite_many = racing
        try:
            reaped = model.reap_expired()
        finally:
            writes.rewrite_many = original
        self._check_reaped(what, model, [pk for pk in due if pk not in raced], reaped)

    @precondition(lambda self: self._racing_models())
    @rule(data=st.data())
    def write_expired_race(self, data: st.DataObject) -> None:
        """A write meets an expired instance; before it reaps it (`_reap` wrapped on the
        model), another client reaps it and creates that pk again: the write raises
        DoesNotExist and the new instance survives, or it applies to the new instance."""
        model = data.draw(st.sampled_from(self._racing_models()), label="model")
        pk = data.draw(st.sampled_from(sorted(self.oracle.expired[model])), label="pk")
        how, call, effect = data.draw(
            st.sampled_from(self._deleting_calls(model, pk)), label="write"
        )
        what = f"{model.__name__}({pk!r}).{how} (expired, racing)"
        note(what)
        self.dirty = True
        original = RedisModel._reap
        raced: list[bool] = []

        def racing(instance: RedisModel) -> bool:
            if not raced:
                raced.append(True)
                self._recreate(model, pk, original)
            return original(instance)

        # a monkeypatch, undone below (mypy binds `racing` when comparing: assignment)
        model._reap = racing  # type: ignore[method-assign, assignment]
        try:
            call()
        except DoesNotExist:
            pass
        else:
            if raced:  # applied to the instance created again
                effect()
        finally:
            del model._reap
        self._reaped(what, {(model, pk)}, set(), counter="written on expired")

    def _deleting_calls(
        self, model: type[RedisModel], pk: str
    ) -> list[tuple[str, Callable[[], Any], Callable[[], None]]]:
        """Writes on the instance `pk` that need no value: `delete()`, a field's `delete()`,
        `hdel(name)`; with what each does to the oracle."""
        instance = model.lazy_connect(pk)
        calls: list[tuple[str, Callable[[], Any], Callable[[], None]]] = [
            ("delete()", instance.delete, lambda: self._forget_live(model, pk))
        ]
        for field in self._fields(model):
            empty = EMPTY[field_kind(field)]
            calls.append(
                (
                    f"{field.name}.delete()",
                    getattr(instance, field.name).delete,
                    partial(self._empty_field, model, pk, field, empty),
                )
            )
            if field_kind(field) == "hashfield":
                calls.append(
                    (
                        f"hdel({field.name!r})",
                        partial(instance.hdel, field.name),
                        partial(self._empty_field, model, pk, field, None),
                    )
                )
        return calls

    def _forget_live(self, model: type[RedisModel], pk: str) -> None:
        for field in self._fields(model):
            self._touch(model, field, self.oracle.state(model, pk, field))
        self.oracle.delete(model, pk)

    def _empty_field(self, model: type[RedisModel], pk: str, field: Any, empty: Any) -> None:
        self._touch(model, field, self.oracle.state(model, pk, field))
        self.oracle.put(model, pk, field, empty)

    @precondition(lambda self: self._models_with_expired())
    @rule(data=st.data())
    def write_expired(self, data: st.DataObject) -> None:
        """A write on an expired instance (a field's `delete()`, `hdel`, `delete()`): it
        raises DoesNotExist, having reaped the instance."""
        model = data.draw(st.sampled_from(self._models_with_expired()), label="model")
        pk = data.draw(st.sampled_from(sorted(self.oracle.expired[model])), label="pk")
        calls = self._deleting_calls(model, pk)
        how, call, _ = data.draw(st.sampled_from(calls), label="write")
        what = f"{model.__name__}({pk!r}).{how} (expired)"
        note(what)
        self.dirty = True
        try:
            call()
        except DoesNotExist:
            pass
        else:
            raise AssertionError(f"{what}: DoesNotExist expected")
        self._reaped(what, {(model, pk)}, {(model, pk)}, counter="written on expired")
