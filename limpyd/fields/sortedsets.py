"""`SortedSetField`: unique strings ordered by score; an index holds each member."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from limpyd.fields.base import RedisField, chunked, pairs
from limpyd.fields.numbers import double_error

__all__ = ["SortedSetField"]


class SortedSetField(RedisField):
    """A Redis sorted set. `zadd` takes a mapping and/or `member=score` keywords."""

    state_kind = "zset"
    getters = (
        "sort", "zcard", "zcount", "zlexcount", "zmscore", "zrange", "zrangebylex",
        "zrangebyscore", "zrank", "zrevrange", "zrevrangebylex", "zrevrangebyscore", "zrevrank",
        "zscore",
    )  # fmt: skip
    modifiers = (
        "zincrby", "zpopmax", "zpopmin", "zrem", "zremrangebylex", "zremrangebyrank",
        "zremrangebyscore",
    )  # fmt: skip

    def state_of(self, value: Any) -> list[str]:
        if not isinstance(value, Mapping):
            raise ValueError(
                f"{self.describe()}: invalid value {value!r}: a mapping of member to score "
                "is expected"
            )
        flat: list[str] = []
        for member, score in value.items():
            flat += [self.text(member), self.text(score)]
            refused = double_error(flat[-1])
            if refused is not None:
                raise ValueError(
                    f"{self.describe()}: invalid score {score!r} of member {member!r}: {refused}"
                )
        return flat

    def items_of(self, state: list[str]) -> list[tuple[str | None, str]]:
        return [(None, member) for member in state[::2]]

    def transition(self, pk: str, old: list[str], new: list[str]) -> list[tuple[Any, ...]]:
        key, before, after = self.key_for(pk), pairs(old), pairs(new)
        if not after:
            return [("DEL", key)] if before else []
        removed = [m for m in before if m not in after]
        changed = [x for m, s in after.items() if before.get(m) != s for x in (s, m)]
        return chunked("ZREM", (key,), removed) + chunked("ZADD", (key,), changed)

    def zadd(
        self,
        mapping: Mapping[Any, Any] | None = None,
        nx: bool = False,
        xx: bool = False,
        ch: bool = False,
        incr: bool = False,
        gt: bool = False,
        lt: bool = False,
        **scores: Any,
    ) -> Any:
        """ZADD members with their scores: `zadd({'a': 1.5})` or `zadd(a=1.5)` (or both)."""
        return self._modify(
            "zadd", {**(mapping or {}), **scores}, nx=nx, xx=xx, ch=ch, incr=incr, gt=gt, lt=lt
        )

    def zscan(
        self, match: str | None = None, count: int | None = None
    ) -> Iterator[tuple[str, float]]:
        """All (or matching) (member, score) pairs, with ZSCAN; the cursor is handled here."""
        return self._scan("zscan", match, count)
