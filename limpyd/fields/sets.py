"""`SetField`: an unordered set of unique strings; an index holds each member."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from limpyd.fields.base import RedisField, chunked

__all__ = ["SetField"]


class SetField(RedisField):
    """A Redis set."""

    state_kind = "set"
    getters = ("scard", "sismember", "smembers", "smismember", "srandmember", "sort")
    modifiers = ("sadd", "spop", "srem")

    def state_of(self, value: Any) -> list[str]:
        return list(dict.fromkeys(self.texts(value)))

    def transition(self, pk: str, old: list[str], new: list[str]) -> list[tuple[Any, ...]]:
        key, before, after = self.key_for(pk), set(old), set(new)
        if not after:
            return [("DEL", key)] if before else []
        removed = [m for m in old if m not in after]
        added = [m for m in new if m not in before]
        return chunked("SREM", (key,), removed) + chunked("SADD", (key,), added)

    def sscan(self, match: str | None = None, count: int | None = None) -> Iterator[str]:
        """All (or matching) members, with SSCAN; the cursor is handled here."""
        return self._scan("sscan", match, count)
