"""What the pytest-process measurements (`fixture_overhead.py`, `test_suite_speed.py`)
share: timing one pytest run of a generated module, and reporting the result."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path


def pytest_seconds(folder: Path, module: str, *options: str) -> float:
    """Seconds a pytest process takes to run `module` (in `folder`) with `options`."""
    return pytest_times(folder, module, *options)[0]


def pytest_times(folder: Path, module: str, *options: str) -> tuple[float, float]:
    """(process, session) seconds of a pytest run of `module` (in `folder`) with `options`:
    the whole process, and the session pytest reports (its tests, without the interpreter's
    start-up and imports), in `user_env()`."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options, module]
    start = time.perf_counter()
    done = subprocess.run(
        command, check=True, capture_output=True, cwd=folder, env=user_env(), text=True
    )
    wall = time.perf_counter() - start
    found = re.findall(r" in ([0-9.]+)s", done.stdout)
    return wall, float(found[-1]) if found else wall


def user_env() -> dict[str, str]:
    """This environment as a user's runs see it: with Python's bytecode cache (this machine's
    environment turns it off, which makes every process compile its imports again: 2-3 s,
    the same for both backends)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def half_target(fake: float, real: float) -> str:
    """The fake-against-real line of issue part 12's targets: the fake at most half."""
    verdict = "met" if fake <= real / 2 else "MISSED"
    return f"fake / real: {fake / real:.2f} (target: at most 0.5, {verdict})"


def report(title: str, lines: list[str], out: Path | None) -> None:
    """Print `lines`; with `out`, also write them there under `title` and the machine."""
    print("\n".join(lines))
    if out:
        where = f"{date.today()}, Python {platform.python_version()}, {os.cpu_count()} cores"
        out.write_text(f"# {title} ({where})\n\n" + "\n".join(f"- {line}" for line in lines) + "\n")
