"""What the `limpyd_database` fixture costs a test on the fake backend (setup + teardown).

    python bench/fixture_overhead.py [--tests N] [--rounds R] [--out FILE]

Runs N generated tests that use the fixture and N that do not, each in its own pytest
process, alternating R times, and prints the difference of the fastest runs per test (the
target: under 1 ms). A measurement, not a test: the machine's load moves it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from pytest_runs import pytest_seconds, report

TEMPLATE = """
import pytest

@pytest.mark.parametrize("i", range({n}))
def test_one(i{fixture}):
    pass
"""


def run(folder: Path, n: int, with_fixture: bool) -> float:
    """Seconds a pytest run of `n` such tests takes."""
    name = "test_fixture.py" if with_fixture else "test_plain.py"
    fixture = ", limpyd_database" if with_fixture else ""
    (folder / name).write_text(TEMPLATE.format(n=n, fixture=fixture))
    return pytest_seconds(folder, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000, help="tests per run (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each kind (default 5)")
    parser.add_argument("--out", type=Path, help="also write the result to this file")
    args = parser.parse_args()
    plain: list[float] = []
    fixture: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):  # alternated, so that a change of load hits both
            plain.append(run(Path(folder), args.tests, False))
            fixture.append(run(Path(folder), args.tests, True))
    per_test = (min(fixture) - min(plain)) / args.tests * 1000
    lines = [
        f"{args.tests} tests, fastest of {args.rounds} runs: without the fixture "
        f"{min(plain):.2f} s, with it {min(fixture):.2f} s",
        f"limpyd_database (fake) setup + teardown: {per_test:.3f} ms per test "
        f"(target < 1 ms: {'met' if per_test < 1 else 'MISSED'})",
    ]
    report("Fixture overhead", lines, args.out)


if __name__ == "__main__":
    main()
