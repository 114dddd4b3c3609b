"""The order helpers of the native `query` (see limpyd/scripts/order.lua): Lua's numbers,
the default order's tests of a pk, Python's slices, and sorts in query.lua's order.

query.lua's shortcuts (SORT_RO windows, partial sorts, reads of an index's order) only make
a query cheaper, never change its answer: every sort here is a whole sort, Python's sort
being fast enough. Values are bytes, compared byte-wise, as Lua compares its strings under
the C locale.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from limpyd.backends.native.server import ScriptFailure
from limpyd.text import NUMBER

__all__ = [
    "Number",
    "Slice",
    "canonical_integers",
    "count_of",
    "integer_order",
    "is_decimal",
    "is_number",
    "pick",
    "sort_by_keys",
    "to_number",
]

Number = int | float
#: A slice: start, stop (None for none) and step, as Lua numbers.
Slice = tuple[Number | None, Number | None, Number]

_DECIMAL = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NUMBER = re.compile(NUMBER.encode())
_CANONICAL = re.compile(rb"0|-?[1-9][0-9]*")
_HEXADECIMAL = re.compile(
    rb"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
)
_SPECIAL = re.compile(rb"[+-]?(?:inf(?:inity)?|nan)", re.IGNORECASE)
_SPACES = b" \t\n\v\f\r"
#: Digits past which int() refuses a text (sys.get_int_max_str_digits): sorted without it.
_LONG = 4000


def to_number(text: bytes | None) -> float | None:
    """Lua's `tonumber` on the server (Lua 5.1, strtod): spaces around, decimal, hexadecimal
    (floats too), inf and nan; the text ends at a NUL, as C reads it. None for nil."""
    if text is None:
        return None
    end = text.find(b"\0")
    if end >= 0:
        text = text[:end]
    text = text.strip(_SPACES)
    if _DECIMAL.fullmatch(text) or _SPECIAL.fullmatch(text):
        return float(text)
    if _HEXADECIMAL.fullmatch(text):
        return float.fromhex(text.decode())
    return None


def is_decimal(text: bytes) -> bool:
    """Whether a pk is written as a decimal number (order.lua's `is_decimal`): sign, digits
    with at most one dot, exponent; no space, hexadecimal, inf or nan."""
    return _DECIMAL.fullmatch(text) is not None


def is_number(text: bytes) -> bool:
    """Whether `text` is written as a number (`limpyd.text.NUMBER`, order.lua's `is_number`):
    a decimal or an infinity; no space, hexadecimal or nan."""
    return _NUMBER.fullmatch(text) is not None


def canonical_integers(pks: Iterable[bytes]) -> bool:
    """Whether every pk is a canonical integer ('0', or no leading zero, no sign but '-')."""
    match = _CANONICAL.fullmatch
    return all(match(pk) for pk in pks)


def _long_integer_key(pk: bytes) -> tuple[int, int, bytes]:
    """A canonical integer's place, exact at any length: sign, then length, then digits
    (a negative's inverted, so that the larger digits come first)."""
    if pk[:1] == b"-":
        return (0, -len(pk), bytes(255 - byte for byte in pk))
    return (1, len(pk), pk)


def integer_order(pks: list[bytes], desc: bool) -> list[bytes]:
    """Canonical integers in their order (exact at any length), reversed with `desc`."""
    if any(len(pk) > _LONG for pk in pks):
        return sorted(pks, key=_long_integer_key, reverse=desc)
    return sorted(pks, key=int, reverse=desc)


def sort_by_keys(
    items: list[bytes], keys: dict[bytes, list[Any]], descs: list[bool], ties_desc: bool
) -> list[bytes]:
    """`items` sorted by their `keys` (one list of sort keys each, bytes or numbers, the
    ith reversed when `descs[i]`), ties by pk byte-wise (reversed with `ties_desc`)."""
    if len(descs) == 1 and descs[0] == ties_desc:
        return sorted(items, key=lambda pk: (keys[pk][0], pk), reverse=ties_desc)
    # stable sorts, the last key first: each keeps the order of the following ones in ties
    ordered = sorted(items, reverse=ties_desc)
    for i in reversed(range(len(descs))):
        ordered.sort(key=lambda pk: keys[pk][i], reverse=descs[i])
    return ordered


def _indices(
    n: Number, start: Number | None, stop: Number | None, step: Number
) -> tuple[Number, Number]:
    """Python's `slice(start, stop, step).indices(n)` (start and stop only)."""
    if step == 0:
        raise ScriptFailure("limpyd: slice step cannot be zero")
    lower, upper = (-1, n - 1) if step < 0 else (0, n)

    def clamp(value: Number | None, default: Number) -> Number:
        if value is None:
            return default
        if value < 0:
            value += n
            if value < lower:
                value = lower
        elif value > upper:
            value = upper
        return value

    if step < 0:
        return clamp(start, upper), clamp(stop, lower)
    return clamp(start, lower), clamp(stop, upper)


def _positions(n: int, piece: Slice) -> Iterable[Number]:
    """The positions (from 0) a slice picks among n items, in its order."""
    start, stop = _indices(n, *piece)
    step = piece[2]
    if type(start) is int and type(stop) is int and type(step) is int:
        return range(start, stop, step)
    out: list[Number] = []
    at = start
    while (step > 0 and at < stop) or (step < 0 and at > stop):
        out.append(at)
        at += step
    return out


def pick(items: list[bytes], piece: Slice) -> list[bytes]:
    """The items a slice picks (a position that is no integer picks nothing, as in Lua)."""
    positions = _positions(len(items), piece)
    if type(positions) is range:
        if not positions:
            return []
        start, stop, step = positions.start, positions.stop, positions.step
        return items[start::step] if stop < 0 else items[start:stop:step]
    n = len(items)
    return [items[int(p)] for p in positions if p == int(p) and 0 <= p < n]


def count_of(n: Number, piece: Slice) -> Number:
    """How many positions a slice of n items picks."""
    start, stop = _indices(n, *piece)
    step: Number = piece[2]
    span = stop - start if step > 0 else start - stop
    if span <= 0:
        return 0
    if type(span) is int and type(step) is int:
        return (span - 1) // abs(step) + 1
    return math.floor((span - 1) / abs(step)) + 1
