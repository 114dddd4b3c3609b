"""`SetField`: an unordered set of unique strings; an index holds each member."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, overload

from limpyd.fields.base import RedisField, chunked

if TYPE_CHECKING:
    from typing import Literal

    from limpyd.fields.base import declared_sort

__all__ = ["SetField"]


class SetField(RedisField):
    """A Redis set."""

    state_kind = "set"
    getters = ("scard", "sismember", "smembers", "smismember", "srandmember", "sort")
    modifiers = ("sadd", "spop", "srem")

    if TYPE_CHECKING:  # generated from `getters` and `modifiers` (RedisField.__init_subclass__)

        def scard(self) -> int: ...
        def sismember(self, value: Any) -> Literal[0, 1]: ...
        def smembers(self) -> set[str]: ...
        def smismember(self, values: Any, *args: Any) -> list[Literal[0, 1]]: ...
        @overload
        def srandmember(self, number: None = None) -> str | None: ...
        @overload
        def srandmember(self, number: int) -> list[str]: ...
        def srandmember(self, *args: Any, **kwargs: Any) -> Any: ...

        sort = declared_sort

        def sadd(self, *values: Any) -> int: ...
        @overload
        def spop(self, count: None = None) -> str | None: ...
        @overload
        def spop(self, count: int) -> list[str]: ...
        def spop(self, *args: Any, **kwargs: Any) -> Any: ...
        def srem(self, *values: Any) -> int: ...

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
