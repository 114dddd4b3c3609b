"""How values become Redis strings, and how strings are laid out in keys and index members.

Values are text: `str` as is, `bytes` decoded with `surrogateescape` (so any bytes survive
the round trip), `int` and `float` as redis-py writes them (`repr`). Anything else is refused.
"""

from __future__ import annotations

import contextlib
from typing import Any

__all__ = [
    "MAX_BYTES",
    "NUMBER",
    "SEPARATOR",
    "encode_member",
    "escape_value",
    "glob_escape",
    "lex_prefix_end",
    "member_pk",
    "reversed_bytes",
    "shown",
    "to_text",
]

#: A number as limpyd reads one (a NumberRangeIndex's values, a numeric sort's; a pk in the
#: default order must be a decimal, without the infinities): an optional
#: sign, ASCII digits with an optional fraction (`5.` and `.5` too), an optional exponent; or
#: an infinity. Not NaN, spaces, `_`, hexadecimal or other scripts' digits, which `float()`,
#: Lua or Redis take differently. (order.lua's `is_number` reads the same.)
NUMBER = r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[iI][nN][fF])"

#: Ends the escaped value in a range-index member; the primary key follows it.
SEPARATOR = "\x00\x00"
#: What a NUL inside a value becomes: bytes 00 FF (a lone surrogate encodes byte FF).
_ESCAPED_NUL = "\x00\udcff"
#: What `escape_value` replaces in a value, and by what (the script escapes values it reads).
ESCAPE = ("\x00", _ESCAPED_NUL)


#: The longest value written, in bytes: a Redis argument is at most 512 MiB (its default
#: proto-max-bulk-len; a longer one makes the server drop the connection), less room for
#: the key names built on a value (index keys) and their prefixes.
MAX_BYTES = 512 * 1024 * 1024 - 64 * 1024


class ValueTypeError(ValueError):
    """A value of a type Redis cannot store; callers add the model and field to the message."""


#: The characters (or bytes) of a value a message shows.
SHOWN = 200


def shown(value: str | bytes, size: int | None = None) -> str:
    """`value` as a message shows it: its repr, shortened when long, then its `size` in
    bytes (default: its length, in characters for a text)."""
    if len(value) <= SHOWN:
        return repr(value)
    if size is not None:
        return f"{value[:SHOWN]!r}... ({size} bytes)"
    unit = "bytes" if isinstance(value, bytes) else "characters"
    return f"{value[:SHOWN]!r}... ({len(value)} {unit})"


def _check_length(size: int) -> None:
    if size > MAX_BYTES:
        raise ValueTypeError(
            f"a text of {size} bytes is too long: limpyd writes values of up to {MAX_BYTES} "
            "bytes (Redis takes arguments of up to 512 MiB, index keys hold the value)"
        )


def to_text(value: Any) -> str:
    """The text Redis stores for `value`, as a plain `str`: the one conversion every write,
    index entry, uniqueness check, pk, key name and filter uses. `ValueTypeError` for what
    redis-py would not send as the value itself.

    A `str` subclass (a `str` Enum member...) is its content, as redis-py sends it (whatever
    its `__str__` or `__format__` say); an `int` or `float` subclass is its number only when its
    `repr` is the number's, since redis-py sends `repr(value)` (an `IntEnum` member would be
    sent as `<Code.A: 1>`): others are refused."""
    if isinstance(value, str):
        text = str.__str__(value)
        if len(text) > MAX_BYTES // 4:  # maybe too long: its UTF-8 has 1 to 4 bytes a character
            if text.isascii():
                _check_length(len(text))
            else:
                with contextlib.suppress(UnicodeEncodeError):  # refused below
                    _check_length(len(text.encode("utf-8", "surrogateescape")))
        if text.isascii():
            return text
        # As Redis will store it: lone surrogates standing for bytes become those bytes.
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise ValueTypeError(f"{value!r} is not valid text (a lone surrogate)") from None
    if isinstance(value, bytes):
        _check_length(len(value))
        return bytes.decode(value, "utf-8", "surrogateescape")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueTypeError(
            f"{value!r} ({type(value).__name__}) is not a str, bytes, int or float"
        )
    base: type[int | float] = float
    if isinstance(value, int):
        base = int
        try:
            text = int.__repr__(value)
        except ValueError:  # beyond Python's limit of digits for int-to-text conversions
            raise ValueTypeError(
                f"an int of {value.bit_length()} bits is too long to be written as text"
            ) from None
    else:
        text = float.__repr__(value)
    if type(value) is not base and repr(value) != text:
        raise ValueTypeError(
            f"{value!r} ({type(value).__name__}) is an {base.__name__} subclass whose repr "
            f"(what redis-py would send) is not its number {text}: pass {base.__name__}(value)"
        )
    return text


def reversed_bytes(text: str) -> str:
    """The text of `text`'s bytes in reverse order: a byte suffix of a value is a byte prefix
    of its reversal, for any bytes (reversing characters would merge two lone surrogates into
    the character they encode, so a value could match a suffix it does not end with)."""
    if text.isascii():
        return text[::-1]
    return text.encode("utf-8", "surrogateescape")[::-1].decode("utf-8", "surrogateescape")


def encode_member(value: str, pk: str) -> str:
    """A range-index member: the value with NUL escaped, then `SEPARATOR`, then the pk.

    The escaping keeps the byte-wise (memcmp) order of values, and no escaped value contains
    `SEPARATOR`, so values holding any character, NUL included, sort and split exactly.
    """
    return escape_value(value) + SEPARATOR + pk


def escape_value(value: str) -> str:
    """The value part of `encode_member`, for building lexicographic bounds."""
    return value.replace("\x00", _ESCAPED_NUL)


def member_pk(member: str) -> str | None:
    """The primary key stored in a range-index member (None for a member of another shape,
    which limpyd never writes)."""
    index = member.find("\x00")
    while 0 <= index < len(member) - 1:
        if member[index + 1] == "\x00":
            return member[index + 2 :]
        index = member.find("\x00", index + 2)
    return None


def lex_prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with `prefix` (None: no bound)."""
    data = bytearray(prefix.encode("utf-8", "surrogateescape"))
    while data and data[-1] == 0xFF:
        data.pop()
    if not data:
        return None
    data[-1] += 1
    return data.decode("utf-8", "surrogateescape")


_GLOB_SPECIAL = {"*", "?", "[", "]", "\\"}


def glob_escape(text: str) -> str:
    """Escape `text` so a SCAN MATCH pattern matches it literally."""
    return "".join("\\" + char if char in _GLOB_SPECIAL else char for char in text)
