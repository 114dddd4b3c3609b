"""The errors of limpyd's code on the server, as Python exceptions: the one place where they
are read (as redis-py maps Redis's errors to its classes in one place).

A call of limpyd's code fails in one of three ways:

- limpyd refuses what the call was given or found (`refuse` in common.lua, `refusal` in the
  native functions): `limpyd: refused <code> x<hex> ...`, each text in hex so any byte
  survives the error reply. It becomes a limpyd exception naming the model, field and value
  (`RefusedValueError`, a `ValueError`, where a value is at fault; `DoesNotExist` for a
  stored collection that is gone);
- any other `limpyd: ...` error is a call limpyd's code cannot run (hand-built arguments, a
  bug): an `ImplementationError`;
- Redis refused a command the code ran (WRONGTYPE, an INCR of a text, OOM...): redis-py's
  exception stays, its text as the command alone gives it.

Each server decorates the text its own way: Lua's position (`user_function:1364: `), Redis
7's `script: <name or sha>, on @user_script:271.`, fakeredis's `Error running script (call to
f_<sha>): @user_script:?: `. The text is stripped of all of it, so every backend gives the
same exception with the same message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from redis.exceptions import ResponseError

from limpyd import protocol
from limpyd.exceptions import DoesNotExist, ImplementationError, RefusedValueError
from limpyd.text import shown

if TYPE_CHECKING:
    from limpyd.meta import ModelOptions
    from limpyd.model import RedisModel

__all__ = [
    "clean",
    "concrete_model",
    "is_wrong_type",
    "missing_instance",
    "mistyped_key",
    "mistyped_model_key",
    "naming_mistyped_key",
    "translate",
]

#: What servers add before the text of an error raised in a script or function.
_PREFIX = re.compile(
    r"^(?:ERR )?(?:Error running script \(call to [^)]*\): )?"
    r"(?:(?:@?user_(?:script|function)|\[string \"[^\"]*\"\]):[\d?]+: )*"
)
#: What Redis 7 (and fakeredis) add after it: where an uncaught error was raised.
_SUFFIX = re.compile(r"\s*script: (?:[^,]*, )?on @user_(?:script|function):\d+\.\s*$")

_REFUSED = "limpyd: refused "
_OWN = "limpyd: "


def clean(text: str) -> str:
    """`text`, an error of limpyd's code on some server, without the server's decoration."""
    text = text.split("\nstack traceback:", 1)[0]  # fakeredis's Lua adds where it was raised
    return _SUFFIX.sub("", _PREFIX.sub("", text, count=1), count=1)


def translate(error: ResponseError, model: type[RedisModel] | None = None) -> Exception:
    """The exception to raise for `error`, the reply of a call of limpyd's code made for
    `model` (None: a hand-built call)."""
    text = clean(str(error))
    if text.startswith(_REFUSED):
        code, *texts = text[len(_REFUSED) :].split(" ")
        try:
            values = [bytes.fromhex(part[1:]) for part in texts]
        except ValueError:
            values = None
        if values is not None and code in _REFUSALS:
            return _REFUSALS[code](model, *values)
    if text.startswith(_OWN):
        return ImplementationError(
            f"limpyd's code on the server refused the call: {text[len(_OWN) :]}"
        )
    if model is not None and is_wrong_type(error):
        mistyped = mistyped_model_key(model)
        if mistyped is not None:
            return mistyped
    if text == str(error):
        return error
    cleaned = type(error)(text)
    cleaned.__traceback__ = error.__traceback__
    return cleaned


def mistyped_model_key(model: type[RedisModel]) -> RefusedValueError | None:
    """The refusal naming the key of `model` (its collection, expiry times or pk counter)
    that holds another type than limpyd keeps there, if one does (one round trip: asked
    when Redis answered WRONGTYPE, which names no key)."""
    meta = model._meta
    keys = {
        meta.collection_key: ("set", "a set"),
        meta.expiry_key: ("zset", "a sorted set"),
        meta.max_pk_key: ("string", "a string"),
    }
    with meta.database.client.pipeline(transaction=False) as pipeline:
        for key in keys:
            pipeline.type(key)
        held = pipeline.execute()
    for (key, (kind, wanted)), found in zip(keys.items(), held, strict=True):
        if found not in (kind, "none"):
            return mistyped_key(model, key, wanted)
    return None


def _shown(value: bytes) -> str:
    """`value` as a message shows it: as text if it is UTF-8, shortened (see `text.shown`)."""
    try:
        return shown(value.decode(), len(value))
    except UnicodeDecodeError:
        return shown(value)


def _model_name(model: type[RedisModel] | None) -> str:
    return model.__name__ if model is not None else "a model"


def _not_numeric(
    model: type[RedisModel] | None, kind: bytes, by: bytes, pk: bytes, value: bytes
) -> Exception:
    """A numeric sort met a value that is no number."""
    name = by.decode(errors="replace")
    if model is not None:
        meta = model._meta
        if kind.decode() == protocol.BY_PK:
            name = meta.pk_field.name
        elif kind.decode() == protocol.BY_STRING:
            name = next((f for f in meta.fields if meta.field_suffix(f) == name), name)
    where = f"{_model_name(model)}.{name}" if name else _model_name(model)
    return RefusedValueError(
        f"{where}: cannot sort numerically on value {_shown(value)} (instance "
        f"{pk.decode(errors='replace')!r}); sort with alpha=True to sort it as text"
    )


def _key_type(model: type[RedisModel] | None, key: bytes, kind: bytes) -> Exception:
    """An intersection with a key that holds no set, sorted set or list."""
    return RefusedValueError(
        f"{_model_name(model)} collection: cannot intersect with key "
        f"{key.decode(errors='replace')!r}: it holds a {kind.decode(errors='replace')}, not a "
        "set, sorted set or list"
    )


def _sort_key_type(
    model: type[RedisModel] | None, key: bytes, kind: bytes, want: bytes
) -> Exception:
    """A sort by the scores or positions in a key holding another type."""
    wanted = "sorted set" if want == b"zset" else "list"
    return RefusedValueError(
        f"{_model_name(model)} collection: cannot sort by the {wanted} at key "
        f"{key.decode(errors='replace')!r}: it holds a {kind.decode(errors='replace')}"
    )


def _state_type(model: type[RedisModel] | None, key: bytes, kind: bytes, want: bytes) -> Exception:
    """A field's key holding another type than the field keeps (written by another client)."""
    return RefusedValueError(
        f"{_model_name(model)}: the key {key.decode(errors='replace')!r} holds a "
        f"{kind.decode(errors='replace')}, not the {want.decode(errors='replace')} its field "
        "keeps (another client wrote it: see limpyd.integrity); nothing was written"
    )


def _stored_missing(model: type[RedisModel] | None, key: bytes) -> Exception:
    """A stored collection whose key is gone."""
    return DoesNotExist(
        f"{_model_name(model)}: the stored collection {key.decode(errors='replace')!r} "
        "expired or was deleted, or held an empty result (for which store() writes no key): "
        "run the collection again"
    )


_REFUSALS: dict[str, Callable[..., Exception]] = {
    "not_numeric": _not_numeric,
    "key_type": _key_type,
    "sort_key_type": _sort_key_type,
    "state_type": _state_type,
    "stored_missing": _stored_missing,
}


def is_wrong_type(error: Exception) -> bool:
    """Whether `error` is Redis's refusal of a key holding another type (WRONGTYPE)."""
    return isinstance(error, ResponseError) and "WRONGTYPE" in str(error)


@contextmanager
def naming_mistyped_key(model: type[RedisModel], key: str, wanted: str) -> Iterator[None]:
    """Redis's refusal of `key` (of `model`) holding another type than `wanted`, raised in
    the block, as a RefusedValueError naming them (redis-py's names neither)."""
    try:
        yield
    except ResponseError as error:
        if not is_wrong_type(error):
            raise
        raise mistyped_key(model, key, wanted) from None


def missing_instance(model: type[RedisModel], pk: str) -> DoesNotExist:
    """The refusal of a call on the instance `pk` of `model`, which does not exist."""
    return DoesNotExist(f"{model.__name__}: no instance with pk {pk!r}")


def mistyped_key(model: type[RedisModel], key: str, wanted: str) -> RefusedValueError:
    """The refusal of `key` (of `model`) holding another type than `wanted`."""
    return RefusedValueError(
        f"{model.__name__}: the key {key!r} is not {wanted} (another client wrote it: see "
        "limpyd.integrity)"
    )


def concrete_model(model: object, what: str) -> ModelOptions:
    """The options of `model`, a concrete model class: an ImplementationError naming what was
    given to `what` instead (an instance, an abstract model: nothing done must not read as
    everything done)."""
    from limpyd.model import RedisModel

    if not (isinstance(model, type) and issubclass(model, RedisModel)):
        raise ImplementationError(f"{what}({model!r:.200}): a model class is expected")
    return model._check_concrete()
