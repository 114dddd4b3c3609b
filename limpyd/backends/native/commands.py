"""The commands native functions and fake connections send most, run straight on the fake
server's data: what its command table would answer (the same lookups, expiry and type
checks, value types, WATCH signals and removal of emptied keys), without the table's
per-command machinery (argument parsing, reply conversion, write-back), which costs 15-35 µs
a command. The other commands, and these with other arguments, go through the table.
"""

from __future__ import annotations

import copy
from typing import Any, cast

from fakeredis import _msgs
from fakeredis._command_args_parsing import Float, Int
from fakeredis._core._database import Item
from fakeredis._helpers import SimpleError, compile_pattern
from fakeredis.model import ExpiringMembersSet, Hash, ZSet

__all__ = [
    "CLIENT_READS",
    "PARTIAL_READS",
    "READS",
    "TABLE",
    "WRITES",
    "item_at",
    "key_type",
    "parsed_scores",
    "put_back",
    "snapshot",
]


def item_at(db: Any, key: bytes) -> Any:
    """The item at `key`, None when missing or expired (an expired one is dropped): the
    db's own `get`, without the two calls and the KeyError of its Mapping machinery."""
    item = db._dict.get(key)
    if item is not None and item.expireat is not None and item.expireat < db.time:
        del db._dict[key]
        return None
    return item


def snapshot(db: Any, key: bytes) -> Any:
    """A copy of the item at `key` (its value and expiry time, whatever its type), for
    `put_back`; None when missing."""
    item = item_at(db, key)
    if item is None:
        return None
    saved = Item(copy.deepcopy(item.value))
    saved.expireat = item.expireat
    return saved


def put_back(db: Any, key: bytes, saved: Any) -> None:
    """Make the key hold what `snapshot` copied, exactly (as DUMP and RESTORE ... ABSTTL
    would), and signal its watchers."""
    _signal(db, key)
    if saved is None:
        db.pop(key, None)
    else:
        db[key] = saved


def _value(db: Any, key: bytes, kind: type) -> Any:
    """The value at `key` (None when missing or expired), which must be of `kind`."""
    item = item_at(db, key)
    if item is None:
        return None
    if type(item.value) is not kind:
        raise SimpleError(_msgs.WRONGTYPE_MSG)
    return item.value


def _get(db: Any, key: bytes) -> Any:
    return _value(db, key, bytes)


def _hget(db: Any, key: bytes, field: bytes) -> Any:
    value = _value(db, key, Hash)
    return None if value is None else value.get(field)


def _hexists(db: Any, key: bytes, field: bytes) -> int:
    value = _value(db, key, Hash)
    return int(value is not None and field in value)


def _hgetall(db: Any, key: bytes) -> list[bytes]:
    value = _value(db, key, Hash)
    return [] if value is None else [item for pair in value.getall().items() for item in pair]


def _sismember(db: Any, key: bytes, member: bytes) -> int:
    value = _value(db, key, ExpiringMembersSet)
    return int(value is not None and member in value)


def _smembers(db: Any, key: bytes) -> list[bytes]:
    value = _value(db, key, ExpiringMembersSet)
    return [] if value is None else list(value)


def _scard(db: Any, key: bytes) -> int:
    value = _value(db, key, ExpiringMembersSet)
    return 0 if value is None else len(value)


def _zscore(db: Any, key: bytes, member: bytes) -> Any:
    value = _value(db, key, ZSet)
    if value is None:
        return None
    try:
        score = value[member]
    except KeyError:
        return None
    return Float.encode(score, humanfriendly=False)


def _zmscore(db: Any, key: bytes, *members: bytes) -> list[Any]:
    value = _value(db, key, ZSet)
    if value is None:
        return [None] * len(members)
    scores = [value.get(member) for member in members]
    return [None if score is None else Float.encode(score, humanfriendly=False) for score in scores]


def _exists(db: Any, key: bytes) -> int:
    return int(item_at(db, key) is not None)


def _smismember(db: Any, key: bytes, *members: bytes) -> list[int]:
    value = _value(db, key, ExpiringMembersSet)
    if value is None:
        return [0] * len(members)
    return [int(member in value) for member in members]


def _hmget(db: Any, key: bytes, *fields: bytes) -> list[Any]:
    value = _value(db, key, Hash)
    if value is None:
        return [None] * len(fields)
    return [value.get(field) for field in fields]


def _mget(db: Any, *keys: bytes) -> list[Any]:
    values = []
    for key in keys:
        item = item_at(db, key)
        values.append(item.value if item is not None and type(item.value) is bytes else None)
    return values


def key_type(db: Any, key: bytes) -> bytes:
    """TYPE: the type of the value at `key`, b"none" when there is none."""
    item = item_at(db, key)
    if item is None:
        return b"none"
    if isinstance(item.value, bytes):
        return b"string"
    if isinstance(item.value, list):
        return b"list"
    return cast(bytes, item.value.model_type())


def _sinter(db: Any, key: bytes, other: bytes) -> list[bytes]:
    first = _value(db, key, ExpiringMembersSet)  # both checked, as Redis does
    second = _value(db, other, ExpiringMembersSet)
    if first is None or second is None:
        return []
    if len(second) < len(first):
        first, second = second, first
    return [member for member in first if member in second]


#: What a fast read answers to leave a call to the command table.
TABLE = object()


def _zrange(db: Any, key: bytes, start: bytes, stop: bytes, option: bytes) -> Any:
    """ZRANGE of a missing key (as the expiry zsets mostly are): the table does the rest."""
    if (start, stop, option) == (b"0", b"0", b"WITHSCORES") and item_at(db, key) is None:
        return []
    return TABLE


def _first_whole_call(cursor: bytes, option: bytes, count: bytes, size: int) -> bool:
    """Whether a SCAN-family call starts an iteration (cursor 0) with a valid COUNT of at
    least `size`: the table's snapshot then fits in one reply, sorted, with the end cursor."""
    return (
        cursor == b"0"
        and option.upper() == b"COUNT"
        and count.isdigit()
        and not count.startswith(b"0")  # refused by the table, as a zero
        and len(count) <= 18  # in range of a long long
        and int(count) >= size
    )


def _sscan(db: Any, key: bytes, cursor: bytes, option: bytes, count: bytes) -> Any:
    """SSCAN's first call when its COUNT covers the whole set (as the integrity checks' index
    sets mostly are): every member, sorted as the table's snapshot. The table does the rest
    (a later cursor, a smaller or invalid COUNT, MATCH)."""
    if cursor != b"0":
        return TABLE  # which checks the cursor before the key's type
    value = _value(db, key, ExpiringMembersSet)
    if not _first_whole_call(cursor, option, count, 0 if value is None else len(value)):
        return TABLE
    return [b"0", [] if value is None else sorted(value)]


def _scan(db: Any, cursor: bytes, match: bytes, pattern: bytes, option: bytes, count: bytes) -> Any:
    """SCAN MATCH's first call when its COUNT covers the whole keyspace (the integrity checks'
    and the index cleaners' on a test's data): the matching keys, sorted as the table's
    snapshot. The table does the rest."""
    if match.upper() != b"MATCH" or not _first_whole_call(cursor, option, count, len(db)):
        return TABLE
    regex = compile_pattern(pattern)
    return [b"0", sorted(key for key in db if regex.match(key))]


#: The fast reads that leave some calls to the table.
PARTIAL_READS = frozenset((_zrange, _sscan, _scan))

#: name -> (read, number of arguments: -n for n or more), for the names native functions send.
READS: dict[bytes, tuple[Any, int]] = {
    b"SMISMEMBER": (_smismember, -2),
    b"HMGET": (_hmget, -2),
    b"MGET": (_mget, -1),
    b"GET": (_get, 1),
    b"HGET": (_hget, 2),
    b"HEXISTS": (_hexists, 2),
    b"HGETALL": (_hgetall, 1),
    b"SISMEMBER": (_sismember, 2),
    b"SMEMBERS": (_smembers, 1),
    b"SCARD": (_scard, 1),
    b"ZSCORE": (_zscore, 2),
    b"ZMSCORE": (_zmscore, -2),
    b"EXISTS": (_exists, 1),
    b"SINTER": (_sinter, 2),
    b"TYPE": (key_type, 1),
    b"ZRANGE": (_zrange, 4),
    b"SSCAN": (_sscan, 4),
    b"SCAN": (_scan, 5),
}


# The writes they make most, the same way: what the command table does (its value types,
# WATCH signals and removal of emptied keys, as fakeredis's write-back), while no client
# listens to keyspace events (the table then sends them).


def _writable(db: Any, key: bytes, kind: type) -> tuple[Any, Any]:
    """The item at `key` and its value of `kind` (a new empty one, and no item, if missing)."""
    item = item_at(db, key)
    if item is None:
        return None, kind()
    if type(item.value) is not kind:
        raise SimpleError(_msgs.WRONGTYPE_MSG)
    return item, item.value


def _signal(db: Any, key: bytes) -> None:
    """Signal a write of `key` to the clients WATCHing it and those blocked on the db (as
    fakeredis's `notify_watch`), when there are any."""
    if db._watches.get(key) or db.condition._waiters or db._change_callbacks:
        db.notify_watch(key)


def _written(db: Any, key: bytes, item: Any, value: Any) -> None:
    """Store a modified value (dropping an emptied one) and signal its key's watchers."""
    _signal(db, key)
    if not value:
        db.pop(key, None)
    elif item is None:
        db[key] = Item(value)


def _sadd(db: Any, key: bytes, *members: bytes) -> int:
    item, value = _writable(db, key, ExpiringMembersSet)
    size = len(value)
    value.update(members)
    added = len(value) - size
    if added:  # as Redis: a SADD adding nothing wakes no WATCHer (see the fake socket's)
        _written(db, key, item, value)
    return added


def _srem(db: Any, key: bytes, *members: bytes) -> int:
    item, value = _writable(db, key, ExpiringMembersSet)
    size = len(value)
    for member in members:
        value.discard(member)
    removed = size - len(value)
    if removed:
        _written(db, key, item, value)
    return removed


def _zrem(db: Any, key: bytes, *members: bytes) -> int:
    item, value = _writable(db, key, ZSet)
    size = len(value)
    for member in members:
        value.discard(member)
    removed = size - len(value)
    if removed:
        _written(db, key, item, value)
    return removed


def parsed_scores(texts: Any) -> list[float] | None:
    """The scores ZADD would store for these texts (the command table's own parser, no -0
    as on Redis 7), or None when it refuses one."""
    try:
        return [0.0 + Float.decode(text) for text in texts]
    except SimpleError:
        return None


def _zadd(db: Any, key: bytes, *pairs: bytes) -> Any:
    """ZADD without options (the index entries' form); the table does the rest, and refuses
    a score (with its own parser's error)."""
    scores = parsed_scores(pairs[::2])
    if scores is None:
        return TABLE  # an option first, or an invalid score
    item, value = _writable(db, key, ZSet)
    size = len(value)
    changed = False
    for score, member in zip(scores, pairs[1::2], strict=True):
        changed = value.add(member, score) or changed
    if changed:
        _written(db, key, item, value)
    return len(value) - size


def _hset(db: Any, key: bytes, *pairs: bytes) -> int:
    item, value = _writable(db, key, Hash)
    size = len(value)
    value.update(dict(zip(pairs[::2], pairs[1::2], strict=True)), clear_expiration=True)
    _written(db, key, item, value)
    return len(value) - size


def _del(db: Any, *keys: bytes) -> int:
    deleted = 0
    for key in dict.fromkeys(keys):
        if item_at(db, key) is not None:
            _signal(db, key)
            db.pop(key, None)
            deleted += 1
    return deleted


def _set(db: Any, key: bytes, value: bytes) -> bytes:
    _signal(db, key)
    item = db.setdefault(key, Item(None))  # of any type: SET replaces it, and its expiry
    item.value = value
    item.expireat = None
    return b"OK"


def _incr(db: Any, key: bytes) -> int:
    item = item_at(db, key)
    current = b"0"
    if item is not None:
        if type(item.value) is not bytes:
            raise SimpleError(_msgs.WRONGTYPE_MSG)
        current = item.value
    total = Int.decode(current) + 1
    encoded = Int.encode(total)  # refuses an overflow
    _signal(db, key)
    if item is None:
        db[key] = Item(encoded)
    else:
        item.value = encoded  # its expiry stays
    return total


#: name -> (write, whether it takes that many arguments).
WRITES: dict[bytes, tuple[Any, Any]] = {
    b"SET": (_set, lambda n: n == 2),
    b"INCR": (_incr, lambda n: n == 1),
    b"SADD": (_sadd, lambda n: n >= 2),
    b"SREM": (_srem, lambda n: n >= 2),
    b"ZREM": (_zrem, lambda n: n >= 2),
    b"ZADD": (_zadd, lambda n: n >= 3 and n % 2 == 1),
    b"HSET": (_hset, lambda n: n >= 3 and n % 2 == 1),
    b"DEL": (_del, lambda n: n >= 1),
}


#: The fast reads whose reply a RESP2 client sees as a function does (doubles as text, no
#: status other than TYPE's): a fake connection's command answered from the server's data.
CLIENT_READS: dict[bytes, tuple[Any, int]] = {
    name: read for name, read in READS.items() if name != b"ZRANGE"
}
