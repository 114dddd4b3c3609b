"""The script's grammar: its named operations, and how a call declares its keys.

Operations. Every instruction, set expression, query atom and sort the script reads is
named here, once; the script gets the same names as its table `OP` (see `lua`), so an
operation has one spelling on both sides and no two share a code.

Declared keys. Every key a call of the limpyd script touches that is known before the
call goes in KEYS (what lets a cluster client route the call and the server check its
slots); ARGV refers to it by its 1-based position there, read by `r.key()` in the script
(see common.lua). Keys found at run time (the instances of a query, those pointing to a
deleted one, a new pk's, the index key of a value read there) are built by the script from
the prefixes and templates it is given.

The slot guard. Every call also declares, first, a key of the model that never exists (its
`probe_key`, see `keys`). Redis Cluster runs a call declaring several keys of a slot being
moved only where all of them are, so while a model's slot migrates every call of its group is
refused (TRYAGAIN, which redis-py retries): none runs with some of its keys on each node,
reading a moved key as missing or writing an index entry the rest of the slot then
contradicts.

Arguments are built as flat lists in which keys are `Key` instances; `split` makes the
(KEYS, ARGV) pair sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

__all__ = [
    "INDEX_COMMANDS",
    "KEY_TYPES",
    "OPERATIONS",
    "STATE_TYPES",
    "Key",
    "command_keys",
    "encode_command",
    "encode_sort",
    "encode_sources",
    "encode_template",
    "placeholder",
    "split",
]

# apply: checks, each failing the write before anything is written
EXISTS = "exists"  # collection pk expiry: the instance exists (and has not expired)
FREE = "free"  # collection pk expiry: the pk is free
REAPING = "reaping"  # collection pk expiry: the instance is still expired
GUARD = "guard"  # kind key sub n state(n): the state is still as read
#: id collection pk expiry held-kind [held-key held-sub]: a referenced instance exists
#: (unless the field held-kind/key/sub holds it already)
REFERENCE = "reference"
UNIQUE = "unique"  # id how key a b pk expiry: no other instance holds a value
# apply: settings and writes
PROBE = "probe"  # key: where ZADD scores are probed
#: counter collection: the instance gets the counter's next value as pk (refused if the
#: collection holds it: a counter set back)
NEW_PK = "new_pk"
#: links pk: unlink a deleted instance from those pointing to it (as the link records in
#: `links`, read before the first write, say)
UNLINK = "unlink"
EXPIRE = "expire"  # seconds command: ZADD expiry (now + seconds) pk
PER_MEMBER = "per_member"  # kind key present n, n times member k commands(k)
CALL = "call"  # command: a write
CALL_FOR_REPLY = "call_for_reply"  # command: a write whose reply is returned
#: when kind key sub from to n templates(n): the commands of a single value's index
#: entries, its text put in their holes (escaped: `from` replaced by `to`); of the value
#: before the write ('old', read before any write) or after it ('new', read when it runs)
VALUE_ENTRIES = "value_entries"
# read
STATE = "state"  # kind key sub: a field's state
SIMULATE = "simulate"  # kind key sub scratch command: a command run on a copy
# query: set expressions
COLLECTION = "collection"  # the model's collection
ATOMS = "atoms"  # n atoms(n): their union
INTERSECTION = "intersection"  # n sets(n)
UNION = "union"  # n sets(n)
DIFFERENCE = "difference"  # n sets(n): the first minus the others
SYMMETRIC_DIFFERENCE = "symmetric_difference"  # 2 sets
# query atoms (also in link records: how the instances holding a pk are found)
SET_KEY = "set_key"  # key: a set of pks
LEX_RANGE = "lex_range"  # key min max: a range of an index sorted by value
SCORE_RANGE = "score_range"  # key min max: a range of an index sorted by score
PK_LIST = "pk_list"  # n pks(n)
KEY_MEMBERS = "key_members"  # key: the members of any set, sorted set or list
STORED_LIST = "stored_list"  # key: a list store() wrote (it must exist)
FIELD_EXISTS = "field_exists"  # prefix suffix sub want: the instances with (no) value
# query sorts
UNSORTED = "unsorted"
BY_DEFAULT = "by_default"  # desc: by pk, numeric when every pk is a number
BY_AUTO_PK = "by_auto_pk"  # desc: by pk, every pk an AutoPKField's (a canonical integer)
BY_PK = "by_pk"  # alpha desc
BY_STRING = "by_string"  # alpha desc suffix: a StringField's value
BY_HASH = "by_hash"  # alpha desc field: an InstanceHashField's value
BY_SCORE = "by_score"  # alpha desc key: the score in a sorted set
BY_LIST = "by_list"  # alpha desc key: the position in a list
BY_KEYS = "by_keys"  # n, n times: kind (BY_PK | BY_STRING | BY_HASH) by alpha desc
#: kind alpha desc by key: as kind (BY_STRING | BY_HASH) by, a field whose values an
#: untransformed TextRangeIndex keeps at key (read in order for a window of the collection)
BY_INDEXED = "by_indexed"

#: The type each write command of `apply` needs at its key (its first argument): Redis
#: refuses it on a key of another type (WRONGTYPE) only once the commands before it ran, so
#: apply checks every key of a write against its commands before the first one. SET
#: replaces a value of any type; DEL and UNLINK leave their keys empty.
KEY_TYPES: dict[str, str] = {
    name: kind
    for kind, names in {
        "string": "APPEND DECR DECRBY GETDEL GETSET INCR INCRBY INCRBYFLOAT SETBIT SETRANGE",
        "hash": "HDEL HINCRBY HINCRBYFLOAT HMSET HSET HSETNX",
        "set": "SADD SPOP SREM",
        "zset": "ZADD ZINCRBY ZPOPMAX ZPOPMIN ZREM ZREMRANGEBYLEX ZREMRANGEBYRANK ZREMRANGEBYSCORE",
        "list": "LINSERT LPOP LPUSH LPUSHX LREM LSET LTRIM RPOP RPUSH RPUSHX",
    }.items()
    for name in names.split()
}

#: The commands of index entries (`indexes.py`), with their fewest arguments (name and key
#: included; ZADD takes score-member pairs): the only ones apply runs that it finds by
#: reading (the templates of 'new' value entries, the ops of link records), so a malformed
#: one fails the call before its first write.
INDEX_COMMANDS = {"SADD": 3, "SREM": 3, "ZADD": 4, "ZREM": 3}

#: The type of the key holding a field's state, by the state's kind (`read_state`): what
#: apply checks before reading a key it only finds by reading (see `unlink`).
STATE_TYPES = {
    "string": "string", "hashfield": "hash", "hash": "hash", "set": "set", "list": "list",
    "zset": "zset",
}  # fmt: skip

#: A stored collection's ttl ('store' output): a whole number of seconds of at most this many
#: digits (EXPIRE takes it, in milliseconds too), checked before the key is written.
STORE_TTL_DIGITS = 15

#: Every operation, by the name the script knows it by.
OPERATIONS: dict[str, str] = {
    name.lower(): value
    for name, value in dict(globals()).items()
    if name.isupper() and not name.startswith("_") and isinstance(value, str)
}


def placeholder() -> str:
    """A placeholder for a text the apply script provides (a new pk, a value it reads): a
    fresh random nonce, made after every value of the write was known, so no value contains
    it. An argument holding it is sent as a hole (its position and the pieces around it):
    the script fills it without searching any text (see apply.lua)."""
    return f"\x00{uuid.uuid4().hex}\x00"


class Key(str):
    """A key among a script's arguments: declared in KEYS, sent in ARGV as its position."""

    __slots__ = ()


#: Commands whose every argument is a key; any other names one key, its first argument.
_EVERY_ARGUMENT_A_KEY = frozenset({"DEL", "UNLINK", "EXISTS", "SUNIONSTORE", "SINTERSTORE"})


def command_keys(command: tuple[Any, ...]) -> range:
    """The positions of the keys among the arguments of `command` (0 being its name)."""
    if str(command[0]).upper() in _EVERY_ARGUMENT_A_KEY:
        return range(1, len(command))
    return range(1, min(2, len(command)))


def split(args: Iterable[Any], guard: str) -> tuple[list[str], list[Any]]:
    """(KEYS, ARGV) for arguments holding `Key`s: the slot `guard` first, then each key
    declared once, in order of first use, and replaced by its position."""
    positions: dict[str, int] = {guard: 1}
    argv: list[Any] = []
    for arg in args:
        if type(arg) is Key:
            position = positions.get(arg)
            if position is None:
                position = positions[arg] = len(positions) + 1
            argv.append(position)
        else:
            argv.append(arg)
    return [str(key) for key in positions], argv


def encode_command(command: tuple[Any, ...], token: str | None = None) -> list[Any]:
    """`command` as the apply operations read it: `n cmd args(n-1) h holes(h) k keys(k)`; an
    argument holding `token` (a new pk's placeholder) is sent as a hole (its index, then the
    pieces around the token), every other key is declared (its index)."""
    out: list[Any] = [len(command), *command]
    keys: list[int] = []
    for index in command_keys(command):
        arg = command[index]
        if token is None or token not in arg:
            out[1 + index] = Key(arg)
            keys.append(index)
    if token is None:
        return [*out, 0, len(keys), *keys]
    holes: list[Any] = []
    count = 0
    for index, arg in enumerate(command[1:], 1):
        if isinstance(arg, str) and token in arg:
            pieces = arg.split(token)
            out[1 + index] = ""
            holes += [index, len(pieces), *pieces]
            count += 1
    return [*out, count, *holes, len(keys), *keys]


#: Atoms whose first argument, and sorts whose last one, is a key.
_KEY_ATOMS = frozenset({SET_KEY, LEX_RANGE, SCORE_RANGE, KEY_MEMBERS, STORED_LIST})
_KEY_SORTS = frozenset({BY_SCORE, BY_LIST})


def encode_sources(sources: list[list[tuple[Any, ...]]]) -> list[Any]:
    """Sources of a query (each a list of atoms: an operation and its arguments) as `atoms`
    set expressions (the union of their atoms), their keys declared."""
    encoded: list[Any] = []
    for atoms in sources:
        encoded += [ATOMS, len(atoms)]
        for kind, *rest in atoms:
            if kind in _KEY_ATOMS:
                rest[0] = Key(rest[0])
            encoded += [kind, *rest]
    return encoded


def encode_sort(sort: tuple[Any, ...]) -> list[Any]:
    """A query's sort (an operation and its arguments, booleans as '1'/'0'), its key
    declared."""
    kind, *options = sort
    if kind in _KEY_SORTS:
        options[-1] = Key(options[-1])
    return [kind, *(("1" if o else "0") if isinstance(o, bool) else o for o in options)]


def encode_template(command: tuple[Any, ...], raw: str, escaped: str) -> list[Any]:
    """A command of `value_entries`: `n cmd args(n-1) h holes(h) k keys(k)`, each hole
    `i mode k pieces(k)`: argument i is the pieces joined by the value's text, as it is
    (`raw` stood there) or escaped (`escaped` stood there). Keys without a hole are
    declared."""
    out: list[Any] = [len(command), *command]
    holes: list[Any] = []
    filled = set()
    for index, arg in enumerate(command[1:], 1):
        if not isinstance(arg, str):
            continue
        mode, token = ("raw", raw) if raw in arg else ("escaped", escaped)
        if token in arg:
            pieces = arg.split(token)
            out[1 + index] = ""
            holes += [index, mode, len(pieces), *pieces]
            filled.add(index)
    keys = [index for index in command_keys(command) if index not in filled]
    for index in keys:
        out[1 + index] = Key(command[index])
    return [*out, len(filled), *holes, len(keys), *keys]
