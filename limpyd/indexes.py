"""Indexes: how a field's values are found again by `collection(field__suffix=value)`.

An index turns a value held by an instance into *entries* (one Redis write that adds it, one
that removes it), a filter into *atoms* the query script unions and intersects, and a value
into a *uniqueness check* run atomically with the write. Keys and members are laid out so
that any value, with any character, maps to exactly one place:

- `EqualIndex`: a set of pks per value, `<model>:idx:<field>:<identity>:<value>`.
- `TextRangeIndex`: one sorted set, all scores 0, members `<escaped value>\\0\\0<pk>`,
  queried with ZRANGEBYLEX (byte-wise, memcmp order, as in redis-limpyd).
- `NumberRangeIndex`: one sorted set, score = the value as a double, members as for the text
  index so a multi-value field can hold several numbers. It only takes decimal numbers (see
  `parse_number`); unique, it also keeps a set of pks per exact number,
  `<index key>:<canonical number>`, so distinct numbers sharing a double never collide.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from limpyd import protocol
from limpyd.exceptions import ImplementationError
from limpyd.text import (
    NUMBER,
    ValueTypeError,
    encode_member,
    escape_value,
    glob_escape,
    lex_prefix_end,
    shown,
    to_text,
)

if TYPE_CHECKING:
    from limpyd.fields.base import RedisField

__all__ = [
    "FILTER_SUFFIXES",
    "BaseIndex",
    "EqualIndex",
    "NumberRangeIndex",
    "TextRangeIndex",
    "check_distinct",
    "parse_number",
]

#: A Redis write, as its arguments.
Op = tuple[Any, ...]
#: An index entry: the write that adds it and the write that removes it.
Entry = tuple[Op, Op]
#: A query atom: ('S', key) | ('L', key, min, max) | ('Z', key, min, max).
Atom = tuple[str, ...]


#: The suffixes of filter names (`field__suffix`) that the indexes answer, `isnull`, and
#: `all` (each value of a Set, List or SortedSet field).
FILTER_SUFFIXES = frozenset(
    {"eq", "in", "gt", "gte", "lt", "lte", "startswith", "endswith", "isnull", "all"}
)


def _normalizes_as_is(cls: type) -> bool:
    """Whether the `normalize` of an index class is BaseIndex's, or only adds what its
    `untransformed` accounts for before calling the next one (`normalize_adds_transforms`)."""
    for klass in cls.__mro__:
        if "normalize" in vars(klass):
            if klass is BaseIndex:
                return True
            if not vars(klass).get("normalize_adds_transforms", False):
                return False
    return True


class BaseIndex:
    """An index of one field. Subclasses define the storage; `configure` derives variants."""

    #: Filter suffixes this index answers; `None` is a filter without suffix.
    handled_suffixes: ClassVar[frozenset[str | None]] = frozenset()
    handle_uniqueness: ClassVar[bool] = True
    prefix: ClassVar[str | None] = None
    key: ClassVar[str | None] = None
    transform: ClassVar[Callable[..., Any] | None] = None
    #: The storage name when `key` is not configured.
    default_key: ClassVar[str] = ""
    #: Whether every entry names the text it stems from, so no two texts share one.
    distinct_entries: ClassVar[bool] = False

    def __init__(self, field: RedisField | None = None, **options: Any) -> None:
        if field is None or options:  # the manual's `EqualIndex(key=..., transform=...)`
            named = ", ".join(f"{name}=..." for name in options)
            raise ImplementationError(
                f"{type(self).__name__}({named}): an index class is configured with "
                f"{type(self).__name__}.configure({named}), which gives a new class; a field "
                "makes the instances of the classes it is given"
            )
        self.field = field
        self.identity = (self.key or self.default_key) + (f"+{self.prefix}" if self.prefix else "")

    @property
    def untransformed(self) -> bool:
        """Whether the index stores a field value's text as it is (no transform)."""
        return self.transform is None

    @property
    def stores_text(self) -> bool:
        """Whether the index's entries hold a value's text itself: untransformed, and no
        `normalize` of a subclass changing it (a reversed or lowercased text keeps neither
        the order of the values nor their text, which a script would look for)."""
        return self.untransformed and _normalizes_as_is(type(self))

    @property
    def separable(self) -> bool:
        """Whether no two values share an entry: a write can then add or remove the entries
        of the values it touches without knowing the field's other values (a transform can
        map two values to one text)."""
        return self.distinct_entries and self.untransformed

    # Configuration -----------------------------------------------------------------------

    @classmethod
    def configure(cls, **options: Any) -> type[BaseIndex]:
        """A new index class: `prefix`, `transform`, `handle_uniqueness`, `key`, `name`."""
        name = options.pop("name", None) or cls.__name__
        unknown = set(options) - {"prefix", "transform", "handle_uniqueness", "key"}
        if unknown:
            raise ImplementationError(
                f"{cls.__name__}.configure() got unknown arguments: {', '.join(sorted(unknown))}"
            )
        attrs: dict[str, Any] = {}
        for option in ("prefix", "key"):
            if option in options:
                value = options[option]
                if value is not None and (not isinstance(value, str) or not value or ":" in value):
                    raise ImplementationError(
                        f"{cls.__name__}.configure({option}={value!r}): a non-empty string "
                        "without ':' is expected"
                    )
                attrs[option] = value
        prefix = options.get("prefix")
        if prefix is not None and (prefix in FILTER_SUFFIXES or "__" in prefix):
            raise ImplementationError(
                f"{cls.__name__}.configure(prefix={prefix!r}): a prefix is a part of filter "
                "names (`field__prefix__suffix`): it cannot be a suffix of its own "
                f"({', '.join(sorted(FILTER_SUFFIXES))}) nor hold '__'"
            )
        if "handle_uniqueness" in options:
            attrs["handle_uniqueness"] = bool(options["handle_uniqueness"])
        if "transform" in options:
            attrs["transform"] = _as_method(options["transform"], cls.__name__)
        return type(name, (cls,), attrs)

    @classmethod
    def expand(cls, field: RedisField) -> list[BaseIndex]:
        """The leaf indexes this class gives `field` (several for multi-indexes)."""
        return [cls(field)]

    # Values ------------------------------------------------------------------------------

    def normalize(self, value: str) -> str | None:
        """The text this index stores for a field value (transformed), None to skip it."""
        if self.transform is None:
            try:
                return to_text(value)
            except ValueTypeError as error:  # a value computed from others (SETRANGE...)
                raise ValueError(f"{self.field.describe()}: invalid value {error}") from None
        return self.transformed_text(self.transform, value, value)

    def transformed_text(
        self, transform: Callable[[str], Any], text: str, value: str
    ) -> str | None:
        """The text `transform` gives for `text` (None: skip it), `value` being the field's
        value; a ValueError naming the field, the index and the value when the transform
        refuses it (raises ValueError) or gives a result with no text."""
        try:
            transformed = transform(text)
        except ValueError as error:
            raise ValueError(
                f"{self.field.describe()}: invalid value {shown(value)} for its "
                f"{type(self).__name__}: {error}"
            ) from None
        if transformed is None:
            return None
        try:
            return to_text(transformed)
        except ValueTypeError as error:
            raise ValueError(
                f"{self.field.describe()}: the transform of its {type(self).__name__} gave "
                f"{error}, for the value {shown(value)}"
            ) from None

    def base_key(self, hkey: str | None = None) -> str:
        """The key of this index, per hash key for HashField."""
        return self.field.model._meta.index_key(self.field.name, self.identity, hkey)

    def entries(self, value: str, pk: str, hkey: str | None = None) -> list[Entry]:
        """The index entries an instance holding `value` has (a ValueError for a value
        the index refuses names the value given, when the index transforms it)."""
        normalized = self.normalize(value)
        if normalized is None:
            return []
        try:
            return self._entries(normalized, pk, hkey)
        except ValueError as error:
            if normalized == value:
                raise
            raise ValueError(f"{error} (from the value {shown(value)}, transformed)") from None

    def removals(self, value: str, pk: str, hkey: str | None = None) -> list[Op]:
        """The commands removing the entries an instance holding `value` has (what a
        deletion needs: some indexes find them without parsing the value)."""
        return [remove for _, remove in self.entries(value, pk, hkey)]

    def unique_check(
        self, value: str, pk: str, hkey: str | None
    ) -> tuple[str, str, str, str] | None:
        """(how, key, a, b) for the apply script's uniqueness check, None if not applicable."""
        normalized = self.normalize(value)
        return None if normalized is None else self._unique_check(normalized, hkey)

    def _entries(self, value: str, pk: str, hkey: str | None) -> list[Entry]:
        raise NotImplementedError

    def _unique_check(self, value: str, hkey: str | None) -> tuple[str, str, str, str]:
        raise NotImplementedError

    def atoms(self, suffix: str | None, value: Any, hkey: str | None) -> list[Atom]:
        """The query atoms (unioned) for a filter with this suffix and value (for `in`, an
        iterable of values: the collection checks it)."""
        if suffix == "in":
            return [atom for item in value for atom in self.atoms("eq", item, hkey)]
        # Filter values are compared as given: with a `transform`, the query passes the
        # transformed value (chapter "Indexes and filters", configured indexes).
        return self._atoms(suffix or "eq", self.field.filter_text(value), hkey)

    def _atoms(self, suffix: str, value: str, hkey: str | None) -> list[Atom]:
        raise NotImplementedError

    def scan_patterns(self) -> list[str]:
        """SCAN patterns covering every key of this index (for clean/rebuild)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.field.describe()}>"


def _as_method(transform: Callable[..., Any] | None, owner: str) -> Any:
    """Transforms take `(value)` or `(self, value)`; both are stored as methods. Parameters
    with a default are not counted: `(value, n=2)` takes the value alone. An
    ImplementationError for what cannot be called so (every write would fail)."""
    if transform is None:
        return None
    refused = ImplementationError(
        f"{owner}.configure(transform={transform!r:.200}): a function taking (value) or "
        "(self, value) is expected"
    )
    if not callable(transform):
        raise refused
    try:
        signature = inspect.signature(transform).parameters.values()
    except (TypeError, ValueError):  # no signature to read (some builtins): taken as given
        return staticmethod(transform)
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p for p in signature if p.kind in positional and p.default is p.empty]
    takes_one = any(p.kind in positional or p.kind is p.VAR_POSITIONAL for p in signature)
    needs_keyword = any(p.kind is p.KEYWORD_ONLY and p.default is p.empty for p in signature)
    if len(required) > 2 or not takes_one or needs_keyword:
        raise refused
    if len(required) == 2:
        return transform
    return staticmethod(transform)


class EqualIndex(BaseIndex):
    """Equality: a set of primary keys per value. The default index."""

    handled_suffixes = frozenset({None, "eq", "in"})
    default_key = "equal"
    distinct_entries = True

    def value_key(self, value: str, hkey: str | None) -> str:
        return f"{self.base_key(hkey)}:{value}"

    def _entries(self, value: str, pk: str, hkey: str | None) -> list[Entry]:
        key = self.value_key(value, hkey)
        return [(("SADD", key, pk), ("SREM", key, pk))]

    def _unique_check(self, value: str, hkey: str | None) -> tuple[str, str, str, str]:
        return ("set", self.value_key(value, hkey), "", "")

    def _atoms(self, suffix: str, value: str, hkey: str | None) -> list[Atom]:
        return [(protocol.SET_KEY, self.value_key(value, hkey))]

    def scan_patterns(self) -> list[str]:
        return [glob_escape(self.base_key()) + ":*"]


class _SortedSetIndex(BaseIndex):
    """Indexes stored in one sorted set per field (per hash key for HashField)."""

    def score(self, value: str) -> str:
        return "0"

    def _entries(self, value: str, pk: str, hkey: str | None) -> list[Entry]:
        key, member = self.base_key(hkey), encode_member(value, pk)
        return [(("ZADD", key, self.score(value), member), ("ZREM", key, member))]

    def removals(self, value: str, pk: str, hkey: str | None = None) -> list[Op]:
        """A member is removed without its score (so without parsing the value)."""
        normalized = self.normalize(value)
        if normalized is None:
            return []
        return [("ZREM", self.base_key(hkey), encode_member(normalized, pk))]

    def scan_patterns(self) -> list[str]:
        base = glob_escape(self.base_key())
        return [base, base + ":*"]


class TextRangeIndex(_SortedSetIndex):
    """Equality, ranges and prefixes on text, in byte-wise (memcmp) order."""

    handled_suffixes = frozenset({None, "eq", "in", "gt", "gte", "lt", "lte", "startswith"})
    default_key = "text-range"
    distinct_entries = True

    def _unique_check(self, value: str, hkey: str | None) -> tuple[str, str, str, str]:
        low, high = self._bounds("eq", value)
        return ("lex", self.base_key(hkey), low, high)

    @staticmethod
    def _bounds(suffix: str, value: str) -> tuple[str, str]:
        escaped = escape_value(value)
        if suffix == "eq":
            return "[" + escaped + "\x00\x00", "(" + escaped + "\x00\x01"
        if suffix == "gt":
            return "[" + escaped + "\x00\x01", "+"
        if suffix == "gte":
            return "[" + escaped + "\x00\x00", "+"
        if suffix == "lt":
            return "-", "(" + escaped + "\x00\x00"
        if suffix == "lte":
            return "-", "(" + escaped + "\x00\x01"
        end = lex_prefix_end(escaped)
        return ("[" + escaped if escaped else "-"), ("(" + end if end is not None else "+")

    def _atoms(self, suffix: str, value: str, hkey: str | None) -> list[Atom]:
        low, high = self._bounds(suffix, value)
        return [(protocol.LEX_RANGE, self.base_key(hkey), low, high)]


class NumberRangeIndex(_SortedSetIndex):
    """Equality and ranges on decimal numbers, compared as doubles; uniqueness is exact.

    A value (or filter value) that is not a number is refused: the index could not place it."""

    handled_suffixes = frozenset({None, "eq", "in", "gt", "gte", "lt", "lte"})
    default_key = "number-range"

    @property
    def exact(self) -> bool:
        """Whether this index keeps a set of pks per exact number (to check uniqueness)."""
        return self.field.unique and self.handle_uniqueness

    def number(self, value: str) -> tuple[str, str]:
        """(score, canonical) of `value` (see `parse_number`); ValueError naming the model,
        the field and the value when it is not a number."""
        number = parse_number(value)
        if number is None:
            raise ValueError(
                f"{self.field.describe()}: invalid value {shown(value)} for its "
                f"{type(self).__name__}: a decimal number is expected, like -12, 0.5, 1e3 or inf"
            )
        return number

    def score(self, value: str) -> str:
        return self.number(value)[0]

    def exact_key(self, value: str, hkey: str | None) -> str:
        return f"{self.base_key(hkey)}:{self.number(value)[1]}"

    def removals(self, value: str, pk: str, hkey: str | None = None) -> list[Op]:
        if self.exact:  # the exact-value set is named by the parsed number
            return BaseIndex.removals(self, value, pk, hkey)
        return super().removals(value, pk, hkey)

    def _entries(self, value: str, pk: str, hkey: str | None) -> list[Entry]:
        entries = super()._entries(value, pk, hkey)
        if self.exact:
            key = self.exact_key(value, hkey)
            entries.append((("SADD", key, pk), ("SREM", key, pk)))
        return entries

    def _unique_check(self, value: str, hkey: str | None) -> tuple[str, str, str, str]:
        return ("set", self.exact_key(value, hkey), "", "")

    def _atoms(self, suffix: str, value: str, hkey: str | None) -> list[Atom]:
        score = self.score(value)
        if suffix == "eq" and self.exact:
            return [(protocol.SET_KEY, self.exact_key(value, hkey))]
        low, high = {
            "eq": (score, score),
            "gt": ("(" + score, "+inf"),
            "gte": (score, "+inf"),
            "lt": ("-inf", "(" + score),
            "lte": ("-inf", score),
        }[suffix]
        return [(protocol.SCORE_RANGE, self.base_key(hkey), low, high)]


#: The numbers a NumberRangeIndex takes (see text.NUMBER).
_NUMBER = re.compile(NUMBER)
#: The longest exponent read (in digits, beyond its leading zeros): Python reads no int of
#: more than 4,300 digits from a text.
_POWER_DIGITS = 4000
#: One of them in parts: sign, the digits before the point, those after it, the exponent
#: (no digits: an infinity).
_NUMBER_PARTS = re.compile(r"([+-]?)(?:([0-9]*)\.?([0-9]*)(?:[eE]([+-]?[0-9]+))?|[iI][nN][fF])")


def parse_number(text: str) -> tuple[str, str] | None:
    """(score, canonical) of a number as a NumberRangeIndex takes it, None for anything else.

    The score is its double, as ZADD takes it (beyond a double's precision neighbours share
    one; beyond its range it is an infinity). The canonical text is exact, equal for equal
    numbers only: `0.10`, `.1` and `1e-1` are `1e-1`, `100` and `1e2` are `1e2`, `-0` is `0`.
    """
    parts = _NUMBER_PARTS.fullmatch(text) if _NUMBER.fullmatch(text) else None
    if parts is None:
        return None
    score = repr(float(text))
    sign, whole, fraction, exponent = parts.groups()
    if whole is None:  # an infinity
        return score, score
    digits = (whole + (fraction or "")).lstrip("0")
    mantissa = digits.rstrip("0")
    if not mantissa:
        return score, "0"
    # exact at any exponent Python reads (Decimal refused those of 19 digits and more)
    exponent = exponent or "0"
    sign_of_power = exponent[0] if exponent[0] in "+-" else ""
    power_digits = exponent.lstrip("+-").lstrip("0") or "0"
    if len(power_digits) > _POWER_DIGITS:
        return None
    power = int(sign_of_power + power_digits) - len(fraction or "") + len(digits) - len(mantissa)
    return score, f"{'-' if sign == '-' else ''}{mantissa}e{power}"


def check_distinct(field: RedisField, leaves: list[BaseIndex]) -> None:
    """Two indexes of a field with the same identity would share keys: refuse them."""
    seen: dict[str, BaseIndex] = {}
    for leaf in leaves:
        if ":" in leaf.identity:
            raise ImplementationError(
                f"{field.describe()}: index {leaf!r} has the storage name {leaf.identity!r}; "
                "index keys and prefixes cannot contain ':'"
            )
        other = seen.setdefault(leaf.identity, leaf)
        if other is not leaf:
            raise ImplementationError(
                f"{field.describe()}: the indexes {other!r} and {leaf!r} would share the "
                f"storage name {leaf.identity!r} (the same Redis keys); give them distinct "
                "keys or prefixes, e.g. MultiIndexes.compose([...], key='...') or "
                "configure(key='...')"
            )


def _bound_order(kind: str, bound: str) -> tuple[Any, ...]:
    """A range bound (ZRANGEBYLEX's `-`/`+`/`[x`/`(x`, ZRANGEBYSCORE's `x`/`(x`) as
    (position, whether exclusive), comparable with the others of its kind."""
    exclusive = bound.startswith("(")
    if kind == protocol.SCORE_RANGE:
        return (float(bound[1:] if exclusive else bound), exclusive)
    if bound in ("-", "+"):
        return ((0 if bound == "-" else 2, b""), False)
    return ((1, bound[1:].encode("utf-8", "surrogateescape")), exclusive)


def intersect_ranges(first: Atom, second: Atom) -> Atom:
    """One range atom holding the members both range atoms on the same key hold (the
    tighter of their lower bounds, and of their upper ones)."""
    kind, key, low_a, high_a = first
    _, _, low_b, high_b = second

    def tighter(a: str, b: str, upper: bool) -> str:
        (pa, exclusive), (pb, _) = _bound_order(kind, a), _bound_order(kind, b)
        if pa != pb:
            return a if (pa < pb) == upper else b
        return a if exclusive else b

    return (kind, key, tighter(low_a, low_b, False), tighter(high_a, high_b, True))
