"""Client-side counting of round trips and commands, the same for the three implementations.

Standard library only: it runs in the project's environment (limpyd, raw redis-py) and in
redis-limpyd's virtualenv. It wraps one redis-py client (`redis.Redis` or `fakeredis.FakeRedis`,
any redis-py version from 3 on) the way `limpyd_testing.counting` does, so the numbers mean
the same on every implementation and on both backends:

- a command sent alone (`client.execute_command`, which every redis-py command method and
  `Script.__call__` go through) is one round trip and one command;
- a pipeline or a MULTI/EXEC transaction is one round trip when executed, and as many
  commands as it queued (MULTI and EXEC themselves are not counted); a command a pipeline
  sends at once (after WATCH) is one round trip and one command; a pipeline dropped while
  watching sends UNWATCH: one more.

Pipelines made by `client.pipeline()` are counted automatically; a pipeline built another way
(redis-limpyd's `PipelineDatabase` instantiates its own subclass) is handed to
`Counter.instrument_pipeline`. The wrappers are instance attributes, installed only while a
counter is active: timed runs go through the untouched client.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

__all__ = ["Counter", "counting"]


def _name(args: tuple[Any, ...]) -> str:
    name = args[0] if args else ""
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    return str(name).upper()


class Counter:
    """What was sent through one client while active: `round_trips`, `commands`, `names`."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.round_trips = 0
        self.commands = 0
        self.names: list[str] = []
        self.active = False

    def _record(self, names: list[str]) -> None:
        if self.active:
            self.round_trips += 1
            self.commands += len(names)
            self.names.extend(names)

    def install(self) -> None:
        client = self.client
        execute_command = client.execute_command
        make_pipeline = client.pipeline

        def counted_execute_command(*args: Any, **options: Any) -> Any:
            self._record([_name(args)])
            return execute_command(*args, **options)

        def counted_pipeline(*args: Any, **kwargs: Any) -> Any:
            return self.instrument_pipeline(make_pipeline(*args, **kwargs))

        client.execute_command = counted_execute_command
        client.pipeline = counted_pipeline
        self.active = True

    def uninstall(self) -> None:
        self.active = False
        for name in ("execute_command", "pipeline"):
            self.client.__dict__.pop(name, None)

    def instrument_pipeline(self, pipe: Any) -> Any:
        """Count what `pipe` sends (idempotent)."""
        if pipe.__dict__.get("_bench_counted"):
            return pipe
        pipe._bench_counted = True
        execute = pipe.execute
        immediate = pipe.immediate_execute_command
        reset = pipe.reset

        def counted_execute(*args: Any, **kwargs: Any) -> Any:
            # redis-py sends nothing for an empty pipeline that watches nothing.
            sends = bool(pipe.command_stack or pipe.watching)
            names = [_name(command) for command, _ in pipe.command_stack]
            try:
                return execute(*args, **kwargs)
            finally:
                if sends:
                    self._record(names)

        def counted_immediate(*args: Any, **options: Any) -> Any:
            self._record([_name(args)])
            return immediate(*args, **options)

        def counted_reset() -> None:
            if pipe.watching and pipe.connection:
                self._record(["UNWATCH"])
            reset()

        pipe.execute = counted_execute
        pipe.immediate_execute_command = counted_immediate
        pipe.reset = counted_reset
        return pipe


@contextmanager
def counting(client: Any):
    """`with counting(client) as counter: ...`: count what the block sends through `client`."""
    counter = Counter(client)
    counter.install()
    try:
        yield counter
    finally:
        counter.uninstall()
