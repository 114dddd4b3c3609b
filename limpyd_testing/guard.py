"""The application's databases (ini key `limpyd_databases`) point nowhere outside tests.

Each is guarded as soon as its module is imported (by a conftest file, a test module's
import, `--collect-only`...), before the importing code goes on, and the ones not imported
yet once the tests are collected; each test re-points them at its own database (see the
plugin's `limpyd_redirect_databases`), and the session gives them their own backends back.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import pytest
import redis

from limpyd.backends.base import Backend
from limpyd.database import RedisDatabase

__all__ = ["APPLICATION_DATABASES", "ApplicationDatabases"]


#: Where the plugin keeps the session's `ApplicationDatabases`, made before the initial
#: conftest files are imported.
APPLICATION_DATABASES = pytest.StashKey["ApplicationDatabases"]()


class _OutsideTests(Backend):
    """Where the `limpyd_databases` point between tests: nowhere, with a message."""

    def client(self) -> redis.Redis:
        raise RuntimeError(
            "limpyd: a database of the ini key limpyd_databases was used outside a test (at "
            "an import, or in a fixture of a module, class or session scope): it points at "
            "the test's database during each test only, which is emptied after it; make such "
            "fixtures function-scoped, as limpyd's are, and leave the database alone when a "
            "module is imported"
        )

    def describe(self) -> str:
        return "no server outside a test (limpyd_databases)"


class ApplicationDatabases:
    """The `module:attribute` entries of `limpyd_databases`, and what guarding them changed."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.entries = tuple(entries)
        #: The guarded databases and their own backends, by id (a database named twice
        #: is guarded once).
        self._own: dict[int, tuple[RedisDatabase, Backend]] = {}
        self._finder: _GuardOnImport | None = None
        self._found: list[RedisDatabase] | None = None

    def watch_imports(self) -> None:
        """Guard the databases of the modules imported already, and of each other one as it
        is imported."""
        modules = {entry.partition(":")[0] for entry in self.entries}
        for name in sorted(modules & set(sys.modules)):
            self._imported(name)
        waiting = modules - set(sys.modules)
        if waiting and self._finder is None:
            self._finder = _GuardOnImport(waiting, self._imported)
            sys.meta_path.insert(0, self._finder)

    def _imported(self, module_name: str) -> None:
        for entry in self.entries:
            if entry.partition(":")[0] == module_name:
                try:
                    database = _resolve(entry)
                except pytest.UsageError:
                    continue  # reported once the tests are collected (`guard`)
                self._guard(database)

    def _guard(self, database: RedisDatabase) -> None:
        """Point `database` nowhere, keeping its backend to give back: the one it has now,
        if it was re-pointed since it was guarded (by a conftest file, say)."""
        if not isinstance(database.backend, _OutsideTests):
            self._own[id(database)] = (database, database.backend)
            database.connect(backend=_OutsideTests())

    def all(self) -> list[RedisDatabase]:
        """The databases of every entry (imported here if need be); a UsageError naming an
        entry that names no RedisDatabase."""
        if self._found is None:
            self._found = [_resolve(entry) for entry in self.entries]
        return self._found

    def guard(self) -> None:
        """Guard every entry's database (the tests are collected: their modules importable)."""
        for database in self.all():
            self._guard(database)

    def restore(self) -> None:
        """Stop watching imports; give each guarded database its own backend back."""
        if self._finder is not None:
            if self._finder in sys.meta_path:
                sys.meta_path.remove(self._finder)
            self._finder = None
        for database, backend in self._own.values():
            database.connect(backend=backend)
        self._own.clear()


def _resolve(entry: str) -> RedisDatabase:
    module_name, _, attribute = entry.partition(":")
    if not module_name or not attribute:
        raise pytest.UsageError(f"limpyd: limpyd_databases entry {entry!r} is not module:attribute")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except Exception as exc:  # an import error, or whatever the module raised
        raise pytest.UsageError(
            f"limpyd: limpyd_databases entry {entry!r}: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(target, RedisDatabase):
        raise pytest.UsageError(
            f"limpyd: limpyd_databases entry {entry!r} is {target!r}, not a RedisDatabase"
        )
    return target


class _GuardOnImport(importlib.abc.MetaPathFinder):
    """Finds the watched modules with the other finders, and runs `imported(name)` once
    each has run (its loader wrapped)."""

    def __init__(self, names: set[str], imported: Callable[[str], None]) -> None:
        self.names = set(names)
        self.imported = imported
        self._local = threading.local()

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in self.names or getattr(self._local, "finding", False):
            return None
        self._local.finding = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._local.finding = False
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec  # a legacy loader (load_module only) is left as it is: guarded later
        self.names.discard(fullname)
        spec.loader = _GuardingLoader(spec.loader, self.imported)
        return spec


class _GuardingLoader(importlib.abc.Loader):
    """A module's loader, that calls `imported(name)` once the module ran."""

    def __init__(self, loader: Any, imported: Callable[[str], None]) -> None:
        self._loader = loader
        self._imported = imported

    def create_module(self, spec: Any) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        module: ModuleType | None = None if create is None else create(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        __tracebackhide__ = True  # an error of the module shows its own frames only
        self._loader.exec_module(module)
        self._imported(module.__name__)

    def __getattr__(self, name: str) -> Any:  # get_source, is_package...: the module's own
        return getattr(self._loader, name)
