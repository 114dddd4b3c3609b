"""What every native function shares: the server it runs commands on, the cursor over its
arguments, and the helpers of common.lua (field states, expiry, range-index members).

Commands run through the fake server's own command table, as `redis.call` does from Lua
(those sent most straight on its data, alike: see `commands`): the same argument checks,
errors, WATCH bookkeeping and keyspace events; only the crossing into and out of Lua is
gone. Values are bytes, as Lua strings are; a reply is what Lua
would see, with status replies as their text (`res.ok`) and doubles as their text.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, cast

from fakeredis._command_args_parsing import Float
from fakeredis._helpers import SimpleError, SimpleString
from fakeredis.model import is_write_command

from limpyd import protocol
from limpyd.backends.native.commands import (
    PARTIAL_READS,
    READS,
    TABLE,
    WRITES,
    key_type,
)

__all__ = ["STATE_TYPES", "Arguments", "ScriptFailure", "Server", "pk_of", "refusal"]


#: The type of the key holding each kind of field state.
STATE_TYPES = {kind.encode(): name.encode() for kind, name in protocol.STATE_TYPES.items()}


class ScriptFailure(Exception):
    """A function's error reply (Lua's `error()` or `redis.error_reply`): its text, sent as is."""


def refusal(code: str, *texts: bytes) -> ScriptFailure:
    """common.lua's `refuse`: the call refused for what it was given or found, each text
    as 'x' and its bytes in hex (see limpyd/refusals.py)."""
    return ScriptFailure(" ".join(["limpyd: refused", code, *("x" + t.hex() for t in texts)]))


class Server:
    """The fake server, as one running function sees it (`redis.call`, `redis.pcall`)."""

    def __init__(self, socket: Any, read_only: bool) -> None:
        self.socket = socket
        self.read_only = read_only

    def pcall(self, name: bytes, *args: Any) -> Any:
        """Run a command; its reply, or its error as a `SimpleError` (as `redis.pcall`)."""
        return self._pcall(name, [_argument(arg) for arg in args])

    def run(self, command: list[bytes]) -> Any:
        """`call` of a command whose name and arguments are all bytes (as the commands an
        apply call sends are): nothing to convert."""
        reply = self._pcall(command[0], command[1:])
        if type(reply) is SimpleError:
            raise reply
        return reply

    def _pcall(self, name: bytes, fields: list[bytes]) -> Any:
        socket = self.socket
        read = READS.get(name)
        if read is not None and (
            len(fields) == read[1] if read[1] >= 0 else len(fields) >= -read[1]
        ):
            try:
                reply = read[0](socket._db, *fields)
            except SimpleError as error:
                return error
            if reply is not TABLE:
                return reply
        write = WRITES.get(name)
        if write is not None and not self.read_only and write[1](len(fields)):
            server = socket._server
            if not server.subscribers and not server.psubscribers:  # no keyspace event to send
                try:
                    reply = write[0](socket._db, *fields)
                except SimpleError as error:
                    return error
                if reply is not TABLE:
                    return reply
        try:
            func, sig = socket._name_to_func(name.decode().lower())
        except SimpleError as error:
            return error
        if self.read_only and is_write_command(sig.name.encode()):
            return SimpleError("ERR Write commands are not allowed from read-only scripts.")
        return _as_lua_sees(socket._run_command(func, sig, fields, True))

    def reader(self, name: bytes) -> Callable[..., Any]:
        """A function running the read `name` on arguments of bytes as `call` does, looked
        up once: straight from the server's data for a fast read that always answers."""
        read = READS.get(name)
        if read is None or read[0] in PARTIAL_READS:
            return functools.partial(self.call, name)
        return functools.partial(read[0], self.socket._db)

    def call(self, name: bytes, *args: Any) -> Any:
        """Run a command; its reply, its error raised (as `redis.call`)."""
        reply = self.pcall(name, *args)
        if type(reply) is SimpleError:
            raise reply
        return reply

    # common.lua's helpers, over this server

    def read_state(self, kind: bytes, key: bytes, sub: bytes) -> list[bytes]:
        """A field's state as a flat list, equal for equal contents (see common.lua); a key
        of another type than the field keeps (written by another client) is refused."""
        want = STATE_TYPES.get(kind)
        if want is not None:
            held = key_type(self.socket._db, key)
            if held != want and held != b"none":
                raise refusal("state_type", key, held, want)
        call = self.call
        if kind == b"string":
            value = call(b"GET", key)
            return [] if value is None else [value]
        if kind == b"hashfield":
            value = call(b"HGET", key, sub)
            return [] if value is None else [value]
        if kind == b"hash":
            flat = call(b"HGETALL", key)
            pairs = sorted(zip(flat[::2], flat[1::2], strict=True))
            return [item for pair in pairs for item in pair]
        if kind == b"set":
            return sorted(call(b"SMEMBERS", key))
        if kind == b"list":
            return cast("list[bytes]", call(b"LRANGE", key, 0, -1))
        if kind == b"zset":
            return cast("list[bytes]", call(b"ZRANGE", key, 0, -1, b"WITHSCORES"))
        raise ScriptFailure(f"limpyd: unknown state kind {kind.decode(errors='replace')}")

    def write_state(self, kind: bytes, key: bytes, sub: bytes, state: list[bytes]) -> None:
        """Write a state read by `read_state` into an empty key."""
        if not state:
            return
        call = self.call
        if kind == b"string":
            call(b"SET", key, state[0])
        elif kind == b"hashfield":
            call(b"HSET", key, sub, state[0])
        elif kind == b"hash":
            call(b"HSET", key, *state)
        elif kind == b"set":
            call(b"SADD", key, *state)
        elif kind == b"list":
            call(b"RPUSH", key, *state)
        elif kind == b"zset":
            swapped = [item for i in range(0, len(state), 2) for item in (state[i + 1], state[i])]
            call(b"ZADD", key, *swapped)

    def now(self) -> float:
        """The server's time, in seconds."""
        return time.time()

    def expired(self, key: bytes, pk: bytes) -> bool:
        """Whether the instance `pk` has an expiry time (in the zset `key`) that has passed."""
        if key == b"":
            return False
        at = self.call(b"ZSCORE", key, pk)
        return at is not None and float(at) <= self.now()


def _argument(value: Any) -> bytes:
    """A command argument as `redis.call` gets it: a string, or a number in %.17g."""
    kind = type(value)
    if kind is bytes:
        return cast(bytes, value)
    if kind is int:
        return b"%d" % value
    if kind is float:
        return b"%.17g" % value
    raise TypeError(f"limpyd: a command argument of type {kind.__name__}")


def _as_lua_sees(reply: Any) -> Any:
    """A command's reply as a Lua caller sees it: status as its text, doubles as text."""
    kind = type(reply)
    if kind is bytes or kind is int or reply is None or kind is SimpleError:
        return reply
    if kind is list:
        return [_as_lua_sees(item) for item in reply]
    if kind is SimpleString:
        return reply.value
    if kind is float:
        return Float.encode(reply, humanfriendly=False)
    if kind is str:
        return reply.encode()
    if kind is dict:
        return [_as_lua_sees(item) for pair in reply.items() for item in pair]
    return reply


class Arguments:
    """A cursor over one call's arguments (common.lua's `argv_reader`): `next()` the next
    string, `num()` the next number, `key()` the key the next argument declares (its
    1-based position in `keys`), `list(n)` n strings."""

    __slots__ = ("args", "keys", "pos", "size")

    def __init__(self, keys: list[bytes], args: list[bytes]) -> None:
        self.keys = keys
        self.args = args
        self.pos = 0
        self.size = len(args)

    def declared(self, position: Any) -> bytes:
        try:
            index = int(position)
        except (TypeError, ValueError):
            index = 0
        if not 0 < index <= len(self.keys):
            shown = "nil" if position is None else bytes(position).decode(errors="replace")
            raise ScriptFailure(f"limpyd: no declared key at {shown}")  # as tostring() shows it
        return self.keys[index - 1]

    def next(self) -> bytes:
        pos = self.pos
        if pos >= self.size:
            raise ScriptFailure("limpyd: arguments end too soon")
        self.pos = pos + 1
        return self.args[pos]

    def num(self) -> int:
        pos = self.pos
        if pos >= self.size:
            raise ScriptFailure("limpyd: arguments end too soon")
        self.pos = pos + 1
        text = self.args[pos]
        try:
            return int(text)
        except ValueError:
            raise ScriptFailure(f"limpyd: {text!r} is not a number") from None

    def key(self) -> bytes:
        return self.declared(self.next())

    def list(self, n: int) -> list[bytes]:
        pos = self.pos
        end = pos + n
        if end > self.size:
            raise ScriptFailure("limpyd: arguments end too soon")
        self.pos = end
        return self.args[pos:end]

    def done(self) -> bool:
        return self.pos >= self.size


def pk_of(member: bytes) -> bytes:
    """The pk of a range index's member: <escaped value> NUL NUL <pk> (see common.lua)."""
    i = 0
    while True:
        z = member.find(b"\0", i)
        if z < 0:
            return member
        if member[z + 1 : z + 2] == b"\0":
            return member[z + 2 :]
        i = z + 2
