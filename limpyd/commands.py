"""Field commands take today's redis-py signatures: redis-py itself turns them into arguments.

`build(name, key, *args, **kwargs)` calls redis-py's own command method on a client that
records instead of sending, so every argument, option and validation is redis-py's.
`parse(client, name, reply, options)` turns a raw reply into what redis-py would return.
"""

from __future__ import annotations

from typing import Any

import redis

__all__ = ["Command", "arity_error", "build", "parse"]


class Command:
    """A Redis command as it goes on the wire, and the options redis-py parses its reply with."""

    __slots__ = ("args", "name", "options")

    def __init__(self, args: tuple[Any, ...], options: dict[str, Any]) -> None:
        self.args = args
        self.name: str = str(args[0]).upper()
        self.options = options

    def __repr__(self) -> str:
        return f"<Command {' '.join(map(repr, self.args))}>"


class _Recorder(redis.Redis):
    """A redis-py client whose commands are recorded instead of sent."""

    def execute_command(self, *args: Any, **options: Any) -> Command:
        return Command(args, options)


_recorder = _Recorder()


def build(name: str, *args: Any, **kwargs: Any) -> Command:
    """The command redis-py's `name` method would send for these arguments."""
    method = getattr(_recorder, name, None)
    if method is None:
        raise AttributeError(f"redis-py has no command {name!r}")
    command: Command = method(*args, **kwargs)  # _Recorder.execute_command's return
    return command


#: The fewest arguments (name and key included) of the field commands taking a variable
#: number of values, and whether those come in pairs: Redis refuses fewer, and from a
#: script with a message of its own ("Wrong number of args calling Redis command").
_FEWEST: dict[str, tuple[int, bool]] = {
    **dict.fromkeys(("SADD", "SREM", "LPUSH", "RPUSH", "LPUSHX", "RPUSHX"), (3, False)),
    **dict.fromkeys(("HDEL", "ZREM", "SMISMEMBER", "HMGET", "ZMSCORE"), (3, False)),
    **dict.fromkeys(("HSET", "HMSET"), (4, True)),
}


def arity_error(command: Command) -> str | None:
    """Why Redis would refuse `command` for its number of values, or None."""
    fewest, pairs = _FEWEST.get(command.name, (0, False))
    count = len(command.args)
    if count < fewest:
        return "no value given"
    if pairs and count % 2:
        return "its values come in field/value pairs, and the last one has no value"
    return None


def parse(client: redis.Redis, command: Command, reply: Any) -> Any:
    """What redis-py returns for `reply` to `command` (its response callback applied)."""
    callback = client.response_callbacks.get(command.name)
    if callback is None:
        return reply
    options = {k: v for k, v in command.options.items() if k != "keys"}
    return callback(reply, **options)
