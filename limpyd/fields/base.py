"""`RedisField`: a field as declared on a model, and bound to an instance when accessed.

A field class lists the Redis commands it supports as `getters` (read-only, sent as they
are) and `modifiers` (writes, which keep indexes and uniqueness exact atomically, see
`limpyd.writes`). Their methods are generated from those lists; arguments are today's
redis-py ones, without the key.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeVar, cast

from redis.exceptions import DataError

from limpyd import commands
from limpyd.exceptions import DoesNotExist, ImplementationError
from limpyd.fields.numbers import check_numbers, parses_numbers
from limpyd.indexes import BaseIndex, EqualIndex, check_distinct
from limpyd.text import ValueTypeError, to_text

if TYPE_CHECKING:
    from limpyd.model import RedisModel

__all__ = ["NO_DEFAULT", "RedisField"]

#: A field type: `Model.field` and `instance.field` are of the declared field's type.
_Field = TypeVar("_Field", bound="RedisField")


#: The `default` of a field that has none.
class _NoDefault:
    """The `default` of a field given none (None is a value): one object, pickled by name."""

    def __repr__(self) -> str:
        return "NO_DEFAULT"

    def __reduce__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()


def _getter(name: str) -> Any:
    def method(self: RedisField, *args: Any, **kwargs: Any) -> Any:
        return self._read(name, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = f"Redis {name.upper()} on this field (redis-py arguments, without the key)."
    # type-ignored: a marker on the function: generated methods may be replaced by subclasses
    method.generated = True  # type: ignore[attr-defined]
    return method


def _modifier(name: str) -> Any:
    def method(self: RedisField, *args: Any, **kwargs: Any) -> Any:
        return self._modify(name, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = (
        f"Redis {name.upper()} on this field (redis-py arguments, without the key), "
        "indexes kept exact."
    )
    # type-ignored: a marker on the function: generated methods may be replaced by subclasses
    method.generated = True  # type: ignore[attr-defined]
    return method


#: The seconds EXPIRE takes: Redis refuses what overflows its clock in milliseconds (a
#: margin of 2**32 s for the time added to it).
_MAX_EXPIRE = (2**63 - 1) // 1000 - 2**32
_INTEGER = re.compile(r"0|-?[1-9][0-9]*")  # as Redis reads one: no sign but -, no leading 0


class RedisField:
    """Base of all fields. Declared on a model class; `instance.field` is a bound copy."""

    #: How the write scripts read and write this field's value (see common.lua).
    state_kind: ClassVar[str] = ""
    #: Whether values are references to instances, checked when written (contrib.related).
    references: ClassVar[bool] = False
    getters: ClassVar[tuple[str, ...]] = ()
    modifiers: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for names, make in ((cls.getters, _getter), (cls.modifiers, _modifier)):
            for name in names:
                existing = getattr(cls, name, None)
                if existing is None or getattr(existing, "generated", False):
                    setattr(cls, name, make(name))

    def __init__(
        self,
        *,
        default: Any = NO_DEFAULT,
        indexable: bool | None = None,
        unique: bool = False,
        indexes: Iterable[type[BaseIndex]] | None = None,
        lockable: bool = True,
    ) -> None:
        self.default = default
        #: `indexable` as declared (None: not given), for the model's declaration checks.
        self.declared_indexable = indexable
        self.unique = bool(unique)
        self.indexable = bool(indexable or unique or indexes)
        self.index_classes: list[type[BaseIndex]] = list(
            indexes or ([EqualIndex] if self.indexable else [])
        )
        for index_class in self.index_classes:
            if not (isinstance(index_class, type) and issubclass(index_class, BaseIndex)):
                raise ImplementationError(f"{index_class!r} is not an index class")
        #: Accepted for compatibility; limpyd writes are lock-free (see the docs).
        self.lockable = bool(lockable)
        self.name = ""
        # type-ignored: None until attach() gives the field its model (always, when declared on one)
        self.model: type[RedisModel] = None  # type: ignore[assignment]
        self._instance: RedisModel | None = None
        self.indexes: list[BaseIndex] = []
        #: Facts the write planner derives from the declaration, computed once (bound
        #: copies share this dict).
        self.derived: dict[Any, Any] = {}

    # Declaration ---------------------------------------------------------------------------

    def attach(self, model: type[RedisModel], name: str) -> RedisField:
        """A copy of this field declared on `model` as `name`, with its own indexes."""
        field = copy.copy(self)
        field.model, field.name, field._instance = model, name, None
        field.derived = {}
        field.indexes = [index for cls in self.index_classes for index in cls.expand(field)]
        check_distinct(field, field.indexes)
        if self.unique and not any(index.handle_uniqueness for index in field.indexes):
            raise ImplementationError(
                f"{field.describe()} is unique: it needs an index that handles uniqueness"
            )
        return field

    def describe(self) -> str:
        """`Model.field`, for messages."""
        model = self.model.__name__ if self.model is not None else "?"
        return f"{model}.{self.name}"

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = self.name or name

    def __get__(self: _Field, instance: RedisModel | None, owner: type) -> _Field:
        """On the model, the field; on an instance, a copy bound to it (made once)."""
        if instance is None:
            return self
        bound = instance._bound_fields.get(self.name)
        if bound is None:
            bound = copy.copy(self)
            bound._instance = instance
            instance._bound_fields[self.name] = bound
        return cast(_Field, bound)  # the copy of `self` stored above

    def __set__(self, instance: RedisModel, value: NoReturn) -> None:
        """Refused (AttributeError; a type error for type checkers, hence `NoReturn`)."""
        raise AttributeError(
            f"{self.describe()}: fields are not assigned; write with a command, "
            f"e.g. instance.{self.name}.set(value)"
        )

    def __repr__(self) -> str:
        owner = f" of {self._instance!r}" if self._instance is not None else ""
        return f"<{type(self).__name__} {self.describe()}{owner}>"

    # Keys ----------------------------------------------------------------------------------

    @property
    def pk(self) -> str:
        """The primary key of the bound instance."""
        return self.bound_instance._require_pk()

    @property
    def bound_instance(self) -> RedisModel:
        if self._instance is None:
            raise ImplementationError(f"{self.describe()} is not bound to an instance")
        return self._instance

    def key_for(self, pk: str) -> str:
        """The Redis key holding this field's value for the instance `pk`."""
        return self.model._meta.instance_key(pk, self.name)

    def key_args(self, pk: str) -> tuple[str, ...]:
        """What precedes a command's own arguments: the key (and hash field for hashes)."""
        return (self.key_for(pk),)

    def state_location(self, pk: str) -> tuple[str, str]:
        """(key, sub-key) as the write scripts address this field's state."""
        return self.key_for(pk), ""

    @property
    def key(self) -> str:
        return self.key_for(self.pk)

    # Values --------------------------------------------------------------------------------

    def text(self, value: Any) -> str:
        """`value` as Redis stores it; ValueError naming model, field and value otherwise."""
        try:
            return to_text(value)
        except ValueTypeError as error:
            raise ValueError(f"{self.describe()}: invalid value {error}") from None

    def texts(self, value: Any) -> list[str]:
        """The texts of an iterable value (a str or bytes is one value, not an iterable)."""
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise ValueError(
                f"{self.describe()}: invalid value {value!r}: an iterable of values is expected"
            )
        return [self.text(item) for item in value]

    def filter_text(self, value: Any) -> str:
        """The text a collection filter on this field compares with."""
        return self.text(value)

    def state_of(self, value: Any) -> list[str]:
        """The state (as common.lua's read_state gives it) of the field holding `value`."""
        raise NotImplementedError

    def items_of(self, state: list[str]) -> list[tuple[str | None, str]]:
        """The (hash key or None, value) pairs indexes store for a state."""
        return [(None, value) for value in state]

    def transition(self, pk: str, old: list[str], new: list[str]) -> list[tuple[Any, ...]]:
        """The commands that turn state `old` into state `new`."""
        raise NotImplementedError

    def clear_command(self, pk: str) -> tuple[Any, ...]:
        """The command that deletes this field's value."""
        return ("DEL", self.key_for(pk))

    def plan_references(self, write: Any, values: list[str], unless_held: bool = False) -> None:
        """Add to `write` the checks the values this field gains need (with `unless_held`,
        those it does not hold when the write runs; see contrib.related)."""

    def resolve_default(self) -> Any:
        """The default value (called if callable), or NO_DEFAULT."""
        return self.default() if callable(self.default) else self.default

    # Commands ------------------------------------------------------------------------------

    def _read(self, name: str, *args: Any, at_once: bool = False, **kwargs: Any) -> Any:
        """The read `name` of this field's value (queued in a pipeline, unless `at_once`)."""
        if kwargs.get("store") is not None:
            raise ImplementationError(
                f"{self.describe()}.{name}(store=...) would write a key behind limpyd's back "
                "(and its indexes); read, then write with a command"
            )
        instance = self.bound_instance
        pk = instance._require_pk()
        if kwargs or (args and (parses_numbers(name.upper()) or not all(map(_plain, args)))):
            # checked as writes' are: both backends must read them alike
            self.command(name.removesuffix("_iter"), pk, *args, **kwargs)
        instance._ensure_exists()
        database = self.model._meta.database
        connection = database.client if at_once else database.connection
        try:
            return getattr(connection, name)(*self.key_args(pk), *args, **kwargs)
        except (DataError, AttributeError) as error:  # redis-py's checks of arguments
            raise ValueError(f"{self.describe()}.{name}: {error}") from None
        except TypeError as error:  # arguments redis-py's method cannot take: named
            raise TypeError(f"{self.describe()}.{name}: {error}") from None

    def exists(self) -> bool:
        """Whether the field has a value (its key exists), as redis-limpyd's `exists()`:
        False for an instance not saved, or gone."""
        return self._exists("exists")

    def _exists(self, name: str, *args: Any) -> bool:
        """The reply of the read `name` as a bool, False if the instance does not exist. In
        a pipeline the read is queued, for a missing instance too: on the model's probe key,
        which never exists, so that the pipeline's results keep one per call."""
        database = self.model._meta.database
        try:
            found = self._read(name, *args)
        except DoesNotExist:
            if not database.pipelined:
                return False
            probe = (self.model._meta.probe_key, *self.key_args("")[1:])  # the key replaced
            found = getattr(database.connection, name)(*probe, *args)
        return found if database.pipelined else bool(found)

    def _scan(self, name: str, match: str | None, count: int | None) -> Iterator[Any]:
        """An iterator over `name`'s results (hscan, sscan, zscan) hiding the cursor. Its
        first page is read here, so redis-py's argument errors are raised by the call."""
        from limpyd.writes import refuse_in_pipeline

        refuse_in_pipeline(
            self.model._meta.database,
            f"{self.describe()}.{name}: a scan",
            "it reads its pages one after the other",
        )
        pages = self._read(f"{name}_iter", match=match, count=count)
        try:
            first = next(pages)
        except StopIteration:
            return iter(())
        except (DataError, AttributeError) as error:
            raise ValueError(f"{self.describe()}.{name}: {error}") from None
        return itertools.chain([first], pages)

    def _modify(self, name: str, *args: Any, **kwargs: Any) -> Any:
        from limpyd.writes import modify

        return modify(self, lambda pk: self.command(name, pk, *args, **kwargs))

    def command(self, name: str, pk: str, *args: Any, **kwargs: Any) -> commands.Command:
        """The command redis-py would send, its values checked (ValueError names them) and
        replaced by their texts, so that what is sent is what indexes are computed from."""
        key_args = self.key_args(pk)
        try:
            command = commands.build(name, *key_args, *args, **kwargs)
        except DataError as error:  # redis-py's checks of arguments
            raise ValueError(f"{self.describe()}.{name}: {error}") from None
        except AttributeError as error:  # redis-py used an argument as another type
            given = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
            raise ValueError(
                f"{self.describe()}.{name}({given}): an argument of the wrong type ({error})"
            ) from None
        except TypeError as error:  # arguments redis-py's method cannot take: named
            raise TypeError(f"{self.describe()}.{name}: {error}") from None
        refused_arity = commands.arity_error(command)
        if refused_arity is not None:
            raise ValueError(f"{self.describe()}.{name}: {refused_arity}")
        head = 1 + len(key_args)
        command.args = (*command.args[:head], *map(self.text, command.args[head:]))
        refused = check_numbers(command.name, command.args, self.text)
        if refused is not None:
            raise ValueError(
                f"{self.describe()}.{name}: invalid value {refused[0]!r}: {refused[1]}"
            )
        return command

    # Expiry of a field alone -------------------------------------------------------------

    def _check_expirable(self) -> None:
        if self.indexes or self.state_kind == "hashfield" or not self.state_kind:
            raise ImplementationError(
                f"{self.describe()}: only a non-indexable field with a key of its own can expire "
                "alone (an index would keep pointing to a value Redis dropped); expire the "
                "instance instead"
            )

    def expire(
        self,
        seconds: int | timedelta,
        *,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
    ) -> bool:
        """The field's value disappears in `seconds`, a whole number (an int, its text, or a
        timedelta as redis-py takes it), checked before anything is sent (non-indexable
        fields only); `nx`, `xx`, `gt`, `lt` as Redis's EXPIRE options (Redis 7)."""
        self._check_expirable()
        flags = {"nx": nx, "xx": xx, "gt": gt, "lt": lt}
        for name, on in flags.items():
            if not isinstance(on, bool):
                raise ValueError(f"{self.describe()}.expire: {name}={on!r}: a bool is expected")
        flags = {name: True for name, on in flags.items() if on}
        if len(flags) > 1 and ("nx" in flags or {"gt", "lt"} <= set(flags)):
            raise ValueError(  # as Redis refuses them (fakeredis with other words)
                f"{self.describe()}.expire: {', '.join(f'{n}=True' for n in flags)}: "
                "options Redis does not take together (nx alone; gt or lt)"
            )
        reply: bool = self._read("expire", self._whole_seconds(seconds), **flags)
        return reply

    def _whole_seconds(self, seconds: Any) -> int:
        number = whole_seconds(seconds)
        if number is None or abs(number) > _MAX_EXPIRE:
            raise ValueError(
                f"{self.describe()}.expire: invalid value {seconds!r}: a whole number of "
                f"seconds is expected (an int or a timedelta, at most {_MAX_EXPIRE} either way)"
            )
        return number

    def ttl(self) -> int:
        """Seconds the value has left: -1 if it does not expire, -2 if there is none."""
        self._check_expirable()
        reply: int = self._read("ttl")
        return reply

    def persist(self) -> bool:
        """The value no longer expires; whether it had an expiry time."""
        self._check_expirable()
        reply: bool = self._read("persist")
        return reply

    def clean_indexes(self, index_class: type[BaseIndex] | None = None) -> int:
        """Delete this field's index keys (of `index_class` only, if given): before removing
        an index from the declaration. The number of keys deleted."""
        from limpyd.maintenance import clean_indexes

        return clean_indexes(self, index_class)

    def rebuild_indexes(self, index_class: type[BaseIndex] | None = None) -> int:
        """Index again every instance's value (after adding an index to existing data). The
        number of instances indexed."""
        from limpyd.maintenance import rebuild_indexes

        return rebuild_indexes(self, index_class)

    def delete(self) -> int:
        """Delete this field's value (and its index entries)."""
        from limpyd.writes import Rewrite

        instance = self.bound_instance
        reply = self.clear_command(instance._require_pk())
        deleted: int = Rewrite(instance, [(self, [])], [], reply=reply).run()
        return deleted


#: Values per command when a write sends many (Lua calls take a bounded number of arguments).
CHUNK = 1000


#: Reads whose first two arguments (or `min` and `max`) are score bounds; zrange's
#: (`start` and `end`) are with `byscore`.
def _plain(arg: Any) -> bool:
    """Whether redis-py sends `arg` as the text a write would store (nothing to check)."""
    return type(arg) is int or (type(arg) is str and arg.isascii())


def whole_seconds(seconds: Any) -> int | None:
    """`seconds` as a whole number (an int, its text as Redis reads one, or a timedelta as
    redis-py takes it: its whole seconds), None for anything else (a float, a bool...)."""
    if isinstance(seconds, timedelta):
        return int(seconds.total_seconds())
    if isinstance(seconds, int) and not isinstance(seconds, bool):
        return int(seconds)
    if isinstance(seconds, str) and _INTEGER.fullmatch(seconds):
        return int(seconds)
    return None


def chunked(name: str, head: tuple[Any, ...], values: list[Any]) -> list[tuple[Any, ...]]:
    """`name *head <values...>` as commands of at most CHUNK values each."""
    return [(name, *head, *values[i : i + CHUNK]) for i in range(0, len(values), CHUNK)]


def pairs(flat: list[str]) -> dict[str, str]:
    """{k1: v1, ...} from a flat [k1, v1, k2, v2, ...] state."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


if TYPE_CHECKING:

    def declared_sort(
        self: RedisField,
        start: int | None = None,
        num: int | None = None,
        by: str | None = None,
        get: list[str] | None = None,
        desc: bool = False,
        alpha: bool = False,
        store: None = None,
        groups: bool | None = False,
    ) -> list[Any]:
        """SORT of a list, set or sorted set field (`store` is refused: it would write a key
        behind limpyd's back)."""
        ...
