"""The types of keys, read before apply's first write (see limpyd/scripts/keytypes.lua):
what a key must hold for a command, whether a field holds a value, which commands are index
entries'."""

from __future__ import annotations

from typing import Any, cast

from limpyd import protocol
from limpyd.backends.native.commands import key_type
from limpyd.backends.native.server import STATE_TYPES, ScriptFailure, Server

__all__ = [
    "KINDS",
    "STATE_TYPES",
    "TypeCheck",
    "holds",
    "is_index_command",
    "state_kind",
    "type_refusal",
]

_KEY_TYPES = {name.encode(): kind.encode() for name, kind in protocol.KEY_TYPES.items()}
_EMPTYING = frozenset((b"DEL", b"UNLINK"))
KINDS = frozenset(STATE_TYPES)


def state_kind(kind: bytes) -> bytes:
    """`kind`, a kind of field state (`KINDS`), else the call fails."""
    if kind not in KINDS:
        raise ScriptFailure(f"limpyd: unknown state kind {kind.decode(errors='replace')}")
    return kind


def holds(server: Server, kind: bytes, key: bytes, sub: bytes, value: bytes) -> bool:
    """Whether the field of `kind` at key/sub holds `value` (as a member, or its value)."""
    if kind == b"set":
        return cast(int, server.call(b"SISMEMBER", key, value)) == 1
    if kind == b"zset":
        return server.call(b"ZSCORE", key, value) is not None
    state = server.read_state(kind, key, sub)
    return bool(state) and state[0] == value


def type_refusal(key: bytes, held: bytes, want: bytes) -> bytes | None:
    if held in (b"none", want):
        return None
    return b"key " + key + b" holds a " + held + b", not a " + want


_INDEX_COMMANDS = {name.encode(): fewest for name, fewest in protocol.INDEX_COMMANDS.items()}


def is_index_command(args: list[Any]) -> bool:
    """Whether `args` is an index entry's command (`protocol.INDEX_COMMANDS`): its name, a
    key, members (ZADD: score-member pairs)."""
    name = args[0].upper()
    fewest = _INDEX_COMMANDS.get(name)
    if fewest is None or len(args) < fewest:
        return False
    return name != b"ZADD" or len(args) % 2 == 0


class TypeCheck:
    """Redis's refusal of a command on a key of another type (WRONGTYPE) comes once the
    commands before it ran: each key a command names must hold what it needs
    (`protocol.KEY_TYPES`) or nothing, as the commands checked before leave it (see
    apply.lua's type_checker)."""

    __slots__ = ("db", "types")

    def __init__(self, server: Server) -> None:
        self.db = server.socket._db
        self.types: dict[bytes, bytes] = {}  # key -> its type as the commands before leave it

    def held(self, key: bytes) -> bytes:
        return self.types.get(key) or key_type(self.db, key)

    def check(self, args: list[bytes]) -> bytes | None:
        """The refusal of this command, or None (then what it leaves is recorded)."""
        name, types = args[0].upper(), self.types
        if name in _EMPTYING:
            types.update(dict.fromkeys(args[1:], b"none"))
        elif name == b"SET":
            types[args[1]] = b"string"
        elif name in _KEY_TYPES and len(args) > 1:  # without a key, Redis refuses it alone
            want, key = _KEY_TYPES[name], args[1]
            refused = type_refusal(key, self.held(key), want)
            if refused is not None:
                return refused
            types[key] = want
        return None

    def require(self, want: bytes, key: bytes) -> bytes | None:
        """The refusal of a key to read as a `want`, or None."""
        return type_refusal(key, self.held(key), want)

    def first_refusal(self, commands: list[list[bytes]]) -> bytes | None:
        for command in commands:
            refused = self.check(command)
            if refused is not None:
                return refused
        return None
