"""`ListField`: an ordered list of strings, repeats allowed; an index holds each value."""

from __future__ import annotations

from typing import Any

from limpyd.fields.base import RedisField, chunked

__all__ = ["ListField"]


class ListField(RedisField):
    """A Redis list."""

    state_kind = "list"
    getters = ("lindex", "llen", "lpos", "lrange", "sort")
    modifiers = (
        "linsert", "lpop", "lpush", "lpushx", "lrem", "lset", "ltrim", "rpop", "rpush", "rpushx",
    )  # fmt: skip

    def state_of(self, value: Any) -> list[str]:
        return self.texts(value)

    def items_of(self, state: list[str]) -> list[tuple[str | None, str]]:
        return [(None, value) for value in dict.fromkeys(state)]

    def transition(self, pk: str, old: list[str], new: list[str]) -> list[tuple[Any, ...]]:
        """The cheapest of: push at an end, trim, or rewrite the whole list."""
        key, n, m = self.key_for(pk), len(old), len(new)
        if old == new:
            return []
        if not new:
            return [("DEL", key)]
        if m > n and new[:n] == old:
            return chunked("RPUSH", (key,), new[n:])
        if m > n and new[m - n :] == old:
            return chunked("LPUSH", (key,), new[: m - n][::-1])
        if m < n and old[:m] == new:
            return [("LTRIM", key, 0, m - 1)]
        if m < n and old[n - m :] == new:
            return [("LTRIM", key, n - m, -1)]
        return [("DEL", key), *chunked("RPUSH", (key,), new)]
