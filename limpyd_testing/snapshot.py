"""`snapshot(database)`: every key of a database and its content, to compare before/after.

Used to prove that a refused write changed nothing. Contents are normalized (sets sorted,
hashes as dicts) so two snapshots of equal data are equal on every backend.
"""

from __future__ import annotations

from typing import Any, cast

from limpyd.database import RedisDatabase

__all__ = ["snapshot"]


def snapshot(database: RedisDatabase) -> dict[str, tuple[str, Any]]:
    """{key: (type, content)} for every key of `database`."""
    connection = database.client
    readers = {
        "string": connection.get,
        "hash": connection.hgetall,
        "set": lambda key: sorted(connection.smembers(key)),
        "list": lambda key: connection.lrange(key, 0, -1),
        "zset": lambda key: connection.zrange(key, 0, -1, withscores=True),
    }
    result: dict[str, tuple[str, Any]] = {}
    for key in sorted(set(connection.scan_iter())):
        kind = cast(str, connection.type(key))  # decode_responses: a str
        result[key] = (kind, readers[kind](key) if kind in readers else None)
    return result
