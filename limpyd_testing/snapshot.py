"""`snapshot(database)`: every key of a database and its content, to compare before/after.

Used to prove that a refused write changed nothing. Contents are normalized (sets sorted,
hashes as dicts) so two snapshots of equal data are equal on every backend.
"""

from __future__ import annotations

from typing import Any, cast

from limpyd.database import RedisDatabase
from limpyd.maintenance import SCAN_COUNT

__all__ = ["snapshot"]


#: Keys read per pipeline: a snapshot costs a few round trips, not two per key.
BATCH = 1000

_READS: dict[str, Any] = {
    "string": lambda pipe, key: pipe.get(key),
    "hash": lambda pipe, key: pipe.hgetall(key),
    "set": lambda pipe, key: pipe.smembers(key),
    "list": lambda pipe, key: pipe.lrange(key, 0, -1),
    "zset": lambda pipe, key: pipe.zrange(key, 0, -1, withscores=True),
}


def snapshot(database: RedisDatabase) -> dict[str, tuple[str, Any]]:
    """{key: (type, content)} for every key of `database`."""
    connection = database.client
    keys = sorted(set(connection.scan_iter(count=SCAN_COUNT)))
    result: dict[str, tuple[str, Any]] = {}
    for start in range(0, len(keys), BATCH):
        batch = keys[start : start + BATCH]
        with connection.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.type(key)
            kinds = cast("list[str]", pipe.execute())  # decode_responses: str
            readable = [(key, kind) for key, kind in zip(batch, kinds, strict=True)]
            for key, kind in readable:
                if kind in _READS:
                    _READS[kind](pipe, key)
            contents = iter(pipe.execute())
        for key, kind in readable:
            content: Any = next(contents) if kind in _READS else None
            result[key] = (kind, sorted(content) if kind == "set" else content)
    return result
