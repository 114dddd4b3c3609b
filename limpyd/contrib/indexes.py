"""Multi-indexes and the date and time indexes built with them, and `EndsWithIndex`.

`MultiIndexes.compose([IndexA, IndexB, ...], name=, key=, transform=)` makes an index class
that is never instantiated: when a model is created, `expand` turns it into its *leaves*
(subclasses of the composed classes knowing the chain of multi-indexes they come from),
which the field keeps as ordinary indexes. How transforms, filters, storage names and
uniqueness work for leaves: the chapter "Indexes and filters", Multi-indexes.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Hashable, Iterable
from datetime import date
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, cast

from limpyd.exceptions import ImplementationError
from limpyd.indexes import BaseIndex, NumberRangeIndex, TextRangeIndex
from limpyd.text import reversed_bytes, shown

if TYPE_CHECKING:
    from limpyd.fields.base import RedisField

__all__ = [
    "DateIndex",
    "DateIndexParts",
    "DateRangeIndex",
    "DateSimpleTimeIndex",
    "DateTimeIndex",
    "EndsWithIndex",
    "MultiIndexes",
    "SimpleDateTimeIndex",
    "TimeIndex",
    "TimeIndexParts",
    "TimeRangeIndex",
]

#: Joins the keys of the multi-indexes of a chain and the leaf's own identity.
KEY_SEPARATOR = "/"


class _MultiIndexesType(type):
    """Metaclass of multi-indexes: their leaves count as their instances."""

    def __instancecheck__(cls, instance: Any) -> bool:
        if super().__instancecheck__(instance):
            return True
        chain = getattr(type(instance), "composition", ())
        return any(issubclass(multi, cls) for multi in chain)


class MultiIndexes(BaseIndex, metaclass=_MultiIndexesType):
    """An index made of other indexes (see the module docstring). Build one with `compose`."""

    #: The index classes composed, in order (multi-indexes included).
    composed: ClassVar[tuple[type[BaseIndex], ...]] = ()

    def __init__(self, field: RedisField) -> None:
        raise ImplementationError(
            f"{type(self).__name__} is a multi-index: it is expanded into the indexes it "
            "composes (see expand()), not instantiated"
        )

    # Building ----------------------------------------------------------------------------

    @classmethod
    def compose(
        cls,
        indexes: Iterable[type[BaseIndex]],
        name: str | None = None,
        key: str | None = None,
        transform: Callable[..., Any] | None = None,
    ) -> type[MultiIndexes]:
        """A new multi-index class managing all of `indexes` for one field.

        `name`: the new class's name; `key`: distinguishes its keys from those of other
        indexes of the same classes; `transform`: applied to values before the transforms of
        the composed indexes.
        """
        if isinstance(indexes, str | bytes) or not isinstance(indexes, Iterable):
            raise ImplementationError(
                f"{cls.__name__}.compose() expects a list of index classes, not {indexes!r}"
            )
        composed = tuple(indexes)
        if not composed:
            raise ImplementationError(f"{cls.__name__}.compose() needs at least one index class")
        for index_class in composed:
            if not (isinstance(index_class, type) and issubclass(index_class, BaseIndex)):
                raise ImplementationError(
                    f"{cls.__name__}.compose(): {index_class!r} is not an index class"
                )
            if issubclass(index_class, MultiIndexes) and not index_class.composed:
                raise ImplementationError(
                    f"{cls.__name__}.compose(): {index_class.__name__} composes no index; "
                    "build it with compose() first"
                )
        options: dict[str, Any] = {"name": name or cls.__name__}
        if key is not None:
            options["key"] = key
        if transform is not None:
            options["transform"] = transform
        new = cls.configure(**options)
        new.composed = composed
        return new

    @classmethod
    def configure(cls, **options: Any) -> type[MultiIndexes]:
        """A variant of this multi-index: `name`, `key`, `transform` (replaces the current
        one), `handle_uniqueness` (False: none of its leaves checks uniqueness)."""
        if "prefix" in options:
            raise ImplementationError(
                f"{cls.__name__}.configure(prefix=...): a multi-index has no prefix of its "
                "own; configure the prefix of the indexes it composes"
            )
        return cast("type[MultiIndexes]", super().configure(**options))

    # Expansion ---------------------------------------------------------------------------

    @classmethod
    def leaf_classes(cls) -> list[type[BaseIndex]]:
        """The classes of the leaves this multi-index gives a field, in composition order."""
        return cls._leaf_classes(())

    @classmethod
    def _leaf_classes(cls, outer: tuple[type[MultiIndexes], ...]) -> list[type[BaseIndex]]:
        if not cls.composed:
            raise ImplementationError(
                f"{cls.__name__} composes no index: use {cls.__name__}.compose([...]) to "
                "build a multi-index"
            )
        chain = (*outer, cls)
        leaves: list[type[BaseIndex]] = []
        for index_class in cls.composed:
            if issubclass(index_class, MultiIndexes):
                leaves += index_class._leaf_classes(chain)
            else:
                # a class is hashable; mypy disagrees for `type[X]` (python/mypy#11470)
                leaves.append(_leaf_class(cast(Hashable, index_class), chain))
        return leaves

    @classmethod
    def _build_leaves(cls, field: RedisField) -> list[BaseIndex]:
        leaves = [leaf_class(field) for leaf_class in cls.leaf_classes()]
        checking = False
        for leaf in leaves:
            if leaf.handle_uniqueness:
                if checking:
                    # type-ignored: an index class's ClassVar, overridden on this instance only
                    leaf.handle_uniqueness = False  # type: ignore[misc]
                checking = True
        return leaves

    @classmethod
    def expand(cls, field: RedisField) -> list[BaseIndex]:
        """The leaf indexes of `field` for this multi-index."""
        return cls._build_leaves(field)


class _ComposedLeaf(BaseIndex):
    """Mixed into a composed index class: the transforms and keys of its multi-indexes."""

    #: The multi-indexes this leaf comes from, outermost first.
    composition: ClassVar[tuple[type[MultiIndexes], ...]] = ()
    #: Its `normalize` adds the multi-indexes' transforms (see `untransformed`).
    normalize_adds_transforms: ClassVar[bool] = True

    def __init__(self, field: RedisField) -> None:
        super().__init__(field)
        keys = [multi.key for multi in self.composition if multi.key]
        self.identity = KEY_SEPARATOR.join([*keys, self.identity])
        if not all(multi.handle_uniqueness for multi in self.composition):
            # type-ignored: an index class's ClassVar, overridden on this instance only
            self.handle_uniqueness = False  # type: ignore[misc]
        self._outer_transforms = [
            transform.__get__(self, type(self)) if hasattr(transform, "__get__") else transform
            for transform in (
                inspect.getattr_static(multi, "transform") for multi in self.composition
            )
            if transform is not None
        ]

    @property
    def untransformed(self) -> bool:
        return super().untransformed and not self._outer_transforms

    def normalize(self, value: str) -> str | None:
        """The value through the multi-indexes' transforms, then the leaf's own."""
        text = value
        for transform in self._outer_transforms:
            transformed = self.transformed_text(transform, text, value)
            if transformed is None:
                return None
            text = transformed
        try:
            return super().normalize(text)
        except ValueError as error:
            if text == value:
                raise
            raise ValueError(f"{error} (from the value {shown(value)}, transformed)") from None

    def __repr__(self) -> str:
        path = ".".join([multi.__name__ for multi in self.composition] + [type(self).__name__])
        return f"<{path} of {self.field.describe()}>"


@cache
def _leaf_class(
    index_class: type[BaseIndex], chain: tuple[type[MultiIndexes], ...]
) -> type[BaseIndex]:
    """`index_class` as a leaf of this chain of multi-indexes (same name, same behaviour)."""
    attrs = {"composition": chain, "__module__": index_class.__module__}
    return type(index_class.__name__, (_ComposedLeaf, index_class), attrs)


# redis-limpyd's date and time indexes. Values are 'YYYY-MM-DD HH:MM:SS' (the manual
# writes 'YYYY-MM-SS', an evident typo), dates 'YYYY-MM-DD', times 'HH:MM:SS'. In the manual
# the names 'DateIndex' and 'TimeIndex' are broken by the page layout ('DateIndex\n'): they
# are written here without the line break. Unlike redis-limpyd's, they refuse a value that
# is not a date or a time of the calendar and the clock (see docs/decisions.md).

_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
#: A time as `str()` writes one: seconds' fraction and UTC offset optional (an offset has
#: seconds, and their fraction, in some old local times: +00:19:32).
_TIME = re.compile(
    r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,6})?"
    r"(?:[+-]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.[0-9]{1,6})?)?)?"
)


def _is_date(text: str) -> bool:
    found = _DATE.fullmatch(text)
    if found is None:
        return False
    try:
        date(*map(int, found.groups()))
    except ValueError:  # not a day of the calendar (2026-02-30, year 0)
        return False
    return True


def _is_time(text: str) -> bool:
    """A time of the clock, its UTC offset (if any) one a `datetime` can have."""
    found = _TIME.fullmatch(text)
    if found is None:
        return False
    hours, minutes, seconds, offset_hours, offset_minutes, offset_seconds = (
        int(part or 0) for part in found.groups()
    )
    return (
        hours < 24
        and offset_hours < 24
        and all(n < 60 for n in (minutes, seconds, offset_minutes, offset_seconds))
    )


def datetime_of(value: str) -> str:
    """'YYYY-MM-DD HH:MM:SS' of a date and time (what `str(datetime)` writes: a fraction of
    second and a UTC offset may follow, and are dropped); a ValueError for another value."""
    if not (value[10:11] == " " and _is_date(value[:10]) and _is_time(value[11:])):
        raise ValueError("a date and time like 2026-11-28 10:15:00 is expected")
    return value[:19]


def date_of(value: str) -> str:
    """'YYYY-MM-DD' of a date, or of a date and time; a ValueError for another value."""
    if len(value) > 10:
        datetime_of(value)
    elif not _is_date(value):
        raise ValueError("a date like 2026-11-28 is expected")
    return value[:10]


def time_of(value: str) -> str:
    """'HH:MM:SS' of a time (a fraction of second and a UTC offset may follow); a ValueError
    for another value."""
    if not _is_time(value):
        raise ValueError("a time like 10:15:00 is expected")
    return value[:8]


DateIndexParts = MultiIndexes.compose(
    [
        NumberRangeIndex.configure(
            prefix="year",
            transform=lambda value: date_of(value)[:4],
            handle_uniqueness=False,
            name="YearIndex",
        ),
        NumberRangeIndex.configure(
            prefix="month",
            transform=lambda value: date_of(value)[5:7],
            handle_uniqueness=False,
            name="MonthIndex",
        ),
        NumberRangeIndex.configure(
            prefix="day",
            transform=lambda value: date_of(value)[8:10],
            handle_uniqueness=False,
            name="DayIndex",
        ),
    ],
    name="DateIndexParts",
)

TimeIndexParts = MultiIndexes.compose(
    [
        NumberRangeIndex.configure(
            prefix="hour",
            transform=lambda value: time_of(value)[0:2],
            handle_uniqueness=False,
            name="HourIndex",
        ),
        NumberRangeIndex.configure(
            prefix="minute",
            transform=lambda value: time_of(value)[3:5],
            handle_uniqueness=False,
            name="MinuteIndex",
        ),
        NumberRangeIndex.configure(
            prefix="second",
            transform=lambda value: time_of(value)[6:8],
            handle_uniqueness=False,
            name="SecondIndex",
        ),
    ],
    name="TimeIndexParts",
)

DateRangeIndex = TextRangeIndex.configure(key="date", transform=date_of, name="DateRangeIndex")

TimeRangeIndex = TextRangeIndex.configure(key="time", transform=time_of, name="TimeRangeIndex")

DateIndex = MultiIndexes.compose([DateRangeIndex, DateIndexParts], name="DateIndex")
TimeIndex = MultiIndexes.compose([TimeRangeIndex, TimeIndexParts], name="TimeIndex")

DateSimpleTimeIndex = MultiIndexes.compose(
    [
        TextRangeIndex.configure(key="full", name="FullDateTimeRangeIndex"),
        DateRangeIndex.configure(prefix="date"),
        DateIndexParts,
        TimeRangeIndex.configure(prefix="time", transform=lambda value: value[11:]),  # only time
    ],
    name="DateSimpleTimeIndex",
    transform=datetime_of,  # restrict on date+time
)

DateTimeIndex = MultiIndexes.compose(
    [
        DateSimpleTimeIndex,
        TimeIndexParts.configure(transform=lambda value: value[11:]),  # pass only time
    ],
    name="DateTimeIndex",
)

SimpleDateTimeIndex = MultiIndexes.compose(
    [
        TextRangeIndex.configure(key="full", name="FullDateTimeRangeIndex"),
        DateRangeIndex.configure(prefix="date"),
        TimeRangeIndex.configure(prefix="time", transform=lambda value: value[11:]),  # only time
    ],
    name="SimpleDateTimeIndex",
    transform=datetime_of,  # restrict on date+time
)


class EndsWithIndex(TextRangeIndex):
    """`field__endswith=`: the values' bytes reversed in a lexicographic index, so a byte
    suffix of the value is a prefix of the entry (for UTF-8 text, a suffix of characters).
    Opt-in (add it to the field's `indexes`), usable with any other index; it answers only
    `endswith` and does not check uniqueness."""

    handled_suffixes = frozenset({"endswith"})
    handle_uniqueness = False
    default_key = "reversed"

    def normalize(self, value: str) -> str | None:
        normalized = super().normalize(value)
        return None if normalized is None else reversed_bytes(normalized)

    def _atoms(self, suffix: str, value: str, hkey: str | None) -> list[tuple[str, ...]]:
        return super()._atoms("startswith", reversed_bytes(value), hkey)
