"""How limpyd's costs grow with the data: a first part of the scale section (issue part 10).

Runs on a throw-away redis-server (started here) and prints a markdown report:

- a one-member `sadd` on an indexed SetField (EqualIndex + TextRangeIndex) holding 1k / 10k /
  100k members, beside the same `sadd` on a plain SetField and its raw redis-py equivalent
  (the member and its two index entries in one MULTI);
- `create_many` throughput, and memory per instance (INFO used_memory);
- on N instances: `get()` by a unique value, `exists()`, `[0]`, `bool()`, `len()`, a 1-field
  filter (1% of the instances), and `sort(by=..., alpha=True)[:10]` beside Redis's own
  `SORT ... BY ... LIMIT 0 10 ALPHA` of the same question.

Times are medians of repeated runs, in milliseconds; compare within one run (shared machine).

    python bench/scale.py                       # sets of 1k/10k/100k, 100k instances
    python bench/scale.py --sets 1000 --instances 20000 --reps 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from limpyd import fields, model
from limpyd.database import RedisDatabase
from limpyd.indexes import EqualIndex, TextRangeIndex
from limpyd_testing.server import RedisServerExecutor


def median_ms(run: Callable[[int], Any], reps: int) -> float:
    """The median time of `run(i)` over `reps` calls, in ms."""
    samples = []
    for i in range(reps):
        started = time.perf_counter()
        run(i)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def set_section(db: RedisDatabase, sizes: list[int], reps: int) -> list[str]:
    class Holder(model.RedisModel):
        database = db
        namespace = "scale"
        tags = fields.SetField(indexes=[EqualIndex, TextRangeIndex])
        plain = fields.SetField()

    client = db.client
    rows = ["| members | indexed `sadd` | plain `sadd` | raw redis-py (3 commands, MULTI) | "
            "indexed / plain |", "|--:|--:|--:|--:|--:|"]  # fmt: skip
    for size in sizes:
        holder = Holder(tags=["seed"], plain=["seed"])
        for start in range(0, size, 10_000):
            chunk = [f"m{i}" for i in range(start, min(start + 10_000, size))]
            holder.tags.sadd(*chunk)
            holder.plain.sadd(*chunk)
            client.sadd(f"raw:{size}", *chunk)
        indexed = median_ms(lambda i, h=holder: h.tags.sadd(f"new{i}"), reps)
        plain = median_ms(lambda i, h=holder: h.plain.sadd(f"new{i}"), reps)

        def raw(i: int, size: int = size) -> None:
            with client.pipeline() as tx:
                tx.sadd(f"raw:{size}", f"new{i}")
                tx.sadd(f"raw:idx:equal:new{i}", "1")
                tx.zadd("raw:idx:text", {f"new{i}\x00\x001": 0})
                tx.execute()

        raw_ms = median_ms(raw, reps)
        rows.append(
            f"| {size:,} | {indexed:.2f} ms | {plain:.2f} ms | {raw_ms:.2f} ms | "
            f"{indexed / plain:.2f} |"
        )
    return rows


def instance_section(db: RedisDatabase, count: int, reps: int) -> list[str]:
    class Person(model.RedisModel):
        database = db
        namespace = "scale"
        name = fields.InstanceHashField(indexes=[TextRangeIndex], unique=True)
        city = fields.InstanceHashField(indexable=True)

    client = db.client
    before = int(client.info("memory")["used_memory"])
    rows = [{"name": f"person-{i:07d}", "city": f"city-{i % 100}"} for i in range(count)]
    started = time.perf_counter()
    Person.create_many(rows, batch_size=1000)
    seconds = time.perf_counter() - started
    per_instance = (int(client.info("memory")["used_memory"]) - before) / count
    prefix = Person._meta.prefix
    sort_args = (Person._meta.collection_key,)
    by = f"{prefix}:obj:*:_hash->name"
    questions: list[tuple[str, Callable[[int], Any], Callable[[int], Any] | None]] = [
        ("`get()` by a unique value", lambda i: Person.get(name=f"person-{i:07d}"), None),
        ("`exists()`", lambda i: Person.exists(city=f"city-{i % 100}"), None),
        ("`collection()[0]`", lambda i: Person.collection()[0], None),
        ("`bool(collection(city=...))`", lambda i: bool(Person.collection(city="city-1")), None),
        ("`len(collection())`", lambda i: len(Person.collection()), None),
        ("filter on 1 field (1%)", lambda i: list(Person.collection(city="city-2")), None),
        (
            "`sort(by='name', alpha=True)[:10]`",
            lambda i: list(Person.collection().sort(by="name", alpha=True)[:10]),
            lambda i: client.sort(*sort_args, by=by, start=0, num=10, alpha=True),
        ),
    ]
    table = [
        f"{count:,} instances: `create_many` {count / seconds:,.0f} rows/s "
        f"(batches of 1000), {per_instance:,.0f} bytes of Redis memory per instance.",
        "",
        "| question | limpyd | Redis's own command | limpyd / Redis |",
        "|---|--:|--:|--:|",
    ]
    for label, ask, native in questions:
        ours = median_ms(ask, reps)
        if native is None:
            table.append(f"| {label} | {ours:.2f} ms | | |")
            continue
        theirs = median_ms(native, reps)
        table.append(f"| {label} | {ours:.2f} ms | {theirs:.2f} ms | {ours / theirs:.2f} |")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="1000,10000,100000", help="set sizes, comma-separated")
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    options = parser.parse_args(argv)
    sizes = [int(size) for size in options.sets.split(",") if size]
    with RedisServerExecutor() as server:
        db = RedisDatabase.from_url(server.url)
        version = server.version
        lines = [
            f"# limpyd at scale ({time.strftime('%Y-%m-%d')}, redis-server {version})",
            "",
            "## One-member `sadd` on an indexed set",
            "",
            *set_section(db, sizes, options.reps),
            "",
            "## Queries on many instances",
            "",
            *instance_section(db, options.instances, options.reps),
        ]
    report = "\n".join(lines) + "\n"
    print(report)
    if options.output:
        options.output.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
