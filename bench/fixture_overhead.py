"""What the `limpyd_database` fixture costs a test on the fake backend (setup + teardown).

    python bench/fixture_overhead.py [N]

Runs N generated tests that use the fixture and N that do not, in the same pytest process
kind, and prints the difference per test (the target: under 1 ms). A measurement, not a test.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE = """
import pytest

@pytest.mark.parametrize("i", range({n}))
def test_one(i{fixture}):
    pass
"""


def run(n: int, with_fixture: bool) -> float:
    """Seconds a pytest run of `n` such tests takes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "test_overhead.py"
        fixture = ", limpyd_database" if with_fixture else ""
        path.write_text(TEMPLATE.format(n=n, fixture=fixture))
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=folder)
        return time.perf_counter() - start


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    plain = min(run(n, False) for _ in range(3))
    fixture = min(run(n, True) for _ in range(3))
    per_test = (fixture - plain) / n * 1000
    print(f"{n} tests: without the fixture {plain:.2f} s, with it {fixture:.2f} s")
    print(f"limpyd_database (fake) setup + teardown: {per_test:.3f} ms per test (target < 1 ms)")


if __name__ == "__main__":
    main()
