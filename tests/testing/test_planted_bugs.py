"""`properties/planted_bugs.py`: how a mutation is planted, and how a moved text is reported."""

from __future__ import annotations

import argparse

import pytest

from properties import planted_bugs
from properties.planted_bugs import MUTATIONS, Mutation

pytestmark = pytest.mark.slow


def write(root, text):
    (root / "pkg").mkdir(exist_ok=True)
    (root / "pkg" / "mod.py").write_text(text)


def test_plant_replaces_the_only_occurrence(tmp_path):
    write(tmp_path, "x = 1\nif a < b:\n    pass\n")
    Mutation("m", "pkg/mod.py", "a < b", "a <= b", "").plant(tmp_path)
    assert (tmp_path / "pkg" / "mod.py").read_text() == "x = 1\nif a <= b:\n    pass\n"


@pytest.mark.parametrize(("text", "count"), [("nothing here", 0), ("a < b; a < b", 2)])
def test_plant_refuses_a_text_not_found_exactly_once(tmp_path, text, count):
    write(tmp_path, text)
    with pytest.raises(ValueError, match=rf"m: pkg/mod.py holds the old text {count} times"):
        Mutation("m", "pkg/mod.py", "a < b", "a <= b", "").plant(tmp_path)
    assert (tmp_path / "pkg" / "mod.py").read_text() == text


def test_applicability_names_moved_and_ambiguous_texts(tmp_path, monkeypatch):
    write(tmp_path, "one\ntwo\ntwo\n")
    monkeypatch.setattr(planted_bugs, "ROOT", tmp_path)
    mutations = [
        Mutation("applies", "pkg/mod.py", "one", "1", ""),
        Mutation("moved", "pkg/mod.py", "three", "3", ""),
        Mutation("no-file", "pkg/gone.py", "one", "1", ""),
        Mutation("twice", "pkg/mod.py", "two", "2", ""),
    ]
    assert planted_bugs.applicability(mutations) == {
        "applies": "",
        "moved": "not applicable",
        "no-file": "not applicable",
        "twice": "ambiguous (2x)",
    }


def test_mutations_are_named_once_and_change_their_text():
    assert len({m.name for m in MUTATIONS}) == len(MUTATIONS) >= 20
    assert all(m.old != m.new and m.description for m in MUTATIONS)


def test_properties_run_without_the_broken_builds_and_without_shrinking():
    options = argparse.Namespace(backend="fake", shrink=False)
    command = planted_bugs.suite_command("properties", options, 7)
    assert "--hypothesis-seed=7" in command
    assert command[command.index("-m") + 1 :][:2] == ["pytest", "properties"]
    assert "--ignore=properties/test_broken_builds.py" in command
    assert "--hypothesis-profile=ci" in command and "--limpyd-backend=fake" in command
    plugin = command.index(planted_bugs.NO_SHRINK_PLUGIN)
    assert command[plugin - 1] == "-p"
    options.shrink = True
    command = planted_bugs.suite_command("tests", options, None)
    assert planted_bugs.NO_SHRINK_PLUGIN not in command
    assert not [part for part in command if part.startswith("--hypothesis-seed")]


def test_a_suite_runs_once_per_seed_until_one_run_catches_the_bug(monkeypatch, tmp_path):
    results = {3: planted_bugs.SURVIVED, 4: planted_bugs.CAUGHT, 5: planted_bugs.SURVIVED}
    ran = []

    def once(copy, suite, options, seed):
        ran.append(seed)
        return planted_bugs.Outcome(results[seed], 2.0, f"seed {seed}")

    monkeypatch.setattr(planted_bugs, "run_suite_once", once)
    options = argparse.Namespace(seed=3, runs=3)
    outcome = planted_bugs.run_suite(tmp_path, "properties", options)
    assert (ran, outcome.status, outcome.seconds) == ([3, 4], planted_bugs.CAUGHT, 4.0)
    assert outcome.detail == "[run 2 of 3] seed 4"
    ran.clear()
    options.runs = 1
    assert planted_bugs.run_suite(tmp_path, "properties", options).status == "survived"
    assert ran == [3]
    assert planted_bugs.seeds(argparse.Namespace(seed=None, runs=2)) == [None, None]
