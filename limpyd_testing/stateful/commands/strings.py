"""The model of the StringField and InstanceHashField modifiers (SET, INCR..., SETRANGE,
SETBIT, HSET...): each draws a call and predicts its reply and the field's new state."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st
from redis.exceptions import ResponseError

from limpyd_testing import strategies as lst
from limpyd_testing.stateful.commands.base import SMALL, Op
from limpyd_testing.stateful.values import as_decimal, as_integer, float_text, not_a_number, raw


def string_op(
    data: st.DataObject,
    kind: str,
    old: str | None,
    texts: st.SearchStrategy[str] | None,
    related: bool = False,
) -> Op:
    if kind == "string":
        names = ["set", "getset", "setnx", "getdel"]
        if not related:
            names += ["append", "incr", "decr", "incrby", "decrby", "incrbyfloat",
                      "setrange", "setbit"]  # fmt: skip
    else:
        names = ["hset", "hsetnx"] + ([] if related else ["hincrby", "hincrbyfloat"])
    if texts is None:
        names = [n for n in names if n == "getdel"]
        if not names:  # an empty pool and an InstanceHashField: delete it instead
            return Op("delete", new=None, reply=int(old is not None))
    name = data.draw(st.sampled_from(names), label="modifier")
    setter = "set" if kind == "string" else "hset"

    def value() -> str:
        # type-ignored: texts is None only for a related field without pks: not drawn then
        return data.draw(texts, label="value")  # type: ignore[arg-type]

    if name in ("incr", "decr", "incrby", "decrby", "hincrby"):
        base = as_integer(old)
        amount = data.draw(SMALL, label="amount")
        if base is not None:
            total = base - amount if name.startswith("decr") else base + amount
            return Op(name, (amount,), new=str(total), reply=total)
        if not_a_number(old):
            return Op(name, (amount,), error=ResponseError)
        name = setter
    if name in ("incrbyfloat", "hincrbyfloat"):
        base_decimal = as_decimal(old)
        amount_float = data.draw(st.integers(-40, 40), label="quarters") / 4
        if base_decimal is not None:
            text = float_text(base_decimal + Decimal(repr(amount_float)))
            return Op(name, (amount_float,), new=text, reply=float(text))
        if not_a_number(old):
            return Op(name, (amount_float,), error=ResponseError)
        name = setter
    if name in ("set", "hset"):
        v = value()
        return Op(name, (v,), new=v, reply=True if name == "set" else int(old is None))
    if name == "getset":
        v = value()
        return Op(name, (v,), new=v, reply=old)
    if name in ("setnx", "hsetnx"):
        v = value()
        return Op(
            name,
            (v,),
            new=v if old is None else old,
            reply=lambda r, was=old is None: bool(r) == was,
        )
    if name == "getdel":
        return Op(name, new=None, reply=old)
    if name == "append":
        v = value()
        new = lst.canonical((old or "") + v)
        return Op(name, (v,), new=new, reply=len(raw(new)))
    if name == "setrange":
        offset = data.draw(st.integers(0, 6), label="offset")
        v = value()
        current = raw(old or "")
        if not v:
            return Op(name, (offset, v), reply=len(current))
        current = current.ljust(offset, b"\x00")
        written = raw(v)
        result = current[:offset] + written + current[offset + len(written) :]
        text = result.decode("utf-8", "surrogateescape")
        return Op(name, (offset, v), new=text, reply=len(result))
    assert name == "setbit", name
    offset = data.draw(st.integers(0, 31), label="offset")
    bit = data.draw(st.integers(0, 1), label="bit")
    buffer = bytearray(raw(old or ""))
    position, shift = divmod(offset, 8)
    if len(buffer) <= position:
        buffer.extend(b"\x00" * (position + 1 - len(buffer)))
    previous = (buffer[position] >> (7 - shift)) & 1
    if bit:
        buffer[position] |= 1 << (7 - shift)
    else:
        buffer[position] &= ~(1 << (7 - shift)) & 0xFF
    text = bytes(buffer).decode("utf-8", "surrogateescape")
    return Op(name, (offset, bit), new=text, reply=previous)
