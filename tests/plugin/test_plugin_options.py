"""Options, their precedence, the marker and the parametrization, seen from inner pytest runs."""

from __future__ import annotations

import pytest

BOGUS_SERVER = "/nonexistent/limpyd/redis-server"

IDS_TESTS = """
    def test_direct(limpyd_backend):
        assert limpyd_backend in ("fake", "redis")

    def test_indirect(limpyd_database):
        assert limpyd_database.backend.kind in ("fake", "redis")

    def test_no_fixture():
        pass
"""


def test_default_is_fake_only(pytester):
    pytester.makepyfile(IDS_TESTS)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "limpyd: backends fake",
            "*::test_direct[[]fake[]] PASSED*",
            "*::test_indirect[[]fake[]] PASSED*",
            "*::test_no_fixture PASSED*",
        ]
    )
    result.stdout.no_fnmatch_line("*[[]redis[]]*")


def test_both_backends_parametrize_direct_and_indirect_users(pytester, redis_server_path):
    pytester.makepyfile(
        IDS_TESTS
        + """
    def test_kind_matches(limpyd_backend, limpyd_database):
        assert limpyd_database.backend.kind == limpyd_backend
    """
    )
    result = pytester.runpytest(
        "-v", "--limpyd-backend=both", f"--limpyd-redis-server={redis_server_path}"
    )
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(
        [
            "limpyd: backends fake, redis; redis 7* at redis://127.0.0.1:*/0 (throw-away server)",
            "*::test_direct[[]fake[]] PASSED*",
            "*::test_direct[[]redis[]] PASSED*",
            "*::test_indirect[[]fake[]] PASSED*",
            "*::test_indirect[[]redis[]] PASSED*",
            "*::test_no_fixture PASSED*",
            "*::test_kind_matches[[]fake[]] PASSED*",
            "*::test_kind_matches[[]redis[]] PASSED*",
        ]
    )


def test_parametrization_combines_with_the_test_own(pytester, bare_path):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", [1, 2])
        def test_x(limpyd_database, n):
            pass

        @pytest.mark.parametrize("limpyd_backend", ["fake"], indirect=True)
        def test_chosen(limpyd_backend):
            assert limpyd_backend == "fake"
        """
    )
    result = pytester.runpytest("-v", "--limpyd-backend=both")
    result.assert_outcomes(passed=3, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*::test_x[[]fake-1[]] PASSED*",
            "*::test_x[[]redis-2[]] SKIPPED*",
            "*::test_chosen[[]fake[]] PASSED*",
        ]
    )


MARKED_TESTS = """
    import pytest

    @pytest.mark.limpyd_backends("redis")
    def test_redis_only(limpyd_backend):
        assert limpyd_backend == "redis"

    @pytest.mark.limpyd_backends("fake")
    def test_fake_only(limpyd_database):
        assert limpyd_database.backend.kind == "fake"

    @pytest.mark.limpyd_backends("fake", "redis")
    def test_any(limpyd_backend):
        pass
"""


def test_marker_restricts_backends(pytester, redis_server_path):
    pytester.makepyfile(MARKED_TESTS)
    result = pytester.runpytest(
        "-v", "--limpyd-backend=both", f"--limpyd-redis-server={redis_server_path}"
    )
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "*::test_redis_only[[]redis[]] PASSED*",
            "*::test_fake_only[[]fake[]] PASSED*",
            "*::test_any[[]fake[]] PASSED*",
            "*::test_any[[]redis[]] PASSED*",
        ]
    )
    result.stdout.no_fnmatch_line("*test_redis_only[[]fake[]]*")
    result.stdout.no_fnmatch_line("*test_fake_only[[]redis[]]*")


def test_marker_on_a_backend_not_selected_skips_with_a_reason(pytester):
    pytester.makepyfile(MARKED_TESTS)
    result = pytester.runpytest("-v", "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*::test_redis_only[[]redis[]] SKIPPED*",
            "SKIPPED*limpyd: runs only on redis; this session runs fake (--limpyd-backend)",
        ]
    )


_BAD_MARKERS = [
    'limpyd_backends("reddis")',
    "limpyd_backends",
    'limpyd_backends(["fake", "redis"])',  # was a bare TypeError: unhashable type: 'list'
    'limpyd_backends(backends="redis")',  # was "no backend given"
    'limpyd_backends("fake", 1)',
]


@pytest.mark.parametrize("marker", _BAD_MARKERS)
def test_a_bad_marker_on_a_test_without_a_backend_is_a_usage_error(pytester, marker):
    """On a test using no limpyd fixture, it was an INTERNALERROR of some 55 lines."""
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.{marker}
        def test_plain():
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines(["ERROR: limpyd: limpyd_backends marker of *test_plain: *"])


@pytest.mark.parametrize(
    ("marker", "shown"),
    [
        ('limpyd_backends("memcached")', "'memcached'"),
        ('limpyd_backends(["fake", "redis"])', "['fake', 'redis']"),
        ('limpyd_backends(backends="redis")', "backends=..."),
    ],
    ids=["unknown", "list", "keyword"],
)
def test_marker_with_an_unknown_backend_is_a_collection_error(pytester, marker, shown):
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.{marker}
        def test_x(limpyd_backend):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"*limpyd_backends marker*{shown}*use 'fake', 'redis' and/or 'cluster'*"]
    )
    assert "During handling" not in result.stdout.str()  # the message was shown twice


def test_markers_allowing_no_backend_together_are_named(pytester):
    """A class marker and a function marker naming different backends skipped the test with
    pytest's "got empty parameter set for (limpyd_backend)"."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.limpyd_backends("redis")
        class TestX:
            @pytest.mark.limpyd_backends("fake")
            def test_x(self, limpyd_backend):
                pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*limpyd_backends markers of *test_x allow no backend together: (fake) and (redis)*"]
    )


def _header_backends(result: pytest.RunResult) -> str:
    for line in result.outlines:
        if line.startswith("limpyd: backends "):
            return line.removeprefix("limpyd: backends ").split(";")[0]
    raise AssertionError(f"no limpyd header in:\n{result.stdout.str()}")


def test_backend_precedence_cli_env_ini(pytester, monkeypatch, bare_path):
    pytester.makepyfile("def test_x(limpyd_backend): pass")
    # No redis-server on PATH: no server is started, the redis tests are skipped.
    args = ["-p", "no:cacheprovider"]

    assert _header_backends(pytester.runpytest(*args)) == "fake"

    pytester.makeini("[pytest]\nlimpyd_backend = redis\n")
    assert _header_backends(pytester.runpytest(*args)) == "redis"

    monkeypatch.setenv("LIMPYD_BACKEND", "both")
    assert _header_backends(pytester.runpytest(*args)) == "fake, redis"

    result = pytester.runpytest(*args, "--limpyd-backend=fake")
    assert _header_backends(result) == "fake"
    result.assert_outcomes(passed=1)

    # an empty value is no value: the next source decides (it reset to the default)
    assert _header_backends(pytester.runpytest(*args, "--limpyd-backend=")) == "fake, redis"
    assert _header_backends(pytester.runpytest(*args, "--limpyd-backend", " ")) == "fake, redis"


def test_redis_server_precedence_cli_env_ini(pytester, monkeypatch):
    pytester.makepyfile("def test_x(limpyd_backend): pass")
    args = ["--limpyd-backend=redis"]
    pytester.makeini("[pytest]\nlimpyd_redis_server = /from/ini/redis-server\n")
    pytester.runpytest(*args).stderr.fnmatch_lines(["*(/from/ini/redis-server)*"])
    monkeypatch.setenv("LIMPYD_REDIS_SERVER", "/from/env/redis-server")
    pytester.runpytest(*args).stderr.fnmatch_lines(["*(/from/env/redis-server)*"])
    result = pytester.runpytest(*args, "--limpyd-redis-server=/from/cli/redis-server")
    result.stderr.fnmatch_lines(["*(/from/cli/redis-server)*"])
    result.stderr.no_fnmatch_line("*/from/env/*")


def test_a_relative_redis_server_path_in_the_ini_is_the_ini_files(pytester, monkeypatch):
    """Relative to the ini file's folder, as pytest's own paths (it was to the current
    folder: running from a subfolder found no server); a bare name stays a PATH lookup, and
    a path given on the command line or in the environment is the current folder's."""
    pytester.mkdir("sub")
    pytester.makepyfile(**{"sub/test_x": "def test_x(limpyd_backend): pass"})
    args = ["--limpyd-backend=redis", "-p", "no:cacheprovider"]
    pytester.makeini("[pytest]\nlimpyd_redis_server = bin/redis-server\n")
    monkeypatch.chdir(pytester.path / "sub")
    result = pytester.runpytest(*args)
    result.stderr.fnmatch_lines([f"*({pytester.path / 'bin' / 'redis-server'})*"])
    pytester.makeini("[pytest]\nlimpyd_redis_server = no-such-redis-server\n")
    pytester.runpytest(*args).stderr.fnmatch_lines(["*(no-such-redis-server)*"])
    result = pytester.runpytest(*args, "--limpyd-redis-server=bin/redis-server")
    result.stderr.fnmatch_lines(["*(bin/redis-server)*"])


def test_a_home_redis_server_path_in_the_ini_is_the_users(pytester, monkeypatch):
    """`~/...` in the ini file is the user's home, as on the command line (it was joined to
    the ini file's folder: `<folder>/~/bin/redis-server`)."""
    pytester.makepyfile("def test_x(limpyd_backend): pass")
    monkeypatch.setenv("HOME", str(pytester.path / "home"))
    pytester.makeini("[pytest]\nlimpyd_redis_server = ~/bin/redis-server\n")
    result = pytester.runpytest("--limpyd-backend=redis", "-p", "no:cacheprovider")
    result.stderr.fnmatch_lines([f"*({pytester.path / 'home' / 'bin' / 'redis-server'})*"])


def test_boolean_precedence_cli_env_ini(pytester, monkeypatch, bare_path):
    pytester.makepyfile("def test_x(limpyd_backend): pass")
    args = ["--limpyd-backend=redis"]

    pytester.makeini("[pytest]\nlimpyd_require_redis = true\n")
    assert pytester.runpytest(*args).ret == pytest.ExitCode.USAGE_ERROR

    monkeypatch.setenv("LIMPYD_REQUIRE_REDIS", "0")
    pytester.runpytest(*args).assert_outcomes(skipped=1)

    monkeypatch.setenv("LIMPYD_REQUIRE_REDIS", "1")
    assert pytester.runpytest(*args).ret == pytest.ExitCode.USAGE_ERROR
    pytester.runpytest(*args, "--no-limpyd-require-redis").assert_outcomes(skipped=1)


@pytest.mark.parametrize(("value", "required"), [("true", True), ("false", False)])
def test_a_boolean_setting_of_a_native_toml_table(pytester, bare_path, value, required):
    """pytest 9's `[tool.pytest]` table holds real booleans."""
    pytester.makepyfile("def test_x(limpyd_backend): pass")
    pytester.makepyprojecttoml(f"[tool.pytest]\nlimpyd_require_redis = {value}\n")
    result = pytester.runpytest("--limpyd-backend=redis")
    if required:
        assert result.ret == pytest.ExitCode.USAGE_ERROR
    else:
        result.assert_outcomes(skipped=1)


@pytest.mark.parametrize(
    "line",
    ['limpyd_flush_existing = "yes"', "limpyd_require_redis = 1", 'limpyd_databases = "a:b"'],
)
def test_a_toml_value_of_another_type_is_a_usage_error(pytester, line):
    """pytest 9's `[tool.pytest]` table types its values: another type was an INTERNALERROR
    (pytest's TypeError)."""
    pytester.makepyfile("def test_x(): pass")
    pytester.makepyprojecttoml(f"[tool.pytest]\n{line}\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: limpyd: ini key {line.split()[0]}: *"])


def test_a_boolean_setting_read_from_an_ini_text(pytester):
    pytester.makepyfile("def test_x(): pass")
    pytester.makeini("[pytest]\nlimpyd_flush_existing = maybe\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini key limpyd_flush_existing*'maybe'*"])


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--limpyd-backend=memory"],
            {},
            "*unknown backend 'memory'*fake, redis, cluster, both or all*",
        ),
        ([], {"LIMPYD_BACKEND": "sometimes"}, "*unknown backend 'sometimes'*"),
        ([], {"LIMPYD_REQUIRE_REDIS": "maybe"}, "*LIMPYD_REQUIRE_REDIS='maybe' is not a boolean*"),
        (["--limpyd-redis-url=http://x"], {}, "*'http://x' is not a redis://*"),
        (["--limpyd-redis-url=redis://127.0.0.1:abc"], {}, "*:abc' is not a redis://*port*"),
        (["--limpyd-redis-url=redis://127.0.0.1:1/0?foo=bar"], {}, "*foo=bar' is not*options*"),
        ([], {"LIMPYD_REDIS_URL": "redis://127.0.0.1:1/-1"}, "*/-1' is not a redis://*db*"),
        (["--limpyd-redis-url=redis://127.0.0.1:1/%35"], {}, "*/%35' is not a redis://*db*"),
        # port 0: redis-py would connect to 6379 (maybe a developer's server) instead
        (["--limpyd-redis-url=redis://127.0.0.1:0/0"], {}, "*:0/0' is not a redis://*but 0*"),
        # a password is never shown, even in a URL refused
        (
            ["--limpyd-redis-url=redis://admin:hunter2@127.0.0.1:-1/0"],
            {},
            "*'redis://admin:[*][*][*]@127.0.0.1:-1/0' is not*",
        ),
        (
            [],
            {"LIMPYD_REDIS_URL": "redis://:hunter2@x:1/db"},
            "*'redis://:[*][*][*]@x:1/db' is not*",
        ),
        (
            [],
            {"LIMPYD_CLUSTER_URL": "redis://x:1"},
            "*Invalid cluster URL*(--limpyd-cluster-url, LIMPYD_CLUSTER_URL, ini limpyd_cl*",
        ),
        (
            ["--limpyd-backend=cluster", "--limpyd-cluster-url=redis+cluster://127.0.0.1:1"],
            {},
            "*cannot use the cluster at redis+cluster://127.0.0.1:1*",
        ),
    ],
)
def test_bad_values_are_usage_errors(pytester, monkeypatch, args, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "hunter2" not in result.stderr.str() + result.stdout.str()


def test_missing_server_skips_with_a_reason(pytester, bare_path):
    """Nothing asked for and no redis-server on PATH: the only case that skips."""
    pytester.makepyfile("def test_x(limpyd_database): pass\ndef test_s(limpyd_server): pass")
    result = pytester.runpytest("-rs", "--limpyd-backend=both")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*no redis-server executable found (redis-server on PATH)*",
            "SKIPPED*no redis-server executable found*install Redis*--limpyd-redis-url=URL*",
        ]
    )
    result = pytester.runpytest("--limpyd-backend=both", "--limpyd-require-redis")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: limpyd: no redis-server executable found*(--limpyd-require-redis is set)"]
    )


@pytest.mark.parametrize("require", [[], ["--limpyd-require-redis"]])
def test_a_named_server_path_that_is_missing_fails_the_session(pytester, require):
    """A redis-server the user named is asked for: missing, it is an error, never a skip."""
    pytester.makepyfile("def test_x(limpyd_database): pass")
    result = pytester.runpytest(
        "--limpyd-backend=both", f"--limpyd-redis-server={BOGUS_SERVER}", *require
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: limpyd: no redis-server executable found ({BOGUS_SERVER})"
            " (the executable named by --limpyd-redis-server*)"
        ]
    )
    result.stdout.no_fnmatch_line("*passed*")


def test_a_server_that_does_not_start_fails_or_skips(pytester, bare_path):
    broken = bare_path / "redis-server"
    broken.write_text("#!/bin/sh\necho 'cannot start: broken on purpose' >&2\nexit 3\n")
    broken.chmod(0o755)
    pytester.makepyfile("def test_x(limpyd_database): pass")
    args = ["--limpyd-backend=redis"]
    result = pytester.runpytest(*args, "--limpyd-require-redis")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: limpyd: could not start*exited with code 3*"])
    result.stderr.fnmatch_lines(["cannot start: broken on purpose*"])
    # Found on PATH, not named: without the flag, the same failure is a skip...
    pytester.runpytest(*args).assert_outcomes(skipped=1)
    # ...named, it is an error.
    result = pytester.runpytest(*args, f"--limpyd-redis-server={broken}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: limpyd: could not start*", "*(the executable named by --limpyd-redis-server*"]
    )


def test_fake_only_session_needs_no_redis_server(pytester):
    pytester.makepyfile("def test_x(limpyd_database): pass")
    result = pytester.runpytest(f"--limpyd-redis-server={BOGUS_SERVER}", "--limpyd-require-redis")
    result.assert_outcomes(passed=1)


def test_options_are_documented_in_help(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "*--limpyd-backend=KIND*",
            "*--limpyd-redis-url=*",
            "*--limpyd-redis-server=*",
            "*--limpyd-require-redis*",
            "*--limpyd-flush-existing*",
        ]
    )
    result.stdout.fnmatch_lines(["*limpyd_databases*"])


def test_help_shows_even_with_a_bad_setting(pytester, monkeypatch):
    # the page that says how to fix a setting must not be refused by it
    monkeypatch.setenv("LIMPYD_BACKEND", "bogus")
    result = pytester.runpytest("--help")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*--limpyd-backend=KIND*"])
    assert pytester.runpytest().ret == pytest.ExitCode.USAGE_ERROR  # a run still refuses it
