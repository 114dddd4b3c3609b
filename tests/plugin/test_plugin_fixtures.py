"""The fixtures: fresh databases, the factory, the raw client, the server, redirection."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from limpyd.backends import FakeBackend
from limpyd.backends.fake import _fake_servers
from limpyd.database import RedisDatabase


def test_database_is_a_redis_database_on_the_test_backend(limpyd_backend, limpyd_database):
    assert isinstance(limpyd_database, RedisDatabase)
    assert limpyd_database.backend.kind == limpyd_backend
    assert limpyd_database.connection.dbsize() == 0


def test_limpyd_redis_is_the_database_client(limpyd_database, limpyd_redis):
    assert limpyd_redis is limpyd_database.client
    assert limpyd_redis.set("key", "value")
    assert list(limpyd_database.scan_keys()) == ["key"]


def test_factory_databases_share_one_server(limpyd_database, limpyd_database_factory):
    other = limpyd_database_factory()
    assert other is not limpyd_database
    assert other.connection is not limpyd_database.connection
    limpyd_database.connection.set("shared", "yes")
    assert other.connection.get("shared") == "yes"


@pytest.mark.limpyd_backends("fake", "redis")  # several dbs: a cluster has only db 0
def test_factory_db_numbers_are_separate(limpyd_database, limpyd_database_factory):
    db1 = limpyd_database_factory(db=1)
    other_db1 = limpyd_database_factory(db=1)
    limpyd_database.connection.set("k", "db0")
    assert db1.connection.get("k") is None
    db1.connection.set("k", "db1")
    assert other_db1.connection.get("k") == "db1"
    assert limpyd_database.connection.get("k") == "db0"


def test_factory_takes_a_database_class(limpyd_database_factory):
    class MyDatabase(RedisDatabase):
        def __init__(self, label: str, **kwargs):
            self.label = label
            super().__init__(**kwargs)

    database = limpyd_database_factory(MyDatabase, label="mine")
    assert isinstance(database, MyDatabase)
    assert database.label == "mine"
    assert database.connection.ping()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("limpyd_database_factory(cls=dict)", "cls=<class 'dict'>): a RedisDatabase class is"),
        ("limpyd_database_factory(cls=RedisDatabase())", "a RedisDatabase class is expected"),
        ("limpyd_database_factory(db=999)", "db=999): fakeredis db 999 is out of range"),
        (  # was a TypeError: got multiple values for keyword argument 'backend'
            "limpyd_database_factory(backend=None)",
            "backend=...): the database is on the test's backend",
        ),
    ],
)
def test_factory_misuse_fails_the_test_by_name(pytester, call, message):
    """A class that is no database class (a dict came back), a db beyond the fake server's
    16 (a ValueError's traceback from the backend): the test fails with one line."""
    pytester.makepyfile(
        f"""
        from limpyd.database import RedisDatabase

        def test_misuse(limpyd_database_factory):
            {call}
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*limpyd: limpyd_database_factory(*{message}*"])
    assert "Traceback" not in result.stdout.str()


def test_the_fake_server_is_emptied_after_each_test(pytester):
    pytester.makepyfile(
        """
        from limpyd.backends.fake import _fake_servers

        names = []

        def test_first(limpyd_database, limpyd_database_factory):
            limpyd_database.connection.set("a", "1")
            limpyd_database_factory(db=2).connection.set("b", "1")
            names.append(limpyd_database.backend.name)
            assert names[0] in _fake_servers

        def test_second(limpyd_database, limpyd_database_factory):
            assert limpyd_database.backend.name == names[0]  # the same server, emptied
            assert limpyd_database.connection.dbsize() == 0
            assert limpyd_database_factory(db=2).connection.dbsize() == 0
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


@pytest.mark.parametrize("backend", ["fake", "redis"])
def test_a_database_is_empty_even_after_a_test_without_the_fixture(pytester, request, backend):
    """A test without the fixture wrote through a model left on a closed test database: on
    the fake backend (emptied only after a test using the fixture) the next test's "empty"
    database held its data, where a real server's db is emptied at its first use too."""
    pytester.makepyfile(
        """
        from limpyd import model

        class Bike(model.RedisModel):
            database = None
            name = model.InstanceHashField(indexable=True)

        def test_a(limpyd_database):
            Bike.use_database(limpyd_database)
            Bike(name="a")

        def test_b():
            Bike(name="leaked")

        def test_c(limpyd_database):
            assert limpyd_database.client.dbsize() == 0
        """
    )
    options = ["-p", "no:cacheprovider", f"--limpyd-backend={backend}"]
    if backend == "redis":
        options.append(f"--limpyd-redis-server={request.getfixturevalue('redis_server_path')}")
    pytester.runpytest(*options).assert_outcomes(passed=3)


def test_fake_servers_do_not_pile_up(limpyd_database_factory):
    # The tests of a process share one in-memory server (emptied after each): no other is
    # left behind, whatever the number of tests.
    limpyd_database_factory().connection.set("x", "1")
    names = [name for name in _fake_servers if name.startswith("limpyd-test-")]
    if limpyd_database_factory.kind == "fake":
        assert limpyd_database_factory.fake_name == f"limpyd-test-{os.getpid()}"
        assert names == [limpyd_database_factory.fake_name]
    else:
        assert len(names) <= 1  # the fake tests' server of this process, if any ran here


def test_an_emptied_fake_server_keeps_its_functions_and_a_disconnected_one_goes():
    name = "limpyd-empty-server-test"
    client = FakeBackend(name=name).client()
    other_db = FakeBackend(name=name, db=3).client()
    client.set("a", "1")
    other_db.set("b", "2")
    client.function_load("#!lua name=kept\nredis.register_function('f', function() return 1 end)")
    FakeBackend.empty_server(name)
    assert client.dbsize() == other_db.dbsize() == 0
    assert client.fcall("f", 0) == 1  # FLUSHALL leaves function libraries, as on Redis
    assert name in _fake_servers
    FakeBackend(name=name).server.connected = False
    FakeBackend.empty_server(name)
    assert name not in _fake_servers
    FakeBackend.empty_server(name)  # no such server: nothing to do


EMPTY_EACH_TEST = """
    import pytest

    @pytest.mark.parametrize("n", range(3))
    def test_starts_empty_and_writes(limpyd_database, limpyd_database_factory, n):
        assert limpyd_database.connection.dbsize() == 0
        other_db = limpyd_database_factory(db=2)
        assert other_db.connection.dbsize() == 0
        limpyd_database.connection.set(f"key{n}", "x")
        other_db.connection.set(f"key{n}", "x")
"""


def test_each_test_starts_empty_on_both_backends(pytester, redis_server_path):
    pytester.makepyfile(EMPTY_EACH_TEST)
    result = pytester.runpytest(
        "-v", "--limpyd-backend=both", f"--limpyd-redis-server={redis_server_path}"
    )
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*test_starts_empty_and_writes[[]redis-2[]] PASSED*"])


def test_limpyd_server(limpyd_server):
    assert limpyd_server.url.startswith("redis://")
    assert limpyd_server.version.split(".")[0].isdigit()
    if limpyd_server.pid is not None:  # a server started by the plugin
        assert limpyd_server.host == "127.0.0.1"
        assert limpyd_server.url == f"redis://127.0.0.1:{limpyd_server.port}/0"


@pytest.mark.limpyd_backends("redis")
def test_redis_database_is_on_the_session_server(limpyd_database, limpyd_server):
    assert limpyd_database.backend.describe() == limpyd_server.url
    info = limpyd_database.connection.info("server")
    assert info["redis_version"] == limpyd_server.version


def test_limpyd_server_without_the_real_backend_skips(pytester):
    pytester.makepyfile("def test_s(limpyd_server): pass")
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*the real Redis backend is not selected*"])


APP_MODULE = """
    from limpyd.backends import FakeBackend
    from limpyd.database import RedisDatabase

    database = RedisDatabase(backend=FakeBackend(name="app-own-server"))

    class Holder:
        other = RedisDatabase(backend=FakeBackend(name="app-other-server"))
"""

APP_TESTS = """
    import app

    def test_writes(limpyd_backend, limpyd_database):
        assert app.database.backend.kind == limpyd_backend
        assert app.database.connection.dbsize() == 0
        app.database.connection.set("from-app", "1")
        app.Holder.other.connection.set("from-other", "1")
        assert limpyd_database.connection.get("from-app") == "1"
        assert limpyd_database.connection.get("from-other") == "1"

    def test_fresh_again(limpyd_backend):
        # No limpyd fixture asked for: the redirection is automatic, and the db fresh.
        assert app.database.backend.kind == limpyd_backend
        assert app.database.connection.dbsize() == 0

    def test_explicit(limpyd_redirect_databases):
        assert limpyd_redirect_databases == [app.database, app.Holder.other]

    def test_counted(limpyd_commands, limpyd_database):
        # the application's databases have clients of their own: counted too
        with limpyd_commands() as counted:
            app.database.connection.set("a", "1")
            app.Holder.other.connection.get("a")
            limpyd_database.connection.get("a")
        assert (counted.round_trips, counted.names) == (3, ["SET", "GET", "GET"])
        with limpyd_commands(app.Holder.other) as alone:
            app.database.connection.get("a")
            app.Holder.other.connection.get("a")
        assert alone.names == ["GET"]
"""

APP_CONFTEST = """
    import pytest

    @pytest.hookimpl(trylast=True)  # once the plugin put their own backends back
    def pytest_unconfigure(config):
        import app

        with open("after.txt", "w") as out:
            out.write(app.database.backend.describe() + " " + app.Holder.other.backend.describe())
"""


def test_limpyd_databases_are_redirected_and_put_back(pytester, redis_server_path):
    pytester.makepyfile(app=APP_MODULE, test_app=APP_TESTS)
    pytester.makeconftest(APP_CONFTEST)
    pytester.makeini("[pytest]\nlimpyd_databases =\n    app:database\n    app:Holder.other\n")
    pytester.syspathinsert()
    result = pytester.runpytest(
        "-v", "--limpyd-backend=both", f"--limpyd-redis-server={redis_server_path}"
    )
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["*::test_fresh_again[[]redis[]] PASSED*"])
    after = (pytester.path / "after.txt").read_text()
    assert after == "fakeredis://app-own-server/0 fakeredis://app-other-server/0"
    # The application's own servers were never written to.
    for name in ("app-own-server", "app-other-server"):
        assert FakeBackend(name=name).client().dbsize() == 0
        FakeBackend.drop_server(name)


def test_limpyd_databases_entry_must_be_a_database(pytester):
    pytester.makepyfile(app="database = 'not a database'", test_app="def test_x(): pass")
    pytester.makeini("[pytest]\nlimpyd_databases = app:database\n")
    pytester.syspathinsert()
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # before any test
    result.stderr.fnmatch_lines(["*limpyd_databases entry 'app:database' is 'not a database'*"])


def test_limpyd_databases_refuse_any_use_outside_a_test(pytester):
    """Between tests (a module-scoped fixture, an import) the application's databases point
    nowhere: they reached the application's configured server."""
    pytester.makepyfile(
        app=APP_MODULE,
        test_app="""
        import pytest
        import app

        @pytest.fixture(scope="module")
        def seeded():
            app.database.connection.set("seed", "1")

        def test_seeded(seeded):
            'Never runs: its module-scoped fixture errors.'

        def test_inside():
            app.database.connection.set("inside", "1")
        """,
    )
    pytester.makeconftest(APP_CONFTEST)
    pytester.makeini("[pytest]\nlimpyd_databases =\n    app:database\n    app:Holder.other\n")
    pytester.syspathinsert()
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*used outside a test (at an import, or in a fixture of a module*"]
    )
    after = (pytester.path / "after.txt").read_text()
    assert after == "fakeredis://app-own-server/0 fakeredis://app-other-server/0"
    assert FakeBackend(name="app-own-server").client().dbsize() == 0
    FakeBackend.drop_server("app-own-server")
    FakeBackend.drop_server("app-other-server")


@pytest.mark.parametrize("where", ["test module", "conftest", "collect-only"])
def test_limpyd_databases_refuse_a_use_when_their_module_is_imported(pytester, where):
    """They were guarded once the tests were collected: a write at the import of a test
    module or of a conftest file (or any under --collect-only) reached the application's
    configured server."""
    writes = "import app\napp.database.connection.set('at-import', '1')\n"
    pytester.makepyfile(app=APP_MODULE)
    if where == "conftest":
        pytester.makeconftest(writes)
        pytester.makepyfile(test_app="def test_x():\n    pass\n")
    else:
        pytester.makepyfile(test_app=writes + "\ndef test_x():\n    pass\n")
    pytester.makeini("[pytest]\nlimpyd_databases =\n    app:database\n    app:Holder.other\n")
    pytester.syspathinsert()
    result = pytester.runpytest_subprocess(*(["--collect-only"] if where == "collect-only" else []))
    assert result.ret != pytest.ExitCode.OK
    assert "used outside a test (at an import" in result.stdout.str() + result.stderr.str()
    assert FakeBackend(name="app-own-server").client().dbsize() == 0
    FakeBackend.drop_server("app-own-server")
    FakeBackend.drop_server("app-other-server")


def test_a_database_a_conftest_re_points_after_its_import_is_guarded(pytester):
    """Guarded at its import, then re-pointed by a conftest file: it was left pointing there
    for the session (a module-scoped fixture wrote to it), and got back the backend it had
    at its import, not the conftest's."""
    pytester.makepyfile(app=APP_MODULE)
    pytester.makeconftest(
        """
        import pytest
        import app
        from limpyd.backends import FakeBackend

        app.database.connect(backend=FakeBackend(name="app-conftest-server"))

        @pytest.hookimpl(trylast=True)
        def pytest_unconfigure(config):
            with open("after.txt", "w") as out:
                out.write(app.database.backend.describe())

        @pytest.fixture(scope="module")
        def seeded():
            app.database.connection.set("seed", "1")
        """
    )
    pytester.makepyfile(test_app="def test_seeded(seeded):\n    pass\n")
    pytester.makeini("[pytest]\nlimpyd_databases = app:database\n")
    pytester.syspathinsert()
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*used outside a test*"])
    assert (pytester.path / "after.txt").read_text() == "fakeredis://app-conftest-server/0"
    assert FakeBackend(name="app-conftest-server").client().dbsize() == 0
    for name in ("app-conftest-server", "app-own-server", "app-other-server"):
        FakeBackend.drop_server(name)


def test_a_run_stopped_before_its_configure_gives_the_databases_back(pytester):
    """An in-process run stopped by a usage error left them pointing nowhere, and the
    import finder in sys.meta_path."""
    import sys

    pytester.makepyfile(app=APP_MODULE)
    pytester.makeini("[pytest]\nlimpyd_databases = app:database\n")
    pytester.syspathinsert()
    import app  # noqa: F401  (pytester's own module, imported here as a user's code would)

    finders = list(sys.meta_path)
    assert pytester.runpytest("--no-such-option").ret == pytest.ExitCode.USAGE_ERROR
    assert sys.modules["app"].database.backend.describe() == "fakeredis://app-own-server/0"
    assert sys.meta_path == finders
    FakeBackend.drop_server("app-own-server")
    FakeBackend.drop_server("app-other-server")


def test_without_limpyd_databases_plain_tests_are_not_parametrized(pytester, bare_path):
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest("-v", "--limpyd-backend=both")
    result.stdout.fnmatch_lines(["*::test_plain PASSED*"])


def test_a_test_choosing_an_unknown_backend_fails_naming_it(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("limpyd_backend", ["fakee"], indirect=True)
        def test_typo(limpyd_backend, limpyd_database):
            raise AssertionError("not reached: the fixture fails first")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown backend 'fakee' for limpyd_backend*"])


@pytest.mark.parametrize("db", ["x", -1, 1.5, True, "1"])
def test_a_factory_db_that_is_not_a_number_fails_naming_it(limpyd_database_factory, db):
    with pytest.raises(pytest.fail.Exception, match=rf"factory\(db={re.escape(repr(db))}\)"):
        limpyd_database_factory(db=db)


@pytest.mark.limpyd_backends("redis")
def test_a_factory_db_the_server_refuses_fails_naming_it(limpyd_database_factory):
    with pytest.raises(pytest.fail.Exception, match=r"factory\(db=99\): the server refuses"):
        limpyd_database_factory(db=99)


def test_factory_options_the_database_refuses_fail_naming_them(limpyd_database_factory):
    with pytest.raises(pytest.fail.Exception, match=r"decode_responses.*RedisDatabase refuses"):
        limpyd_database_factory(decode_responses=False)
    with pytest.raises(pytest.fail.Exception, match=r"\(password=\.\.\.\)") as failed:
        limpyd_database_factory(password="s3cret")
    assert "s3cret" not in str(failed.value)


def test_a_backend_chosen_by_the_test_itself_is_checked(pytester):
    """A direct parametrize of `limpyd_backend` skips its fixture: the factory checks the
    kind (it was a bare AssertionError); a test using no backend but marked with backends
    this session does not run is skipped (it ran)."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("limpyd_backend", ["redis"])
        def test_direct(limpyd_database):
            'Skipped: no real server in this session.'

        @pytest.mark.parametrize("limpyd_backend", ["bogus"])
        def test_bogus(limpyd_database):
            'Errors at setup: no such backend.'

        @pytest.mark.limpyd_backends("redis")
        def test_plain_marked():
            raise AssertionError("not on this session's backends")

        @pytest.mark.limpyd_backends("fake", "redis")
        def test_plain_fake():
            'Runs: the session runs one of its backends.'
        """
    )
    result = pytester.runpytest("-rs", "--limpyd-backend=fake")
    result.assert_outcomes(passed=1, skipped=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*unknown backend 'bogus' for limpyd_backend*",
            "SKIPPED*no real Redis server in this process",
            "SKIPPED*runs only on redis; this session runs fake*",
        ]
    )


def test_limpyd_databases_are_imported_once_the_tests_are_collected(pytester):
    """Run as `pytest` (not `python -m pytest`), a project's root reaches sys.path while
    its tests are collected: the application's module was imported before (at the session's
    start) and the session stopped with an INTERNALERROR. A module that cannot be imported
    is a usage error."""
    pytester.mkpydir("myapp")
    (pytester.path / "myapp" / "db.py").write_text(
        "from limpyd.backends import FakeBackend\n"
        "from limpyd.database import RedisDatabase\n"
        "database = RedisDatabase(backend=FakeBackend(name='myapp-own'))\n"
    )
    pytester.mkpydir("tests")
    (pytester.path / "tests" / "test_a.py").write_text(
        "import myapp.db\n\ndef test_a():\n    myapp.db.database.connection.set('k', '1')\n"
    )
    pytester.makeini("[pytest]\nlimpyd_databases = myapp.db:database\n")
    executable = shutil.which("pytest")
    assert executable is not None
    result = pytester.run(executable, "-q", "-p", "no:cacheprovider")
    assert result.ret == 0, result.outlines
    pytester.makeini("[pytest]\nlimpyd_databases = myapp.nowhere:database\n")
    result = pytester.run(executable, "-q", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*limpyd_databases entry 'myapp.nowhere:database': *Error*"])
    # with xdist, a worker's usage error was an INTERNALERROR naming nothing: each test fails
    result = pytester.run(executable, "-q", "-p", "no:cacheprovider", "-n", "2")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.outlines
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*limpyd_databases entry 'myapp.nowhere:database'*"])


def test_a_module_of_a_legacy_loader_is_imported_and_guarded_later(monkeypatch):
    """A loader with `load_module` only: its wrapper failed the import (no create_module)."""
    import importlib.abc
    import importlib.util
    import sys
    import types

    from limpyd.database import RedisDatabase
    from limpyd_testing.guard import ApplicationDatabases

    class Legacy(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname != "legacy_limpyd_app":
                return None
            return importlib.util.spec_from_loader(fullname, self)

        def load_module(self, fullname):
            module = types.ModuleType(fullname)
            module.database = RedisDatabase(backend=FakeBackend(name="legacy-own"))
            sys.modules[fullname] = module
            return module

    monkeypatch.setattr(sys, "meta_path", [Legacy(), *sys.meta_path])
    monkeypatch.delitem(sys.modules, "legacy_limpyd_app", raising=False)
    databases = ApplicationDatabases(["legacy_limpyd_app:database"])
    databases.watch_imports()
    try:
        import legacy_limpyd_app  # noqa: F401

        database = sys.modules["legacy_limpyd_app"].database
        assert database.backend.describe() == "fakeredis://legacy-own/0"  # not guarded yet
        databases.guard()  # once the tests are collected
        with pytest.raises(RuntimeError, match="used outside a test"):
            database.client.ping()
    finally:
        databases.restore()
    assert database.backend.describe() == "fakeredis://legacy-own/0"
    FakeBackend.drop_server("legacy-own")


def test_limpyd_databases_set_after_the_collection_fail_every_worker_test_first(pytester):
    """Under xdist, an entry still None once the tests were collected (set later by a session
    fixture) was redirected for each test but never guarded: a module fixture wrote through
    it to the application's own server. Each test fails first, before any of its fixtures."""
    pytester.mkpydir("myapp")
    (pytester.path / "myapp" / "db.py").write_text(
        "from limpyd.backends import FakeBackend\n"
        "from limpyd.database import RedisDatabase\n"
        "database = None\n\n"
        "def init():\n"
        "    global database\n"
        "    database = RedisDatabase(backend=FakeBackend(name='myapp-own'))\n"
    )
    pytester.makeconftest(
        "import pytest\nimport myapp.db\n\n"
        "@pytest.fixture(scope='session', autouse=True)\n"
        "def setup_app():\n    myapp.db.init()\n"
    )
    pytester.makepyfile(
        test_a="import pytest\nimport myapp.db\n\n"
        "@pytest.fixture(scope='module')\n"
        "def seeded():\n"
        "    myapp.db.database.client.set('seed', '1')\n"
        "    open('seeded.txt', 'w').close()\n\n"
        "def test_a(seeded):\n    pass\n"
    )
    pytester.makeini("[pytest]\npythonpath = .\nlimpyd_databases = myapp.db:database\n")
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "-n", "2")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.outlines
    result.stdout.fnmatch_lines(["*limpyd_databases entry 'myapp.db:database' is None*"])
    assert not (pytester.path / "seeded.txt").exists()
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert not (pytester.path / "seeded.txt").exists()


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["alone", "xdist"])
def test_limpyd_databases_of_a_module_raising_at_import_are_one_line(pytester, workers):
    """A module of an entry raising anything but an ImportError (a missing setting) was an
    INTERNALERROR of 79 lines, and under xdist crashed the controller."""
    pytester.makepyfile(
        settings="import os\nURL = os.environ['LIMPYD_TEST_NO_SUCH_SETTING']\n",
        test_a="def test_a():\n    pass\n",
    )
    pytester.makeini("[pytest]\npythonpath = .\nlimpyd_databases = settings:database\n")
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", *workers)
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output
    assert result.ret == (pytest.ExitCode.TESTS_FAILED if workers else pytest.ExitCode.USAGE_ERROR)
    assert re.search(
        r"limpyd_databases entry 'settings:database': KeyError: 'LIMPYD_TEST_NO_SUCH_SETTING'",
        output,
    )


def test_the_fake_server_modules_load_before_the_tests_that_need_them_only(pytester):
    """A session in which no test uses a limpyd backend did not need fakeredis, and
    imported it anyway (about 50 ms, in any project's sessions)."""
    pytester.makepyfile(
        test_plain="import sys\n\ndef test_plain():\n    assert 'fakeredis' not in sys.modules\n"
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    pytester.makepyfile(
        test_uses="import sys\n\n"
        "def test_first():\n    assert 'fakeredis' in sys.modules  # loaded before the tests\n\n"
        "def test_second(limpyd_database):\n    assert limpyd_database.connection.ping()\n"
    )
    options = ["-p", "no:cacheprovider", "-p", "no:randomly", "test_uses.py"]
    pytester.runpytest_subprocess(*options).assert_outcomes(passed=2)
