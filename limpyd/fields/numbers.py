"""What Redis accepts where it parses a number, checked before anything is sent.

Redis refuses a bad number with an error, and a script that fails after a write is not rolled
back: every value Redis parses is checked here first, as Redis parses it, so the error is a
ValueError naming the model, the field and the value. Two things Redis takes are refused, so
that both backends answer alike (fakeredis reads neither): hexadecimal numbers, and
INCRBYFLOAT amounts a double cannot hold (Redis reads them as long doubles).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

__all__ = ["check_numbers", "double_error", "parses_numbers", "score_bound_error"]

# strtod's syntax (decimal, infinity), without the leading spaces it skips: Redis refuses
# those, and trailing characters. Its hexadecimal form is recognised to be refused.
_DOUBLE = re.compile(
    r"[+-]?(?:(?P<inf>inf(?:inity)?)"
    r"|(?P<dec>(?:[0-9]+\.?[0-9]*|\.[0-9]+))(?:e[+-]?[0-9]+)?"
    r"|(?P<hex>0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?[0-9]+)?))",
    re.IGNORECASE,
)
_HEXADECIMAL = "hexadecimal, which the in-memory backend does not read: write it in decimal"
_INTEGER = re.compile(r"0|-?[1-9][0-9]*")
_INT64 = range(-(2**63), 2**63)
_MAX_MILLISECONDS = 2**63 - 1


def double_error(text: str) -> str | None:
    """Why Redis refuses `text` as a double (a ZADD score), None if it accepts it.

    Redis (`string2d`) takes what strtod parses entirely, except NaN, a leading space, and a
    value too large (overflow) or too small (underflow to zero) for a double."""
    match = _DOUBLE.fullmatch(text)
    if match is None:
        return "not a number"
    if match["hex"]:
        return _HEXADECIMAL
    if match["inf"]:
        return None
    value = float(text)
    if value in (float("inf"), float("-inf")):
        return "too large for a double"
    if value == 0 and match["dec"].strip("0.") != "":
        return "too small for a double (it would round to 0)"
    return None


def _integer_error(text: str) -> str | None:
    if _INTEGER.fullmatch(text) is None or int(text) not in _INT64:
        return "not a 64-bit integer as Redis writes it"
    return None


def _count_error(text: str) -> str | None:
    if _integer_error(text) is not None or text.startswith("-"):
        return "not a count (an integer >= 0)"
    return None


def _expiry_error(unit: int, relative: bool) -> Callable[[str], str | None]:
    """A SET expiry in `unit` ms: Redis refuses what is not above 0, or overflows its clock
    in ms (a relative one once the time now is added: taken as this machine's, an hour
    later)."""

    def error(text: str) -> str | None:
        limit = _MAX_MILLISECONDS
        if relative:
            limit -= int(time.time() * 1000) + 3_600_000
        limit //= unit
        if _integer_error(text) is not None or not 0 < int(text) <= limit:
            return f"not an expiry (an integer from 1 to {limit})"
        return None

    return error


def _signed_count_error(text: str) -> str | None:
    if _integer_error(text) is not None or int(text) == -(2**63):
        return "not a count (a 64-bit integer, negative ones allowing repeats, not -2**63)"
    return None


def _size_error(text: str) -> str | None:
    if _integer_error(text) is not None or int(text) < 1:
        return "not a size (an integer >= 1)"
    return None


def _rank_error(text: str) -> str | None:
    if _integer_error(text) is not None or int(text) in (0, -(2**63)):
        return "not a rank (a 64-bit integer other than 0: negative ones count from the end)"
    return None


def _where_error(text: str) -> str | None:
    """LINSERT's place, the one word it takes that is not a number (checked here with its
    numbers, so that its command is refused before anything is sent too)."""
    if text.upper() not in ("BEFORE", "AFTER"):
        return "not a place (BEFORE or AFTER)"
    return None


def _offset_error(limit: int) -> Callable[[str], str | None]:
    def error(text: str) -> str | None:
        if _integer_error(text) is not None or not 0 <= int(text) < limit:
            return f"not an offset (an integer from 0 to {limit - 1})"
        return None

    return error


def _increment_error(text: str) -> str | None:
    match = _DOUBLE.fullmatch(text)
    if match is None or match["inf"]:
        return "not a finite number"
    return double_error(text)


def score_bound_error(text: str) -> str | None:
    """Why Redis refuses `text` as a score bound (ZCOUNT, ZRANGEBYSCORE...), or None."""
    bound = text[1:] if text.startswith("(") else text
    match = _DOUBLE.fullmatch(bound)
    if match is None:
        return "not a score bound (a number, '(' before it to exclude it)"
    return _HEXADECIMAL if match["hex"] else None


def _lex_bound_error(text: str) -> str | None:
    if text in ("-", "+") or text[:1] in ("[", "("):
        return None
    return "not a lexicographic bound ('-', '+', or '[' or '(' before a value)"


_Check = Callable[[str], "str | None"]
_INDEXES: tuple[tuple[int, _Check], ...] = ((2, _integer_error), (3, _integer_error))
_SCORE_BOUNDS: tuple[tuple[int, _Check], ...] = ((2, score_bound_error), (3, score_bound_error))
_LEX_BOUNDS: tuple[tuple[int, _Check], ...] = ((2, _lex_bound_error), (3, _lex_bound_error))

#: The arguments Redis parses as numbers, by command: (position in the command, check).
_ARGUMENTS: dict[str, tuple[tuple[int, _Check], ...]] = {
    "INCRBY": ((2, _integer_error),),
    "DECRBY": ((2, _integer_error),),
    "HINCRBY": ((3, _integer_error),),
    "INCRBYFLOAT": ((2, _increment_error),),
    "HINCRBYFLOAT": ((3, _increment_error),),
    "SETBIT": ((2, _offset_error(2**32)),),
    "SETRANGE": ((2, _offset_error(512 * 1024 * 1024)),),
    "LSET": ((2, _integer_error),),
    "LINSERT": ((2, _where_error),),
    "LTRIM": _INDEXES,
    "LREM": ((2, _integer_error),),
    "LPOP": ((2, _count_error),),
    "RPOP": ((2, _count_error),),
    "SPOP": ((2, _count_error),),
    "ZPOPMAX": ((2, _count_error),),
    "ZPOPMIN": ((2, _count_error),),
    "ZINCRBY": ((2, double_error),),
    "ZREMRANGEBYRANK": _INDEXES,
    "ZREMRANGEBYSCORE": _SCORE_BOUNDS,
    "ZREMRANGEBYLEX": _LEX_BOUNDS,
    # reads
    "LINDEX": ((2, _integer_error),),
    "LRANGE": _INDEXES,
    "GETRANGE": _INDEXES,
    "GETBIT": ((2, _offset_error(2**32)),),
    "BITCOUNT": _INDEXES,
    "SRANDMEMBER": ((2, _signed_count_error),),
    "ZREVRANGE": _INDEXES,
    "ZCOUNT": _SCORE_BOUNDS,
    "ZRANGEBYSCORE": _SCORE_BOUNDS,
    "ZREVRANGEBYSCORE": _SCORE_BOUNDS,
    "ZLEXCOUNT": _LEX_BOUNDS,
    "ZRANGEBYLEX": _LEX_BOUNDS,
    "ZREVRANGEBYLEX": _LEX_BOUNDS,
}
_LIMIT: dict[str, tuple[_Check | None, ...]] = {"LIMIT": (_integer_error, _integer_error)}
#: The options whose values Redis parses as numbers, by command: (position of the first
#: option, {option: a check of each value it takes, None for a value that is no number}).
_OPTIONS: dict[str, tuple[int, dict[str, tuple[_Check | None, ...]]]] = {
    "LPOS": (3, {"RANK": (_rank_error,), "COUNT": (_count_error,), "MAXLEN": (_count_error,)}),
    "SET": (
        3,
        {
            "EX": (_expiry_error(1000, relative=True),),
            "PX": (_expiry_error(1, relative=True),),
            "EXAT": (_expiry_error(1000, relative=False),),
            "PXAT": (_expiry_error(1, relative=False),),
        },
    ),
    "SORT": (2, {**_LIMIT, "BY": (None,), "GET": (None,), "STORE": (None,)}),
    **dict.fromkeys(("SSCAN", "HSCAN", "ZSCAN"), (3, {"MATCH": (None,), "COUNT": (_size_error,)})),
    **dict.fromkeys(
        ("ZRANGE", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE", "ZRANGEBYLEX", "ZREVRANGEBYLEX"),
        (4, _LIMIT),
    ),
}
_ZADD_FLAGS = frozenset({"NX", "XX", "GT", "LT", "CH", "INCR"})


def zadd_flags(args: tuple[Any, ...], text: Callable[[Any], str] = str) -> list[str]:
    """The flags of the ZADD command `args` (upper case): its score, member pairs follow."""
    flags: list[str] = []
    while 2 + len(flags) < len(args) and text(args[2 + len(flags)]).upper() in _ZADD_FLAGS:
        flags.append(text(args[2 + len(flags)]).upper())
    return flags


def _checks(
    name: str, args: tuple[Any, ...], text: Callable[[Any], str]
) -> list[tuple[int, _Check]]:
    """Where the command `args` (named `name`) holds numbers, and how each is checked."""
    checks: list[tuple[int, _Check]] = list(_ARGUMENTS.get(name, ()))
    if name == "ZADD":
        first = 2 + len(zadd_flags(args, text))
        checks = [(i, double_error) for i in range(first, len(args), 2)]
    elif name == "ZRANGE":
        words = {text(arg).upper() for arg in args[4:]}
        checks = list(
            _SCORE_BOUNDS if "BYSCORE" in words else _LEX_BOUNDS if "BYLEX" in words else _INDEXES
        )
    first, options = _OPTIONS.get(name, (len(args), {}))
    position = first
    while position < len(args):
        values = options.get(text(args[position]).upper(), ())
        checks += [(position + 1 + k, check) for k, check in enumerate(values) if check]
        position += 1 + len(values)
    return checks


def parses_numbers(name: str) -> bool:
    """Whether Redis may parse numbers among the arguments of the command `name`."""
    return name in _ARGUMENTS or name in _OPTIONS or name == "ZADD"


def check_numbers(
    name: str, args: tuple[Any, ...], text: Callable[[Any], str]
) -> tuple[Any, str] | None:
    """The first argument of the command `args` (named `name`) Redis would refuse as a number,
    and why; None if there is none. `text` gives an argument's text."""
    for position, check in _checks(name, args, text):
        if position < len(args):
            error = check(text(args[position]))
            if error is not None:
                return args[position], error
    return None
