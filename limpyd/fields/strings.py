"""Fields holding one string: `StringField` (its own key) and `InstanceHashField` (a field of
the instance's hash, shared by all its InstanceHashFields)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, overload

from limpyd import commands
from limpyd.exceptions import ImplementationError
from limpyd.fields.base import RedisField

if TYPE_CHECKING:
    from datetime import datetime, timedelta
    from typing import Literal

__all__ = ["InstanceHashField", "StringField"]

#: The options of SET giving the key an expiry.
_EXPIRY_OPTIONS = frozenset({"EX", "PX", "EXAT", "PXAT"})


class _SingleValueField(RedisField):
    """A field holding at most one string."""

    #: The command reading the value.
    value_getter: ClassVar[str] = "get"

    def state_of(self, value: Any) -> list[str]:
        return [self.text(value)]

    def get_now(self) -> str | None:
        """The value, read at once even inside a pipeline: for what needs the answer before
        the pipeline's (a filter by this field's value, a foreign key's instance)."""
        value: str | None = self._read(self.value_getter, at_once=True)
        return value


class StringField(_SingleValueField):
    """A Redis string."""

    state_kind = "string"
    getters: ClassVar[tuple[str, ...]] = ("bitcount", "get", "getbit", "getrange", "strlen")
    modifiers: ClassVar[tuple[str, ...]] = (
        "append", "decr", "decrby", "getdel", "getset", "incr", "incrby", "incrbyfloat",
        "set", "setbit", "setnx", "setrange",
    )  # fmt: skip

    if TYPE_CHECKING:  # generated from `getters` and `modifiers` (RedisField.__init_subclass__)

        def bitcount(
            self, start: int | None = None, end: int | None = None, mode: str | None = None
        ) -> int: ...
        def get(self) -> str | None: ...
        def getbit(self, offset: int) -> int: ...
        def getrange(self, start: int, end: int) -> str: ...
        def strlen(self) -> int: ...
        def append(self, value: Any) -> int: ...
        def decr(self, amount: int = 1) -> int: ...
        def decrby(self, amount: int = 1) -> int: ...
        def getdel(self) -> str | None: ...
        def getset(self, value: Any) -> str | None: ...
        def incr(self, amount: int = 1) -> int: ...
        def incrby(self, amount: int = 1) -> int: ...
        def incrbyfloat(self, amount: float = 1.0) -> float: ...
        @overload
        def set(
            self,
            value: Any,
            ex: int | timedelta | None = None,
            px: int | timedelta | None = None,
            nx: bool = False,
            xx: bool = False,
            keepttl: bool = False,
            get: Literal[False] = False,
            exat: int | datetime | None = None,
            pxat: int | datetime | None = None,
            ifeq: str | None = None,
            ifne: str | None = None,
            ifdeq: str | None = None,
            ifdne: str | None = None,
        ) -> bool | None: ...
        @overload
        def set(
            self,
            value: Any,
            ex: int | timedelta | None = None,
            px: int | timedelta | None = None,
            nx: bool = False,
            xx: bool = False,
            keepttl: bool = False,
            *,
            get: Literal[True],
            exat: int | datetime | None = None,
            pxat: int | datetime | None = None,
            ifeq: str | None = None,
            ifne: str | None = None,
            ifdeq: str | None = None,
            ifdne: str | None = None,
        ) -> str | None: ...
        def set(self, *args: Any, **kwargs: Any) -> Any: ...
        def setbit(self, offset: int, value: int) -> int: ...
        def setnx(self, value: Any) -> bool: ...
        def setrange(self, offset: int, value: Any) -> int: ...

    def command(self, name: str, pk: str, *args: Any, **kwargs: Any) -> commands.Command:
        """As for any field; a SET giving an indexed field an expiry is refused: Redis would
        drop the value and leave its index entries and uniqueness behind."""
        command = super().command(name, pk, *args, **kwargs)
        if self.indexes and command.name == "SET":
            expiry = [a for a in command.args[3:] if a.upper() in _EXPIRY_OPTIONS]
            if expiry:
                raise ImplementationError(
                    f"{self.describe()}.set({command.args[2]!r}, {expiry[0].lower()}=...): an "
                    "indexed field cannot expire alone (Redis would drop the value and leave "
                    "its index entries behind); nothing was written. Expire the instance with "
                    "instance.expire(seconds), or set the value without an expiry"
                )
        return command

    def transition(self, pk: str, old: list[str], new: list[str]) -> list[tuple[Any, ...]]:
        if old == new:
            return []
        return [("SET", self.key_for(pk), new[0])] if new else [("DEL", self.key_for(pk))]


class InstanceHashField(_SingleValueField):
    """A field stored in the instance's hash: cheaper than a StringField, and several can be
    read or written at once with the instance's `hmget`/`hmset`."""

    state_kind = "hashfield"
    getters = ("hget",)
    modifiers = ("hincrby", "hincrbyfloat", "hset", "hsetnx")
    value_getter = "hget"

    if TYPE_CHECKING:  # generated from `getters` and `modifiers` (RedisField.__init_subclass__)

        def hget(self) -> str | None: ...
        def hincrby(self, amount: int = 1) -> int: ...
        def hincrbyfloat(self, amount: float = 1.0) -> float: ...
        def hsetnx(self, value: Any) -> int: ...

    def key_for(self, pk: str) -> str:
        return self.model._meta.hash_key(pk)

    def key_args(self, pk: str) -> tuple[str, ...]:
        return (self.key_for(pk), self.name)

    def state_location(self, pk: str) -> tuple[str, str]:
        return self.key_for(pk), self.name

    def transition(self, pk: str, old: list[str], new: list[str]) -> list[tuple[Any, ...]]:
        if old == new:
            return []
        if new:
            return [("HSET", self.key_for(pk), self.name, new[0])]
        return [self.clear_command(pk)]

    def clear_command(self, pk: str) -> tuple[Any, ...]:
        return ("HDEL", self.key_for(pk), self.name)

    def hset(self, *args: Any, **kwargs: Any) -> int:
        """Set the value: `hset(value)` (HSET of this field only). The forms of redis-py's
        `hset` writing more (`mapping`, `items`, a key) would reach the instance's other
        fields behind their indexes and uniqueness: they are refused; write several fields
        with the instance's `hmset`."""
        if len(args) != 1 or kwargs:
            given = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
            raise ValueError(
                f"{self.describe()}.hset({given}): takes one value, for this field only; "
                "write several fields with the instance's hmset()"
            )
        written: int = self._modify("hset", args[0])
        return written

    def exists(self) -> bool:
        """Whether the field has a value in the instance's hash (HEXISTS)."""
        return self._exists("hexists")

    #: redis-limpyd's name of `exists()` for this field.
    hexists = exists

    def get(self) -> str | None:
        """The value (HGET), as for a StringField."""
        return self.hget()

    def set(self, value: Any) -> int:
        """Set the value (HSET), as for a StringField."""
        return self.hset(value)

    def hdel(self) -> int:
        """Delete the value: the same as `delete()`."""
        return self.delete()
