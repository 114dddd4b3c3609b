"""Many concurrent writers on one server: nothing lost, nothing duplicated, indexes exact.

8 workers (processes on the real server, threads on fakeredis, which lives in this process)
run at the same time, each through its own connection. `LIMPYD_STRESS_OPS` sets the
operations per worker (bounded by default so the suite runs in CI; e.g.
`LIMPYD_STRESS_OPS=2000` for the full run). The figures (operations per second, outcomes,
conflict retries) are printed in the terminal summary.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import threading
from collections.abc import Callable
from typing import Any

import pytest

from limpyd_testing import integrity

from .conftest import WORKERS, stress_ops
from .workload import (
    check_hot_spot,
    check_logs,
    counting_conflicts,
    hot_process_main,
    make_models,
    process_main,
    run_hot_spot,
    run_worker,
    summary,
)

pytestmark = pytest.mark.slow


def _run_processes(target: Callable[..., None], args: Callable[[int], tuple], timeout: float):
    """Start WORKERS processes `target(*args(n), barrier, queue)`; their logs. Forked where
    possible: cheaper than spawning 8 interpreters that import everything again."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    barrier = context.Barrier(WORKERS)
    results = context.Queue()
    processes = [
        context.Process(target=target, args=(*args(n), barrier, results), daemon=True)
        for n in range(WORKERS)
    ]
    for process in processes:
        process.start()
    logs: list[Any] = []
    try:
        for _ in processes:
            logs.append(results.get(timeout=timeout))
    except queue_module.Empty:
        codes = [process.exitcode for process in processes]
        pytest.fail(f"only {len(logs)} of {WORKERS} workers reported (exit codes {codes})")
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():  # pragma: no cover - a stuck worker
                process.kill()
                process.join()
    return sorted(logs, key=lambda log: log.worker)


def _run_threads(work: Callable[[int, Callable[[], None]], Any]) -> list[Any]:
    """Run `work(n, ready)` in WORKERS threads; their logs. Threads share one process, so
    the conflict count is the total, given to the first log."""
    barrier = threading.Barrier(WORKERS)
    logs: list[Any] = [None] * WORKERS

    def run(number: int) -> None:
        logs[number] = work(number, lambda: barrier.wait(timeout=60))

    with counting_conflicts() as conflicts:
        threads = [threading.Thread(target=run, args=(n,)) for n in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert None not in logs, "a worker thread died"
    logs[0].retries = conflicts.value
    return logs


def _how(backend: str) -> str:
    return f"[{backend}] {WORKERS} {'processes' if backend == 'redis' else 'threads'}"


def test_random_workload(limpyd_backend, limpyd_database_factory, stress_report):
    """Creations racing on unique values, updates, relations and deletions of instances
    others write to: the checks of `workload.check_logs`, and the integrity checker."""
    ops, seed = stress_ops(), 7
    main = limpyd_database_factory()
    models = make_models(main)
    if limpyd_backend == "redis":
        url = main.backend.url
        logs = _run_processes(process_main, lambda n: (url, n, seed * 100 + n, ops), 120 + ops)
    else:
        databases = [limpyd_database_factory() for _ in range(WORKERS)]
        logs = _run_threads(
            lambda n, ready: run_worker(databases[n], n, seed * 100 + n, ops, ready)
        )

    figures = summary(logs, limpyd_backend, WORKERS, ops)
    stress_report(
        f"{_how(limpyd_backend)} x {ops} random operations: {figures['operations']} in "
        f"{figures['seconds']} s = {figures['ops/s']} ops/s; ok {figures['ok']}, refused "
        f"(unique) {figures['refused (unique)']}, does not exist {figures['does not exist']}, "
        f"conflict retries {figures['conflict retries']}, conflict errors "
        f"{figures['conflict errors']}"
    )

    problems = check_logs(logs, models)
    problems += [f"integrity: {problem}" for problem in integrity.check(*models.values())]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])
    # The workload really raced: values collided, deletions met other workers' writes.
    assert figures["refused (unique)"] > 0
    assert figures["does not exist"] > 0
    assert figures["ok"] > figures["operations"] / 3


def test_hot_spot(limpyd_backend, limpyd_database_factory, stress_report):
    """Every worker writes the same instance's indexed fields: writes made stale are
    computed again, none is lost or applied twice."""
    # Each write of an indexed multi-value field reads and compares its whole value: past a
    # few hundred items per worker this measures list length more than contention.
    ops = min(max(stress_ops() // 2, 20), 300)
    main = limpyd_database_factory()
    Person = make_models(main)["Person"]
    person = Person(name="hot", age=0)
    pk = person.pk.get()
    if limpyd_backend == "redis":
        url = main.backend.url
        logs = _run_processes(hot_process_main, lambda n: (url, n, pk, ops), 120 + ops)
    else:
        databases = [limpyd_database_factory() for _ in range(WORKERS)]
        logs = _run_threads(lambda n, ready: run_hot_spot(databases[n], n, pk, ops, ready))

    attempts = sum(log.attempts for log in logs)
    seconds = max(log.ended for log in logs) - min(log.started for log in logs)
    retries = sum(log.retries for log in logs)
    errors = sum(log.conflict_errors for log in logs)
    stress_report(
        f"{_how(limpyd_backend)} x {ops} writes to one instance: {attempts} in "
        f"{seconds:.2f} s = {attempts / seconds:.0f} ops/s; conflict retries {retries}, "
        f"conflict errors {errors}"
    )
    problems = check_hot_spot(logs, person)
    problems += [f"integrity: {problem}" for problem in integrity.check(Person)]
    assert not problems, "\n".join(problems[:40])
    assert retries > 0  # the writers really met
