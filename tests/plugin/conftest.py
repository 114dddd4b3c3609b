"""Fixtures for testing the limpyd pytest plugin with pytester."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from limpyd_testing.plugin import get_options
from limpyd_testing.server import find_redis_server

# The `pytester` fixture comes from `pytest_plugins = ["pytester"]` in tests/conftest.py:
# pytest accepts `pytest_plugins` only in the top-level conftest.

# An in-process pytester run forgets the modules it imported, and the hypothesis plugin
# imports hypothesis at the end of every run: importing it once here saves ~1 s per run.
with contextlib.suppress(ImportError):
    import hypothesis  # noqa: F401

LIMPYD_ENV = (
    "LIMPYD_BACKEND",
    "LIMPYD_REDIS_URL",
    "LIMPYD_REDIS_SERVER",
    "LIMPYD_REQUIRE_REDIS",
    "LIMPYD_FLUSH_EXISTING",
)


@pytest.fixture(autouse=True)
def _clean_limpyd_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner pytest runs see only the limpyd settings a test gives them."""
    for name in LIMPYD_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def redis_server_path(request: pytest.FixtureRequest) -> str:
    """The redis-server the outer session would use: skipped, or failed if required, if none."""
    options = get_options(request.config)
    path = find_redis_server(options.redis_server)
    if path is None:
        message = f"no redis-server executable found ({options.redis_server or 'PATH'})"
        if options.require_redis:
            pytest.fail(message)
        pytest.skip(message)
    return path


#: Draws one character: Hypothesis then builds its table of Unicode categories and stores it
#: in its home directory (HYPOTHESIS_STORAGE_DIRECTORY).
_WARM_UP = """
from hypothesis import HealthCheck, given, settings, strategies as st

@settings(database=None, max_examples=1, suppress_health_check=list(HealthCheck))
@given(st.characters(codec="utf-8"))
def warm_up(character):
    pass

warm_up()
"""


@pytest.fixture(scope="session")
def hypothesis_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hypothesis home directory for inner pytest subprocesses, its Unicode table built.

    An inner session run in pytester's fresh directory has a fresh home: its first text
    draw builds the table (0.5 s on an idle core, several seconds on a busy machine), inside
    the too_slow health check of whichever test draws first. A project keeps its home
    between runs; the inner sessions of this worker share this one, built once here.
    """
    home = tmp_path_factory.mktemp("hypothesis-home")
    env = {**os.environ, "HYPOTHESIS_STORAGE_DIRECTORY": str(home)}
    subprocess.run([sys.executable, "-c", _WARM_UP], env=env, check=True, timeout=300)
    return home
