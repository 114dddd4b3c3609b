"""`properties/planted_bugs.py`: how a mutation is planted, and how a moved text is reported."""

from __future__ import annotations

import argparse

import pytest

from properties import planted_bugs
from properties.planted_bugs import MUTATIONS, Mutation


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
    options = argparse.Namespace(backend="fake", shrink=False, seed=None)
    command = planted_bugs.suite_command("properties", options)
    assert command[command.index("-m") + 1 :][:2] == ["pytest", "properties"]
    assert "--ignore=properties/test_broken_builds.py" in command
    assert "--hypothesis-profile=ci" in command and "--limpyd-backend=fake" in command
    plugin = command.index(planted_bugs.NO_SHRINK_PLUGIN)
    assert command[plugin - 1] == "-p"
    options.shrink = True
    assert planted_bugs.NO_SHRINK_PLUGIN not in planted_bugs.suite_command("tests", options)
