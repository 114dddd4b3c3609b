"""The throw-away redis-server, a given server URL, and the real backend under xdist."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from limpyd_testing import server as server_module
from limpyd_testing.server import (
    PortInUse,
    RedisServerError,
    RedisServerExecutor,
    RedisServerNotFound,
    find_redis_server,
)

from ._helpers import process_alive, wait_gone

pytestmark = pytest.mark.slow


@pytest.fixture
def scratch_server(redis_server_path):
    """A server of this test's own (the plugin's session server is not to be cluttered)."""
    with RedisServerExecutor(redis_server_path) as server:
        yield server


def test_executor_starts_and_stops_a_private_server(redis_server_path):
    executor = RedisServerExecutor(redis_server_path)
    with executor as server:
        assert server is executor and server.running
        assert server.host == "127.0.0.1"
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert server.version.split(".")[0].isdigit()
        client = redis.Redis.from_url(server.url, decode_responses=True)
        assert client.ping()
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("bind") == {"bind": "127.0.0.1"}
        directory, pid = server.directory, server.pid
        assert directory is not None and directory.is_dir()
        client.close()
    assert not executor.running
    assert not process_alive(pid)
    assert not directory.exists()


def test_two_executors_get_two_ports(redis_server_path):
    with (
        RedisServerExecutor(redis_server_path) as one,
        RedisServerExecutor(redis_server_path) as two,
    ):
        assert one.port != two.port
        redis.Redis.from_url(one.url).set("k", "1")
        assert redis.Redis.from_url(two.url).get("k") is None


def test_executor_reports_the_server_output_when_it_dies(tmp_path):
    script = tmp_path / "redis-server"
    script.write_text('#!/bin/sh\necho "FATAL: broken on purpose, LC_ALL=$LC_ALL" >&2\nexit 7\n')
    script.chmod(0o755)
    with pytest.raises(
        RedisServerError, match=r"(?s)exited with code 7.*FATAL: broken on purpose, LC_ALL=C$"
    ):
        RedisServerExecutor(script).start()


def test_executor_times_out_and_kills_a_server_that_never_answers(tmp_path):
    pid_file = tmp_path / "pid"
    script = tmp_path / "redis-server"
    script.write_text(f"#!/bin/sh\necho $$ > {pid_file}\necho 'still booting'\nexec sleep 60\n")
    script.chmod(0o755)
    executor = RedisServerExecutor(script, startup_timeout=0.5)
    with pytest.raises(RedisServerError, match=r"(?s)did not answer PING.*still booting"):
        executor.start()
    assert wait_gone(int(pid_file.read_text()))
    assert executor.directory is None


def test_a_wrapper_script_that_does_not_exec_starts_and_stops_its_server(
    redis_server_path, tmp_path
):
    """A wrapper running redis-server as its child: the server it started answers (it was
    taken for another one: three tries of 10 s), and stopping stops it too (it was left
    running)."""
    script = tmp_path / "redis-wrapper"
    script.write_text(f'#!/bin/sh\n"{redis_server_path}" "$@"\n')
    script.chmod(0o755)
    with RedisServerExecutor(script, startup_timeout=5) as server:
        client = redis.Redis(host=server.host, port=server.port)
        child = int(client.info("server")["process_id"])
        assert client.ping() and child != server._process.pid
        client.close()
    assert wait_gone(child)


@pytest.mark.parametrize("temp", ["plain", "symlinked"])
def test_a_wrapper_script_that_daemonizes_the_server_is_refused_and_its_server_stopped(
    redis_server_path, tmp_path, monkeypatch, temp
):
    """A wrapper adding --daemonize yes exits at once: the executor said "exited with code 0"
    and left the server it started running in the background, for good. The server reports
    its directory resolved: a temporary directory reached through a symlink (macOS's) is
    still recognised as the executor's."""
    if temp == "symlinked":
        (tmp_path / "real").mkdir()
        (tmp_path / "link").symlink_to(tmp_path / "real")
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "link"))
    script = tmp_path / "redis-daemonizing"
    script.write_text(f'#!/bin/sh\n"{redis_server_path}" "$@" --daemonize yes\n')
    script.chmod(0o755)
    executor = RedisServerExecutor(script, startup_timeout=5)
    with pytest.raises(RedisServerError, match=r"exited with code 0.*daemonized.*shut down"):
        executor.start()
    with pytest.raises(ConnectionRefusedError):  # nothing listens on its port any more
        socket.create_connection((executor.host, executor.port), timeout=1).close()


@pytest.fixture
def foreign_server(redis_server_path, tmp_path):
    """A redis-server started here, not by the executor: (its process, a client of it)."""
    port = server_module.free_port()
    args = ["--bind", "127.0.0.1", "--port", str(port), "--save", "", "--dir", str(tmp_path)]
    process = subprocess.Popen(
        [redis_server_path, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None and time.monotonic() < deadline
            try:
                if client.info("server")["process_id"] == process.pid:
                    break
            except redis.RedisError:
                time.sleep(0.02)
        client.set("foreign", "untouched")
        yield process, client
    finally:
        client.close()
        process.kill()
        process.wait()


def assert_untouched(foreign_server) -> None:
    process, client = foreign_server
    assert process.poll() is None
    assert client.info("server")["process_id"] == process.pid
    assert client.keys() == ["foreign"] and client.get("foreign") == "untouched"


def test_executor_refuses_a_requested_port_another_server_holds(redis_server_path, foreign_server):
    port = foreign_server[1].connection_pool.connection_kwargs["port"]
    executor = RedisServerExecutor(redis_server_path, port=port)
    try:
        # Its PING would reach the foreign server: that must not pass for its own.
        with pytest.raises(PortInUse, match=rf"port {port} is already in use"):
            executor.start()
        assert not executor.running and executor.directory is None
    finally:
        executor.stop()
    assert_untouched(foreign_server)


def test_executor_takes_another_port_when_the_free_one_was_taken(
    redis_server_path, foreign_server, monkeypatch
):
    taken = foreign_server[1].connection_pool.connection_kwargs["port"]
    ports = iter([taken])
    real_free_port = server_module.free_port
    # The race: the port the OS gave is listened on by someone else before the server binds.
    monkeypatch.setattr(
        server_module, "free_port", lambda host: next(ports, None) or real_free_port(host)
    )
    with RedisServerExecutor(redis_server_path) as server:
        assert server.port != taken
        client = redis.Redis.from_url(server.url)
        assert client.info("server")["process_id"] == server.pid
        client.close()
    assert_untouched(foreign_server)


def test_executor_without_an_executable(tmp_path):
    assert find_redis_server(tmp_path / "missing") is None
    not_executable = tmp_path / "redis-server"
    not_executable.write_text("")
    assert find_redis_server(not_executable) is None
    with pytest.raises(RedisServerNotFound, match="missing"):
        RedisServerExecutor(tmp_path / "missing").start()


def test_session_server_is_stopped_at_session_end(pytester, redis_server_path):
    pytester.makepyfile(
        """
        def test_record(limpyd_server, limpyd_redis):
            assert limpyd_redis.ping()
            with open("server.txt", "w") as out:
                out.write(f"{limpyd_server.pid} {limpyd_server.port}")
        """
    )
    result = pytester.runpytest(
        "--limpyd-backend=redis", f"--limpyd-redis-server={redis_server_path}"
    )
    result.assert_outcomes(passed=1)
    pid, port = map(int, (pytester.path / "server.txt").read_text().split())
    assert not process_alive(pid)
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host="127.0.0.1", port=port, retry=Retry(NoBackoff(), 0)).ping()


def test_no_orphan_server_when_pytest_is_killed(pytester, redis_server_path):
    pytester.makepyfile(
        """
        import os, signal

        def test_crash(limpyd_server):
            with open("server.txt", "w") as out:
                directory = os.readlink(f"/proc/{limpyd_server.pid}/cwd")
                out.write(f"{limpyd_server.pid} {directory}")
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = pytester.runpytest_subprocess(
        "--limpyd-backend=redis", f"--limpyd-redis-server={redis_server_path}", timeout=60
    )
    assert result.ret == -9  # killed: no teardown, no atexit ran
    pid, directory = (pytester.path / "server.txt").read_text().split(maxsplit=1)
    assert wait_gone(int(pid)), f"redis-server {pid} outlived the killed pytest"
    # Its directory stays until the next server started anywhere sweeps it away.
    assert Path(directory).is_dir()
    with RedisServerExecutor(redis_server_path):
        assert not Path(directory).exists()


def test_server_is_stopped_on_ctrl_c(pytester, redis_server_path):
    pytester.makepyfile(
        """
        import time

        def test_wait(limpyd_server):
            with open("server.txt", "w") as out:
                out.write(str(limpyd_server.pid))
            time.sleep(60)
        """
    )
    process = pytester.popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--limpyd-backend=redis",
            f"--limpyd-redis-server={redis_server_path}",
        ],
        stdin=subprocess.DEVNULL,
        # Its own SIGINT action, whatever this run's: a background job of a script starts
        # with SIGINT ignored, and the child would inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        pid_file = pytester.path / "server.txt"
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        pid = int(pid_file.read_text())
        assert process_alive(pid)
        directory = Path(os.readlink(f"/proc/{pid}/cwd"))
        assert directory.name.startswith("limpyd-redis-")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == pytest.ExitCode.INTERRUPTED
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not process_alive(pid)
    assert not directory.exists()  # stopped in order, not only killed with its parent


def test_given_url_with_keys_is_refused(pytester, scratch_server):
    client = redis.Redis.from_url(scratch_server.url)
    client.set("precious", "data")
    pytester.makepyfile("def test_x(limpyd_database): limpyd_database.connection.flushdb()")
    result = pytester.runpytest(
        "--limpyd-backend=redis", f"--limpyd-redis-url={scratch_server.url}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: limpyd: refusing to run tests on {scratch_server.url} (db 0): "
            "it holds 1 key(s)*--limpyd-flush-existing*"
        ]
    )
    assert client.get("precious") == b"data"


def test_given_url_the_tests_cannot_use_stops_the_session(pytester, scratch_server):
    """A password for a server that has none: the tests' clients refuse it, so the check
    before the session does too (a plain client accepted it, and every test failed)."""
    url = scratch_server.url.replace("redis://", "redis://:hunter2@")
    pytester.makepyfile("def test_x(limpyd_database): pass")
    result = pytester.runpytest("--limpyd-backend=redis", f"--limpyd-redis-url={url}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: limpyd: cannot use Redis at redis://:[*][*][*]@*"])
    assert "hunter2" not in result.stderr.str() + result.stdout.str()


def test_given_url_with_keys_and_flush_existing(pytester, scratch_server):
    client = redis.Redis.from_url(scratch_server.url.replace("/0", "/5"))
    client.set("stale", "data")
    pytester.makepyfile(
        """
        def test_x(limpyd_database, limpyd_server):
            assert limpyd_server.db == 5 and limpyd_server.pid is None
            assert limpyd_database.connection.dbsize() == 0
            limpyd_database.connection.set("written", "by the test")
        """
    )
    url = scratch_server.url.replace("/0", "/5")
    result = pytester.runpytest(
        "-v", "--limpyd-backend=redis", f"--limpyd-redis-url={url}", "--limpyd-flush-existing"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"limpyd: backends redis; redis 7* at {url} (given server)"])
    assert client.dbsize() == 0  # what the test wrote is gone too
    assert scratch_server.running  # a given server is not stopped


@pytest.mark.parametrize("where", ["option", "environment", "ini"])
@pytest.mark.parametrize("xdist", [[], ["-p", "xdist", "-n", "2"]], ids=["serial", "xdist"])
def test_given_url_unreachable_is_an_error(pytester, monkeypatch, scratch_server, where, xdist):
    """A server named by a setting that nothing answers at fails the session, with or
    without --limpyd-require-redis: the user asked for that server, a skip would be green."""
    port = scratch_server.port
    scratch_server.stop()
    url = f"redis://127.0.0.1:{port}/5"
    pytester.makepyfile("def test_x(limpyd_database): pass")
    args = ["-p", "no:cacheprovider", "--limpyd-backend=redis", *xdist]
    if where == "option":
        args.append(f"--limpyd-redis-url={url}")
    elif where == "environment":
        monkeypatch.setenv("LIMPYD_REDIS_URL", url)
    else:
        pytester.makeini(f"[pytest]\nlimpyd_redis_url = {url}\n")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: limpyd: cannot use Redis at {url}*(the server named by --limpyd-redis-url*"]
    )
    result.stdout.no_fnmatch_line("*skipped*")
    result.stdout.no_fnmatch_line("*passed*")


XDIST_TESTS = """
    import json, os
    import pytest

    @pytest.mark.parametrize("n", range(6))
    def test_record(limpyd_backend, limpyd_database, n):
        assert limpyd_database.connection.dbsize() == 0
        limpyd_database.connection.set("n", n)
        if limpyd_backend == "redis":
            info = limpyd_database.connection.connection_pool.connection_kwargs
            record = {"worker": os.environ["PYTEST_XDIST_WORKER"], "port": info["port"]}
            with open(f"{record['worker']}-{n}.json", "w") as out:
                json.dump(record, out)
"""


def test_xdist_workers_get_their_own_server(pytester, redis_server_path):
    pytester.makepyfile(XDIST_TESTS)
    result = pytester.runpytest_subprocess(
        "-p",
        "xdist",
        "-n",
        "2",
        "--limpyd-backend=both",
        f"--limpyd-redis-server={redis_server_path}",
        "--limpyd-require-redis",
        "-p",
        "no:cacheprovider",
        timeout=120,
    )
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines(
        ["limpyd: backends fake, redis; redis-server *, one throw-away server per worker"]
    )
    records = [json.loads(path.read_text()) for path in pytester.path.glob("gw*.json")]
    assert len(records) == 6
    ports = {record["worker"]: set() for record in records}
    for record in records:
        ports[record["worker"]].add(record["port"])
    # Each worker talked to exactly one server, and no two workers to the same one.
    assert all(len(found) == 1 for found in ports.values())
    assert len({port for found in ports.values() for port in found}) == len(ports)


def test_xdist_with_a_given_url_uses_one_db_per_worker(pytester, scratch_server):
    pytester.makepyfile(
        """
        import os

        def test_db(limpyd_server):
            worker = int(os.environ["PYTEST_XDIST_WORKER"].removeprefix("gw"))
            assert limpyd_server.db == 3 + worker
        """
    )
    url = scratch_server.url.replace("/0", "/3")
    redis.Redis.from_url(scratch_server.url.replace("/0", "/4")).set("someone's", "data")
    args = ["-p", "xdist", "-n", "2", "--limpyd-backend=redis", f"--limpyd-redis-url={url}"]
    result = pytester.runpytest_subprocess(*args, timeout=120)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*refusing to run tests on redis://127.0.0.1:*/4 (db 4)*"])
    result = pytester.runpytest_subprocess(*args, "--limpyd-flush-existing", timeout=120)
    result.assert_outcomes(passed=1)
