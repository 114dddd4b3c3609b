"""The Lua scripts limpyd runs on the server, and how they are called.

Each script is `common.lua` followed by its own file. Calls use EVALSHA and fall back to
EVAL when the server does not know the script yet (one extra round trip, once per server).
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

import redis
from redis.exceptions import NoScriptError

__all__ = ["APPLY", "QUERY", "READ", "LuaScript"]


class LuaScript:
    """A script run with EVALSHA, falling back to EVAL."""

    def __init__(self, name: str) -> None:
        folder = resources.files("limpyd") / "scripts"
        common = (folder / "common.lua").read_text()
        self.name = name
        self.text = common + "\n" + (folder / f"{name}.lua").read_text()
        self.sha = hashlib.sha1(self.text.encode()).hexdigest()

    def __call__(self, client: redis.Redis, args: list[Any]) -> Any:
        """Run the script on `client` with `args` as ARGV (no KEYS)."""
        try:
            return client.evalsha(self.sha, 0, *args)
        except NoScriptError:
            return client.eval(self.text, 0, *args)

    def __repr__(self) -> str:
        return f"<LuaScript {self.name} {self.sha[:8]}>"


READ = LuaScript("read")
APPLY = LuaScript("apply")
QUERY = LuaScript("query")
