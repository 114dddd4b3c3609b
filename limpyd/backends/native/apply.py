"""The `apply` function, natively (see limpyd/scripts/apply.lua): one write, in three phases.

1. Read every instruction: a malformed one fails here, before anything is written.
2. Run the checks, and probe what Redis could refuse in a later write: ZADD scores (a ZADD XX
   on the probe key, which never exists), expiry seconds, the pk counter, the type of every
   key the writes name (`_wrong_type`).
3. Run the writes; the counter is stored last. The index entries of a value Redis computes
   ('new' value entries) are checked here, once their field's modifier ran: refused, the
   modifier is undone (`_ValueEntries.restore`), and nothing else was written.

The reply is `[b"OK", reply, new_pk]` (None where Lua has `false`), or a refusal such as
`[b"UNIQUE", id, holder]`. Lua's chunking of long commands (its `unpack` limit) has no
equivalent here: each command runs whole, with the same effect and reply.
"""

from __future__ import annotations

import re
from typing import Any, cast

from fakeredis._helpers import SimpleError

from limpyd import protocol
from limpyd.backends.native.commands import item_at, key_type, parsed_scores, put_back, snapshot
from limpyd.backends.native.keytypes import (
    TypeCheck,
    holds,
    is_index_command,
    state_kind,
    type_refusal,
)
from limpyd.backends.native.links import unlink_refusal
from limpyd.backends.native.server import Arguments, ScriptFailure, Server, pk_of
from limpyd.fields.pk import counter_value

__all__ = ["apply"]

_EXISTS = protocol.EXISTS.encode()
_FREE = protocol.FREE.encode()
_REAPING = protocol.REAPING.encode()
_GUARD = protocol.GUARD.encode()
_REFERENCE = protocol.REFERENCE.encode()
_UNIQUE = protocol.UNIQUE.encode()
_PROBE = protocol.PROBE.encode()
_NEW_PK = protocol.NEW_PK.encode()
_UNLINK = protocol.UNLINK.encode()
_EXPIRE = protocol.EXPIRE.encode()
_PER_MEMBER = protocol.PER_MEMBER.encode()
_VALUE_ENTRIES = protocol.VALUE_ENTRIES.encode()
_CALL = protocol.CALL.encode()
_CALL_FOR_REPLY = protocol.CALL_FOR_REPLY.encode()
_SET_KEY = protocol.SET_KEY.encode()

_PRESENCE = (_EXISTS, _FREE, _REAPING)
_KEY_TYPES = {name.encode(): kind.encode() for name, kind in protocol.KEY_TYPES.items()}
_EMPTYING = frozenset((b"DEL", b"UNLINK"))
_CALLS = (_CALL, _CALL_FOR_REPLY)

_ZADD_FLAGS = frozenset((b"NX", b"XX", b"GT", b"LT", b"CH", b"INCR"))

# Lua 5.1's tonumber: C's strtod (decimal, hexadecimal, inf, nan) between C-locale spaces.
_SPACES = rb"[ \t\n\v\f\r]*"
_LUA_NUMBER = re.compile(
    _SPACES
    + rb"([+-]?)(?:"
    + rb"(inf(?:inity)?|nan(?:\([0-9a-z_]*\))?)"
    + rb"|(0x(?:[0-9a-f]+(?:\.[0-9a-f]*)?|\.[0-9a-f]+)(?:p[+-]?[0-9]+)?)"
    + rb"|((?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?)"
    + rb")"
    + _SPACES,
    re.IGNORECASE,
)


def _tonumber(text: bytes) -> float | None:
    """Lua 5.1's `tonumber(text)` (the text read as a C string: up to its first NUL)."""
    match = _LUA_NUMBER.fullmatch(text.partition(b"\0")[0])
    if match is None:
        return None
    sign, special, hexadecimal, decimal = match.groups()
    if special is not None:
        value = float(special[:3])
    elif hexadecimal is not None:
        try:
            value = float.fromhex(hexadecimal.decode())
        except OverflowError:
            value = float("inf")
    else:
        value = float(decimal)
    return -value if sign == b"-" else value


def _text(value: bytes) -> str:
    return value.decode(errors="replace")


class _Command:
    """A command of the write: its arguments (declared keys in place) and its holes, each
    (index, pieces, escaped): argument `index` is the pieces joined by a text."""

    __slots__ = ("args", "holes")

    def __init__(self, args: list[bytes], holes: list[tuple[int, list[bytes], bool]]) -> None:
        self.args = args
        self.holes = holes

    def filled(self, text: bytes, escaped: bytes = b"") -> list[bytes]:
        """The arguments, each hole filled with `text` (an escaped one with `escaped`)."""
        if not self.holes:
            return self.args
        args = list(self.args)
        for index, pieces, is_escaped in self.holes:
            args[index] = (escaped if is_escaped else text).join(pieces)
        return args


def _read_command(r: Arguments, templated: bool = False) -> _Command:
    """`n cmd args(n-1) h holes(h) k keys(k)`; a template's holes also say their mode."""
    n = r.num()
    if n < 1:
        raise ScriptFailure("limpyd: a command without a name")
    args = r.list(n)
    holes = []
    for _ in range(r.num()):
        index = r.num()
        escaped = templated and r.next() == b"escaped"
        if not 0 <= index < n:
            raise ScriptFailure(f"limpyd: a hole at {index} in a command of {n} arguments")
        holes.append((index, r.list(r.num()), escaped))
    for _ in range(r.num()):
        index = r.num()
        args[index] = r.declared(args[index] if 0 <= index < n else None)
    return _Command(args, holes)


class _ValueEntries:
    """A `value_entries` write: the templates run for each value of a field."""

    __slots__ = (
        "deferred", "escape_from", "escape_to", "key", "kind", "old", "saved", "sub",
        "templates", "values", "when",
    )  # fmt: skip

    def __init__(self, r: Arguments) -> None:
        self.when = r.next()
        if self.when not in (b"old", b"new"):
            raise ScriptFailure(f"limpyd: value entries of an unknown time {_text(self.when)}")
        self.kind = state_kind(r.next())
        self.key = r.key()
        self.sub = r.next()
        self.escape_from = r.next()
        if not self.escape_from:
            raise ScriptFailure("limpyd: value entries escaping an empty text")
        self.escape_to = r.next()
        self.templates = [_read_command(r, True) for _ in range(r.num())]
        self.values: list[bytes] = []
        self.old: _ValueEntries | None = None  # a 'new' one's 'old' entries (see _pair)
        self.deferred = False  # 'old' entries removed with their 'new' ones
        self.saved: Any = None  # a 'new' one's field key before its modifier (`restore`)

    def read(self, server: Server) -> None:
        """The values of the field now: its members, items or single value."""
        state = server.read_state(self.kind, self.key, self.sub)
        self.values = state[::2] if self.kind == b"zset" else state

    def commands(self) -> list[list[bytes]]:
        """The commands of the templates for each of the values."""
        commands = []
        for value in self.values:
            escaped = value.replace(self.escape_from, self.escape_to)
            commands += [template.filled(value, escaped) for template in self.templates]
        return commands

    def run(self, server: Server) -> None:
        for command in self.commands():
            server.run(command)

    def pair(self, writes: list[tuple[Any, ...]]) -> None:
        """'new' entries are checked once their field's modifier ran, and the modifier undone
        if they are refused (`restore`): only that modifier (a call on the field's key) and
        the field's 'old' entries may come before them (see apply.lua)."""
        single = self.kind in (b"string", b"hashfield")
        modifiers = 0
        for w in writes:
            p = w[1]
            if (
                w[0] == _VALUE_ENTRIES
                and p.when == b"old"
                and self.old is None
                and ((p.kind, p.key, p.sub) == (self.kind, self.key, self.sub))
            ):
                self.old, p.deferred = p, True
            elif (
                w[0] in _CALLS
                and modifiers == 0
                and p.args[1:2] == [self.key]
                and (self.kind != b"hashfield" or p.args[2:3] == [self.sub])
            ):
                modifiers = 1
            else:
                single = False
        if not single:
            raise ScriptFailure(
                "limpyd: 'new' value entries follow only their single-valued field's modifier "
                "and its 'old' entries"
            )
        if not all(is_index_command(template.args) for template in self.templates):
            raise ScriptFailure(
                "limpyd: 'new' value entries whose template is not an index entry's command"
            )

    def restore(self, server: Server) -> None:
        """Put the field's key back as it was before its modifier ran (value and expiry
        times, as phase 2 saved it: see apply.lua's `restore`)."""
        put_back(server.socket._db, self.key, self.saved)


def _zadd_error(server: Server, probe_key: bytes | None, args: list[bytes]) -> bytes | None:
    """Redis's error for the scores of this ZADD, or None when it accepts them."""
    i = 2
    while i < len(args) and args[i].upper() in _ZADD_FLAGS:
        i += 1
    if probe_key is None:
        raise ScriptFailure("limpyd: a ZADD to check without a probe key")
    texts = args[i::2]
    if texts and len(args) % 2 == i % 2 and item_at(server.socket._db, probe_key) is None:
        # scores the table's parser accepts are accepted; any other case asks the probe
        if parsed_scores(texts) is not None:
            return None
    reply = server.pcall(b"ZADD", probe_key, b"XX", *args[i:])
    if type(reply) is SimpleError:
        return reply.value.encode()
    return None


def _wrong_type(server: Server, writes: list[tuple[Any, ...]], filler: bytes) -> bytes | None:
    """The refusal of the writes checked before the first one. The entries of a value Redis
    computes ('new' value entries) are only known once their field's modifier ran."""
    checker = TypeCheck(server)
    for w in writes:
        op = w[0]
        commands: list[list[bytes]] = []
        if op in _CALLS or op == _EXPIRE:
            commands = [w[1].filled(filler)]
        elif op == _PER_MEMBER:
            _, key, present, items, kind = w
            refused = type_refusal(key, checker.held(key), kind)
            if refused is not None:
                return refused
            commands = [  # those phase 3 runs
                command.args
                for member, member_commands in items
                if holds(server, kind, key, b"", member) == present
                for command in member_commands
            ]
        elif op == _VALUE_ENTRIES and w[1].when == b"old":
            commands = w[1].commands()
        elif op == _UNLINK:
            refused = unlink_refusal(server, w, checker)
            if refused is not None:
                return refused
        refused = checker.first_refusal(commands)
        if refused is not None:
            return refused
    return None


def apply(server: Server, keys: list[bytes], args: list[bytes]) -> list[Any]:
    """Apply one write atomically (see the module's docstring and apply.lua)."""
    r = Arguments(keys, args)
    probe_key: bytes | None = None
    counter: bytes | None = None
    pks = b""  # the collection a new pk must not be in
    checks: list[tuple[Any, ...]] = []
    writes: list[tuple[Any, ...]] = []
    # Phase 1: read.
    while not r.done():
        op = r.next()
        if op in _PRESENCE:
            checks.append((op, r.key(), r.next(), r.key()))
        elif op == _REFERENCE:
            check: tuple[Any, ...] = (op, r.next(), r.key(), r.next(), r.key(), r.next())
            if check[5] != b"":
                check = (*check[:5], state_kind(check[5]), r.key(), r.next())
            checks.append(check)
        elif op == _GUARD:
            kind, key, sub = state_kind(r.next()), r.key(), r.next()
            checks.append((op, kind, key, sub, r.list(r.num())))
        elif op == _UNIQUE:
            checks.append((op, r.next(), r.next(), r.key(), r.next(), r.next(), r.next(), r.key()))
        elif op == _NEW_PK:
            counter, pks = r.key(), r.key()
        elif op == _PROBE:
            probe_key = r.key()
        elif op == _UNLINK:
            writes.append((op, r.key(), r.next(), []))  # its records, read in phase 2
        elif op == _EXPIRE:
            text = r.next()
            command = _read_command(r)
            if len(command.args) < 3:
                raise ScriptFailure("limpyd: an expiry without its key and pk")
            writes.append((op, command, text))
        elif op == _PER_MEMBER:
            kind, key, present = r.next(), r.key(), r.next() == b"1"
            items = []
            for _ in range(r.num()):
                member = r.next()
                items.append((member, [_read_command(r) for _ in range(r.num())]))
            writes.append((op, key, present, items, kind))
        elif op == _VALUE_ENTRIES:
            entries = _ValueEntries(r)
            if entries.when == b"new":
                entries.pair(writes)
            writes.append((op, entries))
        elif op in _CALLS:
            writes.append((op, _read_command(r)))
        else:
            raise ScriptFailure(f"limpyd: unknown instruction {_text(op)}")

    # Phase 2: checks and probes.
    call = server.call
    for c in checks:
        op = c[0]
        if op in _PRESENCE:
            collection, pk, expiry = c[1], c[2], c[3]
            present = call(b"SISMEMBER", collection, pk) == 1
            if op == _REAPING:
                if not present:
                    call(b"ZREM", expiry, pk)
                    return [b"GONE"]
                if not server.expired(expiry, pk):
                    return [b"LIVE"]
            else:
                if present and server.expired(expiry, pk):
                    return [b"EXPIRED"]
                if op == _EXISTS and not present:
                    return [b"DOESNOTEXIST"]
                if op == _FREE and present:
                    return [b"PKEXISTS"]
        elif op == _REFERENCE:
            id_, collection, pk, expiry = c[1], c[2], c[3], c[4]
            gone = call(b"SISMEMBER", collection, pk) == 0 or server.expired(expiry, pk)
            if gone and not (c[5] != b"" and holds(server, c[5], c[6], c[7], pk)):
                return [b"DANGLING", id_]
        elif op == _GUARD:
            if server.read_state(c[1], c[2], c[3]) != c[4]:
                return [b"CONFLICT"]
        else:  # unique
            id_, how, key, a, b, allowed, expiry = c[1:]
            refused = type_refusal(
                key, key_type(server.socket._db, key), b"set" if how == b"set" else b"zset"
            )
            if refused is not None:
                return [b"INVALID", refused]
            if how == b"set":
                holders = call(b"SMEMBERS", key)
            elif how == b"lex":
                holders = call(b"ZRANGEBYLEX", key, a, b)
            else:
                holders = call(b"ZRANGEBYSCORE", key, a, b)
            for holder in holders:
                if how != b"set":
                    holder = pk_of(holder)
                if holder != allowed:
                    if server.expired(expiry, holder):
                        return [b"REAP", holder]
                    return [b"UNIQUE", id_, holder]
    new_pk: bytes | None = None
    if counter is not None:
        n = call(b"GET", counter)
        value = counter_value(n)
        if value is None:
            return [b"INVALID", b"the pk counter " + counter + b" holds " + cast(bytes, n)]
        n, new_pk = b"%d" % value, b"%d" % (value + 1)
        if call(b"SISMEMBER", pks, new_pk) == 1:  # a counter set back by another client
            return [
                b"INVALID",
                b"the pk counter " + counter + b" holds " + n + b", behind the instance " + new_pk,
            ]
    expiries: dict[int, float] = {}
    for i, w in enumerate(writes):
        op = w[0]
        if (op in _CALLS or op == _EXPIRE) and w[1].holes and new_pk is None:
            raise ScriptFailure("limpyd: a placeholder without a new pk to put in it")
        if op == _EXPIRE:
            seconds = _tonumber(w[2])
            if seconds is None or seconds != seconds or seconds in (float("inf"), float("-inf")):
                return [b"INVALID", b"expiry in " + w[2] + b" seconds"]
            expiries[i] = seconds
        elif op in _CALLS:
            command_args = w[1].args
            if command_args[0].upper() == b"ZADD":
                error = _zadd_error(server, probe_key, command_args)
                if error is not None:
                    return [b"INVALID", error]

    for w in writes:
        if w[0] == _VALUE_ENTRIES and w[1].when == b"old":
            w[1].read(server)
        elif w[0] == _VALUE_ENTRIES:  # what `restore` puts back
            w[1].saved = snapshot(server.socket._db, w[1].key)
    filler = b"" if new_pk is None else new_pk
    refused = _wrong_type(server, writes, filler)
    if refused is not None:
        return [b"INVALID", refused]

    # Phase 3: writes.
    reply = None
    for i, w in enumerate(writes):
        op = w[0]
        if op in _CALLS:
            res = server.run(w[1].filled(filler))
            if op == _CALL_FOR_REPLY:
                reply = res
        elif op == _PER_MEMBER:
            _, key, present, items, kind = w
            for member, commands in items:
                if holds(server, kind, key, b"", member) == present:
                    for command in commands:
                        server.run(command.args)
        elif op == _VALUE_ENTRIES and w[1].when == b"new":
            entries = w[1]
            entries.read(server)
            checker, refused = TypeCheck(server), None
            for command in entries.commands():  # as apply.lua's entries_refusal
                refused = checker.check(command)
                if refused is None and command[0].upper() == b"ZADD":  # 'old' ones only remove
                    refused = _zadd_error(server, probe_key, command)
                if refused is not None:
                    break
            if refused is not None:
                entries.restore(server)
                return [b"INVALID", refused]
            if entries.old is not None:
                entries.old.run(server)
            entries.run(server)
        elif op == _VALUE_ENTRIES:
            if not w[1].deferred:
                w[1].run(server)
        elif op == _EXPIRE:
            command_args = w[1].filled(filler)
            name, key, pk = command_args[:3]
            call(name, key, server.now() + expiries[i], pk)
        else:  # unlink
            for rec in w[3]:
                rec.unlink(server, w[2])
            call(b"DEL", w[1])
    if counter is not None:
        call(b"INCR", counter)
    return [b"OK", reply, new_pk]
