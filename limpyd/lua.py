"""The Lua code limpyd runs on the server, and how it is called.

The code is one function, `build()`: `common.lua`, then each mode's files (`MODES`), each
ending with the function a call of that mode runs, `(keys, argv, skip)`; the operations the
files name as `OP.<name>` are written as their codes (from `protocol`).

It reaches the server as a library of Redis Functions, named after a digest of the code (two
versions of limpyd never call each other's): one function per mode, built once per server
(on its first call), so a call runs only its own work. Queries, which never write (but
`store()`), are a `no-writes` function called with FCALL_RO: a read-only replica answers
them, and FUNCTION KILL can stop them. The first call on a server that lacks the library
sends FUNCTION LOAD, then the call again (a batch of calls: with the load, in one
pipeline). Where the library cannot be
loaded (a read-only replica whose primary never had it), the same code runs as an EVAL
script (EVALSHA, then EVAL), which builds the modes on each call.
Every call declares its keys (see `protocol`). An error of a call reaches the caller as
`refusals` reads it: limpyd's refusals as limpyd exceptions, the same on every backend.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from importlib import resources
from typing import Any

import redis
from redis.exceptions import NoPermissionError, NoScriptError, ReadOnlyError, ResponseError

from limpyd.protocol import (
    INDEX_COMMANDS,
    KEY_TYPES,
    OPERATIONS,
    STATE_TYPES,
    STORE_TTL_DIGITS,
    split,
)
from limpyd.refusals import translate

__all__ = ["APPLY", "QUERY", "READ", "SCRIPT", "STORE", "LuaScript", "ScriptMode"]

#: Each mode of the code, and the files (in limpyd/scripts) its function is made of.
MODES = {
    "read": ("read",),
    "apply": ("keytypes", "links", "apply"),
    "query": ("order", "query"),
}

#: The functions of the library: name -> (mode, whether it may write).
FUNCTIONS = {"read": ("read", True), "apply": ("apply", True), "query": ("query", False)}
FUNCTIONS["store"] = ("query", True)  # the one query that writes: its result

#: Why a server may refuse FUNCTION LOAD, and limpyd then evaluate its code: a read-only
#: replica, or a user whose ACL does not allow it.
_REFUSED_LOADS = (ReadOnlyError, NoPermissionError)

#: An operation named in the code's text (see `protocol`).
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


def _lua_table(names: dict[str, str] | dict[str, int]) -> str:
    """A Lua table of these names (identifiers) and texts or numbers."""
    return "{" + ", ".join(f"{name} = {value!r}" for name, value in names.items()) + "}"


def _build_source() -> str:
    """The Lua function `build()`, returning each mode's function by name."""
    folder = resources.files("limpyd") / "scripts"
    parts = [
        "local function build()",
        f"local KEY_TYPES = {_lua_table(KEY_TYPES)}",  # see protocol.KEY_TYPES
        f"local STATE_TYPES = {_lua_table(STATE_TYPES)}",
        f"local INDEX_COMMANDS = {_lua_table(INDEX_COMMANDS)}",
        f"local STORE_TTL_DIGITS = {STORE_TTL_DIGITS}",
        (folder / "common.lua").read_text(),
    ]
    for mode, files in MODES.items():
        body = "\n".join((folder / f"{name}.lua").read_text() for name in files)
        parts.append(f"local mode_{mode} = (function()\n{body}\nend)()\n")
    table = ", ".join(f"{mode} = mode_{mode}" for mode in MODES)
    parts.append(f"return {{{table}}}\nend\n")
    return _with_operations("\n".join(parts))


def is_missing(error: Any) -> bool:
    """Whether `error` (a reply) says the server does not know a limpyd function or script."""
    return isinstance(error, NoScriptError) or (
        isinstance(error, ResponseError) and "function not found" in str(error).lower()
    )


class LuaScript:
    """limpyd's Lua code (`build`, see the module's docstring), as a library and as a script."""

    def __init__(self, build: str) -> None:
        self.name = "limpyd_" + hashlib.sha1(build.encode()).hexdigest()[:20]
        registrations = "".join(
            f"redis.register_function{{function_name = '{self.name}_{function}', "
            f"callback = mode('{mode}')" + ("" if writes else ", flags = {'no-writes'}") + "}\n"
            for function, (mode, writes) in FUNCTIONS.items()
        )
        #: The library, for FUNCTION LOAD; its modes are built on the first call.
        self.library = (
            f"#!lua name={self.name}\n{build}\nlocal modes\n"
            "local function mode(name)\n"
            "    return function(keys, args)\n"
            "        if not modes then modes = build() end\n"
            "        return modes[name](keys, args, 0)\n"
            "    end\nend\n" + registrations
        )
        #: The same code as an EVAL script: ARGV[1] names the mode.
        self.text = f"{build}\nreturn build()[ARGV[1]](KEYS, ARGV, 1)\n"
        self.sha = hashlib.sha1(self.text.encode()).hexdigest()
        #: Clients that run the code as a script: their server refused the library (a read-only
        #: replica, an ACL), or a caller chose to.
        self.evaluating: weakref.WeakSet[Any] = weakref.WeakSet()

    def function(self, name: str) -> str:
        """The server-side name of the library's function `name` (a key of `FUNCTIONS`)."""
        return f"{self.name}_{name}"

    def load(self, client: Any) -> Any:
        """Send FUNCTION LOAD REPLACE (queued, if `client` is a pipeline): the library's name
        is its code's digest, so replacing one loaded meanwhile by another client changes
        nothing."""
        return client.function_load(self.library, replace=True)

    def __call__(
        self, client: redis.Redis, function: str, args: list[Any], guard: str, model: Any = None
    ) -> Any:
        """Call the library's `function` (a key of `FUNCTIONS`) on `client` with `args` (its
        `Key`s declared in KEYS after the slot `guard`, see `protocol`), made for `model`
        (which an error names; see `refusals`). A pipeline only queues the call (a batch of
        calls in one pipeline: `call_many`)."""
        try:
            return self._call(client, function, args, guard)
        except ResponseError as error:
            raise translate(error, model) from None

    def _call(self, client: redis.Redis, function: str, args: list[Any], guard: str) -> Any:
        mode, writes = FUNCTIONS[function]
        keys, argv = split(args, guard)
        if client in self.evaluating:
            return self._evaluate(client, writes, keys, [mode, *argv])
        call = [self.function(function), len(keys), *keys, *argv]
        try:
            return _fcall(client, writes)(*call)
        except ResponseError as error:
            if not is_missing(error):
                raise
        # Loaded, then called, each alone: a cluster's pipeline sends again a command whose
        # reply it lost, and the call would run twice (a load runs twice harmlessly).
        try:
            self.load(client)
        except _REFUSED_LOADS:
            self.evaluating.add(client)
            return self._evaluate(client, writes, keys, [mode, *argv])
        try:
            return _fcall(client, writes)(*call)
        except ResponseError as error:
            if not is_missing(error):
                raise
        # loaded, and flushed (FUNCTION FLUSH) before the call: this call as a script
        return self._evaluate(client, writes, keys, [mode, *argv])

    def call_many(
        self, client: redis.Redis, function: str, calls: list[tuple[list[Any], str]]
    ) -> list[Any]:
        """Call the library's `function` once per (args, guard) of `calls`, in pipelines (not
        transactions): the replies, errors included, in order. Only the calls the server
        answered it does not know the code are sent again, after FUNCTION LOAD (or as a
        script where the load is refused, as `__call__` does): a call that ran never runs
        twice, whoever loads the code meanwhile."""
        mode, writes = FUNCTIONS[function]
        prepared = [split(args, guard) for args, guard in calls]
        replies: list[Any] = [None] * len(prepared)
        pending = list(range(len(prepared)))
        # call (FCALL), load (FUNCTION LOAD and FCALL), evaluate (EVALSHA), text (EVAL)
        step = "evaluate" if client in self.evaluating else "call"
        while pending:
            with client.pipeline(transaction=False) as pipeline:
                if step == "load":
                    self.load(pipeline)
                for i in pending:
                    keys, argv = prepared[i]
                    if step in ("call", "load"):
                        _fcall(pipeline, writes)(self.function(function), len(keys), *keys, *argv)
                    else:
                        self._script(pipeline, step == "text", writes, keys, [mode, *argv])
                results = pipeline.execute(raise_on_error=False)
            loaded = results.pop(0) if step == "load" else None
            for i, reply in zip(pending, results, strict=True):
                replies[i] = reply
            pending = [i for i in pending if is_missing(replies[i])]
            if isinstance(loaded, _REFUSED_LOADS):
                self.evaluating.add(client)
            elif isinstance(loaded, Exception) and pending:
                raise loaded  # the library does not load: a bug, never hidden by the fallback
            if step == "call":
                step = "load"
            elif step == "load" and client in self.evaluating:
                step = "evaluate"
            elif step == "evaluate":
                step = "text"
            else:
                break  # loaded, or sent whole, and still unknown: answered as the server said
        return replies

    def _evaluate(self, client: redis.Redis, writes: bool, keys: list[str], argv: list[Any]) -> Any:
        """Run the code as an EVAL script (EVALSHA, then EVAL), read-only unless `writes`."""
        try:
            return self._script(client, False, writes, keys, argv)
        except NoScriptError:
            return self._script(client, True, writes, keys, argv)

    def _script(
        self, target: Any, text: bool, writes: bool, keys: list[str], argv: list[Any]
    ) -> Any:
        """EVAL (`text`) or EVALSHA of the code on `target` (a client or a pipeline),
        read-only unless `writes`."""
        if text:
            method = target.eval if writes else target.eval_ro
            return method(self.text, len(keys), *keys, *argv)
        method = target.evalsha if writes else target.evalsha_ro
        return method(self.sha, len(keys), *keys, *argv)

    def __repr__(self) -> str:
        return f"<LuaScript {self.name}>"


def _fcall(client: Any, writes: bool) -> Any:
    """FCALL, or FCALL_RO for a function that never writes."""
    return client.fcall if writes else client.fcall_ro


class ScriptMode:
    """One function of the limpyd library: `READ(client, args, guard=model._meta.probe_key,
    model=model)` (the guard: see `protocol`; the model, which errors name: see `refusals`)."""

    def __init__(self, script: LuaScript, function: str) -> None:
        self.script = script
        self.function = function

    def __call__(
        self, client: redis.Redis, args: list[Any], *, guard: str, model: Any = None
    ) -> Any:
        return self.script(client, self.function, args, guard, model)

    def many(self, client: redis.Redis, calls: list[tuple[list[Any], str]]) -> list[Any]:
        """The replies (errors included) of one call per (args, guard) of `calls`, sent in
        pipelines (see `LuaScript.call_many`)."""
        return self.script.call_many(client, self.function, calls)


SCRIPT = LuaScript(_build_source())
READ = ScriptMode(SCRIPT, "read")
APPLY = ScriptMode(SCRIPT, "apply")
QUERY = ScriptMode(SCRIPT, "query")
#: The query for `store()`, the one query that writes (its result).
STORE = ScriptMode(SCRIPT, "store")
