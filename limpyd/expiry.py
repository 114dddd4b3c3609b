"""Instances that expire: `expire()`, `expireat()`, `persist()`, `ttl()` (RedisModel's
methods call these), and the reaping of those whose time has passed (`reap_expired()`, or a
write meeting one). An expired instance is gone for every read at once; its keys, index
entries and references go when it is reaped."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from redis.exceptions import ResponseError

from limpyd import writes
from limpyd.exceptions import RefusedValueError
from limpyd.fields.numbers import double_error
from limpyd.refusals import (
    is_wrong_type,
    missing_instance,
    mistyped_model_key,
    naming_mistyped_key,
)
from limpyd.text import to_text

if TYPE_CHECKING:
    from limpyd.model import RedisModel

__all__ = [
    "REAP_BATCH",
    "expire",
    "expireat",
    "persist",
    "reap",
    "reap_expired",
    "reap_pk",
    "reap_plan",
    "ttl",
]

#: Expired instances deleted per batch by `reap_expired(progress=...)`.
REAP_BATCH = 1000


def reap_plan(instance: RedisModel) -> writes.Rewrite:
    """The write deleting `instance`, whose time has passed (as `delete()`, references
    included): what `reap` and `reap_expired` run, through the instance's `_reap_plan`
    (which the test tools replace to break it on purpose). It checks, in its script, that the
    instance is still expired: one re-created (or given more time) since it was found
    expired is left alone."""
    return writes.Rewrite(instance, **instance._deletion(), reaping=True)


def reap(instance: RedisModel) -> bool:
    """Delete `instance` if its time has passed; whether it did."""
    instance._connected = False
    return instance._reap_plan().run() is not writes.SKIPPED


def reap_pk(model: type[RedisModel], pk: str) -> None:
    """Reap the instance `pk` a write found expired (see `writes.before_reap`)."""
    if writes.before_reap is not None:
        writes.before_reap(model, [pk])
    model.lazy_connect(pk)._reap()


def expire(instance: RedisModel, seconds: int | float) -> bool:
    """`instance` disappears `seconds` from now (see `RedisModel.expire`)."""
    _refuse_in_pipeline(instance, "expire")
    database = type(instance)._meta.database
    write = writes.Write(type(instance), instance._require_pk())
    write.expire_in(_finite(instance, "expire", seconds))
    writes.retry_on_conflict(database, lambda: write.run(database), "expire")
    return True


def expireat(instance: RedisModel, timestamp: int | float) -> bool:
    """As `expire()`, at this Unix time (the server's clock)."""
    _refuse_in_pipeline(instance, "expireat")
    meta = type(instance)._meta
    pk = instance._require_pk()
    write = writes.Write(type(instance), pk)
    write.call("ZADD", meta.expiry_key, _finite(instance, "expireat", timestamp), pk)
    write.run(meta.database)
    return True


def persist(instance: RedisModel) -> bool:
    """`instance` no longer expires; whether it had an expiry time."""
    _refuse_in_pipeline(instance, "persist")
    meta = type(instance)._meta
    pk = instance._require_pk()
    write = writes.Write(type(instance), pk)
    write.call_for_reply("ZREM", meta.expiry_key, pk)
    return bool(write.run(meta.database))


def ttl(instance: RedisModel) -> float | None:
    """Seconds `instance` has left (see `RedisModel.ttl`), in one round trip."""
    _refuse_in_pipeline(instance, "ttl")
    meta = type(instance)._meta
    pk = instance._require_pk()
    # one transaction: a deletion (or creation) in between would show an instance with no
    # expiry time (None, "does not expire") for one that always has one
    with meta.database.client.pipeline(transaction=True) as pipeline:
        pipeline.sismember(meta.collection_key, pk)
        pipeline.zscore(meta.expiry_key, pk)
        pipeline.time()
        try:
            replies: list[Any] = pipeline.execute()
        except ResponseError as error:  # WRONGTYPE: another client's key, named
            if is_wrong_type(error) and (mistyped := mistyped_model_key(type(instance))):
                raise mistyped from None
            raise
    if not replies[0]:
        raise missing_instance(type(instance), pk)
    expires_at: float | None = replies[1]
    clock: tuple[int, int] = replies[2]  # TIME: seconds, microseconds
    seconds, microseconds = clock
    if expires_at is None:
        return None
    return max(0.0, expires_at - (seconds + microseconds / 1e6))


def reap_expired(
    model: type[RedisModel], progress: Callable[[str, int, int], None] | None = None
) -> int:
    """Delete every instance of `model` whose time has passed (see
    `RedisModel.reap_expired`); how many."""
    meta = model._check_concrete()
    writes.refuse_in_pipeline(meta.database, f"{model.__name__}.reap_expired: reaping")
    client = meta.database.client
    seconds, microseconds = client.time()
    now = seconds + microseconds / 1e6
    # redis-py types replies for sync and async clients alike: this one is sync
    with naming_mistyped_key(model, meta.expiry_key, "a sorted set"):
        due = cast("list[str]", client.zrangebyscore(meta.expiry_key, "-inf", now))
    if writes.before_reap is not None:
        writes.before_reap(model, due)
    instances = [model.lazy_connect(pk) for pk in due]
    size = REAP_BATCH if progress is not None else max(len(instances), 1)
    reaped = 0
    refused: list[RefusedValueError] = []
    for start in range(0, len(instances), size):
        batch = instances[start : start + size]
        applied = writes.rewrite_many(meta.database, [i._reap_plan() for i in batch])
        # One the batch did not apply runs alone, with the usual retries and errors; it
        # is skipped if it is no longer expired, or gone (its expiry time then dropped).
        for instance, done in zip(batch, applied, strict=True):
            try:
                reaped += done or instance._reap()
            except RefusedValueError as error:  # another client's data: the others go on,
                if not refused and (mistyped := mistyped_model_key(model)) is not None:
                    raise mistyped from None  # unless it is the model's: all would fail
                refused.append(error)
        if progress is not None:
            progress(f"{model.__name__}: expired instances", start + len(batch), len(due))
    if refused:
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        raise RefusedValueError(
            f"{model.__name__}.reap_expired(): {reaped} expired instance(s) reaped, "
            f"{len(refused)} left as they were, refused: {refused[0]}{more}"
        )
    return reaped


def _refuse_in_pipeline(instance: RedisModel, what: str) -> None:
    writes.refuse_in_pipeline(
        type(instance)._meta.database,
        f"{instance!r}.{what}: setting or reading an instance's expiry",
        "the server checks the instance and reads its clock as it runs",
    )


def _finite(instance: RedisModel, what: str, value: Any) -> float:
    """`value` as a finite float; ValueError naming the instance otherwise."""
    number: float | None = None
    if isinstance(value, str | bytes):  # a text, read as Redis reads one (no spaces, no '_')
        try:
            text = to_text(value)
        except ValueError:  # no text Redis holds (a lone surrogate)
            text = ""
        number = None if double_error(text) else float(text)
    elif not isinstance(value, bool):  # a number of any type (Decimal, numpy's...)
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            number = None
    if number is None or not math.isfinite(number):
        raise ValueError(
            f"{instance!r}.{what}: invalid value {value!r}: a finite number is expected"
        )
    return number
