"""Batches: plain writes queued in pipelines and transactions (`contrib.database
.PipelineDatabase`), instances deleted before or inside them; and, now and then, thousands of
members written at once on an indexed field."""

from __future__ import annotations

import threading
from typing import Any

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from limpyd.contrib.database import PipelineDatabase
from limpyd.exceptions import DoesNotExist
from limpyd.fields.base import RedisField
from limpyd.model import RedisModel
from limpyd.text import glob_escape
from limpyd_testing import strategies as lst
from limpyd_testing.stateful.commands import SAME, Op
from limpyd_testing.stateful.config import use_database
from limpyd_testing.stateful.core import MachineCore
from limpyd_testing.stateful.invalid import InvalidInputRules
from limpyd_testing.stateful.oracle import refused_state
from limpyd_testing.stateful.values import EMPTY, field_kind

#: Pairs per bulk write (rare: see `bulk_write`), twice as many members for a set or a list:
#: past one chunk of a script call (1000 arguments), and past what one Lua call takes
#: (about 8000).
BULK_SIZES = st.sampled_from([1001, 4501])


class BatchRules(InvalidInputRules, MachineCore):
    """Pipelines, transactions and bulk writes."""

    #: Whether `bulk_write` may run. A machine testing something else may turn it off:
    #: after a bulk write, every later step checks thousands of index entries.
    bulk_writes = True

    def _plain(self, model: type[RedisModel]) -> list[RedisField]:
        """The fields a pipeline may write: not indexed (nor unique, nor related)."""
        return [f for f in self._fields(model) if not f.indexes and not lst.is_related(f)]

    def _can_batch(self) -> bool:
        return any(self._plain(m) for m in self._models_with_instances())

    def _pipelines(self) -> PipelineDatabase:
        """A PipelineDatabase on the machine's server (the machine's own if it is one)."""
        if isinstance(self.database, PipelineDatabase):
            return self.database
        found = getattr(self, "_pipeline_database", None)
        if found is None:
            found = self._pipeline_database = PipelineDatabase(backend=self.database.backend)
            self.extra_databases.append(found)
        return found

    @precondition(lambda self: self._can_batch())
    @rule(data=st.data())
    def pipeline_batch(self, data: st.DataObject) -> None:
        """Plain writes queued in a pipeline or a transaction, some on an instance deleted
        before the batch or (by another thread) inside it: after execute() the oracle
        agrees; each write on a missing instance raised DoesNotExist at the call; a write
        checked before the victim was deleted left at most its own key behind."""
        model = data.draw(
            st.sampled_from([m for m in self._models_with_instances() if self._plain(m)]),
            label="model",
        )
        fields = self._plain(model)
        pks = self.oracle.pks(model)
        victim = data.draw(st.none() | st.sampled_from(pks), label="deleted")
        when = data.draw(st.sampled_from(["before", "inside"]), label="when")
        mode = data.draw(st.sampled_from(["pipeline", "multi", "transaction"]), label="mode")
        count = data.draw(st.integers(1, 4), label="writes")
        self.dirty = True
        if victim is not None and when == "before":
            self._delete_now(model, victim)
        queued: list[tuple[str, str, str]] = []  # (pk, field name, what) queued at the call
        database = self._pipelines()
        restore = use_database(list(self.oracle.models), database)

        def queue(pipeline: Any) -> None:
            for step in range(count):
                if victim is not None and when == "inside" and step == count // 2:
                    thread = threading.Thread(target=self._delete_now, args=(model, victim))
                    thread.start()
                    thread.join()
                pk = data.draw(st.sampled_from(pks), label="pk")
                field = data.draw(st.sampled_from(fields), label="field")
                gone = pk not in self.oracle.data[model]
                op = self._plain_op(data, model, field, pk)
                if op is None:
                    continue
                what = f"{model.__name__}({pk!r}).{field.name}.{op.describe()} ({mode})"
                note(what + (" on a missing instance" if gone else ""))
                bound = getattr(model.lazy_connect(pk), field.name)
                try:
                    getattr(bound, op.method)(*op.args, **op.kwargs)
                except DoesNotExist:
                    assert gone, f"{what}: DoesNotExist, but the instance exists"
                    continue
                assert not gone, f"{what}: queued on a missing instance, no DoesNotExist"
                queued.append((pk, field.name, what))
                if not gone:
                    old = self.oracle.state(model, pk, field)
                    self.oracle.put(model, pk, field, op.new)
                    self._touch(model, field, old)

        try:
            if mode == "transaction":
                database.transaction(queue)
            else:
                with database.pipeline(transaction=mode == "multi") as pipeline:
                    queue(pipeline)
                    pipeline.execute()
        except AssertionError:
            raise
        except Exception as exc:  # a write the batch applied on a missing instance, say
            raise AssertionError(f"the batch {[w for _, _, w in queued]!r} raised {exc!r}") from exc
        finally:
            restore()
        if victim is not None:
            # writes checked before the victim was deleted (inside) ran after it: their keys
            # are back, owned by no instance, as documented (a creation of that pk deletes
            # them); any other key of the victim is a defect
            meta = model._meta
            strays = {
                meta.hash_key(victim)
                if field_kind(meta.fields[name]) == "hashfield"
                else meta.instance_key(victim, name)
                for pk, name, _ in queued
                if pk == victim
            }
            pattern = glob_escape(meta.instance_key(victim, "")) + "*"
            keys = set(self.database.client.scan_iter(match=pattern))
            assert keys <= strays, f"keys written for the deleted {victim!r}: {keys!r}"
            if keys:
                self.database.client.delete(*keys)
                self.stats["stray keys"] += 1
        self.stats["batches"] += 1

    def _delete_now(self, model: type[RedisModel], pk: str) -> None:
        """Delete an instance (outside any pipeline); the oracle forgets it."""
        if pk not in self.oracle.data[model]:
            return
        for field in self._fields(model):
            self._touch(model, field, self.oracle.state(model, pk, field))
        model.lazy_connect(pk).delete()
        self.oracle.delete(model, pk)

    def _plain_op(
        self, data: st.DataObject, model: type[RedisModel], field: RedisField, pk: str
    ) -> Op | None:
        """A modifier of a plain field whose outcome does not depend on its reply (none with
        a random reply, none refused); drawn on the oracle's state (empty if missing)."""
        live = pk in self.oracle.data[model]
        kind = field_kind(field)
        assert kind is not None
        old = self.oracle.state(model, pk, field) if live else EMPTY[kind]
        op = self._op(data, model, field, old, self._texts(model, field))
        if op.error is not None or callable(op.new) or op.new is SAME or op.method == "delete":
            return None
        if refused_state(field, op.new):
            return None
        return op

    @precondition(
        lambda self: (
            self.bulk_writes and self._has_instances() and self.steps >= 4 and not self.bulked
        )
    )
    @rule(data=st.data())
    def bulk_write(self, data: st.DataObject) -> None:
        """Thousands of members at once (SADD, RPUSH, ZADD, HSET with a mapping) on an
        indexed field; once per example at most, late in it (costly)."""
        self.bulked = True
        choices = [
            (model, field)
            for model in self._models_with_instances()
            for field in self._fields(model)
            if field.indexes
            and not lst.is_related(field)
            and field_kind(field) in ("set", "list", "zset", "hash")
        ]
        if not choices:
            return
        model, field = data.draw(st.sampled_from(choices), label="field")
        pk = self._instance(data, model)
        kind = field_kind(field)
        size = data.draw(BULK_SIZES, label="size") * (1 if kind in ("hash", "zset") else 2)
        # type-ignored: choices hold fields with texts only
        prefix = data.draw(self._texts(model, field), label="prefix")  # type: ignore[arg-type]
        texts = [f"{prefix}{i}" for i in range(size)]
        if refused_state(field, {"k0": texts[0]} if kind == "hash" else tuple(texts[:1])):
            texts = [str(i) for i in range(size)]  # a NumberRangeIndex: numbers
        old = self.oracle.state(model, pk, field)
        if kind == "set":
            op = Op("sadd", tuple(texts), new=old | set(texts), reply=len(set(texts) - old))
        elif kind == "list":
            op = Op("rpush", tuple(texts), new=old + tuple(texts), reply=len(old) + size)
        elif kind == "zset":
            scores = {text: float(i % 7) for i, text in enumerate(texts)}
            op = Op("zadd", (scores,), new={**old, **scores}, reply=len(set(texts) - set(old)))
        else:
            mapping = {f"k{i}": text for i, text in enumerate(texts)}
            op = Op(
                "hset",
                kwargs={"mapping": mapping},
                new={**old, **mapping},
                reply=len(set(mapping) - set(old)),
            )
        bound = getattr(model.lazy_connect(pk), field.name)
        self.stats["bulk"] += 1
        self._write(
            f"{model.__name__}({pk!r}).{field.name}.{op.method}(<{size} members from "
            f"{texts[0]!r}>)",
            lambda: getattr(bound, op.method)(*op.args, **op.kwargs),
            [(model, pk, field, op.new)],
            reply=op.reply,
        )
