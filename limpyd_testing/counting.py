"""Count what a database sends to Redis: round trips and commands.

    with count_commands(database) as counted:
        Person(name="Ann")
    assert counted.round_trips <= 3

A *round trip* is one request/response exchange with the server: a single command is one, a
pipeline or a MULTI/EXEC transaction is one when executed, however many commands it holds (on
a cluster, a pipeline reaching several nodes is one exchange per node, counted as one).
*Commands* counts every command, including each one queued in a pipeline (MULTI and EXEC
themselves are not counted). An EVALSHA answered by NOSCRIPT and followed by EVAL is two round
trips: that is what happens on the wire.

It works the same on every backend, by wrapping the database's redis-py client
(`database.client`): its `execute_command`, and the `execute` and immediate commands of the
pipelines it makes while a counter is active, or the database's current pipeline (as a
`PipelineDatabase` has). Counters can be nested or overlap: each sees everything sent while it
is active. A client the database creates after the counter
started (after a `database.connect(...)`) is not counted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.exceptions import CrossSlotTransactionError, DataError

from limpyd.backends.cluster import CrossSlotError

if TYPE_CHECKING:
    import redis

    from limpyd.database import RedisDatabase

__all__ = ["CommandCount", "count_client_commands", "count_commands"]


@dataclass
class CommandCount:
    """What was sent while a counter was active.

    `round_trips`: request/response exchanges; `commands`: commands, each one of a pipeline
    included; `names`: the command names in the order they were sent, upper-case.
    """

    round_trips: int = 0
    commands: int = 0
    names: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _record(self, names: list[str]) -> None:
        with self._lock:
            self.round_trips += 1
            self.commands += len(names)
            self.names.extend(names)

    def reset(self) -> None:
        """Start counting from zero again (the counter stays active)."""
        with self._lock:
            self.round_trips = 0
            self.commands = 0
            self.names = []


class _Instrumented:
    """The wrappers installed on one client, and the counters currently fed by them."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.counters: list[CommandCount] = []
        #: The client's own attributes the wrappers shadow (a user's patch), put back after.
        self.shadowed: dict[str, Any] = {}

    def record(self, names: list[str]) -> None:
        for counter in list(self.counters):
            counter._record(names)

    def install(self) -> None:
        client = self.client
        self.shadowed = {
            name: client.__dict__[name] for name in _WRAPPED if name in client.__dict__
        }
        execute_command = client.execute_command
        make_pipeline = client.pipeline

        def counted_execute_command(*args: Any, **options: Any) -> Any:
            return _sent(
                lambda: execute_command(*args, **options), lambda: self.record([_name(args)])
            )

        def counted_pipeline(*args: Any, **kwargs: Any) -> Any:
            return self.instrument_pipeline(make_pipeline(*args, **kwargs))

        client.execute_command = counted_execute_command
        client.pipeline = counted_pipeline

    def uninstall(self) -> None:
        # The wrappers are instance attributes shadowing the class's methods (or a patch).
        for name in _WRAPPED:
            self.client.__dict__.pop(name, None)
        self.client.__dict__.update(self.shadowed)

    def instrument_pipeline(self, pipe: Any) -> Any:
        if pipe.__dict__.get("_limpyd_counted"):
            return pipe
        pipe._limpyd_counted = True
        client = self.client
        execute = pipe.execute
        # what sends WATCH and the commands run while watching: a cluster transaction's own
        holder = _watch_state(pipe)
        immediate_name = (
            "immediate_execute_command" if holder is pipe else "_immediate_execute_command"
        )
        immediate = getattr(holder, immediate_name, None)
        reset = pipe.reset

        def counted_execute(*args: Any, **kwargs: Any) -> Any:
            # redis-py sends nothing for an empty pipeline that watches nothing.
            queued = _queued(pipe)
            sends = bool(queued or _watching(pipe))
            names = [_name(command) for command in queued]
            # Recorded after: scripts are loaded (immediate commands) before it is sent.
            return _sent(lambda: execute(*args, **kwargs), lambda: _record(client, names), sends)

        def counted_immediate(*args: Any, **options: Any) -> Any:
            return _sent(
                # type-ignored: redis-py's pipeline method, saved before it is wrapped
                lambda: immediate(*args, **options),  # type: ignore[misc]
                lambda: _record(client, [_name(args)]),
            )

        def counted_reset() -> None:
            # A pipeline dropped while watching keys sends UNWATCH by itself.
            if _watching(pipe) and (
                getattr(holder, "connection", None)
                or getattr(holder, "_transaction_connection", None)
            ):
                _record(client, ["UNWATCH"])
            reset()

        pipe.execute = counted_execute
        if immediate is not None:
            setattr(holder, immediate_name, counted_immediate)
        pipe.reset = counted_reset
        return pipe


def _watch_state(pipe: Any) -> Any:
    """What holds a pipeline's WATCH state: itself, or a cluster transaction's strategy
    (redis-py's cluster pipeline sends WATCH and the commands run while watching there)."""
    strategy = getattr(pipe, "_execution_strategy", None)
    return strategy if hasattr(strategy, "_immediate_execute_command") else pipe


def _watching(pipe: Any) -> bool:
    holder = _watch_state(pipe)
    return bool(getattr(holder, "watching", False) or getattr(holder, "_watching", False))


#: What the client refuses before sending anything: not an exchange with the server.
_NOT_SENT = (DataError, CrossSlotError, CrossSlotTransactionError)

#: The client's methods the counters wrap.
_WRAPPED = ("execute_command", "pipeline")


def _sent(call: Callable[[], Any], record: Callable[[], None], sends: bool = True) -> Any:
    """`call()`, then `record()` (if it `sends`), unless the client refused it before
    sending anything; an error the server answered was sent."""
    try:
        return call()
    except _NOT_SENT:
        sends = False
        raise
    finally:
        if sends:
            record()


def _queued(pipe: Any) -> list[tuple[Any, ...]]:
    """The commands queued in a pipeline: redis-py's, or a cluster pipeline's (one exchange
    per node it reaches, counted as one round trip)."""
    strategy = getattr(pipe, "_execution_strategy", None)
    if strategy is not None:
        return [command.args for command in strategy.command_queue]
    return [command for command, _ in pipe.command_stack]


_instrumented: dict[int, _Instrumented] = {}
_instrumented_lock = threading.Lock()


def _record(client: Any, names: list[str]) -> None:
    """Feed the counters active on `client` now (a pipeline may outlive its counter)."""
    entry = _instrumented.get(id(client))
    if entry is not None and entry.client is client:
        entry.record(names)


def _name(args: tuple[Any, ...]) -> str:
    name = args[0] if args else ""
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    return str(name).upper()


@contextmanager
def count_client_commands(client: redis.Redis) -> Iterator[CommandCount]:
    """Count the round trips and commands sent through one redis-py client."""
    counter = CommandCount()
    with _feeding(counter, client):
        yield counter


@contextmanager
def _feeding(counter: CommandCount, client: Any) -> Iterator[None]:
    """Feed `counter` with what `client` sends inside the block."""
    with _instrumented_lock:
        entry = _instrumented.get(id(client))
        if entry is None or entry.client is not client:
            entry = _instrumented[id(client)] = _Instrumented(client)
            entry.install()
        entry.counters.append(counter)
    try:
        yield
    finally:
        with _instrumented_lock:
            entry.counters.remove(counter)
            if not entry.counters:
                entry.uninstall()
                del _instrumented[id(client)]


@contextmanager
def count_commands(database: RedisDatabase, *more: RedisDatabase) -> Iterator[CommandCount]:
    """Count the round trips and commands `RedisDatabase`s send inside the block (those of
    `database` and of `more`, in one count).

    Same on every backend; see the module's documentation for what counts as what.
    """
    from limpyd.database import RedisDatabase

    for each in (database, *more):
        if not isinstance(each, RedisDatabase):
            raise TypeError(
                f"count_commands() counts RedisDatabase objects, not {each!r} (for a redis-py "
                "client: count_client_commands)"
            )
    counter = CommandCount()
    clients: set[int] = set()
    with ExitStack() as stack:
        for each in (database, *more):
            # `client` is the database's redis-py client; `connection` may be a pipeline of
            # it (PipelineDatabase) opened before the counter started: it is counted too.
            client = getattr(each, "client", None) or each.connection
            if id(client) in clients:  # databases sharing a client: counted once
                continue
            clients.add(id(client))
            stack.enter_context(_feeding(counter, client))
            connection = each.connection
            if connection is not client and hasattr(connection, "command_stack"):
                with _instrumented_lock:
                    _instrumented[id(client)].instrument_pipeline(connection)
        yield counter
