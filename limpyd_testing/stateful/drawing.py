"""Strategies reading the running machine: texts that reuse the values it holds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

if TYPE_CHECKING:
    from limpyd_testing.stateful.core import MachineCore


#: The machines whose example is running (the last one is current): the strategies below are
#: built once per machine class and read the current machine's oracle when drawn.
running: list[MachineCore] = []


def current() -> MachineCore:
    return running[-1]


def mixed(
    base: st.SearchStrategy[str],
    held: Callable[[MachineCore], Sequence[str]],
    reuse: int = 1,
    fresh: int = 3,
    distinct: bool = False,
) -> st.SearchStrategy[str]:
    """New texts from `base` or, `reuse` times in `reuse + fresh`, one of the texts the
    running machine holds (`held(machine)`): equal values make queries match and unique
    values clash. `distinct`: a new text is made different from the held ones (Hypothesis
    draws the simplest texts often, so new pks would clash most of the time)."""

    @st.composite
    def strategy(draw: Callable[..., Any]) -> str:
        choices = held(current())
        # (the simplest draw, 0, which Hypothesis makes often, is a new text)
        if choices and draw(st.integers(0, reuse + fresh - 1)) >= fresh:
            held_text: str = choices[draw(st.integers(0, len(choices) - 1))]
            return held_text
        value: str = draw(base)
        while distinct and value in choices:
            value += "~"
        return value

    return strategy()
