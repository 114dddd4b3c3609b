"""Fixtures for testing the limpyd pytest plugin with pytester."""

from __future__ import annotations

import contextlib

import pytest

# The `pytester` fixture comes from `pytest_plugins = ["pytester"]` in tests/conftest.py:
# pytest accepts `pytest_plugins` only in the top-level conftest.

# An in-process pytester run forgets the modules it imported, and the hypothesis plugin
# imports hypothesis at the end of every run: importing it once here saves ~1 s per run.
with contextlib.suppress(ImportError):
    import hypothesis  # noqa: F401

LIMPYD_ENV = (
    "LIMPYD_BACKEND",
    "LIMPYD_REDIS_URL",
    "LIMPYD_CLUSTER_URL",
    "LIMPYD_REDIS_SERVER",
    "LIMPYD_REQUIRE_REDIS",
    "LIMPYD_FLUSH_EXISTING",
)


@pytest.fixture(autouse=True)
def _clean_limpyd_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner pytest runs see only the limpyd settings a test gives them."""
    for name in LIMPYD_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def bare_path(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """PATH is an empty directory for inner pytest runs: no redis-server is found there, so
    no server is requested nor can be started. Returns the directory, to put programs in."""
    empty = tmp_path_factory.mktemp("bare-path")
    monkeypatch.setenv("PATH", str(empty))
    return empty
