"""Declared keys: how a script call names the keys it touches.

Every key a call of the limpyd script touches that is known before the call goes in KEYS
(what lets a cluster client route the call and the server check its slots); ARGV refers to
it by its 1-based position there, read by `r.key()` in the script (see common.lua). Keys
found at run time (the instances of a query, those pointing to a deleted one, a new pk's) are
built by the script from the declared ones' prefixes.

Arguments are built as flat lists in which keys are `Key` instances; `split` makes the
(KEYS, ARGV) pair sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["Key", "command_keys", "split"]


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


def split(args: Iterable[Any]) -> tuple[list[str], list[Any]]:
    """(KEYS, ARGV) for arguments holding `Key`s: each key declared once, in order of first
    use, and replaced by its position."""
    positions: dict[str, int] = {}
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
