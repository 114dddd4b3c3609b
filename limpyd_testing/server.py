"""A throw-away `redis-server` for test sessions.

`RedisServerExecutor` starts a real Redis server on a free loopback port, with no persistence,
in a temporary directory, waits until it answers PING and stops it afterwards. The server that
answers must be the process it started (INFO's `process_id`): a server another process holds
on the port is never taken for it. The server is
tied to the process that started it: on Linux the kernel kills it when that process dies
(`PR_SET_PDEATHSIG`), so a crashed or killed test run leaves no orphan server behind.

    with RedisServerExecutor() as server:
        client = redis.Redis.from_url(server.url)

The pytest plugin (`limpyd_testing.plugin`) uses it for `--limpyd-backend=redis|both`; it is
public so that other tools (benchmarks, scripts) can have a private server too.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, NoReturn

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = [
    "PortInUse",
    "RedisServerError",
    "RedisServerExecutor",
    "RedisServerNotFound",
    "find_redis_server",
    "redis_server_version",
]

#: Loopback only: the servers started here are never reachable from another machine.
DEFAULT_HOST = "127.0.0.1"
_PR_SET_PDEATHSIG = 1
_DIRECTORY_PREFIX = "limpyd-redis-"
_OWNER_FILE = "owner.pid"


class RedisServerError(RuntimeError):
    """The `redis-server` could not be started (the message says why, with its output)."""


class RedisServerNotFound(RedisServerError):
    """No usable `redis-server` executable."""


class PortInUse(RedisServerError):
    """Another process holds the port the server was to listen on."""


def find_redis_server(path: str | os.PathLike[str] | None = None) -> str | None:
    """The absolute path of the `redis-server` to run, or None when there is none.

    `path` may be a file path or a command name looked up on PATH; None means `redis-server`
    from PATH. An existing file that is not executable counts as not found.
    """
    candidate = os.fspath(path) if path is not None else "redis-server"
    if os.sep in candidate or (os.altsep and os.altsep in candidate):
        # No symlink resolution: redis-server is often a link to a multi-call binary that
        # decides what to be from the name it is called by.
        full = os.path.abspath(os.path.expanduser(candidate))
        if os.path.isfile(full) and os.access(full, os.X_OK):
            return full
        return None
    return shutil.which(candidate)


def redis_server_version(executable: str, timeout: float = 10.0) -> str | None:
    """The version a `redis-server` executable reports (`redis-server --version`), if any."""
    try:
        completed = subprocess.run(
            [executable, "--version"],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_server_env(),
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\bv=(\S+)", completed.stdout)
    return match.group(1) if match else None


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _server_env() -> dict[str, str]:
    env = dict(os.environ)
    env["LC_ALL"] = "C"
    return env


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A `preexec_fn` asking Linux to kill the child when its parent goes away.

    The kernel sends the signal when the *thread* that started the child ends: start
    servers from the main thread (pytest does). None where `prctl` is not available.
    """
    try:
        import ctypes

        # Looked up here, in the parent: the child, between fork and exec, only calls it.
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return None

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may already have died between fork and prctl.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


class RedisServerExecutor:
    """Starts and stops one throw-away `redis-server` on a loopback port.

    Nothing is persisted (`--save ''`, `--appendonly no`); the working directory is a
    temporary one removed on stop. `start()` returns once the server it started answers PING,
    or raises `RedisServerError` with the server's output. A port held by another process:
    a free port picked by the OS is taken again by someone else meanwhile (a race), so
    another one is tried; a requested `port` is refused with an error. (An `executable` that
    is a wrapper script must `exec` the server, so that the process started is the server.)
    `stop()` sends SIGTERM, then SIGKILL. The server also dies with the starting process
    (Linux), and `stop()` runs at interpreter exit. Usable as a context manager.
    """

    def __init__(
        self,
        executable: str | os.PathLike[str] | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int | None = None,
        startup_timeout: float = 10.0,
        extra_args: tuple[str, ...] | list[str] = (),
    ) -> None:
        self.requested_executable = executable
        self.host = host
        self._requested_port = port
        self.port: int = port or 0
        self.startup_timeout = startup_timeout
        self.extra_args = list(extra_args)
        self.version: str = ""
        self.directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._finalizer: weakref.finalize[..., RedisServerExecutor] | None = None

    # Information --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """`redis://host:port/0` of the running server."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def output(self) -> str:
        """What the server printed so far (its log: it logs to stdout)."""
        if self.directory is None:
            return ""
        try:
            return (self.directory / "redis-server.log").read_text(errors="replace")
        except OSError:
            return ""

    def _described_output(self) -> str:
        text = self.output().strip()
        return f"its output:\n{text}" if text else "it printed nothing"

    # Life cycle ---------------------------------------------------------------------------

    def start(self) -> RedisServerExecutor:
        """Start the server and wait until it answers PING."""
        if self.running:
            return self
        executable = find_redis_server(self.requested_executable)
        if executable is None:
            wanted = self.requested_executable or "redis-server (on PATH)"
            raise RedisServerNotFound(f"redis-server executable not found: {wanted}")
        attempts = 1 if self._requested_port else 3
        error: RedisServerError | None = None
        for _ in range(attempts):
            try:
                self._start_once(executable)
                return self
            except RedisServerError as exc:
                error = exc
                self.stop()
                # Only a lost race for the free port is worth another try.
                if not isinstance(exc, PortInUse):
                    break
        assert error is not None
        raise error

    def _start_once(self, executable: str) -> None:
        self.port = self._requested_port or free_port(self.host)
        _remove_abandoned_directories()
        self.directory = Path(tempfile.mkdtemp(prefix=_DIRECTORY_PREFIX))
        (self.directory / _OWNER_FILE).write_text(str(os.getpid()))
        self._log = open(self.directory / "redis-server.log", "wb")
        args = [
            executable,
            "--bind",
            self.host,
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--daemonize",
            "no",
            "--logfile",
            "",
            "--databases",
            "16",
            *self.extra_args,
        ]
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
            env=_server_env(),
            # Its own session: a Ctrl-C in the terminal reaches pytest, which stops the
            # server in order, instead of killing it under the tests still running.
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()) if sys.platform == "linux" else None,
        )
        self._finalizer = weakref.finalize(self, _stop_process, self._process, self.directory)
        atexit.register(self._finalizer)
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        client = redis.Redis(
            host=self.host,
            port=self.port,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
            retry=Retry(NoBackoff(), 0),  # this loop is the retry
        )
        # Whoever answers on the port: ours once its process id is the one started (or one
        # it started: a wrapper script's).
        answering: int | None = None
        try:
            while True:
                process = self._process
                assert process is not None
                if process.poll() is not None:
                    self._raise_exited(process, answering)
                try:
                    info = client.info("server")
                    answering = int(info.get("process_id", 0))
                    if answering == process.pid or _in_group(answering, process.pid):
                        self.version = str(info.get("redis_version", ""))
                        return
                except redis.RedisError:
                    pass
                if time.monotonic() > deadline:
                    if answering is not None:
                        raise PortInUse(
                            f"another redis-server (pid {answering}) answers on "
                            f"{self.host}:{self.port}, not the one started (pid {process.pid}) "
                            f"within {self.startup_timeout:g} s; {self._described_output()}"
                        )
                    raise RedisServerError(
                        f"redis-server did not answer PING on {self.host}:{self.port} within "
                        f"{self.startup_timeout:g} s; {self._described_output()}"
                    )
                time.sleep(0.01)
        finally:
            client.close()

    def _raise_exited(self, process: subprocess.Popen[bytes], answering: int | None) -> NoReturn:
        output = self._described_output()
        message = (
            f"redis-server exited with code {process.returncode} while starting "
            f"on {self.host}:{self.port}; {output}"
        )
        if process.returncode == 0 and self._stop_daemonized():
            raise RedisServerError(
                f"{message}; it went on in the background (daemonized: a wrapper adding "
                "--daemonize yes?), out of reach of the tests' clean-up, and was shut down: "
                "the executable must keep the server in the foreground"
            )
        if answering is not None or "Address already in use" in output:
            holder = f" (by redis-server pid {answering})" if answering else ""
            raise PortInUse(f"port {self.port} is already in use{holder}: {message}")
        raise RedisServerError(message)

    def _stop_daemonized(self) -> bool:
        """Shut down a server the executable left running in the background on this port
        (ours: its directory is this executor's); whether there was one. A daemonizing server
        answers a moment after its starting process exits."""
        client = redis.Redis(
            host=self.host,
            port=self.port,
            socket_timeout=1.0,
            socket_connect_timeout=0.2,
            retry=Retry(NoBackoff(), 0),
        )
        deadline = time.monotonic() + min(self.startup_timeout, 2.0)
        try:
            while time.monotonic() < deadline:
                try:
                    found = client.config_get("dir").get("dir")
                    if found is None or os.path.realpath(found) != os.path.realpath(
                        str(self.directory)
                    ):
                        return False  # another one's: left alone
                    client.shutdown(nosave=True)
                except redis.ConnectionError:  # not listening yet
                    time.sleep(0.02)
                    continue
                except redis.RedisError:
                    return False
                return True
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its directory."""
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            atexit.unregister(finalizer)
            finalizer()
        elif self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
        self._process = None
        self.directory = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> RedisServerExecutor:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<RedisServerExecutor {self.host}:{self.port} {state}>"


def _remove_abandoned_directories() -> None:
    """Remove the directories of servers whose starting process died without cleaning up.

    The server itself died with that process (PR_SET_PDEATHSIG); its directory did not.
    """
    for directory in Path(tempfile.gettempdir()).glob(f"{_DIRECTORY_PREFIX}*"):
        try:
            owner = int((directory / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not ours, or still being set up
        if not _pid_alive(owner):
            shutil.rmtree(directory, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_process(process: subprocess.Popen[bytes], directory: Path) -> None:
    """Terminate, then kill, the server and its session's other processes (what a wrapper
    script started without `exec`); always reap it and remove its directory."""
    try:
        if process.poll() is None:
            _signal_session(process, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _signal_session(process, signal.SIGKILL)
                process.wait(timeout=5)
        _signal_session(process, signal.SIGKILL)  # what is left of it
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _in_group(pid: int, leader: int) -> bool:
    """Whether the process `pid` is in the process group `leader` leads (the server a
    wrapper script started without `exec`)."""
    try:
        return os.getpgid(pid) == leader
    except OSError:  # gone, or not visible from here
        return False


def _signal_session(process: subprocess.Popen[bytes], number: int) -> None:
    """Send `number` to the process group the server leads (started in a session of its
    own), if it has any process left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, number)
