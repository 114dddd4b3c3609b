"""Index maintenance: `clean_indexes` and `rebuild_indexes` of a field, `rebuild_together` of
a model's `unique_together` combinations.

For data written before an index existed, or an index about to be removed. Both walk the
data with SCAN/SSCAN in batches (bounded memory, no KEYS) and are not atomic with concurrent
writers: run them while the field is not being written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from limpyd.exceptions import ImplementationError, RefusedValueError
from limpyd.refusals import concrete_model, naming_mistyped_key
from limpyd.text import glob_escape
from limpyd.writes import read_states, refuse_in_pipeline

if TYPE_CHECKING:
    from limpyd.fields.base import RedisField
    from limpyd.indexes import BaseIndex
    from limpyd.model import RedisModel

__all__ = [
    "IN_BATCHES",
    "batches",
    "clean_indexes",
    "rebuild_indexes",
    "rebuild_together",
    "together_pattern",
]

#: Keys deleted, or instances indexed, per round trip.
BATCH = 500

#: Keys of the keyspace one SCAN step walks (its COUNT). A SCAN for a pattern walks the whole
#: keyspace whatever it matches: keys / SCAN_COUNT round trips (fakeredis also sorts every
#: key on each step), where one step of 10,000 keys is about a millisecond of a server's time.
SCAN_COUNT = 10_000


def _selected(field: RedisField, index_class: type[BaseIndex] | None) -> list[BaseIndex]:
    """The indexes of `field` of `index_class` (all without); an ImplementationError when
    it has none of that class, or is a field of an abstract model (a rebuild of nothing said
    it rebuilt every instance)."""
    from limpyd.fields.base import RedisField

    if not isinstance(field, RedisField):
        raise ImplementationError(f"a model's field is expected, not {field!r:.200}")
    field.model._check_concrete()
    if index_class is None:
        if not field.indexes:
            raise ImplementationError(f"{field.describe()} has no index to rebuild or clean")
        return list(field.indexes)
    if not isinstance(index_class, type):
        raise ImplementationError(
            f"{field.describe()}: an index class is expected, not {index_class!r:.200}"
        )
    selected = [i for i in field.indexes if isinstance(i, index_class)]
    if not selected:
        held = ", ".join(type(i).__name__ for i in field.indexes) or "none"
        raise ImplementationError(
            f"{field.describe()} has no {index_class.__name__} (its indexes: {held})"
        )
    return selected


def _delete_matching(connection: Any, pattern: str) -> int:
    deleted = 0
    batch: list[str] = []
    for key in connection.scan_iter(match=pattern, count=SCAN_COUNT):
        batch.append(key)
        if len(batch) >= BATCH:
            deleted += connection.delete(*batch)
            batch = []
    return deleted + (connection.delete(*batch) if batch else 0)


def batches(items: Iterable[Any], size: int = BATCH) -> Iterator[list[Any]]:
    """`items` in lists of `size` (the last one shorter), read as they are needed."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _pk_batches(model: type[RedisModel]) -> Iterator[list[str]]:
    meta = model._meta
    with naming_mistyped_key(model, meta.collection_key, "a set"):
        yield from batches(meta.database.client.sscan_iter(meta.collection_key, count=BATCH))


#: Why maintenance cannot run in a pipeline: it would run before the commands queued there.
IN_BATCHES = "it reads and writes at once, batch by batch"


def clean_indexes(field: RedisField, index_class: type[BaseIndex] | None = None) -> int:
    """Delete the keys of `field`'s indexes (only those of `index_class` if given); how many."""
    database = field.model._meta.database
    refuse_in_pipeline(database, f"{field.describe()}.clean_indexes()", IN_BATCHES)
    connection = database.client
    return sum(
        _delete_matching(connection, pattern)
        for index in _selected(field, index_class)
        for pattern in index.scan_patterns()
    )


def rebuild_indexes(
    field: RedisField, index_class: type[BaseIndex] | None = None, *, allow_duplicates: bool = False
) -> int:
    """Clean, then index again the values every instance holds; how many instances. Every
    value is checked first: one an index refuses (written by another client), or a unique
    value several instances hold, raises a ValueError naming it, with the indexes left as
    they were. `allow_duplicates`: index a unique value held several times as it is (what
    `integrity.repair` does: the checker keeps reporting it, as no rebuild can fix it)."""
    refuse_in_pipeline(
        field.model._meta.database, f"{field.describe()}.rebuild_indexes()", IN_BATCHES
    )
    indexes = _selected(field, index_class)
    holders: dict[Any, str] | None = None if allow_duplicates else {}
    for pks in _pk_batches(field.model):
        _refuse_mistyped_records(field, _index_commands(field, indexes, pks, holders))
    clean_indexes(field, index_class)
    return sum(_index_batch(field, indexes, pks) for pks in _pk_batches(field.model))


def together_pattern(model: type[RedisModel]) -> str:
    """The SCAN pattern of the keys of `model`'s `unique_together` combinations."""
    meta = model._meta
    return glob_escape(meta.index_key("__together__", "")) + "*"


def rebuild_together(model: type[RedisModel], *, allow_duplicates: bool = False) -> int:
    """Delete, then write again from every instance's values, the combinations of `model`'s
    `unique_together` groups; how many instances. A combination several instances hold
    raises a ValueError naming them first, the combinations left as they were (unless
    `allow_duplicates`, as for `rebuild_indexes`)."""
    meta = concrete_model(model, "rebuild_together")
    refuse_in_pipeline(meta.database, f"{model.__name__}: rebuilding unique_together", IN_BATCHES)
    if not meta.unique_together:
        raise ImplementationError(f"{model.__name__} has no unique_together group to rebuild")
    if not allow_duplicates:
        _refuse_duplicate_combinations(model)
    connection = meta.database.client
    _delete_matching(connection, together_pattern(model))
    count = 0
    for pks in _pk_batches(model):
        with connection.pipeline(transaction=False) as pipeline:
            for pk, key in _combinations(model, pks):
                pipeline.sadd(key, pk)
            pipeline.execute()
        count += len(pks)
    return count


def _refuse_duplicate_combinations(model: type[RedisModel]) -> None:
    """A ValueError naming two instances holding the same values of a `unique_together`
    group, if any do."""
    holders: dict[str, str] = {}
    for pks in _pk_batches(model):
        for pk, key in _combinations(model, pks):
            holder = holders.setdefault(key, pk)
            if holder != pk:
                raise ValueError(
                    f"{model.__name__}: rebuilding unique_together: instances {holder!r} and "
                    f"{pk!r} hold the same values of a unique_together group (its key "
                    f"{key!r}); the combinations were left as they were"
                )


def _combinations(model: type[RedisModel], pks: list[str]) -> list[tuple[str, str]]:
    """(pk, combination key) of each `unique_together` group these instances fill."""
    meta = model._meta
    names = sorted({name for group in meta.unique_together for name in group})
    states = iter(read_states(meta.database, [(meta.fields[n], pk) for pk in pks for n in names]))
    found = []
    for pk in pks:
        values = {name: next(states) for name in names}
        for group in meta.unique_together:
            key = meta.together_key(group, values)
            if key is not None:
                found.append((pk, key))
    return found


def _index_batch(field: RedisField, indexes: list[BaseIndex], pks: list[str]) -> int:
    with field.model._meta.database.client.pipeline(transaction=False) as pipeline:
        for command in _index_commands(field, indexes, pks):
            pipeline.execute_command(*command)
        pipeline.execute()
    return len(pks)


def _index_commands(
    field: RedisField,
    indexes: list[BaseIndex],
    pks: list[str],
    holders: dict[Any, str] | None = None,
) -> list[Any]:
    """The commands indexing the values these instances hold (a related field's link
    records with them: they describe its indexes); a ValueError names a refused value, or
    a unique one another instance holds (`holders`: the instance of each unique check
    met so far, when checking)."""
    states = read_states(field.model._meta.database, [(field, pk) for pk in pks])
    link_commands = getattr(field, "link_commands", None)
    commands: list[Any] = []
    for pk, state in zip(pks, states, strict=True):
        items = field.items_of(state)
        try:
            for hkey, value in items:
                for index in indexes:
                    commands += [add for add, _ in index.entries(value, pk, hkey)]
                    if holders is not None and index.handle_uniqueness and field.unique:
                        _claim(holders, index.unique_check(value, pk, hkey), pk, value)
        except ValueError as error:
            raise ValueError(
                f"{field.describe()}.rebuild_indexes(): instance {pk!r}: {error}; the indexes "
                "were left as they were"
            ) from None
        if link_commands:
            commands += link_commands([v for _, v in items])
    return commands


def _refuse_mistyped_records(field: RedisField, commands: list[Any]) -> None:
    """A RefusedValueError naming a hash of link records (HSET) another client made another
    type: the rebuild writes them, and does not delete them first as it does its index keys."""
    keys = list(dict.fromkeys(command[1] for command in commands if command[0] == "HSET"))
    if not keys:
        return
    with field.model._meta.database.client.pipeline(transaction=False) as pipeline:
        for key in keys:
            pipeline.type(key)
        kinds = pipeline.execute()
    for key, kind in zip(keys, kinds, strict=True):
        if kind not in ("hash", "none"):
            raise RefusedValueError(
                f"{field.describe()}.rebuild_indexes(): the link records {key!r} are a "
                f"{kind}, not a hash (written by another client: delete the key, the rebuild "
                "writes it again); the indexes were left as they were"
            )


def _claim(holders: dict[Any, str], check: Any, pk: str, value: Any) -> None:
    """Record that instance `pk` holds a unique value (its uniqueness `check`); a ValueError
    if another instance holds it too."""
    if check is None:
        return
    holder = holders.setdefault(check, pk)
    if holder != pk:
        raise ValueError(
            f"value {value!r} is unique, and instance {holder!r} holds it too (make one of "
            "them hold another value first)"
        )
