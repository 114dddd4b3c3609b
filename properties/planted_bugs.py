"""Planted bugs: a measure of the machines. How many one-line mistakes of the kind a developer
makes do the state machines of `properties/` catch (and, with `--tests`, `tests/`)?

Each `Mutation` replaces one text (`old`, which must occur exactly once) by another in one
file of a temporary copy of the repository (limpyd/, limpyd_testing/, properties/, tests/,
pyproject.toml, and README.md whose examples tests/ runs); the suite then runs in that copy
(it is first on PYTHONPATH and the current directory, so it is what gets imported, and
Hypothesis starts with an empty example database):

    python -m pytest properties --limpyd-backend=fake --hypothesis-profile=ci -x -q \
        -p no:cacheprovider --ignore=properties/test_broken_builds.py

(test_broken_builds.py plants bugs of its own by monkeypatching and asserts a machine fails:
a planted bug in the same code makes those tests fail for reasons that say nothing.)

Only the answer counts, not the smallest failing example: Hypothesis does not shrink in these
runs (a plugin written into the copy takes the shrink phase out of the profiles; `--shrink`
keeps it, several times slower on caught bugs).

A failing run has *caught* the bug; a passing one let it *survive*. The score is caught /
(caught + survived). A mutation whose `old` text is no longer in the code (the code moved
on) is reported *not applicable*, one whose text occurs several times *ambiguous*: re-anchor
them. The unchanged copy is run first (`--no-baseline` skips it): a suite that fails
without any bug would catch everything.

    python -m properties.planted_bugs                     # every mutation, properties/
    python -m properties.planted_bugs --only NAME --only NAME2 --jobs 2
    python -m properties.planted_bugs --tests             # tests/ too, to compare
    python -m properties.planted_bugs --suite tests       # tests/ only
    python -m properties.planted_bugs --list              # the mutations, and whether they apply

Options: `--backend fake|redis|both` (default fake), `--jobs N` (mutants run at once,
default 1), `--seed N` (the `--hypothesis-seed` of the first run, default 0, so a measure
repeats; `random` for none), `--runs R` (each suite runs up to R times per mutant, seeds
N, N+1, ..., until one run catches the bug; the baseline must pass all R), `--timeout S` per
suite run (default 1200; a run that times out is reported, not scored). A mutant of
properties/ takes from a few seconds (caught early) to a minute (survived, the whole `ci`
profile) on a free core. Exit status 1 when the baseline fails or a mutation is ambiguous.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: What a mutant's copy of the repository holds.
COPIED = ("limpyd", "limpyd_testing", "properties", "tests", "docs", "pyproject.toml", "README.md")
SUITES = ("properties", "tests")
#: Tests that monkeypatch bugs of their own and assert a machine fails: not run here.
BROKEN_BUILDS = "properties/test_broken_builds.py"
#: A pytest plugin written into each copy unless `--shrink`: the profiles the conftests
#: registered, without shrinking (loaded before Hypothesis's own pytest_configure loads one).
NO_SHRINK_PLUGIN = "limpyd_planted_no_shrink"
NO_SHRINK_SOURCE = """\
import pytest
from hypothesis import Phase, settings

NO_SHRINK = [phase for phase in Phase if phase.name not in ("shrink", "explain")]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    for name in ("default", "ci", "thorough"):
        try:
            profile = settings.get_profile(name)
        except Exception:
            continue
        settings.register_profile(name, profile, phases=NO_SHRINK)
"""

CAUGHT, SURVIVED, NOT_APPLICABLE, AMBIGUOUS = "caught", "survived", "not applicable", "ambiguous"
BROKEN, TIMEOUT = "broken", "timeout"


@dataclass(frozen=True)
class Mutation:
    """One planted bug: `old` replaced by `new` in `file` (relative to the repository)."""

    name: str
    file: str
    old: str
    new: str
    description: str

    def occurrences(self, root: Path) -> int:
        """How many times `old` occurs in the file under `root` (0 if there is no file)."""
        path = root / self.file
        return path.read_text().count(self.old) if path.is_file() else 0

    def plant(self, root: Path) -> None:
        """Apply the replacement in the copy at `root`; it must match exactly once."""
        count = self.occurrences(root)
        if count != 1:
            raise ValueError(f"{self.name}: {self.file} holds the old text {count} times, not 1")
        path = root / self.file
        path.write_text(path.read_text().replace(self.old, self.new))


# The bugs ------------------------------------------------------------------------------------
# Each is anchored on the current code: keep `old` short but unique, so that it is easy to
# re-anchor when that code changes.

MUTATIONS: tuple[Mutation, ...] = (
    # Range bounds
    Mutation(
        "text-gt-includes-value",
        "limpyd/indexes.py",
        r'return "[" + escaped + "\x00\x01", "+"',
        r'return "[" + escaped + "\x00\x00", "+"',
        "TextRangeIndex: __gt also matches the value itself (the bound of __gte)",
    ),
    Mutation(
        "text-lt-includes-value",
        "limpyd/indexes.py",
        r'return "-", "(" + escaped + "\x00\x00"',
        r'return "-", "(" + escaped + "\x00\x01"',
        "TextRangeIndex: __lt also matches the value itself (the bound of __lte)",
    ),
    Mutation(
        "number-gt-includes-value",
        "limpyd/indexes.py",
        '"gt": ("(" + score, "+inf"),',
        '"gt": (score, "+inf"),',
        "NumberRangeIndex: __gt also matches the value itself",
    ),
    Mutation(
        "number-lte-excludes-value",
        "limpyd/indexes.py",
        '"lte": ("-inf", score),',
        '"lte": ("-inf", "(" + score),',
        "NumberRangeIndex: __lte misses the value itself",
    ),
    Mutation(
        "startswith-bound-too-far",
        "limpyd/text.py",
        "data[-1] += 1",
        "data[-1] += 2",
        "__startswith: the upper bound of the prefix range skips one byte too far",
    ),
    # Uniqueness
    Mutation(
        "unique-equal-wrong-key",
        "limpyd/indexes.py",
        'return ("set", self.value_key(value, hkey), "", "")',
        'return ("set", self.base_key(hkey), "", "")',
        "EqualIndex: the uniqueness check looks in the index's base key, not the value's set",
    ),
    Mutation(
        "unique-lex-ignores-hash-key",
        "limpyd/indexes.py",
        'return ("lex", self.base_key(hkey), low, high)',
        'return ("lex", self.base_key(), low, high)',
        "TextRangeIndex: uniqueness of a HashField value checked in the key of no hash key",
    ),
    Mutation(
        "unique-equal-ignores-hash-key",
        "limpyd/indexes.py",
        "def _unique_check(self, value: str, hkey: str | None) -> tuple[str, str, str, str]:\n"
        '        return ("set", self.value_key(value, hkey), "", "")',
        "def _unique_check(self, value: str, hkey: str | None) -> tuple[str, str, str, str]:\n"
        '        return ("set", self.value_key(value, None), "", "")',
        "EqualIndex: uniqueness of a HashField value checked across all its hash keys",
    ),
    Mutation(
        "unique-number-by-text",
        "limpyd/indexes.py",
        'return ("set", self.exact_key(value, hkey), "", "")',
        'return ("set", f"{self.base_key(hkey)}:{value}", "", "")',
        "NumberRangeIndex: uniqueness checked on the text, not the number ('1e2' and '100' differ)",
    ),
    Mutation(
        "unique-first-value-only",
        "limpyd/plans.py",
        "for hkey, value in dict.fromkeys(new_items):",
        "for hkey, value in dict.fromkeys(new_items[:1]):",
        "only the first new value of a multi-value field is checked for uniqueness",
    ),
    Mutation(
        "together-checked-on-create-only",
        "limpyd/plans.py",
        'write.unique(label, values, ("set", after, "", ""))',
        'before is None and write.unique(label, values, ("set", after, "", ""))',
        "unique_together: the combination is checked when it is first set, not on update",
    ),
    Mutation(
        "together-key-ambiguous",
        "limpyd/keys.py",
        'encoded = "".join(f"{len(value)}:{value}" for value in values)',
        'encoded = ":".join(values)',
        "unique_together: values joined with ':' without lengths ('a:b'+'c' == 'a'+'b:c')",
    ),
    Mutation(
        "unique-holder-expiry-on-writer",
        "limpyd/scripts/apply.lua",
        "if expired(expiry, holder) then",
        "if expired(expiry, allowed) then",
        "apply.lua 'U': the expiry of the holder of a unique value is tested on the writer",
    ),
    Mutation(
        "native-unique-holder-expiry-on-writer",
        "limpyd/backends/native/apply.py",
        "if server.expired(expiry, holder):",
        "if server.expired(expiry, allowed):",
        "native apply: the expiry of the holder of a unique value is tested on the writer",
    ),
    # Expiry
    Mutation(
        "native-reference-to-expired-accepted",
        "limpyd/backends/native/apply.py",
        'gone = call(b"SISMEMBER", collection, pk) == 0 or server.expired(expiry, pk)',
        'gone = call(b"SISMEMBER", collection, pk) == 0',
        "native apply: a relation to an instance whose time has passed is accepted",
    ),
    Mutation(
        "native-write-to-expired-accepted",
        "limpyd/backends/native/apply.py",
        "if present and server.expired(expiry, pk):",
        "if False:",
        "native apply: a write to an expired, unreaped instance goes through",
    ),
    Mutation(
        "reference-to-expired-accepted",
        "limpyd/scripts/apply.lua",
        "local gone = redis.call('SISMEMBER', collection, pk) == 0 or expired(expiry, pk)",
        "local gone = redis.call('SISMEMBER', collection, pk) == 0",
        "apply.lua reference: a relation to an instance whose time has passed is accepted",
    ),
    Mutation(
        "write-to-expired-accepted",
        "limpyd/scripts/apply.lua",
        "if present and expired(expiry, pk) then return {'EXPIRED'} end",
        "",
        "apply.lua 'X'/'A': a write to an expired, unreaped instance goes through",
    ),
    # Index entries
    Mutation(
        "index-removal-skipped",
        "limpyd/plans.py",
        "            write.call(*remove)",
        "            pass",
        "an update adds the new index entries but leaves the old ones",
    ),
    Mutation(
        "unlink-keeps-index-entries",
        "limpyd/contrib/related.py",
        "removes = [remove for index in self.indexes for _, remove in index.entries(pk, _R)]",
        "removes = []",
        "a deletion unlinks the references to it but not their index entries",
    ),
    Mutation(
        "unlink-srem-unreported",
        "limpyd/scripts/apply.lua",
        "return redis.call('SREM', key, pk) == 1",
        "return redis.call('SREM', key, pk) == 0",
        "apply.lua: a set reference removed by a deletion is reported as absent (its index "
        "entries stay)",
    ),
    Mutation(
        "unlink-lrem-first-only",
        "limpyd/scripts/apply.lua",
        "return redis.call('LREM', key, 0, pk) > 0",
        "return redis.call('LREM', key, 1, pk) > 0",
        "M2MListField: a deletion removes only the first of repeated references",
    ),
    Mutation(
        "delete-keeps-expiry-time",
        "limpyd/model.py",
        '"last": [("SREM", meta.collection_key, pk), ("ZREM", meta.expiry_key, pk)],',
        '"last": [("SREM", meta.collection_key, pk)],',
        "a deletion leaves the instance's expiry time behind (a new instance with its pk "
        "inherits it)",
    ),
    Mutation(
        "delete-srem-wrong-member",
        "limpyd/model.py",
        '"last": [("SREM", meta.collection_key, pk), ("ZREM", meta.expiry_key, pk)],',
        '"last": [("SREM", meta.collection_key, pk + ":"), ("ZREM", meta.expiry_key, pk)],',
        "a deletion SREMs a wrong member: the deleted instance stays in the collection",
    ),
    Mutation(
        "hash-key-without-length",
        "limpyd/keys.py",
        'return key if hkey is None else f"{key}:{len(hkey)}:{hkey}"',
        'return key if hkey is None else f"{key}:{hkey}"',
        "HashField index keys without the hash key's length (hash keys with ':' collide)",
    ),
    # Queries
    Mutation(
        "tie-break-ignores-desc",
        "limpyd/scripts/query.lua",
        "return lt_single(x, y)\n            end\n"
        "            if sort_kind ~= OP.by_keys and desc then return bytes_lt(b, a) end",
        "return lt_single(x, y)\n            end",
        "query.lua: ties of a descending single-key sort come in ascending pk order",
    ),
    Mutation(
        "multi-key-desc-ignored",
        "limpyd/scripts/query.lua",
        "if k.desc then return not less end",
        "if k.desc then return less end",
        "query.lua: a descending key of a multi-key sort sorts ascending",
    ),
    Mutation(
        "pk-fast-path-leading-zeros",
        "limpyd/scripts/order.lua",
        "string.find(pk, '^%-?[1-9]%d*$')",
        "string.find(pk, '^%-?%d+$')",
        "order.lua: the integer fast path takes '007' as canonical ('7' and '007' collide)",
    ),
    Mutation(
        "pk-fast-path-too-many-digits",
        "limpyd/scripts/order.lua",
        "if #pk > 15 then\n            table.sort(pks,",
        "if #pk > 17 then\n            table.sort(pks,",
        "order.lua: the integer fast path takes 17-digit pks, not exact in a double",
    ),
    Mutation(
        "slice-stop-inclusive",
        "limpyd/scripts/order.lua",
        "while (s[3] > 0 and i < stop)",
        "while (s[3] > 0 and i <= stop)",
        "order.lua: a slice [a:b] also returns item b",
    ),
    Mutation(
        "sort-by-list-drops-last",
        "limpyd/scripts/query.lua",
        "for i, m in ipairs(redis.call('LRANGE', by, 0, -1)) do",
        "for i, m in ipairs(redis.call('LRANGE', by, 0, -2)) do",
        "query.lua: sorting by a list's order reads it one item short",
    ),
    Mutation(
        "get-first-of-several",
        "limpyd/collection.py",
        'pks = self._query(["pks"], (0, 2, 1))',
        'pks = self._query(["pks"], (0, 1, 1))',
        "get() with several matches returns the first instead of MultipleObjectsReturned",
    ),
    Mutation(
        "pk-filter-trusted",
        "limpyd/collection.py",
        "protocol.SCORE_RANGE, protocol.FIELD_EXISTS}",
        "protocol.SCORE_RANGE, protocol.FIELD_EXISTS, protocol.PK_LIST}",
        "collection(pk=...) alone is not intersected with the collection (missing pks come back)",
    ),
    Mutation(
        "empty-pk-accepted",
        "limpyd/fields/pk.py",
        "if not text:",
        "if text is None:",
        "PKField: an empty pk is accepted",
    ),
    Mutation(
        "lazy-connect-pk-text-form",
        "limpyd/model.py",
        "instance._pk = meta.pk_field.text(pk)",
        "instance._pk = str(pk)",
        "lazy_connect(pk) keeps str(pk), not the text Redis stores (bytes, floats)",
    ),
    Mutation(
        "pk-filter-text-form",
        "limpyd/collection.py",
        "values = [field.text(value)]",
        "values = [str(value)]",
        "collection(pk=value) compares str(value), not the text Redis stores (bytes, floats)",
    ),
    # Lists and chunks
    Mutation(
        "list-trim-keeps-one-more",
        "limpyd/fields/lists.py",
        'return [("LTRIM", key, 0, m - 1)]',
        'return [("LTRIM", key, 0, m)]',
        "ListField: a write that shortens a list from its end keeps one item too many",
    ),
    Mutation(
        "list-lpush-order",
        "limpyd/fields/lists.py",
        'return chunked("LPUSH", (key,), new[: m - n][::-1])',
        'return chunked("LPUSH", (key,), new[: m - n])',
        "ListField: items pushed at the head land in reverse order",
    ),
    Mutation(
        "python-chunk-one-too-long",
        "limpyd/fields/base.py",
        "values[i : i + CHUNK]",
        "values[i : i + CHUNK + 1]",
        "chunked(): each command repeats the first value of the next chunk",
    ),
    Mutation(
        "lua-chunk-one-too-long",
        "limpyd/scripts/common.lua",
        "for j = i, math.min(i + CHUNK - 1, #args) do",
        "for j = i, math.min(i + CHUNK, #args) do",
        "common.lua call_many(): each chunk repeats the first argument of the next one",
    ),
    Mutation(
        "lua-chunk-beyond-unpack",
        "limpyd/scripts/common.lua",
        "local CHUNK = 1000",
        "local CHUNK = 10000",
        "common.lua: chunks larger than Lua's unpack limit (~8000 values)",
    ),
    Mutation(
        "value-entries-old-kept",
        "limpyd/scripts/apply.lua",
        "        value_entries(w, w.values)",
        "        if w.when == 'new' then value_entries(w, w.values) end",
        "apply.lua value_entries: a field's old index entries are left behind",
    ),
    Mutation(
        "value-entries-unescaped",
        "limpyd/scripts/apply.lua",
        "call_many(filled(template, value, escaped))",
        "call_many(filled(template, value, value))",
        "apply.lua value_entries: a value with NUL is not escaped in range-index members",
    ),
)

BY_NAME = {mutation.name: mutation for mutation in MUTATIONS}


# Running -------------------------------------------------------------------------------------


def copy_repository(destination: Path) -> None:
    """Copy what the suites need (no caches) from the repository into `destination`."""
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", ".pytest_cache", "*.pyc")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=ignore)
        else:
            shutil.copy2(source, destination / name)


def suite_command(suite: str, options: argparse.Namespace, seed: int | None) -> list[str]:
    """The pytest command line of a suite (properties/ with the `ci` profile)."""
    command = [sys.executable, "-m", "pytest", suite, f"--limpyd-backend={options.backend}"]
    command += ["-x", "-q", "-p", "no:cacheprovider"]
    if not options.shrink:
        command += ["-p", NO_SHRINK_PLUGIN]
    if suite == "properties":
        # Its own planted bugs meeting this one say nothing about the machines.
        command += ["--hypothesis-profile=ci", f"--ignore={BROKEN_BUILDS}"]
    if seed is not None:
        command.append(f"--hypothesis-seed={seed}")
    return command


@dataclass
class Outcome:
    """How one suite met one mutant."""

    status: str
    seconds: float = 0.0
    detail: str = ""


def seeds(options: argparse.Namespace) -> list[int | None]:
    """The `--hypothesis-seed` of each run of a suite: `--runs` seeds from `--seed`."""
    if options.seed is None:
        return [None] * options.runs
    return [options.seed + i for i in range(options.runs)]


def run_suite(copy: Path, suite: str, options: argparse.Namespace) -> Outcome:
    """Run `suite` in the copy once per seed, until one run catches the bug."""
    outcomes = []
    for seed in seeds(options):
        outcomes.append(run_suite_once(copy, suite, options, seed))
        if outcomes[-1].status != SURVIVED:
            break
    outcome = outcomes[-1]
    outcome.seconds = sum(o.seconds for o in outcomes)
    if options.runs > 1:
        outcome.detail = f"[run {len(outcomes)} of {options.runs}] {outcome.detail}"
    return outcome


def run_suite_once(
    copy: Path, suite: str, options: argparse.Namespace, seed: int | None
) -> Outcome:
    """Run `suite` in the copy; caught when pytest reports failures (exit status 1)."""
    env = dict(os.environ, PYTHONPATH=str(copy))
    for name in [n for n in env if n.startswith(("LIMPYD_", "HYPOTHESIS_", "PYTEST_"))]:
        del env[name]  # the copy runs with what the command line says only
    started = time.monotonic()
    try:
        completed = subprocess.run(
            suite_command(suite, options, seed),
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            timeout=options.timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Outcome(TIMEOUT, time.monotonic() - started, f"no result in {options.timeout} s")
    seconds = time.monotonic() - started
    output = completed.stdout + completed.stderr
    if completed.returncode == 0:
        return Outcome(SURVIVED, seconds, _summary(output))
    if completed.returncode == 1:
        return Outcome(CAUGHT, seconds, _failure(output))
    return Outcome(BROKEN, seconds, f"pytest exit status {completed.returncode}: {_tail(output)}")


def _failure(output: str) -> str:
    """The failed test, from the session's summary (the last one: a test running pytest in
    a subprocess prints that inner session's summary first)."""
    found = re.findall(r"^(?:FAILED|ERROR) (\S+)", output, re.M)
    return found[-1] if found else _tail(output)


def _summary(output: str) -> str:
    lines = [line for line in output.splitlines() if re.search(r"\d+ passed", line)]
    return lines[-1].strip("= ") if lines else ""


def _tail(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return " | ".join(lines[-3:])


def run_mutant(mutation: Mutation | None, options: argparse.Namespace) -> dict[str, Outcome]:
    """Plant `mutation` (None: the unchanged baseline) in a fresh copy; run the suites. A bug
    in the Lua code runs on the real server when the fake is asked for: the fake server runs
    limpyd's functions natively (limpyd/backends/native, whose own bugs are planted there)."""
    if mutation is not None and mutation.file.endswith(".lua") and options.backend == "fake":
        options = argparse.Namespace(**{**vars(options), "backend": "redis"})
    with tempfile.TemporaryDirectory(prefix="limpyd-planted-") as directory:
        copy = Path(directory)
        copy_repository(copy)
        (copy / f"{NO_SHRINK_PLUGIN}.py").write_text(NO_SHRINK_SOURCE)
        if mutation is not None:
            try:
                mutation.plant(copy)
            except ValueError as error:  # the code changed since the mutations were checked
                return {suite: Outcome(NOT_APPLICABLE, 0.0, str(error)) for suite in options.suites}
        return {suite: run_suite(copy, suite, options) for suite in options.suites}


def check_isolation() -> None:
    """The copy must be what a suite imports, not the installed limpyd (editable installs)."""
    with tempfile.TemporaryDirectory(prefix="limpyd-planted-") as directory:
        copy = Path(directory)
        copy_repository(copy)
        probe = "import limpyd, limpyd_testing; print(limpyd.__file__, limpyd_testing.__file__)"
        completed = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=copy,
            env=dict(os.environ, PYTHONPATH=str(copy)),
            capture_output=True,
            text=True,
            check=True,
        )
        paths = completed.stdout.split()
        if not paths or not all(Path(p).resolve().is_relative_to(copy.resolve()) for p in paths):
            raise SystemExit(f"the copy is not what gets imported: {completed.stdout.strip()}")


def applicability(mutations: Iterable[Mutation]) -> dict[str, str]:
    """For each mutation: '' when it applies to the current code, else why not."""
    found = {}
    for mutation in mutations:
        count = mutation.occurrences(ROOT)
        found[mutation.name] = (
            "" if count == 1 else (NOT_APPLICABLE if count == 0 else f"{AMBIGUOUS} ({count}x)")
        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m properties.planted_bugs", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--backend", choices=("fake", "redis", "both"), default="fake")
    parser.add_argument("--only", action="append", metavar="NAME", help="a mutation (repeat)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument("--tests", action="store_true", help="also run tests/ on each mutant")
    parser.add_argument(
        "--suite", action="append", choices=SUITES, help="the suites to run (repeat)"
    )
    parser.add_argument(
        "--seed",
        type=lambda text: None if text == "random" else int(text),
        default=0,
        help="--hypothesis-seed of the first run of each suite (default 0; 'random': none)",
    )
    parser.add_argument(
        "--runs", type=int, default=1, help="runs per suite and mutant, seeds counting up"
    )
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per suite run")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unchanged run")
    parser.add_argument("--shrink", action="store_true", help="let Hypothesis shrink failures")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    options = parser.parse_args(argv)
    options.suites = options.suite or (SUITES if options.tests else SUITES[:1])

    unknown = sorted(set(options.only or ()) - set(BY_NAME))
    if unknown:
        parser.error(f"unknown mutation(s): {', '.join(unknown)} (see --list)")
    chosen = [BY_NAME[name] for name in options.only] if options.only else list(MUTATIONS)
    problems = applicability(chosen)
    if options.list:
        for mutation in chosen:
            state = problems[mutation.name] or "applies"
            print(f"{mutation.name:32} {state:16} {mutation.file}: {mutation.description}")
        return 1 if any(p.startswith(AMBIGUOUS) for p in problems.values()) else 0

    check_isolation()
    print(
        f"limpyd planted bugs: {len(chosen)} mutations, suites {', '.join(options.suites)}, "
        f"backend {options.backend}, {options.jobs} at once",
        flush=True,
    )
    if not options.no_baseline:
        baseline = run_mutant(None, options)
        for suite, outcome in baseline.items():
            print(f"baseline {suite}: {outcome.status} in {outcome.seconds:.0f} s {outcome.detail}")
        if any(outcome.status != SURVIVED for outcome in baseline.values()):
            print("the unchanged code does not pass: no measure", file=sys.stderr)
            return 1

    runnable = [m for m in chosen if not problems[m.name]]
    results: dict[str, dict[str, Outcome]] = {}

    def run_one(mutation: Mutation) -> None:
        results[mutation.name] = outcome = run_mutant(mutation, options)
        states = "  ".join(
            f"{suite}: {o.status} ({o.seconds:.0f} s) {o.detail}" for suite, o in outcome.items()
        )
        print(f"{mutation.name:32} {states}", flush=True)

    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        list(pool.map(run_one, runnable))

    print("\nResults")
    for mutation in chosen:
        problem = problems[mutation.name]
        states = problem or "  ".join(
            f"{suite}: {results[mutation.name][suite].status}" for suite in options.suites
        )
        print(f"  {mutation.name:32} {states:40} {mutation.description}")
    for suite in options.suites:
        outcomes = [results[m.name][suite] for m in runnable]
        caught = sum(o.status == CAUGHT for o in outcomes)
        survived = [m.name for m in runnable if results[m.name][suite].status == SURVIVED]
        others = len(outcomes) - caught - len(survived)
        print(
            f"{suite}: caught {caught} of {caught + len(survived)}"
            + (f" ({others} not scored: broken, timed out or not applicable)" if others else "")
            + (f"; survivors: {', '.join(survived)}" if survived else "")
        )
    skipped = [name for name, problem in problems.items() if problem]
    if skipped:
        print(f"not run (re-anchor them): {', '.join(skipped)}")
    return 1 if any(p.startswith(AMBIGUOUS) for p in problems.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
