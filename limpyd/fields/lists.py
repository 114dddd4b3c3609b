"""`ListField`: an ordered list of strings, repeats allowed; an index holds each value."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, overload

from limpyd.fields.base import RedisField, chunked

if TYPE_CHECKING:
    from limpyd.fields.base import declared_sort

__all__ = ["ListField"]


class ListField(RedisField):
    """A Redis list."""

    state_kind = "list"
    getters = ("lindex", "llen", "lpos", "lrange", "sort")
    modifiers = (
        "linsert", "lpop", "lpush", "lpushx", "lrem", "lset", "ltrim", "rpop", "rpush", "rpushx",
    )  # fmt: skip

    if TYPE_CHECKING:  # generated from `getters` and `modifiers` (RedisField.__init_subclass__)

        def lindex(self, index: int) -> str | None: ...
        def llen(self) -> int: ...
        @overload
        def lpos(
            self, value: Any, rank: int | None = None, count: None = None, maxlen: int | None = None
        ) -> int | None: ...
        @overload
        def lpos(
            self, value: Any, rank: int | None = None, *, count: int, maxlen: int | None = None
        ) -> list[int]: ...
        def lpos(self, *args: Any, **kwargs: Any) -> Any: ...
        def lrange(self, start: int, end: int) -> list[str]: ...

        sort = declared_sort

        def linsert(self, where: str, refvalue: Any, value: Any) -> int: ...
        @overload
        def lpop(self, count: None = None) -> str | None: ...
        @overload
        def lpop(self, count: int) -> list[str] | None: ...
        def lpop(self, *args: Any, **kwargs: Any) -> Any: ...
        def lpush(self, *values: Any) -> int: ...
        def lpushx(self, *values: Any) -> int: ...
        def lrem(self, count: int, value: Any) -> int: ...
        def lset(self, index: int, value: Any) -> bool: ...
        def ltrim(self, start: int, end: int) -> bool: ...
        @overload
        def rpop(self, count: None = None) -> str | None: ...
        @overload
        def rpop(self, count: int) -> list[str] | None: ...
        def rpop(self, *args: Any, **kwargs: Any) -> Any: ...
        def rpush(self, *values: Any) -> int: ...
        def rpushx(self, *values: Any) -> int: ...

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
