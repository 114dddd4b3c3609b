"""What the machines of `properties/` share: their database, their settings, and the small
pure-Python oracles of the documented semantics (orders, numbers, bytes).

A state machine cannot take pytest fixtures: each machine class has a `run()` that takes
a `database_factory` (the limpyd plugin's `limpyd_database_factory`, so the machine runs on
the backend of the test), as `limpyd_testing.stateful.ModelStateMachine.run` does. Without
a factory, a machine uses a private in-memory server, dropped at the end of each example.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from hypothesis import settings as Settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from limpyd.backends import FakeBackend
from limpyd.database import RedisDatabase
from limpyd_testing import stateful

DatabaseFactory = Callable[[], RedisDatabase]


def scaled(profile: Settings, weight: float = 1.0) -> Settings:
    """`profile` with `weight` times its examples (at least one), without a deadline."""
    examples = max(1, round(profile.max_examples * weight))
    return Settings(profile, max_examples=examples, deadline=None)


class DatabaseMachine(RuleBasedStateMachine):
    """A machine working on one fresh database per example.

    `setup()` (to override) builds the models on `self.database`; `run()` runs the machine
    as a test. Class attribute `weight`: the share of the profile's examples it runs.
    """

    weight: ClassVar[float] = 1.0

    def __init__(self, database_factory: DatabaseFactory | None = None) -> None:
        super().__init__()
        factory = database_factory or stateful.config.database_factory
        self._drop: str | None = None
        if factory is None:
            self._drop = f"limpyd-properties-{uuid.uuid4().hex}"
            self.database = RedisDatabase(backend=FakeBackend(name=self._drop))
        else:
            self.database = factory()
            self.database.client.flushdb()
        self.setup()

    def setup(self) -> None:
        """Build the models and the oracle (called once per example)."""

    def teardown(self) -> None:
        if self._drop is not None:
            FakeBackend.drop_server(self._drop)

    @classmethod
    def run(
        cls, database_factory: DatabaseFactory | None = None, *, settings: Settings | None = None
    ) -> None:
        """Run the machine as a test, each example on a fresh database from the factory."""
        chosen = Settings(settings if settings is not None else Settings(), deadline=None)
        run_state_machine_as_test(lambda: cls(database_factory), settings=chosen)


# Oracles of the documented semantics --------------------------------------------------------


def raw(text: str) -> bytes:
    """The bytes Redis holds for a text (memcmp order is the order of these)."""
    return text.encode("utf-8", "surrogateescape")


def canonical(text: str) -> str:
    """`text` as Redis gives it back."""
    return raw(text).decode("utf-8", "surrogateescape")


#: A pk the default collection order counts as a number.
NUMERIC_PK = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def default_order(pks: Iterable[str]) -> list[str]:
    """Collections without `sort()`: by pk, numerically (ties byte-wise) when every pk is a
    number, else byte-wise."""
    pks = list(pks)
    if pks and all(NUMERIC_PK.fullmatch(pk) for pk in pks):
        return sorted(pks, key=lambda pk: (float(pk), raw(pk)))
    return sorted(pks, key=raw)


def number_of(text: str | None) -> float:
    """What a NumberRangeIndex compares: the value as a float (0 for no value)."""
    if text is None:
        return 0.0
    try:
        number = float(text)
    except ValueError:
        return 0.0
    return 0.0 if number != number else number


def described(value: Any) -> Any:
    """A result made comparable across databases: instances as ('instance', pk)."""
    from limpyd.model import RedisModel

    if isinstance(value, RedisModel):
        return ("instance", type(value).__name__, value._pk)
    if isinstance(value, list | tuple):
        return type(value)(described(v) for v in value)
    if isinstance(value, dict):
        return {k: described(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(described(v) for v in value)
    return value
