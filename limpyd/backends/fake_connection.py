"""How a command reaches the in-memory server: the fake backend's client, connection and
socket (see `limpyd.backends.fake` for what they absorb of fakeredis's differences)."""

from __future__ import annotations

import math
import queue
import re
import threading
import time
import weakref
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from fakeredis import FakeServer

__all__ = ["client_class", "connection_class"]


def _redis_float_text(value: Decimal) -> bytes:
    """Print a float the way Redis's INCRBYFLOAT does: 17 decimals, trailing zeros removed."""
    text = f"{value:.17f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text == "-0":
        text = "0"
    return text.encode()


_FLOAT_TEXT = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?inf(?:inity)?", re.I)


def _decimal_of(raw: bytes, error: str) -> Decimal:
    """Parse a float the way Redis does (no spaces, no NaN, no underscores)."""
    if not _FLOAT_TEXT.fullmatch(raw):
        raise _fake_error(error)
    try:
        return Decimal(raw.decode())
    except InvalidOperation:
        raise _fake_error(error) from None


def _fake_error(message: str) -> Exception:
    from fakeredis._helpers import SimpleError

    return SimpleError(message)


def _checked_sum(current: Decimal, amount: Decimal) -> Decimal:
    total = current + amount
    if not math.isfinite(total):
        raise _fake_error("ERR increment would produce NaN or Infinity")
    return total


_connection_class: Any = None


class _Command:
    """One command's arguments, as bytes, on their way from a fake connection to its socket."""

    __slots__ = ("fields",)

    def __init__(self, fields: list[bytes]) -> None:
        self.fields = fields


class _Responses(queue.Queue[Any]):
    """A fake socket's replies, in order: `put` and a `get` that finds one take no lock (a
    deque's append and popleft are atomic), where `queue.Queue` takes its lock and signals
    its condition on each, which cost as much as a fast read. Only a reader waiting for a
    reply still to come (a subscriber's `listen()`) takes the lock."""

    def __init__(self) -> None:
        super().__init__()
        self._waiting = 0

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        self.queue.append(item)
        if self._waiting:
            with self.not_empty:
                self.not_empty.notify()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        items = self.queue
        try:
            return items.popleft()
        except IndexError:
            if not block:
                raise queue.Empty from None
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.not_empty:
            self._waiting += 1  # before looking again: any put from now on notifies
            try:
                while not items:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise queue.Empty
                    self.not_empty.wait(remaining)
            finally:
                self._waiting -= 1
        return items.popleft()

    def qsize(self) -> int:
        return len(self.queue)

    def empty(self) -> bool:
        return not self.queue


class _CompilingRuntime:
    """The fake server's Lua runtime, compiling each script text once: fakeredis compiles a
    script on every EVAL/EVALSHA (about 2 ms for limpyd's), where Redis keeps the compiled
    function. Everything but `execute` goes to the runtime itself."""

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime
        self._compile = runtime.eval("function(text) return loadstring(text) end")
        self._compiled: dict[bytes, Any] = {}

    @classmethod
    def of(cls, server: Any, runtime: Any) -> _CompilingRuntime:
        wrapper = getattr(server, "_limpyd_compiling_runtime", None)
        if wrapper is None or wrapper._runtime is not runtime:
            wrapper = server._limpyd_compiling_runtime = cls(runtime)
        return wrapper

    def execute(self, text: bytes | str) -> Any:
        if not isinstance(text, bytes):  # fakeredis's own housekeeping
            return self._runtime.execute(text)
        function = self._compiled.get(text)
        if function is None:
            function = self._compile(text)
            if isinstance(function, tuple) or function is None:  # a syntax error
                return self._runtime.execute(text)  # reported by the runtime itself
            self._compiled[text] = function
        return function()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)


def _native_call(
    socket: Any, name: bytes, numkeys: bytes, keys_and_args: tuple[bytes, ...], ro_command: bool
) -> Any:
    """The native run of a limpyd function (see `native`), or None when the call is not one
    the fake server's own FCALL would run (not loaded, malformed): that one answers it."""
    from fakeredis._helpers import SimpleError

    from limpyd.backends.native import NATIVE, ScriptFailure, Server

    function = NATIVE.get(name)
    if function is None or not numkeys.isdigit() or int(numkeys) > len(keys_and_args):
        return None
    loaded = socket._functions().find(name)
    if loaded is None:
        return None
    read_only = b"no-writes" in loaded.flags
    if ro_command and not read_only:
        return None
    count = int(numkeys)

    def run() -> Any:
        socket._script_resp = 2  # as for any function: RESP2 replies, whatever the caller's
        try:
            return function(
                Server(socket, read_only), list(keys_and_args[:count]), list(keys_and_args[count:])
            )
        except ScriptFailure as failure:
            raise SimpleError(f"ERR {failure}") from None
        finally:
            socket._script_resp = None

    return run


_client_class: Any = None

#: What `_call_natively` answers for a call the fake server's own FCALL must run.
_NOT_NATIVE = object()


def client_class() -> Any:
    """A fakeredis client that hands each command to the fake server at once, on a
    connection of its own per thread: redis-py's pool, retries and packing, and fakeredis's
    parsing, cost more than most commands. A command runs through the server's command
    table as from any connection; an FCALL of a limpyd function runs natively (see
    `native`), with what the server does for any command (the ACL check, its clock, its
    lock). Pipelines, pub/sub and single-connection clients go redis-py's way."""
    global _client_class
    if _client_class is not None:
        return _client_class

    from fakeredis import FakeRedis
    from fakeredis import _msgs as msgs
    from fakeredis._helpers import SimpleError

    class LimpydFakeRedis(FakeRedis):
        def execute_command(self, *args: Any, **options: Any) -> Any:
            if self.connection is not None:  # a single-connection client
                # type-ignored: redis-py leaves this method unannotated
                return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
            connection = self._own_connection()
            socket = connection.get_socket()
            if not socket._server.connected or socket._killed:
                connection.disconnect()  # as redis-py does: the next call connects again
                raise socket._connection_error_class(msgs.CONNECTION_ERROR_MSG)
            fields = connection._fields(args)
            if args[0] in _FUNCTION_CALLS and len(args) >= 3 and not options:
                reply = self._call_natively(connection, socket, fields)
                if reply is not _NOT_NATIVE:
                    return reply
            socket._process_command(fields)
            # type-ignored: redis-py leaves this method unannotated
            return self.parse_response(connection, args[0], **options)  # type: ignore[no-untyped-call]

        def _call_natively(self, connection: Any, socket: Any, fields: list[bytes]) -> Any:
            server = socket._server
            with server.lock:
                native = _native_call(
                    socket, fields[1], fields[2], tuple(fields[3:]), fields[0] == b"FCALL_RO"
                )
                if native is None:
                    return _NOT_NATIVE
                try:
                    user = socket._client_info.user
                    server.acl.validate_command(user, socket._client_info, fields)
                    _housekeeping(server)
                    result = native()
                except SimpleError as error:
                    result = error
            result = socket._decode_result(result)
            if isinstance(result, Exception):
                raise result
            return connection._decode(result)

        def _own_connection(self) -> Any:
            """This thread's connection for direct calls, kept: taking one from the pool and
            giving it back costs more than most calls. It is not the pool's (a thread that
            ends takes it along); `close()` closes it with the pool's."""
            direct = self.__dict__.get("_limpyd_direct")
            if direct is None:
                direct = self.__dict__.setdefault("_limpyd_direct", _DirectConnections())
            connection = getattr(direct.local, "connection", None)
            if connection is None:
                pool = self.connection_pool
                connection = pool.connection_class(**pool.connection_kwargs)
                direct.local.connection = connection
                direct.made.add(connection)
            return connection

        def close(self) -> None:
            direct = self.__dict__.get("_limpyd_direct")
            if direct is not None:
                for connection in list(direct.made):
                    connection.disconnect()
            super().close()

    _client_class = LimpydFakeRedis
    return _client_class


class _DirectConnections:
    """A fake client's connections for direct calls: one per thread."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.made: weakref.WeakSet[Any] = weakref.WeakSet()


#: The command names of a function call, as redis-py sends them.
_FUNCTION_CALLS = frozenset(("FCALL", "FCALL_RO"))


def _client_read(socket: Any, fields: list[bytes]) -> Any:
    """The fast read answering the command `fields` on `socket` (see `native.server`), or None
    for the command table: another command or arity, or a connection in MULTI, subscribed,
    with its replies turned off, or speaking RESP3 (maps, sets and doubles)."""
    from limpyd.backends.native.commands import CLIENT_READS

    if not fields:
        return None
    read = CLIENT_READS.get(fields[0].upper())
    if read is None:
        return None
    arity = len(fields) - 1
    if (arity != read[1] if read[1] >= 0 else arity < -read[1]) or (
        socket._resp_version != 2
        or socket._queueing
        or socket._pubsub
        or socket._reply_off
        or socket._reply_skip
        or socket._reply_skip_next
    ):
        return None
    return read[0]


def _housekeeping(server: Any) -> None:
    """What the fake server does before any command: forget the sockets closed since, and
    set its clock (expiry is read against it)."""
    closed = server.closed_sockets
    while closed:
        socket = closed.pop()()
        if socket is not None:
            socket._cleanup(server)
    now = time.time()
    for db in server.dbs.values():
        db.time = now


def connection_class() -> Any:
    """A fakeredis connection whose server computes float increments like Redis."""
    global _connection_class
    if _connection_class is not None:
        return _connection_class

    from fakeredis import FakeRedisConnection
    from fakeredis import _msgs as msgs
    from fakeredis._commands import Key, command
    from fakeredis._helpers import SimpleError
    from fakeredis._socket import FakeSocket
    from fakeredis.model import ExpiringMembersSet, Hash

    from limpyd.backends.native.commands import TABLE

    class LimpydFakeSocket(FakeSocket):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.responses = _Responses()

        def put_response(self, msg: Any) -> None:
            responses = self.responses  # None once closed (maybe by another thread)
            if responses is not None:
                responses.put(msg)
                ready = self.response_ready  # for FakeSelector, which clears it
                if not ready.is_set():
                    ready.set()

        @command((Key(ExpiringMembersSet), bytes), (bytes,))
        def sadd(self, key: Any, *members: bytes) -> int:
            # Redis wakes a key's WATCHers only if a member was added; fakeredis always did
            # (a transaction watching a set tried again for nothing)
            size = len(key.value)
            key.value.update(members)
            added = len(key.value) - size
            if added:
                key.updated()
            return added

        @command(fixed=(Key(bytes), bytes))
        def incrbyfloat(self, key: Any, amount: bytes) -> bytes:
            total = _checked_sum(
                _decimal_of(key.get(b"0"), "ERR value is not a valid float"),
                _decimal_of(amount, "ERR value is not a valid float"),
            )
            encoded = _redis_float_text(total)
            key.update(encoded)
            return encoded

        @command((Key(Hash), bytes, bytes))
        def hincrbyfloat(self, key: Any, field: bytes, amount: bytes) -> bytes:
            total = _checked_sum(
                _decimal_of(key.value.get(field, b"0"), "ERR hash value is not a float"),
                _decimal_of(amount, "ERR value is not a valid float"),
            )
            encoded = _redis_float_text(total)
            key.value.update({field: encoded}, clear_expiration=False)
            key.updated()
            return encoded

        def _process_command(self, fields: list[bytes]) -> None:
            # The reads limpyd and its tools send most (the integrity checks' pipelines, a
            # field's GET) answered from the server's data, as by its command table.
            read = _client_read(self, fields)
            if read is None:
                super()._process_command(fields)
                return
            server = self._server
            try:
                server.acl.validate_command(self._client_info.user, self._client_info, fields)
                with server.lock:
                    _housekeeping(server)
                    result = read(self._db, *fields[1:])
            except SimpleError as error:
                result = error
            if result is TABLE:
                super()._process_command(fields)
                return
            self.put_response(self._decode_result(result))

        def sendall(self, data: Any) -> None:
            if type(data) is not _Command:
                return super().sendall(data)
            if not self._server.connected or self._killed:
                raise self._connection_error_class(msgs.CONNECTION_ERROR_MSG)
            self._process_command(data.fields)

        def _get_server_runtime(self, server: Any) -> Any:
            return _CompilingRuntime.of(server, super()._get_server_runtime(server))

        def fcall(self, function_name: bytes, numkeys: bytes, *keys_and_args: bytes) -> Any:
            native = _native_call(self, function_name, numkeys, keys_and_args, False)
            if native is None:
                return super().fcall(function_name, numkeys, *keys_and_args)
            return native()

        def fcall_ro(self, function_name: bytes, numkeys: bytes, *keys_and_args: bytes) -> Any:
            native = _native_call(self, function_name, numkeys, keys_and_args, True)
            if native is None:
                return super().fcall_ro(function_name, numkeys, *keys_and_args)
            return native()

        @command(name="EVAL_RO", fixed=(bytes, bytes), repeat=(bytes,))
        def eval_ro(self, script: bytes, numkeys: bytes, *keys_and_args: bytes) -> Any:
            return self.eval(script, int(numkeys), *keys_and_args)

        @command(name="EVALSHA_RO", fixed=(bytes, bytes), repeat=(bytes,))
        def evalsha_ro(self, sha1: bytes, numkeys: bytes, *keys_and_args: bytes) -> Any:
            return self.evalsha(sha1, int(numkeys), *keys_and_args)

    class LimpydFakeConnection(FakeRedisConnection):
        """Hands each command to its socket as a list of byte strings: the RESP text redis-py
        would pack and fakeredis parse again (quadratic in a command's size) is skipped.
        It sends no CLIENT SETINFO on connecting: the client library's name and version are
        for a real server's CLIENT LIST, and here two commands more for every connection."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.driver_info = None  # redis-py >= 7 (before, lib_name and lib_version)
            self.lib_name = self.lib_version = None

        def _fields(self, args: tuple[Any, ...]) -> list[bytes]:
            # as redis-py's packer: a command name of several words is several arguments
            first = args[0].encode() if isinstance(args[0], str) else args[0]
            fields = first.split() if b" " in first else [first]
            encoding, errors = self.encoder.encoding, self.encoder.encoding_errors
            fields += [
                arg.encode(encoding, errors)
                if type(arg) is str
                else b"%d" % arg
                if type(arg) is int
                else self._field(arg)
                for arg in args[1:]
            ]
            return fields

        def _field(self, arg: Any) -> bytes:
            """An argument other than a str or an int, encoded as redis-py's Encoder does."""
            if type(arg) is bytes:
                return arg
            value = self.encoder.encode(arg)
            return value if type(value) is bytes else bytes(value)

        def _decode(self, response: Any) -> Any:
            # fakeredis's, without its per-item isinstance and encoder calls for the replies
            # most common here: a text, or a flat list of texts
            encoder = self.encoder
            if encoder.decode_responses:
                kind = type(response)
                if kind is bytes:
                    return response.decode(encoder.encoding, encoder.encoding_errors)
                if kind is list:
                    encoding, errors = encoder.encoding, encoder.encoding_errors
                    return [
                        item.decode(encoding, errors) if type(item) is bytes else self._decode(item)
                        for item in response
                    ]
            return super()._decode(response)

        def pack_command(self, *args: Any) -> list[Any]:
            return [_Command(self._fields(args))]

        def pack_commands(self, commands: Any) -> list[Any]:
            return [_Command(self._fields(tuple(args))) for args in commands]

        def send_command(self, *args: Any, **kwargs: Any) -> None:
            # type-ignored: redis-py leaves this method unannotated
            self.send_packed_command(  # type: ignore[no-untyped-call]
                self.pack_command(*args), check_health=kwargs.get("check_health", True)
            )

        def _connect(self) -> Any:
            server = cast("FakeServer", self._server)  # set by FakeRedisConnection.__init__
            if not server.connected:
                raise self._connection_error_class("Connection refused by the fake server")
            return LimpydFakeSocket(
                server,
                client_class=self._client_class,
                db=self.db,
                lua_modules=self._lua_modules,
                client_info=self._client_info,
            )

    _connection_class = LimpydFakeConnection
    return _connection_class
