"""Stress-suite helpers: its size setting and the figures it prints at the end of the run."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

_FIGURES = pytest.StashKey[list[str]]()

#: Operations per worker: bounded by default (CI), larger with LIMPYD_STRESS_OPS=2000.
DEFAULT_OPS = 150
WORKERS = 8


def stress_ops() -> int:
    return int(os.environ.get("LIMPYD_STRESS_OPS", "") or DEFAULT_OPS)


@pytest.fixture
def stress_report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """`stress_report(line)`: print `line` now (captured) and in the terminal summary."""
    lines = request.config.stash.setdefault(_FIGURES, [])

    def report(line: str) -> None:
        lines.append(line)
        print(line)

    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = terminalreporter.config.stash.get(_FIGURES, [])
    if lines:
        terminalreporter.section("limpyd stress figures")
        for line in lines:
            terminalreporter.write_line(line)
