"""`Op`: one modifier call and what the oracle expects of it; what the command models share."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from hypothesis import strategies as st

from limpyd_testing.stateful.values import raw

ANY: Any = type("Any", (), {"__repr__": lambda self: "ANY"})()
SAME: Any = type("Same", (), {"__repr__": lambda self: "SAME"})()


@dataclass
class Op:
    """One modifier call and what the oracle expects of it."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclass_field(default_factory=dict)
    #: The state after: a value, SAME, or a function of the reply (random replies).
    new: Any = SAME
    #: The reply: a value, ANY, or a predicate on it.
    reply: Any = ANY
    #: The exception the write must raise (and then change nothing).
    error: type[Exception] | None = None

    def describe(self) -> str:
        args = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.method}({', '.join(args)})"


MAX_ITEMS = 3

SMALL = st.integers(-3, 3)


def when_empty(names: list[str], state: Any, useful: list[str]) -> list[str]:
    """On an empty field, mostly the modifiers that add (and one that does nothing)."""
    if state:
        return names
    return [name for name in names if name in useful] or names


def choices(held: Iterable[str], texts: st.SearchStrategy[str] | None) -> st.SearchStrategy[str]:
    """One of the values held, or a new text (for removals: hits and misses)."""
    held = sorted(set(held), key=raw)
    options = ([st.sampled_from(held)] if held else []) + ([texts] if texts is not None else [])
    assert options, "no value to draw"
    return st.one_of(options)
