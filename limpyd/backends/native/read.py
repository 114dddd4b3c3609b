"""The `read` function, natively (see limpyd/scripts/read.lua): the states a write depends
on, and modifiers simulated on a scratch copy."""

from __future__ import annotations

from typing import Any

from fakeredis._helpers import SimpleError

from limpyd import protocol
from limpyd.backends.native.server import Arguments, ScriptFailure, Server

__all__ = ["read"]

_STATE = protocol.STATE.encode()
_SIMULATE = protocol.SIMULATE.encode()


def read(server: Server, keys: list[bytes], args: list[bytes]) -> list[Any]:
    r = Arguments(keys, args)
    out: list[Any] = []
    while not r.done():
        op, kind, key, sub = r.next(), r.next(), r.key(), r.next()
        state = server.read_state(kind, key, sub)
        if op == _STATE:
            out.append(state)
        elif op == _SIMULATE:
            scratch = r.key()
            n = r.num()
            command = r.next()
            rest = r.list(n - 1)
            server.call(b"DEL", scratch)
            server.write_state(kind, scratch, sub, state)
            reply = server.pcall(command, scratch, *rest)
            outcome = [b"E", reply.value.encode()] if type(reply) is SimpleError else [b"R", reply]
            new_state = server.read_state(kind, scratch, sub)
            server.call(b"DEL", scratch)
            out.append([state, outcome, new_state])
        else:
            raise ScriptFailure(f"limpyd: unknown request {op.decode(errors='replace')}")
    return out
