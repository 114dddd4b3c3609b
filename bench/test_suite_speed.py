"""How fast a user's test suite runs on the fake backend against a real server (Part 12).

    python bench/test_suite_speed.py [--tests N] [--rounds R] [--out FILE]

Writes a test module of N small tests shaped like a user's (each creates, filters, updates
and deletes instances of a model with 5 indexed fields, through the plugin's
`limpyd_database` fixture), then runs it with `--limpyd-backend=fake` and with
`--limpyd-backend=redis` (a server the plugin starts), in pytest processes of their own,
alternating R times, and prints the fastest run of each (the target: the fake at least 2x
faster), whole processes, pytest's session, and the tests' own work (the sum of their call
phases, without pytest's work around them). It also runs the same module with empty test
bodies (the fixtures, pytest and the interpreter alone, on each backend): the time left to
the fake's operations by the target, against the time they take. A measurement, not a
test: the machine's load moves it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from pytest_runs import half_target, pytest_times, report

MODULE = "test_suite_speed_module.py"
#: The same tests with empty bodies: what is not the operations' work.
FLOOR = "test_suite_speed_floor.py"

#: A plugin (loaded with -p) writing the sum of the tests' call phases to CALLS.
PLUGIN = "suite_speed_calls"
CALLS = "calls.txt"
PLUGIN_TEXT = f"""
total = 0.0


def pytest_runtest_logreport(report):
    global total
    if report.when == "call":
        total += report.duration


def pytest_sessionfinish(session):
    with open({CALLS!r}, "w") as out:
        out.write(repr(total))
"""

TEMPLATE = """
import pytest

from limpyd import fields, model


@pytest.fixture
def Person(limpyd_database):
    class Person(model.RedisModel):
        database = limpyd_database
        name = fields.InstanceHashField(indexable=True, unique=True)
        city = fields.InstanceHashField(indexable=True)
        country = fields.InstanceHashField(indexable=True)
        status = fields.StringField(indexable=True)
        tags = fields.SetField(indexable=True)

    return Person


@pytest.mark.parametrize("i", range({n}))
def test_a_small_story(Person, i):
    people = [
        Person(name=f"p{{i}}-{{k}}", city=f"c{{k % 3}}", country="fr", status="new", tags=["a"])
        for k in range(5)
    ]
    assert len(Person.collection(city="c0")) == 2
    people[0].city.hset("c1")
    people[1].tags.sadd("b")
    assert sorted(Person.collection(city="c1", country="fr")) == sorted(
        [people[0].pk.get(), people[1].pk.get(), people[4].pk.get()]
    )
    assert Person.get(name=f"p{{i}}-2").status.get() == "new"
    people[2].delete()
    assert len(Person.collection(tags="a")) == 4
"""

#: A test that only gets its fixtures (replacing `test_a_small_story` in FLOOR).
EMPTY_TEST = """
@pytest.mark.parametrize("i", range({n}))
def test_a_small_story(Person, i):
    assert Person.database is not None
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=200, help="tests per run (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each kind (default 3)")
    parser.add_argument("--out", type=Path, help="also write the result to this file")
    args = parser.parse_args()
    runs = [(module, backend) for module in (MODULE, FLOOR) for backend in ("fake", "redis")]
    times: dict[tuple[str, str], list[tuple[float, float]]] = {run: [] for run in runs}
    calls: dict[tuple[str, str], list[float]] = {run: [] for run in runs}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        story = TEMPLATE.format(n=args.tests)
        (folder / MODULE).write_text(story)
        empty = story[: story.index("\n@pytest.mark.parametrize")] + EMPTY_TEST.format(n=args.tests)
        (folder / FLOOR).write_text(empty)
        (folder / f"{PLUGIN}.py").write_text(PLUGIN_TEXT)
        for _ in range(args.rounds):  # alternated, so that a change of load hits all
            for module, backend in runs:
                options = ("-p", PLUGIN, f"--limpyd-backend={backend}")
                times[module, backend].append(pytest_times(folder, module, *options))
                calls[module, backend].append(float((folder / CALLS).read_text()))
    fake, real = min(times[MODULE, "fake"]), min(times[MODULE, "redis"])
    fake_tests = min(t for _, t in times[MODULE, "fake"])
    real_tests = min(t for _, t in times[MODULE, "redis"])
    fake_calls, real_calls = min(calls[MODULE, "fake"]), min(calls[MODULE, "redis"])
    fake_floor, real_floor = min(times[FLOOR, "fake"])[0], min(times[FLOOR, "redis"])[0]
    per_test = 1000 / args.tests
    lines = [
        f"{args.tests} tests (create 5, filter, update, sadd, get, delete; 5 indexed fields), "
        f"fastest of {args.rounds} runs: fake {fake[0]:.2f} s, real redis-server {real[0]:.2f} s "
        "(whole pytest processes)",
        half_target(fake[0], real[0]),
        f"the tests alone (pytest's session time, without the interpreter's start-up): "
        f"fake {fake_tests:.2f} s, real {real_tests:.2f} s, fake / real "
        f"{fake_tests / real_tests:.2f}",
        f"the tests' own work (their call phases, without pytest's work around them): "
        f"fake {fake_calls:.2f} s, real {real_calls:.2f} s, fake / real "
        f"{fake_calls / real_calls:.2f}",
        f"the same tests with empty bodies (interpreter, pytest, plugins, fixtures): fake "
        f"{fake_floor:.2f} s ({fake_floor / real[0]:.2f} of the real run), real "
        f"{real_floor:.2f} s; the target leaves the fake's operations "
        f"{(real[0] / 2 - fake_floor) * per_test:.2f} ms per test, they take "
        f"{(fake[0] - fake_floor) * per_test:.2f} ms (on the real server "
        f"{(real[0] - real_floor) * per_test:.2f} ms)",
    ]
    report("Test suite speed", lines, args.out)


if __name__ == "__main__":
    main()
