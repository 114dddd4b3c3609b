"""Shared fixtures: every test here runs on both backends through the limpyd plugin."""

from __future__ import annotations

import pytest

from limpyd.database import RedisDatabase
from limpyd_testing.integrity import assert_consistent
from limpyd_testing.snapshot import snapshot

# tests/plugin drives pytest sessions of its own
pytest_plugins = ["pytester"]


@pytest.fixture
def db(limpyd_database: RedisDatabase) -> RedisDatabase:
    """The test's empty database."""
    return limpyd_database


@pytest.fixture
def unchanged(db: RedisDatabase):
    """`with unchanged(): ...` fails if the block changed any key."""
    from contextlib import contextmanager

    @contextmanager
    def check():
        before = snapshot(db)
        yield
        assert snapshot(db) == before

    return check


@pytest.fixture
def consistent():
    """`consistent(Model, ...)` asserts the models' indexes equal their data."""
    return assert_consistent
