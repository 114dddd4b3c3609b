"""Atomic, lock-free writes.

A write is built in Python and run by one call of the `apply` Lua script: first its checks
(the instance exists or its pk is free, the states it was computed from are unchanged,
no other instance holds a unique value), then its commands. A failed check writes nothing.
A changed state means another client wrote in between: the write is computed again from
fresh reads, a bounded number of times with a randomized backoff (`ConflictError` after).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from limpyd.exceptions import ConflictError, DoesNotExist, UniquenessError
from limpyd.lua import APPLY

if TYPE_CHECKING:
    from limpyd.database import RedisDatabase
    from limpyd.fields.base import RedisField

__all__ = ["CONFLICT", "Write", "retry_on_conflict"]

#: What an attempt returns when a concurrent write made it stale.
CONFLICT: Any = type("Conflict", (), {"__repr__": lambda self: "CONFLICT"})()

T = TypeVar("T")


class Write:
    """The checks and commands of one atomic write."""

    def __init__(self, model: type, pk: str) -> None:
        self.model = model
        self.pk = pk
        self.checks: list[Any] = []
        self.commands: list[Any] = []
        self._unique: list[tuple[RedisField, str]] = []
        self.has_reply = False

    def must_exist(self) -> None:
        self.checks += ["X", self.model._meta.collection_key, self.pk]

    def must_be_new(self) -> None:
        """The pk is free; the write creates the instance."""
        self.checks += ["A", self.model._meta.collection_key, self.pk]
        self.call("SADD", self.model._meta.collection_key, self.pk)

    def guard(self, kind: str, key: str, sub: str, state: list[str]) -> None:
        self.checks += ["G", kind, key, sub, len(state), *state]

    def unique(self, field: RedisField, value: str, check: tuple[str, str, str, str]) -> None:
        self.checks += ["U", len(self._unique), *check, self.pk]
        self._unique.append((field, value))

    def call(self, *args: Any) -> None:
        self.commands += ["C", len(args), *args]

    def call_for_reply(self, *args: Any) -> None:
        self.commands += ["R", len(args), *args]
        self.has_reply = True

    @property
    def empty(self) -> bool:
        return not self.commands

    def run(self, database: RedisDatabase) -> Any:
        """Apply the write; its reply, or CONFLICT. Raises DoesNotExist / UniquenessError."""
        outcome = APPLY(database.connection, self.checks + self.commands)
        status = outcome[0]
        if status == "OK":
            return outcome[1]
        if status == "CONFLICT":
            return CONFLICT
        if status == "UNIQUE":
            field, value = self._unique[int(outcome[1])]
            raise UniquenessError(
                f"{field.describe()}: value {value!r} is already held by instance "
                f"{outcome[2]!r}"
            )
        if status == "PKEXISTS":
            raise UniquenessError(
                f"{self.model.__name__}: an instance with pk {self.pk!r} already exists"
            )
        raise DoesNotExist(f"{self.model.__name__}: no instance with pk {self.pk!r}")


def retry_on_conflict(database: RedisDatabase, attempt: Callable[[], T], what: str) -> T:
    """Run `attempt` until it does not return CONFLICT, a bounded number of times."""
    delay = database.retry_backoff
    for _ in range(database.max_write_attempts):
        result = attempt()
        if result is not CONFLICT:
            return result
        time.sleep(random.uniform(0, delay))
        delay = min(delay * 2, database.retry_backoff_max)
    raise ConflictError(
        f"{what}: gave up after {database.max_write_attempts} attempts, each made stale by "
        "a concurrent write; nothing was written"
    )
