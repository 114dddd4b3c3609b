"""Benchmark limpyd against redis-limpyd 2.1.2 and raw redis-py, side by side, in one run.

    python bench/run.py                  # both backends, full run: tables, JSON, charts
    python bench/run.py --backend redis  # one backend
    python bench/run.py --smoke          # CI: few repetitions, checks only, exit 1 on failure

Run it with the Python where limpyd is installed (`pip install -e '.[dev]'`). It builds
redis-limpyd 2.1.2's virtualenv itself (bench/.venv-redis-limpyd), starts a private
redis-server (no persistence, free loopback port) for the real backend, and runs each
implementation in a worker process of its own (worker.py; protocol in harness.py): the
driver sends the same requests to the three workers in turn, so the three are measured on
the same server, the same data set, the same moment. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import workload as w  # noqa: E402

IMPLS = ("limpyd", "redis-limpyd", "raw")
LABELS = {"limpyd": "limpyd", "redis-limpyd": "redis-limpyd 2.1.2", "raw": "raw redis-py"}
REDIS_LIMPYD = "redis-limpyd==2.1.2"
DB_NUMBERS = {"limpyd": 1, "redis-limpyd": 2, "raw": 3}
REQUEST_TIMEOUT = 900.0
README = HERE / "README.md"
README_START, README_END = "<!-- latest-results:start -->", "<!-- latest-results:end -->"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# Environments -----------------------------------------------------------------------------


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def venv_requirements() -> list[str]:
    """redis-limpyd with the redis-py and fakeredis of this environment: the three
    implementations share the client code, so what differs is the ORM alone."""
    import fakeredis
    import redis

    return [
        REDIS_LIMPYD,
        f"redis=={redis.__version__}",
        f"fakeredis[lua]=={fakeredis.__version__}",
        # redis-limpyd reads its version with pkg_resources (gone from recent setuptools)
        "setuptools<70",
    ]


def ensure_venv(venv: Path, extra: list[str] | None = None) -> Path:
    """The Python of redis-limpyd's virtualenv, built (or rebuilt) when needed."""
    wanted = "\n".join(venv_requirements()) + "\n"
    marker = venv / "bench-requirements.txt"
    python = venv_python(venv)
    if not (python.exists() and marker.exists() and marker.read_text() == wanted):
        log(f"building {venv} ({REDIS_LIMPYD}) ...")
        reqs = venv_requirements()
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *reqs],
            check=True,
        )
        marker.write_text(wanted)
    if extra:
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *extra],
            check=True,
        )
    return python


# Workers ----------------------------------------------------------------------------------


class WorkerError(RuntimeError):
    pass


class Worker:
    """One implementation's process, spoken to in JSON lines."""

    def __init__(self, impl: str, python: str | Path, source: str | None = None) -> None:
        self.impl = impl
        self.stderr = tempfile.TemporaryFile(mode="w+")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        self.process = subprocess.Popen(
            [str(python), "-I", str(HERE / "worker.py"), impl, *([source] if source else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            bufsize=1,
            env=env,
            cwd=tempfile.gettempdir(),
        )

    def output(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-3000:]

    def request(self, cmd: str, **fields: Any) -> dict[str, Any]:
        assert self.process.stdin and self.process.stdout
        try:
            self.process.stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise WorkerError(f"{self.impl} worker died; its output:\n{self.output()}") from None
        ready, _, _ = select.select([self.process.stdout], [], [], REQUEST_TIMEOUT)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.process.kill()
            raise WorkerError(
                f"{self.impl} worker gave no answer to {cmd!r}; its output:\n{self.output()}"
            )
        reply = json.loads(line)
        if not reply.get("ok"):
            raise WorkerError(
                f"{self.impl}: {cmd} {fields}: {reply['error']}\n{reply['traceback']}"
            )
        return reply

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.request("quit")
                self.process.wait(timeout=10)
            except (WorkerError, OSError, subprocess.TimeoutExpired, ValueError):
                self.process.kill()
                self.process.wait()
        self.stderr.close()


# The server -------------------------------------------------------------------------------


class _Server:
    """A minimal throw-away redis-server, when limpyd_testing.server is not installed."""

    def __init__(self) -> None:
        import socket

        import redis

        executable = shutil.which("redis-server")
        if executable is None:
            raise SystemExit("redis-server not found on PATH (apt-get install redis-server)")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.host, self.port = "127.0.0.1", sock.getsockname()[1]
        self.directory = tempfile.mkdtemp(prefix="limpyd-bench-")
        self.process = subprocess.Popen(
            [executable, "--bind", self.host, "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", self.directory, "--databases", "16"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        client = redis.Redis(host=self.host, port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.version = client.info("server")["redis_version"]
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise SystemExit("redis-server did not start") from None
                time.sleep(0.02)
        client.close()
        self.url = f"redis://{self.host}:{self.port}/0"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


def start_server() -> Any:
    """A fresh redis-server on a free loopback port, without persistence."""
    try:
        from limpyd_testing.server import RedisServerExecutor
    except ImportError:
        return _Server()
    return RedisServerExecutor().start()


# One backend ------------------------------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace, pythons: dict[str, Path]) -> dict:
    """Everything measured on one backend, as a JSON-able dict."""
    server = None
    result: dict[str, Any] = {
        "backend": backend,
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "size": args.size,
            "reps": args.reps,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "build_batch": args.build_batch,
            "server_reps": args.server_reps,
            "smoke": args.smoke,
        },
        "impls": {},
        "ops": {key: {} for key in w.OP_KEYS},
        "build": {},
        "errors": [],
        "mismatches": [],
    }
    workers: dict[str, Worker] = {}
    result["load_average"] = [round(os.getloadavg()[0], 2)]
    try:
        url = ""
        if backend == "redis":
            server = start_server()
            result["server"] = f"redis-server {server.version} on {server.host}:{server.port}"
            log(f"[{backend}] started {result['server']}")
        else:
            import fakeredis

            result["server"] = f"fakeredis {fakeredis.__version__} (in each worker's process)"
        for impl in IMPLS:
            if impl not in pythons:
                result["impls"][impl] = {"available": False, "reason": "skipped (--skip)"}
                continue
            source = args.limpyd_src if impl == "limpyd" else None
            worker = Worker(impl, pythons[impl], source)
            info: dict[str, Any] = {"available": True}
            try:
                info["versions"] = worker.request("hello")["versions"]
                if impl == "limpyd":
                    info["source"] = args.limpyd_label or source_description(
                        info["versions"]["imported from"]
                    )
                if server is not None:
                    url = f"{server.url.rsplit('/', 1)[0]}/{DB_NUMBERS[impl]}"
                log(f"[{backend}] {impl}: writing the data set ...")
                setup = worker.request("setup", backend=backend, url=url, size=args.size)
                info["setup_seconds"] = round(setup["seconds"], 2)
                info["notes"] = setup["notes"]
                workers[impl] = worker
            except WorkerError as error:
                worker.close()
                info = {**info, "available": False, "reason": first_line(error)}
                info["detail"] = str(error)
                if not (impl == "redis-limpyd" and backend == "fake"):
                    result["errors"].append(f"{impl}: setup failed: {error}")
            result["impls"][impl] = info
        # Warm up, then count once in the steady state; compare the answers.
        for key in w.OP_KEYS:
            answers = {}
            for impl, worker in workers.items():
                entry = result["ops"][key].setdefault(impl, {})
                try:
                    worker.request("warmup", op=key, reps=args.warmup)
                    counted = worker.request("count", op=key)
                except WorkerError as error:
                    entry["error"] = first_line(error)
                    result["errors"].append(f"{impl} {key}: {error}")
                    continue
                entry.update(
                    round_trips=counted["round_trips"],
                    commands=counted["commands"],
                    names=counted["names"],
                )
                answers[impl] = counted["answer"]
                if backend == "redis" and args.server_reps:
                    try:
                        reply = worker.request("server_time", op=key, reps=args.server_reps)
                    except WorkerError as error:
                        entry["error"] = first_line(error)
                        result["errors"].append(f"{impl} {key}: {error}")
                        continue
                    entry["server_samples_us"] = reply["samples_us"]
                    entry["server_median_us"] = statistics.median(reply["samples_us"])
            if len({json.dumps(a, sort_keys=True) for a in answers.values()}) > 1:
                result["mismatches"].append({"op": key, "answers": answers})
        # Time: rounds of every op on every implementation, in a rotating order.
        per_round = max(1, args.reps // args.rounds)
        order = [impl for impl in IMPLS if impl in workers]
        for round_ in range(args.rounds):
            log(f"[{backend}] timing, round {round_ + 1}/{args.rounds} ...")
            rotated = order[round_ % len(order) :] + order[: round_ % len(order)]
            for key in w.OP_KEYS:
                for impl in rotated:
                    entry = result["ops"][key][impl]
                    if "error" in entry:
                        continue
                    try:
                        reply = workers[impl].request("time", op=key, reps=per_round)
                    except WorkerError as error:
                        entry["error"] = first_line(error)
                        result["errors"].append(f"{impl} {key}: {error}")
                        continue
                    entry.setdefault("samples_us", []).extend(reply["samples_us"])
            for impl in rotated:
                if impl == "raw":
                    continue
                reply = workers[impl].request("build", reps=per_round, batch=args.build_batch)
                entry = result["build"].setdefault(impl, {"samples_us": []})
                entry["samples_us"].extend(reply["samples_us"])
                entry["round_trips"] = reply["round_trips"]
        for key in w.OP_KEYS:
            for entry in result["ops"][key].values():
                summarize(entry)
        for entry in result["build"].values():
            summarize(entry)
        result["load_average"].append(round(os.getloadavg()[0], 2))
    finally:
        for worker in workers.values():
            worker.close()
        if server is not None:
            server.stop()
    return result


def export_commit(revision: str) -> tuple[str, str]:
    """`limpyd/` as committed at `revision`, in a temporary directory; and its label."""
    import io
    import tarfile

    def git(*argv: str) -> bytes:
        return subprocess.run(
            ["git", "-C", str(ROOT), *argv], capture_output=True, check=True
        ).stdout

    commit = git("rev-parse", "--short", f"{revision}^{{commit}}").decode().strip()
    directory = tempfile.mkdtemp(prefix=f"limpyd-{commit}-")
    with tarfile.open(fileobj=io.BytesIO(git("archive", commit, "limpyd"))) as archive:
        archive.extractall(directory, filter="data")
    return directory, f"commit {commit}"


def source_description(imported_from: str) -> str:
    """Where the measured limpyd comes from: the commit, and whether it had local changes."""
    package = Path(imported_from).resolve().parent
    if package.parent != ROOT:
        return str(package)

    def git(*argv: str) -> str:
        completed = subprocess.run(
            ["git", "-C", str(ROOT), *argv], capture_output=True, text=True, check=False
        )
        return completed.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return str(package)
    dirty = git("status", "--porcelain", "--", "limpyd")
    return f"working tree at {commit}" + (" with uncommitted changes" if dirty else "")


def first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def compact_json(result: dict) -> str:
    """The saved results: every sample (to 0.01 µs) and command name, one op per line."""

    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 2)
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        if isinstance(value, list):
            return [rounded(v) for v in value]
        return value

    return json.dumps(rounded(result), indent=1, separators=(",", ":")).replace("\n  ", "") + "\n"


def summarize(entry: dict[str, Any]) -> None:
    samples = entry.get("samples_us") or []
    if samples:
        entry["n"] = len(samples)
        entry["mean_us"] = statistics.fmean(samples)
        entry["median_us"] = statistics.median(samples)


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


# Checks and targets -------------------------------------------------------------------------


def ratio(result: dict, key: str, other: str, stat: str = "median_us") -> float | None:
    entries = result["ops"][key]
    mine, theirs = entries.get("limpyd", {}).get(stat), entries.get(other, {}).get(stat)
    if mine is None or not theirs:
        return None
    return mine / theirs


def checks(result: dict) -> list[str]:
    """What the smoke run asserts: every op ran, limpyd's round trips within budget, the
    implementations agree, building an instance sends nothing."""
    failures = list(result["errors"])
    for impl, info in result["impls"].items():
        if not info["available"]:
            if impl == "redis-limpyd" and result["backend"] == "fake":
                continue  # reported as not possible, with its reason
            if info.get("reason", "").startswith("skipped"):
                continue
            failures.append(f"{impl} did not run: {info.get('reason')}")
            continue
        for key in w.OP_KEYS:
            entry = result["ops"][key].get(impl, {})
            if not entry.get("n") or entry.get("round_trips") is None:
                failures.append(f"{impl} {key}: did not run ({entry.get('error', 'no samples')})")
    for key, _, _, budget in w.OPS:
        trips = result["ops"][key].get("limpyd", {}).get("round_trips")
        if budget is not None and trips is not None and trips > budget:
            failures.append(f"limpyd {key}: {trips} round trips, budget {budget}")
    for mismatch in result["mismatches"]:
        failures.append(f"{mismatch['op']}: the implementations disagree: {mismatch['answers']}")
    trips = result["build"].get("limpyd", {}).get("round_trips")
    if trips:
        failures.append(f"limpyd: building instances sent {trips} round trips")
    return failures


def targets(result: dict) -> list[tuple[bool | None, str]]:
    """The issue's targets, each (met?, text with the figures). None: not measurable here."""
    out: list[tuple[bool | None, str]] = []
    ops = result["ops"]
    over = [
        f"{key} {ops[key]['limpyd']['round_trips']} > {budget}"
        for key, _, _, budget in w.OPS
        if budget is not None and ops[key].get("limpyd", {}).get("round_trips", 0) > budget
    ]
    budgets = ", ".join(f"{key} {budget}" for key, _, _, budget in w.OPS if budget is not None)
    out.append(
        (
            not over,
            f"round trips within budget ({budgets})"
            + (f": over on {', '.join(over)}" if over else ""),
        )
    )
    several = [
        f"{key} {ops[key]['limpyd']['round_trips']}"
        for key, _, kind, _ in w.OPS
        if kind == "write" and ops[key].get("limpyd", {}).get("round_trips", 1) > 1
    ]
    out.append(
        (
            not several,
            "every write in 1 round trip" + (f": more on {', '.join(several)}" if several else ""),
        )
    )
    rl_available = result["impls"].get("redis-limpyd", {}).get("available")
    if result["backend"] == "redis" and rl_available:
        wanted = [key for key, _, kind, _ in w.OPS if kind == "write"] + ["instances_100"]
        slow = []
        for key in wanted:
            r = ratio(result, key, "redis-limpyd")
            if r is None or 1 / r < 5:
                slow.append(f"{key} {speedup(r)}")
        out.append(
            (
                not slow,
                "≥5x faster than redis-limpyd on every write and on instances()"
                + (f": missed on {', '.join(slow)}" if slow else ""),
            )
        )
        slower = [
            f"{key} {speedup(r)}"
            for key in w.OP_KEYS
            if (r := ratio(result, key, "redis-limpyd")) is not None and r > 1
        ]
        out.append(
            (
                not slower,
                "never slower than redis-limpyd"
                + (f": slower on {', '.join(slower)}" if slower else ""),
            )
        )
    elif result["backend"] == "redis":
        out.append((None, "vs redis-limpyd: not measured (redis-limpyd did not run)"))
    far = [
        f"{key} x{r:.2f}"
        for key in w.OP_KEYS
        if (r := ratio(result, key, "raw")) is not None and r > 2
    ]
    out.append(
        (
            not far,
            "within 2x of raw redis-py on every op"
            + (f": over on {', '.join(far)}" if far else ""),
        )
    )
    build = result["build"].get("limpyd", {}).get("median_us")
    rl_build = result["build"].get("redis-limpyd", {}).get("median_us")
    if build is not None:
        text = f"building one instance without I/O under 10 µs: {build:.2f} µs"
        if rl_build is not None:
            text += f" (redis-limpyd: {rl_build:.1f} µs)"
        out.append((build < 10, text))
    inst = ops["instances_100"].get("limpyd", {}).get("median_us")
    if inst is not None and result["backend"] == "redis":
        out.append(
            (
                inst < 2000,
                "instances() of 100 results with existence checks under 2 ms: "
                f"{inst / 1000:.2f} ms "
                f"(median; mean {ops['instances_100']['limpyd']['mean_us'] / 1000:.2f} ms)",
            )
        )
    return out


def speedup(r: float | None) -> str:
    return "n/a" if r is None else f"{1 / r:.2f}x"


# Report -----------------------------------------------------------------------------------


def fmt_us(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def fmt_ratio(result: dict, key: str, other: str) -> str:
    median, mean = ratio(result, key, other), ratio(result, key, other, "mean_us")
    if median is None:
        return "-"
    return f"{median:.2f} ({mean:.2f})"


def cell(entry: dict[str, Any], field: str) -> str:
    if "error" in entry:
        return "error"
    value = entry.get(field)
    return "-" if value is None else str(value)


def markdown(result: dict) -> str:
    backend = result["backend"]
    impls = result["impls"]
    present = [impl for impl in IMPLS if impls.get(impl, {}).get("available")]
    settings = result["settings"]
    lines = [
        f"# limpyd benchmark: {backend} backend, {result['date'][:10]}",
        "",
        f"- Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, "
        f"{result['machine']['system']}, Python {result['machine']['python']}",
        f"- Server: {result['server']}",
    ]
    if len(result.get("load_average", [])) == 2:
        before, after = result["load_average"]
        lines.append(
            f"- Load average (1 min) on the machine: {before} before the run, {after} after "
            "(other processes share it: compare ratios, not absolute times)"
        )
    for impl in IMPLS:
        info = impls.get(impl, {})
        if info.get("available"):
            v = info["versions"]
            extra = (
                f", fakeredis {v['fakeredis']}" if backend == "fake" and "fakeredis" in v else ""
            )
            origin = f" ({info['source']})" if info.get("source") else ""
            lines.append(
                f"- {LABELS[impl]}: {v['library']}{origin}, redis-py {v['redis-py']}{extra}"
            )
            lines += [f"  - note: {note}" for note in info.get("notes", [])]
        else:
            lines.append(f"- {LABELS[impl]}: **not possible** here: {info.get('reason')}")
    lines += [
        f"- Data set: {settings['size']:,} persons, {w.GROUPS} groups, written by each "
        "implementation itself; write operations restore it after each repetition (untimed)",
        f"- Timing: {settings['warmup']} warm-up runs per op, then {settings['rounds']} rounds "
        f"of {max(1, settings['reps'] // settings['rounds'])} timed runs per op and "
        "implementation, implementations interleaved (order rotated each round)",
        "- Round trips and commands: counted client-side on one warm run (a command alone or a "
        "pipeline/transaction = 1 round trip)",
        "- Data set written in: "
        + ", ".join(
            f"{impl} {impls[impl]['setup_seconds']:.1f} s"
            for impl in IMPLS
            if impls.get(impl, {}).get("setup_seconds") is not None
        ),
        "",
        "## Round trips and commands per op",
        "",
        "| op | limpyd round trips | budget | redis-limpyd round trips | raw round trips "
        "| limpyd commands | redis-limpyd commands | raw commands |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for key, title, _, budget in w.OPS:
        e = result["ops"][key]
        mine = e.get("limpyd", {})
        mark = ""
        if budget is not None and mine.get("round_trips") is not None:
            mark = " ✓" if mine["round_trips"] <= budget else " ✗"
        lines.append(
            f"| {title} | {cell(mine, 'round_trips')} | {budget if budget else '-'}{mark} "
            f"| {cell(e.get('redis-limpyd', {}), 'round_trips')} "
            f"| {cell(e.get('raw', {}), 'round_trips')} "
            f"| {cell(mine, 'commands')} | {cell(e.get('redis-limpyd', {}), 'commands')} "
            f"| {cell(e.get('raw', {}), 'commands')} |"
        )
    lines += [
        "",
        "## Time per op, µs (mean / median)",
        "",
        "Ratios: limpyd's time divided by the other's, median (mean); below 1, limpyd is faster.",
        "",
        "| op | limpyd | redis-limpyd | raw redis-py | limpyd / redis-limpyd | limpyd / raw |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for key, title, _, _ in w.OPS:
        e = result["ops"][key]
        cells = []
        for impl in IMPLS:
            entry = e.get(impl, {})
            if "error" in entry:
                cells.append("error")
            elif impl not in present:
                cells.append("-")
            else:
                cells.append(f"{fmt_us(entry.get('mean_us'))} / {fmt_us(entry.get('median_us'))}")
        lines.append(
            f"| {title} | {' | '.join(cells)} | {fmt_ratio(result, key, 'redis-limpyd')} "
            f"| {fmt_ratio(result, key, 'raw')} |"
        )
    if any("server_median_us" in e for entries in result["ops"].values() for e in entries.values()):
        lines += [
            "",
            "## Server time per op, µs (median)",
            "",
            f"What redis-server itself spent on the op (median of {settings['server_reps']} runs, "
            "from its SLOWLOG with a threshold of 0, measured apart from the timed runs; a "
            "script counts once, with the commands it called); the rest of the time above is "
            "the client's Python, the network and the waits between round trips.",
            "",
            "| op | limpyd | redis-limpyd | raw redis-py |",
            "|---|--:|--:|--:|",
        ]
        for key, title, _, _ in w.OPS:
            e = result["ops"][key]
            cells = [fmt_us(e.get(impl, {}).get("server_median_us")) for impl in IMPLS]
            lines.append(f"| {title} | {' | '.join(cells)} |")
    lines += ["", "## Pure-Python cost: one instance from a known pk, no I/O", ""]
    lines += ["| | µs per instance (mean / median) | round trips |", "|---|--:|--:|"]
    for impl in ("limpyd", "redis-limpyd"):
        entry = result["build"].get(impl)
        if entry and entry.get("n"):
            lines.append(
                f"| {LABELS[impl]} `Person.lazy_connect(pk)` | {entry['mean_us']:.2f} / "
                f"{entry['median_us']:.2f} | {entry['round_trips']} |"
            )
    lines += ["", "## Targets", ""]
    for met, text in targets(result):
        mark = {True: "met", False: "**missed**", None: "not measured"}[met]
        lines.append(f"- {mark}: {text}")
    lines += ["", "## Checks", ""]
    if result["mismatches"]:
        for mismatch in result["mismatches"]:
            lines.append(f"- **answers differ** on {mismatch['op']}: `{mismatch['answers']}`")
    else:
        lines.append(
            f"- the {len(present)} implementations returned the same answers on every op "
            "(results and the state each write left, compared after the counted run)"
        )
    for error in result["errors"]:
        lines.append(f"- **error**: {first_line(Exception(error))}")
    return "\n".join(lines) + "\n"


def chart(result_json: Path, png: Path, args: argparse.Namespace) -> str | None:
    """Draw the ratios with matplotlib: here if it is installed, else in the benchmark's own
    virtualenv (matplotlib is installed there, never in the project's environment)."""
    command = [str(HERE / "chart.py"), str(result_json), str(png)]
    try:
        import matplotlib  # noqa: F401

        python: Path | str = sys.executable
    except ImportError:
        python = ensure_venv(Path(args.venv))
        probe = subprocess.run([str(python), "-c", "import matplotlib"], capture_output=True)
        if probe.returncode != 0:
            ensure_venv(Path(args.venv), extra=["matplotlib"])
    completed = subprocess.run([str(python), *command], capture_output=True, text=True)
    if completed.returncode != 0:
        return completed.stderr.strip()[-2000:]
    return None


def update_readme(results: list[dict], files: list[Path]) -> None:
    text = README.read_text()
    if README_START not in text or README_END not in text:
        return
    parts = []
    for result, path in zip(results, files, strict=True):
        # The header, the times with their ratios and the targets; the rest is in the report.
        header, *sections = markdown(result).split("\n## ")
        kept = [s for s in sections if s.startswith(("Time per op", "Targets"))]
        where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        title = (
            f"### {result['backend']} backend, {result['date'][:10]} "
            f"(full report: `{where}`, chart: `{where.with_suffix('.png')}`)"
        )
        body = header.split("\n", 1)[1] + "".join("\n#### " + s for s in kept)
        parts.append(title + "\n" + body)
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    README.write_text(head + README_START + "\n\n" + "\n".join(parts) + "\n" + README_END + tail)


# Main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=("redis", "fake", "both"), default="both")
    parser.add_argument("--smoke", action="store_true", help="few repetitions; checks only")
    parser.add_argument("--reps", type=int, help="timed runs per op and implementation")
    parser.add_argument("--rounds", type=int, help="interleaved rounds the runs are split in")
    parser.add_argument("--warmup", type=int, help="untimed runs per op before counting/timing")
    parser.add_argument(
        "--server-reps", type=int, help="runs per op measuring the server's time (real Redis)"
    )
    parser.add_argument("--size", type=int, default=w.SIZE, help=argparse.SUPPRESS)
    parser.add_argument("--build-batch", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--venv", default=str(HERE / ".venv-redis-limpyd"))
    parser.add_argument(
        "--limpyd-commit",
        help="measure limpyd as committed at this revision (exported with git archive), not "
        "the working tree",
    )
    parser.add_argument(
        "--limpyd-src",
        help="a directory holding the limpyd package to measure instead of the installed one "
        "(e.g. an export of another commit)",
    )
    parser.add_argument("--skip", action="append", default=[], choices=IMPLS, help="leave out")
    parser.add_argument("--out", help="results directory (default bench/results; smoke: none)")
    parser.add_argument("--no-readme", action="store_true", help="do not update bench/README.md")
    parser.add_argument(
        "--render",
        nargs="+",
        metavar="RESULT.json",
        help="only write the reports, charts (and README section) again from saved results",
    )
    args = parser.parse_args(argv)
    defaults = (3, 1, 1) if args.smoke else (300, 5, 20)
    args.reps = args.reps or defaults[0]
    args.rounds = max(1, min(args.rounds or defaults[1], args.reps))
    args.warmup = args.warmup if args.warmup is not None else defaults[2]
    if args.server_reps is None:
        args.server_reps = 1 if args.smoke else 30
    if args.smoke:
        args.build_batch = 100
    started = time.perf_counter()
    if args.render:
        results = [json.loads(Path(path).read_text()) for path in args.render]
        files = [Path(path).resolve().with_suffix(".md") for path in args.render]
        for result, md in zip(results, files, strict=True):
            md.write_text(markdown(result))
            problem = chart(md.with_suffix(".json"), md.with_suffix(".png"), args)
            if problem:
                log(f"no chart: {problem}")
        if not args.no_readme:
            update_readme(results, files)
        return 0
    args.limpyd_label = None
    if args.limpyd_commit:
        args.limpyd_src, args.limpyd_label = export_commit(args.limpyd_commit)

    pythons: dict[str, Path] = {}
    for impl in IMPLS:
        if impl in args.skip:
            continue
        pythons[impl] = (
            ensure_venv(Path(args.venv)) if impl == "redis-limpyd" else Path(sys.executable)
        )

    try:
        return run(args, pythons, started)
    finally:
        if args.limpyd_commit:
            shutil.rmtree(args.limpyd_src, ignore_errors=True)


def run(args: argparse.Namespace, pythons: dict[str, Path], started: float) -> int:
    backends = ("redis", "fake") if args.backend == "both" else (args.backend,)
    out = Path(args.out) if args.out else (None if args.smoke else HERE / "results")
    results, files, failures = [], [], []
    for backend in backends:
        result = run_backend(backend, args, pythons)
        results.append(result)
        report = markdown(result)
        print(report, flush=True)
        failures += [f"[{backend}] {failure}" for failure in checks(result)]
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            stem = out / f"{result['date'][:10]}-{backend}"
            stem.with_suffix(".md").write_text(report)
            stem.with_suffix(".json").write_text(compact_json(result))
            problem = chart(stem.with_suffix(".json"), stem.with_suffix(".png"), args)
            if problem:
                log(f"[{backend}] no chart: {problem}")
            files.append(stem.with_suffix(".md"))
            log(f"[{backend}] written: {stem}.md, .json, .png")
    if out is not None and not args.smoke and not args.no_readme and len(files) == len(results):
        update_readme(results, files)
    elapsed = time.perf_counter() - started
    if failures:
        log(f"FAILED ({elapsed:.0f} s):\n" + "\n".join(f"- {f}" for f in failures))
        return 1
    log(
        f"bench: every op ran on every implementation, limpyd within its round-trip budgets "
        f"({elapsed:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
