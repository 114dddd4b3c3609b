"""How long the project's own tests take on the fake backend against a real server (Part 12).

    python bench/project_tests_speed.py [--rounds R] [--workers N] [--out FILE]

Runs `pytest tests --limpyd-backend=fake -n N` and the same with `--limpyd-backend=redis` (a
server the plugin starts), alternating R times, and prints the fastest run of each (the
target: the fake at most half the real server's wall time). A session on the fake backend
alone skips the tests that start redis-server processes of their own (docs/decisions.md,
"Testing toolkit"), so the script also compares the time pytest reports for each test (setup,
call and teardown): on the tests both sessions run, and on those only one of them runs. A
measurement, not a test: the machine's load moves it.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from xml.etree import ElementTree

from pytest_runs import half_target, report, user_env

ROOT = Path(__file__).resolve().parents[1]


def _same_test(test_id: str) -> str:
    """A test's id without its backend, so that its fake and redis runs compare."""
    return re.sub(r"(?<=[\[-])(fake|redis)(?=[-\]])", "*", test_id)


def run(backend: str, workers: int) -> tuple[float, dict[str, float], str]:
    """(wall seconds, seconds of each test run (not skipped), the summary line) of one
    session on `backend`."""
    with tempfile.TemporaryDirectory() as folder:
        junit = Path(folder) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "tests", f"--limpyd-backend={backend}"]
        command += ["-n", str(workers), "-q", "-p", "no:cacheprovider", f"--junit-xml={junit}"]
        start = time.perf_counter()
        done = subprocess.run(
            command, check=False, capture_output=True, cwd=ROOT, env=user_env(), text=True
        )
        wall = time.perf_counter() - start
        summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
        if done.returncode != 0:
            raise SystemExit(f"the {backend} session failed: {summary}")
        per_test: dict[str, float] = {}
        for case in ElementTree.parse(junit).iter("testcase"):
            if case.find("skipped") is None:
                name = f"{case.get('classname')}::{case.get('name')}"
                test = _same_test(name)
                per_test[test] = per_test.get(test, 0.0) + float(case.get("time") or 0)
    return wall, per_test, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="runs of each kind (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="pytest-xdist workers (-n)")
    parser.add_argument("--out", type=Path, help="also write the result to this file")
    args = parser.parse_args()
    runs: dict[str, list[tuple[float, dict[str, float], str]]] = {"fake": [], "redis": []}
    for _ in range(args.rounds):  # alternated, so that a change of load hits both
        for backend in runs:
            runs[backend].append(run(backend, args.workers))
    (fake_wall, fake_tests, fake_summary) = min(runs["fake"], key=lambda r: r[0])
    (real_wall, real_tests, real_summary) = min(runs["redis"], key=lambda r: r[0])
    both = fake_tests.keys() & real_tests.keys()

    def total(tests: dict[str, float], ids: set[str]) -> float:
        return sum(tests[i] for i in ids)

    fake_both, real_both = total(fake_tests, both), total(real_tests, both)
    real_only = real_tests.keys() - both
    fake_only = fake_tests.keys() - both
    lines = [
        f"pytest tests -n {args.workers}, fastest of {args.rounds} alternated runs: "
        f"fake {fake_wall:.1f} s ({fake_summary}), real redis-server {real_wall:.1f} s "
        f"({real_summary})",
        half_target(fake_wall, real_wall),
        f"the {len(both)} tests both sessions run (pytest's time of each, setup to teardown, "
        f"summed over the workers): fake {fake_both:.1f} s, real {real_both:.1f} s, "
        f"fake / real {fake_both / real_both:.2f}",
        f"the {len(real_only)} tests only the real session runs (tests marked for a real "
        f"server, and those starting servers of their own): {total(real_tests, real_only):.1f}"
        f" s; the {len(fake_only)} only the fake one runs: {total(fake_tests, fake_only):.1f} s",
    ]
    report("Project tests speed", lines, args.out)


if __name__ == "__main__":
    main()
