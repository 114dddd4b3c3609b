"""Packaging: production installs hold redis-py only, the version is written once, and without
the `fake` extra the library and the plugin say in one line what to install."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import limpyd

ROOT = Path(__file__).parents[1]


def _requirements(extra: str | None) -> set[str]:
    """The names limpyd's installed metadata requires, for no extra or for `extra`."""
    names = set()
    for line in importlib.metadata.requires("limpyd") or []:
        requirement, _, marker = line.partition(";")
        wanted = f'extra == "{extra}"' in marker if extra else "extra" not in marker
        if wanted:
            names.add(re.match(r"[\w.-]+", requirement.strip()).group(0))  # type: ignore[union-attr]
    return names


def test_production_requires_redis_only_and_extras_add_the_rest():
    assert _requirements(None) == {"redis"}
    assert _requirements("fake") == {"fakeredis"}
    assert _requirements("testing") == {"limpyd", "pytest", "hypothesis"}
    assert {"limpyd", "ruff", "mypy", "pytest-xdist"} <= _requirements("dev")
    assert _requirements("cli") == {"tqdm"}


def test_version_is_written_once():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^dynamic = \["version"\]$', pyproject, re.M)
    assert not re.search(r'^version = "', pyproject, re.M)
    assert 'version = { attr = "limpyd.__version__" }' in pyproject
    assert importlib.metadata.version("limpyd") == limpyd.__version__ == limpyd.VERSION
    assert f"## {limpyd.__version__}" in (ROOT / "CHANGELOG.md").read_text()


def test_license_file_matches_the_declared_license():
    assert 'license = { file = "LICENSE" }' in (ROOT / "pyproject.toml").read_text()
    assert (ROOT / "LICENSE").read_text().startswith("BSD 3-Clause License")
    classifiers = importlib.metadata.metadata("limpyd").get_all("Classifier") or []
    assert "License :: OSI Approved :: BSD License" in classifiers
    assert "Framework :: Pytest" in classifiers
    assert "Typing :: Typed" in classifiers
    assert (Path(limpyd.__file__).parent / "py.typed").exists()


@pytest.fixture
def without_fakeredis(tmp_path, monkeypatch):
    """Python processes started by the test cannot import fakeredis nor lupa, as after
    `pip install limpyd` without the `fake` extra."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\nsys.modules['fakeredis'] = None\nsys.modules['lupa'] = None\n"
    )
    path = os.pathsep.join(filter(None, [str(blocker), str(ROOT), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)


def test_the_library_without_the_fake_extra(without_fakeredis):
    script = textwrap.dedent(
        """
        from limpyd import model
        from limpyd.database import RedisDatabase

        class Person(model.RedisModel):
            database = RedisDatabase.from_url("redis://127.0.0.1:1/0")
            name = model.InstanceHashField(indexable=True)

        try:
            RedisDatabase.from_url("fakeredis://x")
        except ImportError as exc:
            print("refused:", exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        "refused: the fake backend needs fakeredis with Lua: pip install 'limpyd[fake]'"
    )


def test_the_plugin_without_the_fake_extra(pytester, without_fakeredis):
    pytester.makepyfile(
        """
        def test_plain():
            pass

        def test_on_the_fake(limpyd_database):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["limpyd: the fake backend needs fakeredis with Lua: pip install 'limpyd[[]fake[]]'*"]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*During handling*")


def test_the_fake_backend_defers_numpy(tmp_path, monkeypatch):
    """fakeredis imports numpy for its vector sets: the fake backend has it imported at its
    first use, and the process's own `import numpy` gets numpy itself."""
    stub = tmp_path / "stub" / "numpy"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("import sys\nsys.stderr.write('numpy imported\\n')\nX = 1\n")
    folders = [str(stub.parent), str(ROOT), os.environ.get("PYTHONPATH")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, folders)))
    script = textwrap.dedent(
        """
        import sys, types
        from limpyd.database import RedisDatabase

        database = RedisDatabase.from_url("fakeredis://numpy-test")
        database.client.set("a", "1")
        assert database.client.get("a") == "1"
        print("used", "numpy" in sys.modules)
        import numpy
        print("imported", type(numpy) is types.ModuleType, numpy.X)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["used", "False", "imported", "True", "1"]
    assert done.stderr.count("numpy imported") == 1


def test_threads_meeting_the_deferred_import_get_numpy_and_a_whole_fakeredis(tmp_path, monkeypatch):
    """While fakeredis is imported (slowed down here), another thread importing numpy gets
    numpy itself, and another one asking for a fake server waits for the whole fakeredis."""
    stubs = tmp_path / "stubs"
    (stubs / "numpy").mkdir(parents=True)
    (stubs / "numpy" / "__init__.py").write_text("X = 1\n")
    (stubs / "probables.py").write_text("import time\ntime.sleep(1)\nraise ImportError\n")
    folders = [str(stubs), str(ROOT), os.environ.get("PYTHONPATH")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, folders)))
    script = textwrap.dedent(
        """
        import sys, threading, time, types
        from limpyd.backends import FakeBackend

        out = {}

        def server(name, delay):
            time.sleep(delay)
            try:
                out[name] = type(FakeBackend(name=name).server).__name__
            except Exception as error:
                out[name] = repr(error)

        def numpy_import():
            time.sleep(0.3)
            import numpy
            out["numpy"] = (type(numpy) is types.ModuleType, sys.modules["numpy"] is numpy)

        threads = [
            threading.Thread(target=server, args=("a", 0)),
            threading.Thread(target=server, args=("b", 0.3)),
            threading.Thread(target=numpy_import),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(sorted(out.items()))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "[('a', 'FakeServer'), ('b', 'FakeServer'), ('numpy', (True, True))]"
    )


def test_fakeredis_vector_sets_work_with_numpy_deferred(tmp_path):
    pytest.importorskip("numpy")
    pytest.importorskip("jsonpath_ng")
    script = textwrap.dedent(
        """
        import sys
        from limpyd.database import RedisDatabase

        client = RedisDatabase.from_url("fakeredis://vectors").client
        assert "numpy" not in sys.modules
        assert client.execute_command("VADD", "v", "VALUES", 2, 1.0, 2.0, "a") == 1
        print(client.execute_command("VSIM", "v", "VALUES", 2, 1.0, 2.0), "numpy" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["['a']", "True"]
