"""Index maintenance: `clean_indexes` and `rebuild_indexes` of a field.

For data written before an index existed, or an index about to be removed. Both walk the
data with SCAN/SSCAN in batches (bounded memory, no KEYS) and are not atomic with concurrent
writers: run them while the field is not being written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from limpyd.writes import read_states

if TYPE_CHECKING:
    from limpyd.fields.base import RedisField
    from limpyd.indexes import BaseIndex

__all__ = ["clean_indexes", "rebuild_indexes"]

#: Keys deleted, or instances indexed, per round trip.
BATCH = 500


def _selected(field: RedisField, index_class: type[BaseIndex] | None) -> list[BaseIndex]:
    return [i for i in field.indexes if index_class is None or isinstance(i, index_class)]


def clean_indexes(field: RedisField, index_class: type[BaseIndex] | None = None) -> int:
    """Delete the keys of `field`'s indexes (only those of `index_class` if given); how many."""
    connection = field.model._meta.database.client
    deleted = 0
    for index in _selected(field, index_class):
        for pattern in index.scan_patterns():
            batch: list[str] = []
            for key in connection.scan_iter(match=pattern, count=BATCH):
                batch.append(key)
                if len(batch) >= BATCH:
                    deleted += connection.delete(*batch)
                    batch = []
            if batch:
                deleted += connection.delete(*batch)
    return deleted


def rebuild_indexes(field: RedisField, index_class: type[BaseIndex] | None = None) -> int:
    """Clean, then index again the values every instance holds; how many instances."""
    indexes = _selected(field, index_class)
    clean_indexes(field, index_class)
    meta = field.model._meta
    connection = meta.database.client
    count = 0
    batch: list[str] = []
    for pk in connection.sscan_iter(meta.collection_key, count=BATCH):
        batch.append(pk)
        if len(batch) >= BATCH:
            count += _index_batch(field, indexes, batch)
            batch = []
    return count + (_index_batch(field, indexes, batch) if batch else 0)


def _index_batch(field: RedisField, indexes: list[BaseIndex], pks: list[str]) -> int:
    database = field.model._meta.database
    states = read_states(database, [(field, pk) for pk in pks])
    # a related field's link records describe its indexes: written again with them
    link_commands = getattr(field, "link_commands", None)
    with database.client.pipeline(transaction=False) as pipeline:
        for pk, state in zip(pks, states, strict=True):
            items = field.items_of(state)
            for hkey, value in items:
                for index in indexes:
                    for add, _ in index.entries(value, pk, hkey):
                        pipeline.execute_command(*add)
            for command in link_commands([v for _, v in items]) if link_commands else []:
                pipeline.execute_command(*command)
        pipeline.execute()
    return len(pks)
