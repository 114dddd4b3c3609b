"""Fixtures of the migration tests: redis-limpyd's own virtualenvs, its writer, the command.

A virtualenv per redis-limpyd version is built once (pip, from the package registry) under
the user's cache folder and kept from session to session; pytest-xdist workers wait for one
another with a file lock. Without the network the tests needing it are skipped, saying why.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from limpyd.backends import FakeBackend, RedisBackend
from limpyd.database import RedisDatabase

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
WRITER = HERE / "old_writer.py"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "limpyd-tests"

#: What each redis-limpyd version runs with: 1.3.x needs redis-py 2.9/2.10; 2.x any
#: redis-py >= 3 (this environment's); both read their version with pkg_resources.
REQUIREMENTS = {
    "1.3.2": ["redis-limpyd==1.3.2", "redis==2.10.6", "future", "setuptools<70"],
    "2.1.2": ["redis-limpyd==2.1.2", f"redis=={redis.__version__}", "future", "setuptools<70"],
}
VERSIONS = list(REQUIREMENTS)
MODELS = ["oldapp.models:Group", "oldapp.models:Person", "oldapp.models:Tag", "oldapp.models:Note"]


#: Why a version's virtualenv could not be built (not tried again in the session).
_FAILED: dict[str, str] = {}


def old_python(version: str) -> Path:
    """The Python of redis-limpyd `version`'s virtualenv, built if needed (skip without it)."""
    if version in _FAILED:
        pytest.skip(_FAILED[version])
    venv = CACHE / f"redis-limpyd-{version}"
    python = venv / "bin" / "python"
    marker = venv / "limpyd-requirements.txt"
    wanted = "\n".join(REQUIREMENTS[version]) + "\n"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"redis-limpyd-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and marker.exists() and marker.read_text() == wanted:
            return python
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        installed = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "--retries", "1", "--timeout", "30", *REQUIREMENTS[version]],
            capture_output=True,
            text=True,
        )  # fmt: skip
        if installed.returncode:
            last = (installed.stderr.strip().splitlines() or ["?"])[-1]
            _FAILED[version] = (
                f"redis-limpyd {version} cannot be installed (no package registry?): {last}"
            )
            pytest.skip(_FAILED[version])
        marker.write_text(wanted)
    return python


@pytest.fixture(scope="session", params=VERSIONS)
def redis_limpyd(request: pytest.FixtureRequest) -> tuple[str, Path]:
    """(version, its Python) of each redis-limpyd version."""
    return request.param, old_python(request.param)


def url_of(database: RedisDatabase) -> str:
    """The URL of a test database, as the command takes it."""
    backend = database.backend
    if isinstance(backend, FakeBackend):
        return f"fakeredis://{backend.name}/{backend.db}"
    assert isinstance(backend, RedisBackend) and backend.url is not None
    return backend.url


def write_old(python: Path, database: RedisDatabase, *args: str) -> dict[str, Any]:
    """Run the writer with the real redis-limpyd on `database`; its summary."""
    done = subprocess.run(
        [str(python), str(WRITER), url_of(database), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(HERE)},  # oldapp; redis-limpyd's `limpyd`
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def run_command(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m limpyd migrate-from-redis-limpyd ARGS`, as a user runs it (this worktree's
    limpyd, the test application on the path)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    return subprocess.run(
        [sys.executable, "-m", "limpyd", "migrate-from-redis-limpyd", *args],
        capture_output=True,
        text=True,
        cwd=HERE,
        env=env,
        timeout=300,
    )


@pytest.fixture
def app(db: RedisDatabase) -> Any:
    """The test application's models (`oldapp.models`), on the test's database."""
    from migration.oldapp import models

    models.database.connect(backend=db.backend)
    return models
