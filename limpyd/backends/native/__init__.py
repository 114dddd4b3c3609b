"""limpyd's server functions, run natively by the fake server.

On Redis, limpyd's operations run as the Lua functions of `limpyd.lua`. A fakeredis server
would run that Lua through lupa, crossing from Lua into Python for every `redis.call`, which
made the in-memory backend slower than a real server. The fake server here runs the same
functions as Python code instead: the same grammar (`limpyd.protocol`), the same phases (every
check before the first write), the same commands run through the fake server's own command
table, under its lock, so other clients of that server see each call as one atomic step.

Only a call of a function the server has loaded runs here (the library is still loaded by
FUNCTION LOAD, listed by FUNCTION LIST, and a call before it is loaded fails as on Redis);
its name holds the digest of the Lua code, so a name found here is this version's. The
backend-parity state machine and tests/test_script_protocol.py hold both implementations to
the same answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from limpyd.backends.native.apply import apply
from limpyd.backends.native.query import query
from limpyd.backends.native.read import read
from limpyd.backends.native.server import ScriptFailure, Server
from limpyd.lua import FUNCTIONS, SCRIPT

__all__ = ["NATIVE", "ScriptFailure", "Server"]

Function = Callable[[Server, list[bytes], list[bytes]], Any]

_MODES: dict[str, Function] = {"read": read, "apply": apply, "query": query}

#: The native function of each limpyd function, by its name on the server.
NATIVE: dict[bytes, Function] = {
    SCRIPT.function(name).encode(): _MODES[mode]
    for name, (mode, _writes) in FUNCTIONS.items()
    if mode in _MODES
}
