"""`SortedSetField`: unique strings ordered by score; an index holds each member."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, overload

from limpyd.fields.base import RedisField, chunked, pairs
from limpyd.fields.numbers import double_error

if TYPE_CHECKING:
    from typing import Literal

    from limpyd.fields.base import declared_sort

    #: A score bound: a number, or its text ('(1.5' excludes it, '-inf', '+inf').
    _Bound = float | str
    #: What turns a score's text into the score a reply gives (redis-py's `score_cast_func`).
    _Cast = Callable[[str], float]

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

    if TYPE_CHECKING:  # generated from `getters` and `modifiers` (RedisField.__init_subclass__)
        sort = declared_sort

        def zcard(self) -> int: ...
        def zcount(self, min: _Bound, max: _Bound) -> int: ...
        def zlexcount(self, min: str, max: str) -> int: ...
        def zmscore(self, members: list[Any]) -> list[float | None]: ...
        @overload
        def zrange(
            self,
            start: int | _Bound,
            end: int | _Bound,
            desc: bool = False,
            withscores: Literal[False] = False,
            score_cast_func: _Cast = float,
            byscore: bool = False,
            bylex: bool = False,
            offset: int | None = None,
            num: int | None = None,
        ) -> list[str]: ...
        @overload
        def zrange(
            self,
            start: int | _Bound,
            end: int | _Bound,
            desc: bool = False,
            *,
            withscores: Literal[True],
            score_cast_func: _Cast = float,
            byscore: bool = False,
            bylex: bool = False,
            offset: int | None = None,
            num: int | None = None,
        ) -> list[tuple[str, float]]: ...
        def zrange(self, *args: Any, **kwargs: Any) -> Any: ...
        def zrangebylex(
            self, min: str, max: str, start: int | None = None, num: int | None = None
        ) -> list[str]: ...
        @overload
        def zrangebyscore(
            self,
            min: _Bound,
            max: _Bound,
            start: int | None = None,
            num: int | None = None,
            withscores: Literal[False] = False,
            score_cast_func: _Cast = float,
        ) -> list[str]: ...
        @overload
        def zrangebyscore(
            self,
            min: _Bound,
            max: _Bound,
            start: int | None = None,
            num: int | None = None,
            *,
            withscores: Literal[True],
            score_cast_func: _Cast = float,
        ) -> list[tuple[str, float]]: ...
        def zrangebyscore(self, *args: Any, **kwargs: Any) -> Any: ...
        @overload
        def zrank(
            self, value: Any, withscore: Literal[False] = False, score_cast_func: _Cast = float
        ) -> int | None: ...
        @overload
        def zrank(
            self, value: Any, withscore: Literal[True], score_cast_func: _Cast = float
        ) -> list[Any] | None: ...
        def zrank(self, *args: Any, **kwargs: Any) -> Any: ...
        @overload
        def zrevrange(
            self,
            start: int,
            end: int,
            withscores: Literal[False] = False,
            score_cast_func: _Cast = float,
        ) -> list[str]: ...
        @overload
        def zrevrange(
            self, start: int, end: int, withscores: Literal[True], score_cast_func: _Cast = float
        ) -> list[tuple[str, float]]: ...
        def zrevrange(self, *args: Any, **kwargs: Any) -> Any: ...
        def zrevrangebylex(
            self, max: str, min: str, start: int | None = None, num: int | None = None
        ) -> list[str]: ...
        @overload
        def zrevrangebyscore(
            self,
            max: _Bound,
            min: _Bound,
            start: int | None = None,
            num: int | None = None,
            withscores: Literal[False] = False,
            score_cast_func: _Cast = float,
        ) -> list[str]: ...
        @overload
        def zrevrangebyscore(
            self,
            max: _Bound,
            min: _Bound,
            start: int | None = None,
            num: int | None = None,
            *,
            withscores: Literal[True],
            score_cast_func: _Cast = float,
        ) -> list[tuple[str, float]]: ...
        def zrevrangebyscore(self, *args: Any, **kwargs: Any) -> Any: ...
        @overload
        def zrevrank(
            self, value: Any, withscore: Literal[False] = False, score_cast_func: _Cast = float
        ) -> int | None: ...
        @overload
        def zrevrank(
            self, value: Any, withscore: Literal[True], score_cast_func: _Cast = float
        ) -> list[Any] | None: ...
        def zrevrank(self, *args: Any, **kwargs: Any) -> Any: ...
        def zscore(self, value: Any) -> float | None: ...
        def zincrby(self, amount: float, value: Any) -> float: ...
        def zpopmax(self, count: int | None = None) -> list[tuple[str, float]]: ...
        def zpopmin(self, count: int | None = None) -> list[tuple[str, float]]: ...
        def zrem(self, *values: Any) -> int: ...
        def zremrangebylex(self, min: str, max: str) -> int: ...
        def zremrangebyrank(self, min: int, max: int) -> int: ...
        def zremrangebyscore(self, min: _Bound, max: _Bound) -> int: ...

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

    @overload
    def zadd(
        self,
        mapping: Mapping[Any, Any] | None = None,
        nx: bool = False,
        xx: bool = False,
        ch: bool = False,
        incr: Literal[False] = False,
        gt: bool = False,
        lt: bool = False,
        **scores: Any,
    ) -> int: ...
    @overload
    def zadd(
        self,
        mapping: Mapping[Any, Any] | None = None,
        nx: bool = False,
        xx: bool = False,
        ch: bool = False,
        *,
        incr: Literal[True],
        gt: bool = False,
        lt: bool = False,
        **scores: Any,
    ) -> float | None: ...
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
    ) -> int | float | None:
        """ZADD members with their scores: `zadd({'a': 1.5})` or `zadd(a=1.5)` (or both)."""
        reply: int | float | None = self._modify(
            "zadd", {**(mapping or {}), **scores}, nx=nx, xx=xx, ch=ch, incr=incr, gt=gt, lt=lt
        )
        return reply

    def zscan(
        self, match: str | None = None, count: int | None = None
    ) -> Iterator[tuple[str, float]]:
        """All (or matching) (member, score) pairs, with ZSCAN; the cursor is handled here."""
        return self._scan("zscan", match, count)
