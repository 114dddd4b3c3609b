"""`FaultProxy`: a TCP proxy on loopback that cuts connections at chosen points.

Clients connect to the proxy, which forwards each RESP request to the server and each reply
back. It parses both streams, so a fault always falls at a known point of one request:

- `before`: the request is not forwarded at all, then both connections are closed;
- `mid`: a strict prefix of the request is forwarded, then both are closed (Redis never
  runs an incomplete command);
- `after`: the whole request is forwarded and the proxy waits for its reply, which it drops
  before closing both connections: the server ran the command, the client never hears it.

Faults are chosen at random (`rate`, `kinds`, a seeded generator) or planned for the next
matching request (`cut_next`). `down()` makes the server unreachable through the proxy
(every connection is closed at once) until `up()`. Every fault is recorded in `faults`.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["KINDS", "Fault", "FaultProxy", "request_args", "resp_end"]

KINDS = ("before", "mid", "after")

#: Decides whether a request (its RESP arguments) may be faulted.
Matcher = Callable[[list[bytes]], bool]


def resp_end(buffer: bytes | bytearray, start: int = 0) -> int | None:
    """The offset just after the RESP2/RESP3 value starting at `start`; None if incomplete."""
    if start >= len(buffer):
        return None
    line_end = buffer.find(b"\r\n", start)
    if line_end < 0:
        return None
    kind = buffer[start : start + 1]
    if kind in (b"+", b"-", b":", b"_", b",", b"#", b"("):
        return line_end + 2
    size = int(buffer[start + 1 : line_end])
    if kind in (b"$", b"!", b"="):
        if size < 0:
            return line_end + 2
        end = line_end + 2 + size + 2
        return end if len(buffer) >= end else None
    if kind in (b"*", b"~", b">", b"%", b"|"):
        count = size * 2 if kind in (b"%", b"|") else size
        position: int | None = line_end + 2
        for _ in range(max(count, 0)):
            assert position is not None
            position = resp_end(buffer, position)
            if position is None:
                return None
        if kind == b"|":  # attributes precede the value they describe
            assert position is not None
            return resp_end(buffer, position)
        return position
    raise ValueError(f"unexpected RESP type byte {kind!r} at {start}")


def request_args(request: bytes) -> list[bytes]:
    """The arguments of a RESP request (an array of bulk strings)."""
    line_end = request.index(b"\r\n")
    count = int(request[1:line_end])
    args, position = [], line_end + 2
    for _ in range(count):
        size_end = request.index(b"\r\n", position)
        size = int(request[position + 1 : size_end])
        args.append(request[size_end + 2 : size_end + 2 + size])
        position = size_end + 2 + size + 2
    return args


@dataclass(frozen=True)
class Fault:
    """A cut the proxy made: its kind, and the request it cut (its arguments)."""

    kind: str
    args: tuple[bytes, ...]

    @property
    def command(self) -> str:
        return self.args[0].decode(errors="replace").upper() if self.args else ""

    def __str__(self) -> str:
        head = b" ".join(arg[:24] for arg in self.args[:4]).decode(errors="replace")
        return f"{self.kind}: {head}"


class _Link:
    """One client connection and its server connection, with a thread each way."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server = server
        self.lock = threading.Lock()
        self.forwarded = 0  # requests sent to the server
        self.answered = 0  # replies received from the server
        self.cut_at: int | None = None  # drop the reply of this request, then cut
        self.cut_request: tuple[bytes, ...] = ()
        self.closed = threading.Event()
        self.threads = [
            threading.Thread(target=self._upstream, daemon=True),
            threading.Thread(target=self._downstream, daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def cut(self) -> None:
        with self.lock:
            if self.closed.is_set():
                return
            self.closed.set()
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _upstream(self) -> None:
        buffer = bytearray()
        try:
            while not self.closed.is_set():
                data = self.client.recv(65536)
                if not data:
                    return
                buffer += data
                while (end := resp_end(buffer)) is not None:
                    request = bytes(buffer[:end])
                    del buffer[:end]
                    args = request_args(request)
                    kind = self.proxy._decide(args)
                    if kind == "before":
                        self.proxy._record(kind, args)
                        return
                    if kind == "mid":
                        size = self.proxy._prefix_size(len(request))
                        self.server.sendall(request[:size])
                        self.proxy._record(kind, args)
                        return
                    with self.lock:
                        if kind == "after":
                            self.cut_at, self.cut_request = self.forwarded, tuple(args)
                        self.forwarded += 1
                    self.server.sendall(request)
        except OSError:
            return
        finally:
            self.cut()

    def _downstream(self) -> None:
        buffer = bytearray()
        try:
            while not self.closed.is_set():
                data = self.server.recv(65536)
                if not data:
                    return
                buffer += data
                while (end := resp_end(buffer)) is not None:
                    reply = bytes(buffer[:end])
                    del buffer[:end]
                    with self.lock:
                        index, self.answered = self.answered, self.answered + 1
                        drop = self.cut_at is not None and index >= self.cut_at
                    if drop:
                        self.proxy._record("after", list(self.cut_request))
                        return
                    self.client.sendall(reply)
        except OSError:
            return
        finally:
            self.cut()


class FaultProxy:
    """A loopback TCP proxy to `target` that cuts connections (see the module docstring)."""

    def __init__(
        self, target_host: str, target_port: int, *, seed: int = 0, host: str = "127.0.0.1"
    ) -> None:
        self.target = (target_host, target_port)
        self.rng = random.Random(seed)
        self.rate = 0.0
        self.kinds: tuple[str, ...] = KINDS
        #: Only requests it accepts are faulted at random (all of them when None).
        self.matcher: Matcher | None = None
        self.faults: list[Fault] = []
        self.connections = 0
        self._plan: list[tuple[str, Matcher | None]] = []
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._down = False
        self._stopping = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(64)
        self.host, self.port = self._listener.getsockname()[:2]
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}"

    # Control --------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._acceptor.start()
        return self

    def cut_next(self, kind: str, matcher: Matcher | None = None) -> None:
        """Make the next request accepted by `matcher` (any if None) meet fault `kind`."""
        if kind not in KINDS:
            raise ValueError(kind)
        with self._lock:
            self._plan.append((kind, matcher))

    def planned(self) -> int:
        """How many planned faults have not happened yet."""
        with self._lock:
            return len(self._plan)

    def down(self) -> None:
        """Cut every connection, and every new one at once, until `up()`."""
        with self._lock:
            self._down = True
            links = list(self._links)
        for link in links:
            link.cut()

    def up(self) -> None:
        with self._lock:
            self._down = False

    def take_faults(self) -> list[Fault]:
        """The faults recorded since the last call."""
        with self._lock:
            faults, self.faults = self.faults, []
        return faults

    def close(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        if self._acceptor.is_alive():
            self._acceptor.join(timeout=10)
        with self._lock:
            links, self._links = list(self._links), []
        for link in links:
            link.cut()
        for link in links:
            for thread in link.threads:
                if thread.is_alive():
                    thread.join(timeout=10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Internals ------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                down = self._down
            if down:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            link = _Link(self, client, server)
            with self._lock:
                self._links = [known for known in self._links if not known.closed.is_set()]
                self._links.append(link)
                self.connections += 1
            link.start()

    def _decide(self, args: list[bytes]) -> str | None:
        with self._lock:
            if self._down:
                return "before"
            for position, (kind, matcher) in enumerate(self._plan):
                if matcher is None or matcher(args):
                    del self._plan[position]
                    return kind
            if self.rate and (self.matcher is None or self.matcher(args)):
                if self.rng.random() < self.rate:
                    return self.rng.choice(self.kinds)
        return None

    def _prefix_size(self, size: int) -> int:
        with self._lock:
            return self.rng.randint(1, size - 1)

    def _record(self, kind: str, args: list[bytes]) -> None:
        with self._lock:
            self.faults.append(Fault(kind, tuple(args)))
