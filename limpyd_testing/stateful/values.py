"""Values as the oracle keeps them: the kind of each field, states, the texts Redis stores,
and the arithmetic of the commands that compute (INCR..., ranges, sorted-set order)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from limpyd.fields import (
    HashField,
    InstanceHashField,
    ListField,
    PKField,
    SetField,
    SortedSetField,
    StringField,
)
from limpyd.fields.base import RedisField
from limpyd.model import RedisModel
from limpyd_testing import strategies as lst

#: The kinds of values the oracle keeps, by field class.
_KINDS: tuple[tuple[type[RedisField], str], ...] = (
    (InstanceHashField, "hashfield"),
    (StringField, "string"),
    (SetField, "set"),
    (ListField, "list"),
    (HashField, "hash"),
    (SortedSetField, "zset"),
)
SINGLE = ("string", "hashfield")
#: The state of a field without a value, per kind (states are never mutated in place).
EMPTY: dict[str | None, Any] = {
    "string": None,
    "hashfield": None,
    "set": frozenset(),
    "list": (),
    "hash": {},
    "zset": {},
}


def field_kind(field: RedisField) -> str | None:
    """The kind of value the machine models for `field` (None: a field it does not know)."""
    if isinstance(field, PKField):
        return None
    for cls, kind in _KINDS:
        if isinstance(field, cls):
            return kind
    return None


def raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def lex_before(text: str) -> str | None:
    """`text` with its last character one code point lower: a prefix that `text` and the
    values starting with it are just past (range bounds off by one show there). None when
    there is none that Redis can store."""
    if not text or text[-1] == "\x00":
        return None
    below = text[:-1] + chr(ord(text[-1]) - 1)
    try:
        raw(below)
    except UnicodeEncodeError:
        return None
    return below


def resplits(first: str, second: str) -> list[tuple[str, str]]:
    """The other cuts of `first:second` at a ':' (('a', 'b:c') for ('a:b', 'c')): pairs a
    key layout joining texts without their lengths would take for this one."""
    joined = f"{first}:{second}"
    return [
        (joined[:i], joined[i + 1 :])
        for i, char in enumerate(joined)
        if char == ":" and i != len(first)
    ]


def text_of(value: Any) -> str:
    """What Redis stores for a value, as it gives it back (`strategies.stored_text`; an
    instance is its pk). TypeError or ValueError: a value limpyd must refuse."""
    if isinstance(value, RedisModel):
        pk = value.pk.get()
        if pk is None:
            raise ValueError(f"{value!r} is not saved: it has no pk to store")
        return pk
    return lst.stored_text(value)


_SCORE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?|[+-]?inf")


def score_of(value: Any) -> float:
    """The score Redis stores for a value; ValueError for one it refuses (NaN, texts that
    are not a number, which IntEnum members are: redis-py sends their repr)."""
    if isinstance(value, float):
        number = value
    else:
        text = text_of(value)
        if not _SCORE.fullmatch(text):
            raise ValueError(f"not a score: {value!r}")
        number = float(text)
    if number != number:
        raise ValueError(f"not a score: {value!r}")
    return number


def is_empty(kind: str | None, state: Any) -> bool:
    return state is None if kind in SINGLE else not state


def state_of(kind: str, value: Any) -> Any:
    """The oracle's state for a value as `Model(field=value)` takes it."""
    if kind in SINGLE:
        return text_of(value)
    if kind == "set":
        return frozenset(text_of(v) for v in value)
    if kind == "list":
        return tuple(text_of(v) for v in value)
    if kind == "hash":
        return {text_of(k): text_of(v) for k, v in value.items()}
    return {text_of(m): score_of(s) for m, s in value.items()}


def items_of(kind: str, state: Any) -> list[tuple[str | None, str]]:
    """The (hash key, value) pairs indexes hold for a state (as the ORM documents them)."""
    if is_empty(kind, state):
        return []
    if kind in SINGLE:
        return [(None, state)]
    if kind == "list":
        return [(None, v) for v in dict.fromkeys(state)]
    if kind == "hash":
        return list(state.items())
    return [(None, v) for v in state]


def zorder(state: Mapping[str, float]) -> list[tuple[str, float]]:
    """A sorted set's members in rank order: score, then bytes."""
    return sorted(state.items(), key=lambda item: (item[1], raw(item[0])))


def as_number(text: str) -> float:
    """What a NumberRangeIndex compares: the value (a decimal number) as a double."""
    return float(text)


_CANONICAL_INT = re.compile(r"0|-?[1-9][0-9]{0,16}")
_SHORT_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]{0,5})(?:\.[0-9]{1,2})?")


def as_integer(state: str | None) -> int | None:
    """The integer INCR sees (0 when absent), None if the machine does not increment it."""
    if state is None:
        return 0
    return int(state) if _CANONICAL_INT.fullmatch(state) else None


def as_decimal(state: str | None) -> Decimal | None:
    """The number INCRBYFLOAT sees, when both servers add it exactly (binary-exact)."""
    if state is None:
        return Decimal(0)
    if not _SHORT_DECIMAL.fullmatch(state):
        return None
    number = Decimal(state)
    return number if (number * 4) % 1 == 0 else None


def not_a_number(state: str | None) -> bool:
    """A value every server refuses to increment (no digit, no inf/nan)."""
    return (
        state is not None
        and state != ""
        and not re.search(r"[0-9]", state)
        and not re.search(r"(?i)inf|nan", state)
    )


def float_text(number: Decimal) -> str:
    """How Redis prints an INCRBYFLOAT result: 17 decimals, trailing zeros removed."""
    text = f"{number:.17f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def redis_range(length: int, start: int, end: int) -> slice:
    """LRANGE/LTRIM/ZREMRANGEBYRANK indexes (inclusive, negatives from the end) as a slice."""
    if start < 0:
        start = max(start + length, 0)
    if end < 0:
        end += length
    if start > end or start >= length:
        return slice(0, 0)
    return slice(start, min(end, length - 1) + 1)


def read_value(instance: RedisModel, field: RedisField) -> Any:
    """A field's stored value, as the oracle keeps it."""
    bound = getattr(instance, field.name)
    kind = field_kind(field)
    if kind == "string":
        return bound.get()
    if kind == "hashfield":
        return bound.hget()
    if kind == "set":
        return frozenset(bound.smembers())
    if kind == "list":
        return tuple(bound.lrange(0, -1))
    if kind == "hash":
        return bound.hgetall()
    return dict(bound.zrange(0, -1, withscores=True))
