"""Hypothesis strategies for limpyd models: values fields accept, creation kwargs, filters.

```python
from hypothesis import given
from limpyd_testing import strategies as lst

@given(lst.model_values(Person))
def test_create(values):
    Person(**values)
```

- `texts()`: the text values are drawn from. Small, and awkward on purpose: empty, spaces,
  colons, glob characters (`* ? [ ] \\`), NUL, non-ASCII, numbers written in many ways, and
  non-UTF-8 bytes (as limpyd returns them: lone surrogates U+DC80..U+DCFF, see
  "Design decisions", Values). Every text is *canonical*: it is exactly what Redis gives back.
- `scores()`: finite sorted-set scores, ties frequent.
- `date_texts()`, `time_texts()`, `datetime_texts()`: dates and times as `str()` writes
  them, what the date and time indexes of `limpyd.contrib.indexes` take (and all they take).
- `stored_text(value)`: the text Redis stores for a value as redis-py sends it.
- `disguises(text)`: values limpyd must accept that are stored as `text` (bytes, str
  subclasses and str Enum members, ints, floats); `wrong_values()`: values it must refuse;
  `risky_values()`: values it may store (as `stored_text` says) or refuse (IntEnum members).
- `field_values(field)`: a value a field accepts (what `Model(field=...)` takes).
- `model_values(Model)`: kwargs creating an instance.
- `filters(Model)`: kwargs for `Model.collection(**filters)`, on every suffix of every index.

Related fields (`limpyd.contrib.related`) store pks of another model, which only the test
knows: give them a pool with `pks=` (`field_values`) or per related model (`model_values`).

Nothing is registered with `st.register_type_strategy`, on purpose: limpyd values are plain
`str` (registering `str` would change every other test's text), what a field accepts depends
on the field *object*, not on a type, and building a model instance writes to a database,
which a type-resolved strategy (`st.builds`, `st.from_type`) must not do behind the test's
back. Use the functions here explicitly.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeGuard

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from limpyd.fields import (
    HashField,
    InstanceHashField,
    ListField,
    PKField,
    SetField,
    SortedSetField,
    StringField,
)
from limpyd.indexes import NumberRangeIndex
from limpyd.text import NUMBER

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from limpyd.contrib.related import RelatedFieldMixin
    from limpyd.fields.base import RedisField
    from limpyd.model import RedisModel

__all__ = [
    "canonical",
    "date_texts",
    "datetime_texts",
    "disguises",
    "field_values",
    "filter_keys",
    "filters",
    "is_related",
    "model_values",
    "number_texts",
    "numbers",
    "risky_values",
    "scores",
    "stored_text",
    "texts",
    "time_texts",
    "wrong_values",
]

#: Pieces texts are made of: what breaks key layouts, glob patterns, lexicographic bounds
#: and number parsing.
AWKWARD = (
    "", " ", "  ", ":", "::", "*", "?", "[", "]", "\\", "[a-z]", "\x00", "\x00\x00", "\x01",
    "\n", "\t", "_", "__", "-", "+", ".", "é", "€", "😀", "ß", "İ", "\u200b", "\udcff",
    "\udc80", "a", "b", "z", "A", "ab", "a b", "a:b",
)  # fmt: skip
#: Numbers as text, including the forms parsers disagree on.
NUMBER_TEXTS = (
    "0", "1", "-1", "2", "10", "-0", "0.5", "-2.5", "1e3", "1E-2", " 1", "1 ", "01", "+1",
    "inf", "-inf", "nan", "Infinity", "1_000", "0x10", "9007199254740993",
)  # fmt: skip
#: Whole texts that look like something else: numbers parsers disagree on, integers beyond
#: 64 bits and doubles, and texts limpyd once gave a meaning (a new pk's placeholder, what
#: stood for a referencing pk in link records).
NASTY_TEXTS = (
    "", " 5", "1_000", "1e400", "0x10", "NaN", "+1", str(2**64), str(2**53 + 1), "-0.0",
    "\x00limpyd-new-pk:" + "0" * 32 + "\x00", "\x00limpyd-referencing-pk\x00",
)  # fmt: skip

if TYPE_CHECKING:
    from typing import TypeAlias

    #: A pool of pks for related fields: a strategy, or the pks themselves.
    _Pool: TypeAlias = SearchStrategy[str] | Iterable[Any]


def canonical(text: str) -> str:
    """`text` as Redis gives it back (non-UTF-8 bytes as lone surrogates, merged when they
    form UTF-8 together): two texts are the same value for Redis iff their canonical forms
    are equal."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")


#: The Unicode category of lone surrogates, which plain texts leave out.
_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)


def _plain_text() -> SearchStrategy[str]:
    return st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=_SURROGATES), max_size=4
    )


def _bytes_text() -> SearchStrategy[str]:
    """Any bytes, as limpyd gives them back: lone surrogates U+DC80..U+DCFF for those that
    are not UTF-8 (a lead byte, a continuation byte: their order matters where an index
    reverses a value)."""
    return st.binary(min_size=1, max_size=3).map(
        lambda data: data.decode("utf-8", "surrogateescape")
    )


def numbers() -> SearchStrategy[int | float]:
    """Numbers as filters or values take them: small ints (ties likely) and finite floats."""
    return st.one_of(
        st.integers(-3, 10),
        st.sampled_from([0.5, -2.5, 1000.0, 2.0**53]),
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(-(2**64), 2**64),
    )


#: The texts a NumberRangeIndex takes ("Design decisions", Values).
_DECIMAL = re.compile(NUMBER)


def _number_texts() -> SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(NUMBER_TEXTS),
        st.integers(-20, 20).map(str),
        st.floats(allow_nan=False).map(repr),
    )


def number_texts() -> SearchStrategy[str]:
    """Texts of decimal numbers, those a NumberRangeIndex takes: `'-0'`, `'1e3'`, `'.5'`,
    `'inf'`... (ties likely)."""
    return _number_texts().filter(_DECIMAL.fullmatch)


def texts(*, allow_empty: bool = True, max_pieces: int = 3) -> SearchStrategy[str]:
    """Small canonical texts: pieces of `AWKWARD`, numbers and any unicode, concatenated.

    `allow_empty=False` for values that cannot be empty (primary keys)."""
    piece = st.one_of(st.sampled_from(AWKWARD), _number_texts(), _plain_text(), _bytes_text())
    strategy = st.one_of(
        st.lists(piece, min_size=1, max_size=max_pieces).map("".join).map(canonical),
        st.sampled_from(NASTY_TEXTS),
    )
    if not allow_empty:
        strategy = strategy.map(lambda text: text or "pk")
    return strategy


def scores() -> SearchStrategy[float]:
    """Finite sorted-set scores: small numbers (equal scores are frequent, members then
    order byte-wise) and any finite float."""
    return st.one_of(
        st.integers(-3, 3).map(float),
        st.sampled_from([0.5, -0.5, 0.25, 1e-300, -1e300, 2.0**53]),
        st.floats(allow_nan=False, allow_infinity=False),
    )


#: What `str()` of a datetime or a time ends with: mostly no UTC offset (one with seconds:
#: an old local time).
_OFFSETS = st.sampled_from(["", "", "", "+00:00", "-05:30", "+14:00", "+00:19:32"])


def date_texts() -> SearchStrategy[str]:
    """Dates as `str(date)` writes them: 'YYYY-MM-DD', years 1 to 9999, leap days."""
    return st.dates().map(str)


def time_texts() -> SearchStrategy[str]:
    """Times as `str(time)` writes them: 'HH:MM:SS', a fraction of second, a UTC offset."""
    return st.builds(lambda time, offset: f"{time}{offset}", st.times(), _OFFSETS)


def datetime_texts() -> SearchStrategy[str]:
    """Dates and times as `str(datetime)` writes them: 'YYYY-MM-DD HH:MM:SS', a fraction of
    second, a UTC offset."""
    return st.builds(lambda moment, offset: f"{moment}{offset}", st.datetimes(), _OFFSETS)


#: A text of each kind the date and time indexes take, and the strategy of that kind.
_CALENDAR = (
    ("2024-02-29 23:59:59", datetime_texts),
    ("2024-02-29", date_texts),
    ("23:59:59", time_texts),
)


def _takes(field: RedisField, text: str) -> bool:
    """Whether every index of `field` takes `text` (a transform or the index may refuse it)."""
    hkey = "k" if isinstance(field, HashField) else None
    try:
        for index in field.indexes:
            index.entries(text, "1", hkey)
    except ValueError:
        return False
    return True


def _items(field: RedisField) -> SearchStrategy[str]:
    """The texts `field` draws: dates and times where its indexes take only those, decimal
    numbers for a NumberRangeIndex, `texts()` otherwise."""
    taken = [kind() for sample, kind in _CALENDAR if _takes(field, sample)]
    if taken and len(taken) < len(_CALENDAR):
        return st.one_of(taken)
    # a NumberRangeIndex takes decimal numbers only ("Design decisions", Values)
    numeric = [index for index in field.indexes if isinstance(index, NumberRangeIndex)]
    transformed = [index for index in numeric if not index.untransformed]
    if transformed:
        raise InvalidArgument(
            f"{field.describe()}: its {type(transformed[0]).__name__} reads values through a "
            "transform: give the texts it takes with items="
        )
    drawn = number_texts() if numeric else texts()
    if any(not index.untransformed for index in field.indexes):  # a transform may refuse
        return drawn.filter(lambda text: _takes(field, text))
    return drawn


def stored_text(value: Any) -> str:
    """The text Redis stores for `value`, as redis-py sends it (canonical): a str (subclasses,
    str Enum members included) its content, bytes decoded with `surrogateescape`, an int or
    float (subclasses, IntEnum members included) its `repr`. TypeError for anything else,
    ValueError for a text that cannot be sent (a lone surrogate) or an int too long to print.
    """
    if isinstance(value, bytes):
        return canonical(value.decode("utf-8", "surrogateescape"))
    if isinstance(value, str):
        return canonical(str.__str__(value))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"no text for {value!r} ({type(value).__name__})")
    return repr(value)


class _Text(str):
    """A str subclass whose `str()` is not its content (what `str(value)` would get wrong)."""

    def __str__(self) -> str:
        return "<not the value>"


_CANONICAL_INT = re.compile(r"0|-?[1-9][0-9]{0,4000}")


def disguises(text: str) -> SearchStrategy[Any]:
    """Values limpyd must take as `text` (`stored_text(value) == text`): the text itself,
    its bytes, a str subclass, a str Enum member (`class S(str, Enum)`, whose `str()` is
    `S.NAME`), a StrEnum member, and the int or float it is the repr of."""
    options: list[Any] = [
        text,
        text.encode("utf-8", "surrogateescape"),
        _Text(text),
        _str_enum_member(text),
        _strenum_member(text),
    ]
    if _CANONICAL_INT.fullmatch(text):
        options.append(int(text))
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if repr(number) == text:
            options.append(number)
    return st.sampled_from(options)


def _str_enum_member(text: str) -> enum.Enum:
    """The member of a `class Choice(str, Enum)` whose value is `text`."""
    Choice = enum.Enum("Choice", {"MEMBER": text}, type=str)
    return Choice.MEMBER


def _strenum_member(text: str) -> enum.StrEnum:
    """The member of a `class Choice(StrEnum)` whose value is `text`."""
    Choice = enum.StrEnum("Choice", {"MEMBER": text})
    return Choice.MEMBER


def _int_enum_member(number: int) -> enum.IntEnum:
    """The member of a `class Level(IntEnum)` whose value is `number`."""
    Level = enum.IntEnum("Level", {"HIGH": number})
    return Level.HIGH


def wrong_values() -> SearchStrategy[Any]:
    """Values limpyd must refuse (no text for them): None, booleans, containers, objects,
    Decimals, complex numbers, bytearrays, a text with a lone surrogate."""
    from decimal import Decimal

    return st.sampled_from(
        [None, True, False, [], ["a"], {}, {"a": "b"}, set(), object(), Decimal("1"), 1j,
         "\ud800", bytearray(b"a")]
    )  # fmt: skip


def risky_values() -> SearchStrategy[Any]:
    """Values limpyd may store (as `stored_text` says: what redis-py would send) or refuse:
    IntEnum members, whose repr is not their number."""
    return st.integers(-2, 2**64).map(_int_enum_member)


def filter_keys() -> SearchStrategy[str]:
    """Hash keys that can be written in a filter (`field__<key>__suffix`): texts without
    `__` that do not end with `_` (a filter's parts are split on `__`)."""
    return texts().map(lambda key: re.sub("_{2,}", "_", key).rstrip("_"))


def is_related(field: RedisField) -> TypeGuard[RelatedFieldMixin]:
    """Whether `field` is a related field (its values are pks of another model)."""
    try:
        from limpyd.contrib.related import RelatedFieldMixin
    except ImportError:  # pragma: no cover - contrib is part of limpyd
        return False
    return isinstance(field, RelatedFieldMixin)


def _pool(pks: _Pool | None, field: RedisField) -> SearchStrategy[str]:
    if pks is None:
        raise InvalidArgument(
            f"{field.describe()} is a related field: its values are pks of "
            f"{getattr(field, 'to', 'another model')!r}; give the pool to draw them from "
            "with pks= (a strategy or an iterable of pks)"
        )
    if isinstance(pks, st.SearchStrategy):
        return pks
    choices = list(pks)
    if not choices:
        return st.nothing()
    return st.sampled_from(choices)


def field_values(
    field: RedisField,
    *,
    pks: _Pool | None = None,
    items: SearchStrategy[str] | None = None,
    keys: SearchStrategy[str] | None = None,
    max_size: int = 4,
) -> SearchStrategy[Any]:
    """Values `field` accepts, as `Model(**{name: value})` takes them.

    Text for StringField / InstanceHashField, a non-empty text for a PKField, lists for
    SetField / ListField (repeats included), dicts of text to text for HashField, dicts of
    member to finite score for SortedSetField.

    `items`: the strategy of each text (default `texts()`, number texts for a field with a
    NumberRangeIndex, dates and times for one whose indexes take only those: the date and
    time indexes); `keys`: the strategy of HashField keys (default `texts()`). Related
    fields draw their pks from `pks` (required for them): a strategy or an iterable.
    AutoPKField takes no value: InvalidArgument.
    """
    if isinstance(field, PKField):
        if field.auto:
            raise InvalidArgument(f"{field.describe()} is an AutoPKField: limpyd gives its values")
        return items if items is not None else texts(allow_empty=False)
    if is_related(field):
        items = _pool(pks, field)
    elif items is None:
        items = _items(field)
    if isinstance(field, StringField | InstanceHashField):
        return items
    if isinstance(field, SetField | ListField):
        return st.lists(items, max_size=max_size)
    if isinstance(field, HashField):
        return st.dictionaries(keys if keys is not None else texts(), items, max_size=max_size)
    if isinstance(field, SortedSetField):
        return st.dictionaries(items, scores(), max_size=max_size)
    raise InvalidArgument(f"{field.describe()}: no strategy for a {type(field).__name__}")


def _known(field: RedisField) -> bool:
    return isinstance(
        field, StringField | InstanceHashField | SetField | ListField | HashField | SortedSetField
    )


def model_values(
    model: type[RedisModel],
    fields: Iterable[str] | None = None,
    *,
    pks: Mapping[type[RedisModel], _Pool] | None = None,
    items: Mapping[str, SearchStrategy[str]] | None = None,
    keys: Mapping[str, SearchStrategy[str]] | None = None,
) -> SearchStrategy[dict[str, Any]]:
    """Kwargs creating an instance of `model`: `model(**values)`.

    `fields`: the names always given (default: any subset of the data fields). The pk is
    given for a PKField model, never for an AutoPKField one; for the latter at least one
    field is given, so the instance is created. Related fields take their pks from `pks`
    (by related model); without a pool for it, a related field is left out (an error if it
    is named in `fields`). `items`: per field name, the strategy of its texts; `keys`: per
    HashField name, the strategy of its keys.
    Values of unique fields are drawn freely: uniqueness depends on what the database
    holds, the test decides what a UniquenessError means.
    """
    meta = model._meta
    pools = dict(pks or {})
    items = dict(items or {})
    keys = dict(keys or {})
    if isinstance(fields, str):
        raise InvalidArgument(
            f"{model.__name__}: fields={fields!r}: the names of fields (a list), not a text"
        )
    _refuse_unknown_names(model, "items", items, {f.name for f in meta.fields.values()})
    hash_fields = {f.name for f in meta.data_fields if isinstance(f, HashField)}
    _refuse_unknown_names(model, "keys", keys, hash_fields)

    def strategy(field: RedisField) -> SearchStrategy[Any] | None:
        if not _known(field):
            return None
        if is_related(field):
            target = field.related_model
            if target not in pools:
                return None
            return field_values(field, pks=pools[target])
        return field_values(field, items=items.get(field.name), keys=keys.get(field.name))

    required: dict[str, SearchStrategy[Any]] = {}
    optional: dict[str, SearchStrategy[Any]] = {}
    for name in fields or ():
        field = meta.field(name)
        if field is meta.pk_field:
            continue
        found = strategy(field)
        if found is None:
            raise InvalidArgument(
                f"{field.describe()}: no values for it (a related field needs pks= for "
                f"{getattr(field, 'to', '?')!r})"
            )
        required[field.name] = found
    if fields is None:
        for field in meta.data_fields:
            found = strategy(field)
            if found is not None:
                optional[field.name] = found
    pk_field = meta.pk_field
    if not pk_field.auto:
        required[pk_field.name] = field_values(pk_field, items=items.get(pk_field.name))
    if pk_field.auto and not required and not optional and meta.data_fields:
        raise InvalidArgument(  # (a model without data fields only has `{}` to take)
            f"{model.__name__}: no field to give a value (an AutoPKField model is created by "
            "its first value; a related field needs pks= for its related model)"
        )
    base = st.fixed_dictionaries(required, optional=optional)
    if pk_field.auto and not required and optional:
        names = sorted(optional)
        return st.tuples(base, st.sampled_from(names)).flatmap(
            lambda pair: optional[pair[1]].map(lambda value: {**pair[0], pair[1]: value})
        )
    return base


def _refuse_unknown_names(
    model: type[RedisModel], option: str, given: Any, known: set[str]
) -> None:
    """An InvalidArgument for an `option` mapping naming what is not among `known` (a
    misspelled field's strategy was left unused)."""
    if not isinstance(given, Mapping):
        return
    unknown = sorted(set(given) - known, key=repr)
    if unknown:
        raise InvalidArgument(
            f"{model.__name__}: {option}= names {unknown}, which are not among its "
            f"{'HashFields' if option == 'keys' else 'fields'} ({sorted(known)})"
        )


def _filter_value(index: Any, values: SearchStrategy[str]) -> SearchStrategy[Any]:
    if isinstance(index, NumberRangeIndex):  # it refuses any other value
        return st.one_of(numbers(), number_texts(), values.filter(_DECIMAL.fullmatch))
    return values


def _append(tail: str) -> Callable[[str], str]:
    """`text -> text + tail` (binds `tail` now, not when the strategy is drawn)."""
    return lambda text: text + tail


def _prepend(head: str) -> Callable[[str], str]:
    """`text -> head + text`."""
    return lambda text: f"{head}{text}"


def filters(
    model: type[RedisModel],
    *,
    values: SearchStrategy[str] | Mapping[str, SearchStrategy[str]] | None = None,
    hash_keys: SearchStrategy[str] | Mapping[str, SearchStrategy[str]] | None = None,
    max_filters: int = 2,
) -> SearchStrategy[dict[str, Any]]:
    """Kwargs for `model.collection(**kwargs)`: 1 to `max_filters` filters (and-ed).

    Every indexed field, every leaf index (its `prefix` too), every suffix it handles (and
    none): `field[__<hash key>][__<prefix>][__<suffix>]=value`; `__in` takes a list;
    NumberRangeIndex filters take numbers or text. Also the collection's own lookups:
    `__all` (a list, every value matching) on Set/List/SortedSet fields, `__isnull` (a bool)
    on indexed single-value fields, and `pk`, `pk__eq`, `pk__in`.

    `values`: the filter texts, one strategy or one per field name (`"pk"` for the pk),
    default `texts()`: pass ones drawing from what the database holds to get filters that
    match. `hash_keys`: the keys of HashField filters, one strategy or one per field name
    (default `filter_keys()`).
    """
    meta = model._meta
    named = {*(f.name for f in meta.data_fields), "pk"}  # one mapping may serve every model
    _refuse_unknown_names(model, "values", values, named)
    _refuse_unknown_names(model, "hash_keys", hash_keys, named)

    def per_field(
        given: SearchStrategy[str] | Mapping[str, SearchStrategy[str]] | None,
        name: str,
        default: SearchStrategy[str],
    ) -> SearchStrategy[str]:
        if isinstance(given, Mapping):
            return given.get(name, default)
        return given if given is not None else default

    options: list[SearchStrategy[tuple[str, Any]]] = []

    def add(
        name: SearchStrategy[str],
        suffixes: Iterable[str | None],
        value: Any,
        multi: bool = False,
    ) -> None:
        for suffix in sorted(suffixes, key=lambda s: s or ""):
            one = st.lists(value, max_size=3) if suffix == "in" else value
            tail = f"__{suffix}" if suffix else ""
            options.append(st.tuples(name.map(_append(tail)), one))
            if multi and suffix != "in":  # every value matches: `field[...]__all=[...]`
                every = st.lists(value, min_size=1, max_size=3)
                options.append(st.tuples(name.map(_append(f"{tail}__all")), every))

    for field in meta.data_fields:
        texts_ = per_field(values, field.name, texts())
        multi = isinstance(field, SetField | ListField | SortedSetField)
        answered: set[tuple[str | None, str | None]] = set()
        for index in field.indexes:
            # a filter goes to the first index of its prefix handling its suffix, as the
            # collection reads it: the others' are not drawn
            suffixes = [s for s in index.handled_suffixes if (index.prefix, s) not in answered]
            answered.update((index.prefix, s) for s in suffixes)
            name = st.just(field.name)
            if isinstance(field, HashField):
                keys = per_field(hash_keys, field.name, filter_keys())
                name = keys.map(_prepend(f"{field.name}__"))
            if index.prefix:
                name = name.map(_append(f"__{index.prefix}"))
            add(name, suffixes, _filter_value(index, texts_), multi)
        if field.indexes and isinstance(field, StringField | InstanceHashField):
            options.append(st.tuples(st.just(f"{field.name}__isnull"), st.booleans()))
    add(st.just("pk"), (None, "eq", "in"), per_field(values, "pk", texts()))
    return st.lists(st.one_of(options), min_size=1, max_size=max_filters).map(dict)
