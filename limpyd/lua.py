"""The Lua script limpyd runs on the server, and how it is called.

One script holds every mode (`read`, `apply`, `query`): `common.lua`, then each mode's files
(`MODES`) as a function, then a dispatch on the first argument; the operations the files
name as `OP.<name>` are written as their codes (from `protocol`). Calls use EVALSHA and fall back to
EVAL when the server does not know the script yet, which costs one extra round trip once
per server for all modes together. Queries, which never write (but `store()`), are sent as
EVALSHA_RO / EVAL_RO: a read-only replica answers them, and SCRIPT KILL can stop them.
Every call declares its keys (see `protocol`).
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from typing import Any

import redis
from redis.exceptions import NoScriptError

from limpyd.protocol import OPERATIONS, split

__all__ = ["APPLY", "QUERY", "READ", "SCRIPT", "STORE", "LuaScript", "ScriptMode"]

#: Each mode of the script, and the files (in limpyd/scripts) its function is made of.
MODES = {"read": ("read",), "apply": ("apply",), "query": ("order", "query")}


#: An operation named in the script's text (see `protocol`).
_OPERATION = re.compile(r"\bOP\.(\w+)")


def _with_operations(text: str) -> str:
    """`text` with each `OP.<name>` written as its code, a constant: no table of operations
    is built on each call. A name `protocol` does not define is an error here."""

    def code(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in OPERATIONS:
            raise RuntimeError(f"limpyd/scripts: no operation named OP.{name} in protocol")
        return f"'{OPERATIONS[name]}'"

    return _OPERATION.sub(code, text)


def _script_text() -> str:
    folder = resources.files("limpyd") / "scripts"
    parts = [(folder / "common.lua").read_text()]
    for mode, files in MODES.items():
        body = "\n".join((folder / f"{name}.lua").read_text() for name in files)
        parts.append(f"local function mode_{mode}(ARGV)\n{body}\nend\n")
    table = ", ".join(f"{mode} = mode_{mode}" for mode in MODES)
    # ARGV[1] names the mode; each mode's reader starts after it (see common.lua).
    parts.append(f"return ({{{table}}})[ARGV[1]](ARGV)\n")
    return _with_operations("\n".join(parts))


class LuaScript:
    """A script run with EVALSHA, falling back to EVAL."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()

    def __call__(self, client: redis.Redis, args: list[Any], read_only: bool = False) -> Any:
        """Run the script on `client` with `args` (its `Key`s declared in KEYS, see
        `protocol`); `read_only`: as a read-only script, which the server refuses to let
        write."""
        evalsha, eval_ = (
            (client.evalsha_ro, client.eval_ro) if read_only else (client.evalsha, client.eval)
        )
        keys, argv = split(args)
        try:
            return evalsha(self.sha, len(keys), *keys, *argv)
        except NoScriptError:
            return eval_(self.text, len(keys), *keys, *argv)

    def __repr__(self) -> str:
        return f"<LuaScript {self.sha[:8]}>"


class ScriptMode:
    """One mode of the limpyd script: `READ(client, args)`."""

    def __init__(self, script: LuaScript, mode: str, read_only: bool = False) -> None:
        self.script = script
        self.mode = mode
        self.read_only = read_only

    def __call__(self, client: redis.Redis, args: list[Any]) -> Any:
        return self.script(client, [self.mode, *args], self.read_only)


SCRIPT = LuaScript(_script_text())
READ = ScriptMode(SCRIPT, "read")
APPLY = ScriptMode(SCRIPT, "apply")
QUERY = ScriptMode(SCRIPT, "query", read_only=True)
#: The query mode for `store()`, the one query that writes (its result).
STORE = ScriptMode(SCRIPT, "query")
