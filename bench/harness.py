"""The worker side of the benchmark's JSON protocol. Standard library only.

A worker is one process running one implementation (limpyd, redis-limpyd or raw redis-py).
The driver (run.py) writes one JSON request per line on its stdin and reads one JSON reply
per line on its stdout; anything the implementation prints goes to stderr, never into the
protocol. Requests (`{"cmd": ..., ...}`) and their replies (`{"ok": true, ...}`, or
`{"ok": false, "error": ..., "traceback": ...}`):

- `hello`: `impl`, `versions` (python, redis-py, the library and where it was imported from);
- `setup` (`backend`: "redis" | "fake", `url`, `size`): connect, empty the database and write
  the data set; `seconds`, `notes` (what had to be adapted, e.g. a version check);
- `ops`: the operation keys this implementation runs;
- `warmup` (`op`, `reps`): run an operation untimed;
- `count` (`op`): run it once, counting round trips and commands; `round_trips`,
  `commands`, `names`, and `answer`: the result and the state it left, normalized so that the
  three implementations can be compared;
- `time` (`op`, `reps`): `samples_us`, one per repetition: the time of the operation alone
  (its preparation and clean-up are outside the timed region);
- `server_time` (`op`, `reps`), real Redis only: the time the server spent on the operation,
  `samples_us`, from its SLOWLOG (threshold 0 while measuring; top-level commands only: a
  script counts once, with what it called); not part of the timed runs;
- `build` (`reps`, `batch`): the pure-Python cost of building one instance from a known pk,
  without I/O: `samples_us` (per instance), `round_trips` sent while building (0 expected);
- `quit`.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from counting import Counter

__all__ = ["Op", "Workload", "serve"]


@dataclass
class Op:
    """One operation: `run(state)` is what is timed and counted.

    `prepare(seq)` builds its input (untimed; `seq` is unique per repetition), `answer(state,
    result)` normalizes its result and the state it left (untimed, uncounted, only in `count`),
    `cleanup(state, result)` restores the data set (untimed).
    """

    run: Callable[[Any], Any]
    prepare: Callable[[int], Any] | None = None
    answer: Callable[[Any, Any], Any] | None = None
    cleanup: Callable[[Any, Any], None] | None = None


class Workload:
    """What an implementation provides to the harness."""

    impl = ""

    def versions(self) -> dict[str, str]:
        raise NotImplementedError

    def setup(self, backend: str, url: str, size: int) -> list[str]:
        """Connect, empty the database, write the data set; notes on what was adapted."""
        raise NotImplementedError

    @property
    def ops(self) -> dict[str, Op]:
        raise NotImplementedError

    def counter(self) -> Counter:
        """A counter (not installed yet) on the client this implementation sends through."""
        raise NotImplementedError

    def start_counting(self, counter: Counter) -> None:
        """Install `counter` (and anything the implementation needs counted besides)."""
        counter.install()

    def stop_counting(self, counter: Counter) -> None:
        counter.uninstall()

    def redis_client(self) -> Any:
        """The redis-py client this implementation sends through."""
        return self.counter().client

    def build_instance(self, pk: str) -> Any:
        """One instance from a pk known to exist, without I/O (None: not applicable)."""
        return None


class Worker:
    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.seq = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _op(self, name: str) -> Op:
        try:
            return self.workload.ops[name]
        except KeyError:
            raise ValueError(f"{self.workload.impl}: unknown operation {name!r}") from None

    def _once(self, op: Op) -> None:
        state = op.prepare(self.next_seq()) if op.prepare else None
        result = op.run(state)
        if op.cleanup:
            op.cleanup(state, result)

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request["cmd"]
        if cmd == "hello":
            return {"impl": self.workload.impl, "versions": self.workload.versions()}
        if cmd == "setup":
            started = time.perf_counter()
            notes = self.workload.setup(request["backend"], request.get("url", ""), request["size"])
            # The data set stays: keep the collector from scanning it again and again.
            gc.collect()
            gc.freeze()
            return {"seconds": time.perf_counter() - started, "notes": notes}
        if cmd == "ops":
            return {"ops": list(self.workload.ops)}
        if cmd == "warmup":
            op = self._op(request["op"])
            for _ in range(request["reps"]):
                self._once(op)
            return {}
        if cmd == "count":
            op = self._op(request["op"])
            state = op.prepare(self.next_seq()) if op.prepare else None
            counter = self.workload.counter()
            self.workload.start_counting(counter)
            try:
                result = op.run(state)
            finally:
                self.workload.stop_counting(counter)
            answer = op.answer(state, result) if op.answer else None
            if op.cleanup:
                op.cleanup(state, result)
            return {
                "round_trips": counter.round_trips,
                "commands": counter.commands,
                "names": counter.names,
                "answer": answer,
            }
        if cmd == "time":
            op = self._op(request["op"])
            samples = []
            clock = time.perf_counter_ns
            for _ in range(request["reps"]):
                state = op.prepare(self.next_seq()) if op.prepare else None
                start = clock()
                result = op.run(state)
                samples.append((clock() - start) / 1000)
                if op.cleanup:
                    op.cleanup(state, result)
            return {"samples_us": samples}
        if cmd == "server_time":
            return {"samples_us": self.server_time(self._op(request["op"]), request["reps"])}
        if cmd == "build":
            pks = [str(1 + i % 1000) for i in range(request["batch"])]
            build = self.workload.build_instance
            if build(pks[0]) is None:
                return {"samples_us": [], "round_trips": None}
            counter = self.workload.counter()
            self.workload.start_counting(counter)
            try:
                for pk in pks:
                    build(pk)
            finally:
                self.workload.stop_counting(counter)
            samples = []
            clock = time.perf_counter_ns
            for _ in range(request["reps"]):
                start = clock()
                for pk in pks:
                    build(pk)
                samples.append((clock() - start) / 1000 / len(pks))
            return {"samples_us": samples, "round_trips": counter.round_trips}
        raise ValueError(f"unknown request {cmd!r}")

    def server_time(self, op: Op, reps: int) -> list[float]:
        client = self.workload.redis_client()
        before = client.config_get("slowlog-*")
        client.config_set("slowlog-max-len", 100000)
        client.config_set("slowlog-log-slower-than", 0)
        samples = []
        try:
            for _ in range(reps):
                state = op.prepare(self.next_seq()) if op.prepare else None
                client.slowlog_reset()
                result = op.run(state)
                entries = client.slowlog_get(-1)
                samples.append(
                    float(
                        sum(
                            entry["duration"]
                            for entry in entries
                            if _client_of(entry) != "?:0"  # called by a script
                            and not _command_of(entry).lower().startswith("slowlog")
                        )
                    )
                )
                if op.cleanup:
                    op.cleanup(state, result)
        finally:
            for name, value in before.items():
                client.config_set(name, value)
            client.slowlog_reset()
        return samples


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value or "")


def _client_of(entry: dict[str, Any]) -> str:
    return _text(entry.get("client_address"))


def _command_of(entry: dict[str, Any]) -> str:
    return _text(entry.get("command"))


def serve(workload: Workload) -> None:
    """Answer the driver's requests until `quit` or end of input."""
    # The protocol owns the real stdout; prints from the libraries go to stderr.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr
    worker = Worker(workload)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if request.get("cmd") == "quit":
            protocol.write(json.dumps({"ok": True}) + "\n")
            break
        try:
            reply = {"ok": True, **worker.handle(request)}
        except Exception as error:  # reported to the driver, which decides
            reply = {
                "ok": False,
                "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc(),
            }
        protocol.write(json.dumps(reply, default=str) + "\n")
