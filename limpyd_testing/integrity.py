"""The index-integrity checker: do a model's indexes hold exactly what its data implies?

It recomputes every index entry from the stored values (with the same index classes the
ORM writes with), reads every index key, and reports the differences: missing entries,
stale entries, unique values held twice, and instance keys left by deleted instances.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from limpyd.text import glob_escape
from limpyd.writes import read_states

if TYPE_CHECKING:
    from limpyd.model import RedisModel

__all__ = ["IndexIntegrityError", "assert_indexes_consistent", "index_problems"]

#: How many instances are read per script call.
BATCH = 200


class IndexIntegrityError(AssertionError):
    """A model's indexes disagree with its data."""


def _entry(command: tuple[Any, ...]) -> tuple[str, str, float | None]:
    """(key, member, score) of an index entry's add command."""
    if command[0] == "SADD":
        return command[1], command[2], None
    return command[1], command[3], float(command[2])


def index_problems(model: type[RedisModel]) -> list[str]:
    """What is wrong with `model`'s indexes (an empty list when they are exact)."""
    meta = model._meta
    connection = meta.database.client
    pks = sorted(connection.smembers(meta.collection_key))
    indexed = [field for field in meta.data_fields if field.indexes]
    expected: set[tuple[str, str, float | None]] = set()
    holders: dict[tuple[str, str | None, str], set[str]] = {}
    for start in range(0, len(pks), BATCH):
        batch = pks[start : start + BATCH]
        states = iter(read_states(meta.database, [(f, pk) for pk in batch for f in indexed]))
        for pk in batch:
            for field in indexed:
                for hkey, value in field.items_of(next(states)):
                    for index in field.indexes:
                        for add, _ in index.entries(value, pk, hkey):
                            expected.add(_entry(add))
                    if field.unique:
                        holders.setdefault((field.name, hkey, value), set()).add(pk)

    actual: set[tuple[str, str, float | None]] = set()
    for field in indexed:
        for index in field.indexes:
            for pattern in index.scan_patterns():
                for key in connection.scan_iter(match=pattern):
                    kind = connection.type(key)
                    if kind == "set":
                        actual.update((key, member, None) for member in connection.smembers(key))
                    elif kind == "zset":
                        actual.update(
                            (key, member, score)
                            for member, score in connection.zrange(key, 0, -1, withscores=True)
                        )

    problems = [f"missing index entry {entry!r}" for entry in sorted(expected - actual, key=repr)]
    problems += [f"stale index entry {entry!r}" for entry in sorted(actual - expected, key=repr)]
    for (name, hkey, value), pks_holding in sorted(holders.items(), key=repr):
        if len(pks_holding) > 1:
            where = f"{name}[{hkey!r}]" if hkey is not None else name
            problems.append(
                f"unique {model.__name__}.{where} value {value!r} held by {sorted(pks_holding)!r}"
            )
    known = {field.key_for(pk) for pk in pks for field in meta.data_fields}
    for key in connection.scan_iter(match=glob_escape(meta.prefix) + ":obj:*"):
        if key not in known:
            problems.append(f"orphan key {key!r} (no instance in the collection owns it)")
    return problems


def assert_indexes_consistent(*models: type[RedisModel]) -> None:
    """Raise IndexIntegrityError listing every problem of these models' indexes."""
    problems = [f"{model.__name__}: {p}" for model in models for p in index_problems(model)]
    if problems:
        raise IndexIntegrityError("\n".join(problems))
