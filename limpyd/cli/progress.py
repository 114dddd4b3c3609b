"""Progress of long commands: bars with count, total, rate and time left (tqdm), on a terminal
only. Piped or redirected output stays quiet; tqdm is the `cli` extra, and without it the
commands print their results only."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Counter", "progress_bars"]

#: `counter(task, done, total)`: `done` of `total` of a task are finished.
Counter = Callable[[str, int, int], None]


@contextmanager
def progress_bars(stream: Any = None) -> Iterator[Counter]:
    """A counter drawing one bar per task on `stream` (stderr) if it is a terminal and tqdm
    is installed; a counter doing nothing otherwise. Bars are closed on exit."""
    stream = stream if stream is not None else sys.stderr
    try:
        tqdm = importlib.import_module("tqdm").tqdm
    except ImportError:
        tqdm = None
    if tqdm is None or not stream.isatty():
        yield lambda task, done, total: None
        return
    bars: dict[str, Any] = {}

    def count(task: str, done: int, total: int) -> None:
        bar = bars.get(task)
        if bar is None:
            bar = bars[task] = tqdm(desc=task, total=total, file=stream, unit="", leave=True)
        bar.total = max(total, done)
        bar.update(done - bar.n)

    try:
        yield count
    finally:
        for bar in bars.values():
            bar.close()
