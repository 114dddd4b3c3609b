"""`HashField`: a dict in one Redis hash; indexes are kept per hash key."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from limpyd.fields.base import RedisField, chunked, pairs

__all__ = ["HashField"]


class HashField(RedisField):
    """A Redis hash. Filter on one of its keys with `collection(field__key=value)`."""

    state_kind = "hash"
    getters = ("hexists", "hget", "hgetall", "hkeys", "hlen", "hmget", "hstrlen", "hvals")
    modifiers = ("hdel", "hincrby", "hincrbyfloat", "hset", "hsetnx")

    if TYPE_CHECKING:  # generated from `getters` and `modifiers` (RedisField.__init_subclass__)

        def hexists(self, key: Any) -> bool: ...
        def hget(self, key: Any) -> str | None: ...
        def hgetall(self) -> dict[str, str]: ...
        def hkeys(self) -> list[str]: ...
        def hlen(self) -> int: ...
        def hmget(self, keys: Any, *args: Any) -> list[str | None]: ...
        def hstrlen(self, key: Any) -> int: ...
        def hvals(self) -> list[str]: ...
        def hdel(self, *keys: Any) -> int: ...
        def hincrby(self, key: Any, amount: int = 1) -> int: ...
        def hincrbyfloat(self, key: Any, amount: float = 1.0) -> float: ...
        def hset(
            self,
            key: Any = None,
            value: Any = None,
            mapping: Mapping[Any, Any] | None = None,
            items: Sequence[Any] | None = None,
        ) -> int: ...
        def hsetnx(self, key: Any, value: Any) -> int: ...

    def state_of(self, value: Any) -> list[str]:
        if not isinstance(value, Mapping):
            raise ValueError(f"{self.describe()}: invalid value {value!r}: a mapping is expected")
        flat: list[str] = []
        for key, item in value.items():
            flat += [self.text(key), self.text(item)]
        return flat

    def items_of(self, state: list[str]) -> list[tuple[str | None, str]]:
        return list(pairs(state).items())

    def transition(self, pk: str, old: list[str], new: list[str]) -> list[tuple[Any, ...]]:
        key, before, after = self.key_for(pk), pairs(old), pairs(new)
        if not after:
            return [("DEL", key)] if before else []
        removed = [k for k in before if k not in after]
        changed = [x for k, v in after.items() if before.get(k) != v for x in (k, v)]
        return chunked("HDEL", (key,), removed) + chunked("HSET", (key,), changed)

    def hmset(self, *args: Mapping[str, Any], **values: Any) -> bool:
        """Set several keys: `hmset({'a': 1})` or `hmset(a=1)` (HSET with a mapping)."""
        mapping = dict(*args, **values)
        self._modify("hset", mapping=mapping)
        return True

    def exists(self, key: Any = None) -> bool:
        """Whether the hash has `key` (HEXISTS, as redis-limpyd's `exists(key)`); with no
        key, whether the field has a value."""
        return super().exists() if key is None else self._exists("hexists", key)

    def hscan(
        self, match: str | None = None, count: int | None = None
    ) -> Iterator[tuple[str, str]]:
        """All (or matching) (key, value) pairs, with HSCAN; the cursor is handled here."""
        return self._scan("hscan", match, count)
