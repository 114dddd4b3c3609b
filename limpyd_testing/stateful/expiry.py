"""The expiry rules: instances expiring now or later, `persist()`, reaping by
`reap_expired()` and by writes on expired instances."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from limpyd.exceptions import DoesNotExist
from limpyd.model import RedisModel
from limpyd.text import glob_escape
from limpyd_testing.snapshot import snapshot
from limpyd_testing.stateful.core import MachineCore
from limpyd_testing.stateful.values import field_kind


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

    @precondition(lambda self: self._models_with_expired())
    @rule(data=st.data())
    def write_expired(self, data: st.DataObject) -> None:
        """A write on an expired instance (a field's `delete()`, `hdel`, `delete()`): it
        raises DoesNotExist, having reaped the instance."""
        model = data.draw(st.sampled_from(self._models_with_expired()), label="model")
        pk = data.draw(st.sampled_from(sorted(self.oracle.expired[model])), label="pk")
        instance = model.lazy_connect(pk)
        fields = self._fields(model)
        hashed = [f.name for f in fields if field_kind(f) == "hashfield"]
        calls: list[tuple[str, Callable[[], Any]]] = [("delete()", instance.delete)]
        for field in fields:
            calls.append((f"{field.name}.delete()", getattr(instance, field.name).delete))
        for name in hashed:
            calls.append((f"hdel({name!r})", lambda name=name: instance.hdel(name)))
        how, call = data.draw(st.sampled_from(calls), label="write")
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
