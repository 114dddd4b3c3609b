"""Machine 1: index consistency, through `limpyd_testing.stateful.ModelStateMachine`."""

from __future__ import annotations

from typing import Any

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from limpyd.contrib.indexes import MultiIndexes
from limpyd.fields.base import RedisField
from limpyd.model import RedisModel
from limpyd_testing.snapshot import snapshot
from limpyd_testing.stateful import ModelStateMachine
from properties.models import INDEX_FIELD_TEXTS, index_models
from properties.support import scaled

MODELS = index_models(None)


class IndexConsistencyMachine(ModelStateMachine):
    """Two models holding every field type under every index type: EqualIndex,
    TextRangeIndex, NumberRangeIndex, configured ones (a prefix, a lowercasing transform), a
    multi-index with a key and a transform that drops blank values, the date/time
    multi-indexes (DateTimeIndex, DateIndex, SimpleDateTimeIndex, TimeIndex), EndsWithIndex;
    unique fields on an EqualIndex, a TextRangeIndex and a NumberRangeIndex; an AutoPK model,
    a PKField one, and one with nothing but its pk (a PKField).

    Rules (those of ModelStateMachine): creation with several values; every modifier of
    every field (set/getset/setnx/getdel/append/incr.../setrange/setbit, hset/hsetnx/
    hincrby..., sadd/srem/spop, push/pop/lset/linsert/lrem/ltrim, zadd with its flags/
    zincrby/zrem/zpop/zremrangeby..., hash hset/hdel/hincrby...), `hmset`/`hdel` on the
    instance, field deletion, instance deletion, filtered and sorted collections; expiry:
    `expireat(server time - 1)` (expired at once), `expire(an hour or more)`, `persist()`,
    `Model.reap_expired()`, a write on an expired instance, creations and writes taking the
    pk or a unique value of an expired instance; and here `clean_indexes`/`rebuild_indexes`
    of a field, for all its indexes or one index class.

    Invariants, after every step:
    - the stored values of every instance and each model's collection equal the oracle's;
    - every filter (every index, prefix and suffix, standing queries and probes of the
      values just written) answers exactly as the oracle's evaluation of the documented
      semantics (equality of the transformed text, byte-wise order, float order with
      non-numbers as 0, reversed text for endswith);
    - a refused write (UniquenessError, an error reply) changes no key;
    - `limpyd_testing.integrity.check` finds no missing or stale entry, no unique value held
      twice, no orphan key;
    - `clean_indexes` deletes exactly the keys of the indexes asked for and nothing else,
      and `rebuild_indexes` then gives back, key for key, what the writes had maintained
      (expired instances not reaped yet included: their entries stay until reaping);
    - expiry in index consistency: an expired instance is at once out of every collection,
      filter and probe (its values are still probed), `exists` and field reads, and related
      collections, while its keys, index entries and the references to it stay as stored
      (the integrity check still clean); reaping it (`reap_expired()`, which returns the
      number of expired instances, or a write meeting it) removes all of them; its pk and
      unique values are free for new instances; `expire`/`persist` change only the expiry
      times (`ttl()` positive, then None; `persist()` tells whether there was one).
    """

    models = MODELS.all
    field_texts = INDEX_FIELD_TEXTS
    max_instances = 5
    weight = 0.6

    @initialize(data=st.data(), count=st.integers(1, 5))
    def populate(self, data: st.DataObject, count: int) -> None:
        """Start with a few instances (whatever rules an example leaves out)."""
        for _ in range(count):
            self.create(data)

    @precondition(lambda self: self._has_instances())
    @rule(data=st.data())
    def clean_and_rebuild(self, data: st.DataObject) -> None:
        """`field.clean_indexes(index_class)` then `field.rebuild_indexes(index_class)`."""
        indexing = [m for m in self._models_with_instances() if _indexed(m)]
        if not indexing:
            return
        model: type[RedisModel] = data.draw(st.sampled_from(indexing), label="model")
        field: RedisField = data.draw(st.sampled_from(_indexed(model)), label="field")
        classes: list[Any] = [None]
        for index in field.indexes:
            classes.append(type(index))
            classes += [multi for multi in getattr(index, "composition", ()) if multi.key]
        index_class = data.draw(st.sampled_from(list(dict.fromkeys(classes))), label="index")
        selected = [i for i in field.indexes if index_class is None or isinstance(i, index_class)]
        note(f"{model.__name__}.{field.name}.clean_indexes({_name(index_class)}) and rebuild")
        before = snapshot(self.database)
        wanted = {key for index in selected for key in _keys(self.database, index)}

        deleted = field.clean_indexes(index_class)
        after_clean = snapshot(self.database)
        assert deleted == len(wanted), f"clean_indexes deleted {deleted}, expected {len(wanted)}"
        assert after_clean == {k: v for k, v in before.items() if k not in wanted}, (
            "clean_indexes changed other keys than those of the selected indexes"
        )
        rebuilt = field.rebuild_indexes(index_class)
        # every stored instance: expired ones not reaped yet keep their entries until then
        stored = len(self.oracle.data[model]) + len(self.oracle.expired[model])
        assert rebuilt == stored, f"rebuild_indexes indexed {rebuilt}, expected {stored}"
        assert snapshot(self.database) == before, "rebuild_indexes did not restore the indexes"


def _indexed(model: type[RedisModel]) -> list[RedisField]:
    return [f for f in model._meta.data_fields if f.indexes]


def _name(index_class: Any) -> str:
    if index_class is None:
        return ""
    kind = "multi-index " if issubclass(index_class, MultiIndexes) else ""
    return f"{kind}{index_class.__name__}"


def _keys(database: Any, index: Any) -> set[str]:
    return {
        key for pattern in index.scan_patterns() for key in database.client.scan_iter(match=pattern)
    }


def test_index_consistency(limpyd_database_factory, profile):
    IndexConsistencyMachine.run(
        limpyd_database_factory, settings=scaled(profile, IndexConsistencyMachine.weight)
    )
