"""`PipelineDatabase`: a database whose field commands can go through a pipeline
(chapter "Pipelines").

Inside `with database.pipeline() as pipeline:` the field commands of the current thread
(or of every thread, with `share_in_threads=True`) are queued in a redis-py pipeline and
`pipeline.execute()` returns their results in order. Collections, existence checks and
writes that keep indexes exact need answers or atomic scripts: collections run on the real
connection, a plain write on an instance not known to exist checks it first (on the real
connection; `DoesNotExist`), and indexed writes, creations and deletions raise
`ImplementationError` before anything is sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from redis.client import Pipeline
from redis.exceptions import WatchError

from limpyd.database import RedisDatabase
from limpyd.exceptions import ConflictError, ImplementationError
from limpyd.fields.base import RedisField
from limpyd.writes import CONFLICT, retry_on_conflict

__all__ = ["PipelineDatabase"]


class PipelineDatabase(RedisDatabase):
    """A RedisDatabase with `pipeline()` and `transaction()`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._shared_pipeline: Pipeline | None = None
        self._pipeline_lock = threading.Lock()  # opening one: checked and set at once
        super().__init__(*args, **kwargs)

    def _current_pipeline(self) -> Pipeline | None:
        return getattr(self._local, "pipeline", None) or self._shared_pipeline

    @property
    def connection(self) -> Any:
        """The pipeline of the current thread if one is open, else the client."""
        return self._current_pipeline() or self.client

    @property
    def pipelined(self) -> bool:
        return self._current_pipeline() is not None

    @contextmanager
    def pipeline(
        self, transaction: bool = True, share_in_threads: bool = False
    ) -> Iterator[Pipeline]:
        """A redis-py pipeline that field commands use while the block runs (those of this
        thread, or of every thread with `share_in_threads`); its end ends only it."""
        with self._pipeline_lock:
            if self.pipelined:
                raise RuntimeError(f"{self!r}: a pipeline is already open")
            pipeline = self.client.pipeline(transaction=transaction)
            if share_in_threads:
                self._shared_pipeline = pipeline
            else:
                self._local.pipeline = pipeline
        try:
            with pipeline:
                yield pipeline
        finally:
            if share_in_threads:
                with self._pipeline_lock:
                    if self._shared_pipeline is pipeline:
                        self._shared_pipeline = None
            else:
                self._local.pipeline = None

    def transaction(
        self,
        func: Callable[[Pipeline], Any],
        *watches: str | bytes | RedisField,
        share_in_threads: bool = False,
        value_from_callable: bool = False,
    ) -> Any:
        """Run `func(pipeline)` in a MULTI/EXEC transaction watching these keys or bound
        fields, again from the start whenever one of them changed (with the backoff and the
        bound of limpyd's own writes: `max_write_attempts`, then ConflictError); the
        transaction's results (or `func`'s return value with `value_from_callable`)."""
        keys = [self._watched_key(watch) for watch in watches]
        with self.pipeline(transaction=True, share_in_threads=share_in_threads) as pipeline:
            started = _track_multi(pipeline)

            def attempt() -> Any:
                started.clear()
                try:
                    if keys:
                        pipeline.watch(*keys)
                    value = func(pipeline)
                    results = pipeline.execute()
                except WatchError:  # a watched key changed (on a cluster: its slot moved)
                    pipeline.reset()
                    return CONFLICT
                return value if value_from_callable else results

            try:
                return retry_on_conflict(self, attempt, "transaction")
            except ConflictError:
                if not keys or started:
                    raise
                raise ConflictError(
                    f"transaction: gave up after {self.max_write_attempts} attempts, each made "
                    "stale by a change of a watched key; the function never called "
                    "pipeline.multi(), so the commands it sent ran at once, outside the "
                    "transaction, at each attempt (what they wrote stays written), and may be "
                    "what changed the watched keys: call pipeline.multi() before the commands "
                    "of the transaction"
                ) from None

    def _watched_key(self, watch: str | bytes | RedisField) -> str | bytes:
        """The key of a watched field, which must be one of this database's: WATCH goes to
        this database's connection, and another database's commands are not part of the
        transaction (sent at once, they would make it fail and run again forever)."""
        if isinstance(watch, str | bytes):
            return watch
        if not isinstance(watch, RedisField):
            raise ImplementationError(
                f"transaction: cannot watch {watch!r:.200} (of type {type(watch).__name__}): "
                "give keys (str or bytes) or bound fields (`instance.field`); nothing was sent"
            )
        database = watch.model._meta.database
        if database is not self:
            raise ImplementationError(
                f"{watch.describe()}: watched in a transaction of {self!r}, but its model uses "
                f"{database!r}: watch fields of models of this database; nothing was sent"
            )
        return watch.key


def _track_multi(pipeline: Any) -> list[bool]:
    """A list that `pipeline.multi()` appends True to whenever it is called (a function
    that executes its own pipeline resets what redis-py remembers of it)."""
    started: list[bool] = []
    multi = pipeline.multi

    def tracked() -> None:
        started.append(True)
        multi()

    pipeline.multi = tracked
    return started
