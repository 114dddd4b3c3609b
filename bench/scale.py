"""How limpyd's costs grow with the data: the scale section of the benchmark (issue part 10).

Runs on a throw-away redis-server (started here) and prints a markdown report, beside raw
redis-py doing the same work on the same server where it can:

- a one-member `sadd` on an indexed SetField (EqualIndex + TextRangeIndex) holding 1k / 10k /
  100k members, beside the same `sadd` on a plain SetField and its raw equivalent (the
  member and its two index entries in one MULTI);
- for each number of instances (100k and 1M by default): bulk-creation throughput
  (`create_many`; raw: the hash and its index sets, pipelined), memory per instance
  (INFO used_memory), then `get()` by a unique value, `exists()`, `[0]`, `bool()`, `len()`,
  a 1-field filter (1% of the instances), a 3-field filter, and `sort(by=...,
  alpha=True)[:10]` on a field with a TextRangeIndex, on one of distinct values without an
  index, and on one of 7 values (long ties, broken by pk); raw redis-py asks
  each the shortest way Redis can (SMEMBERS, SINTER, SCARD, `SORT ... LIMIT`);
- deleting an instance referenced through an FK by 10 / 100 / 1,000 instances.

Times are medians of repeated runs, in milliseconds (a slow question is asked at least 3
times and for about 3 s); compare within one run (shared machine). With `--chart`, a PNG
of each question's time against the number of instances (needs matplotlib).

    python bench/scale.py                                  # 100k and 1M instances
    python bench/scale.py --instances 20000 --sets 1000 --reps 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from limpyd import fields, model
from limpyd.contrib.related import FKInstanceHashField, RelatedModel
from limpyd.database import RedisDatabase
from limpyd.indexes import EqualIndex, TextRangeIndex
from limpyd_testing.server import RedisServerExecutor

#: Seconds a question is asked for at most (at least 3 times).
BUDGET = 3.0
CITIES, COUNTRIES, STATUSES = 100, 7, 3


def median_ms(run: Callable[[int], Any], reps: int) -> float:
    """The median time of `run(i)` over up to `reps` calls (at least 3, ~BUDGET s), in ms."""
    samples: list[float] = []
    spent = 0.0
    for i in range(reps):
        started = time.perf_counter()
        run(i)
        samples.append(time.perf_counter() - started)
        spent += samples[-1]
        if len(samples) >= 3 and spent > BUDGET:
            break
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


def person_values(i: int) -> dict[str, str]:
    return {
        "name": f"person-{i:07d}",
        "city": f"city-{i % CITIES}",
        "country": f"country-{i % COUNTRIES}",
        "status": f"status-{i % STATUSES}",
        "nick": f"nick-{(i * 7919) % 1_000_003:07d}",  # distinct, in no order of creation
    }


def raw_create(client: redis.Redis, count: int, batch: int = 1000) -> None:
    """The data set as plain hashes and index sets (what an ORM-less program keeps)."""
    for start in range(0, count, batch):
        with client.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + batch, count)):
                values = person_values(i)
                pk = str(i + 1)
                pipe.hset(f"raw:person:{pk}", mapping=values)
                pipe.sadd("raw:person:all", pk)
                pipe.sadd(f"raw:name:{values['name']}", pk)
                for field in ("city", "country", "status"):
                    pipe.sadd(f"raw:{field}:{values[field]}", pk)
            pipe.execute()


def instance_section(db: RedisDatabase, count: int, reps: int) -> tuple[list[str], dict]:
    """The report's table for `count` instances, and its figures (ms) by question."""

    class Person(model.RedisModel):
        database = db
        namespace = "scale"
        name = fields.InstanceHashField(indexes=[TextRangeIndex], unique=True)
        city = fields.InstanceHashField(indexable=True)
        country = fields.InstanceHashField(indexable=True)
        status = fields.InstanceHashField(indexable=True)
        nick = fields.InstanceHashField()

    client = db.client
    client.flushdb()
    memory = lambda: int(client.info("memory")["used_memory"])  # noqa: E731
    before = memory()
    started = time.perf_counter()
    Person.create_many((person_values(i) for i in range(count)), batch_size=1000)
    seconds = time.perf_counter() - started
    per_instance = (memory() - before) / count
    before = memory()
    started = time.perf_counter()
    raw_create(client, count)
    raw_seconds = time.perf_counter() - started
    raw_per_instance = (memory() - before) / count

    three = {"city": "city-2", "country": "country-3", "status": "status-1"}
    by = f"{Person._meta.prefix}:obj:*:_hash->name"
    by_country = f"{Person._meta.prefix}:obj:*:_hash->country"
    by_nick = f"{Person._meta.prefix}:obj:*:_hash->nick"
    questions: list[tuple[str, Callable[[int], Any], Callable[[int], Any]]] = [
        (
            "`get()` by a unique value",
            lambda i: Person.get(name=f"person-{i:07d}"),
            lambda i: client.srandmember(f"raw:name:person-{i:07d}", 2),
        ),
        (
            "`exists()`",
            lambda i: Person.exists(city=f"city-{i % CITIES}"),
            lambda i: client.scard(f"raw:city:city-{i % CITIES}"),
        ),
        (
            "`collection()[0]`",
            lambda i: Person.collection()[0],
            lambda i: client.sort("raw:person:all", start=0, num=1),
        ),
        (
            "`bool(collection(city=...))`",
            lambda i: bool(Person.collection(city="city-1")),
            lambda i: client.scard("raw:city:city-1"),
        ),
        (
            "`len(collection())`",
            lambda i: len(Person.collection()),
            lambda i: client.scard("raw:person:all"),
        ),
        (
            "filter on 1 field (1%)",
            lambda i: list(Person.collection(city="city-2")),
            lambda i: client.smembers("raw:city:city-2"),
        ),
        (
            "filter on 3 fields",
            lambda i: list(Person.collection(**three)),
            lambda i: client.sinter(*(f"raw:{k}:{v}" for k, v in three.items())),
        ),
        (
            "`sort(by='name', alpha=True)[:10]` (a TextRangeIndex)",
            lambda i: list(Person.collection().sort(by="name", alpha=True)[:10]),
            lambda i: client.sort(Person._meta.collection_key, by=by, start=0, num=10, alpha=True),
        ),
        (
            "`sort(by='nick', alpha=True)[:10]` (no index, distinct values)",
            lambda i: list(Person.collection().sort(by="nick", alpha=True)[:10]),
            lambda i: client.sort(
                Person._meta.collection_key, by=by_nick, start=0, num=10, alpha=True
            ),
        ),
        (
            "`sort(by='country', alpha=True)[:10]` (no range index)",
            lambda i: list(Person.collection().sort(by="country", alpha=True)[:10]),
            lambda i: client.sort(
                Person._meta.collection_key, by=by_country, start=0, num=10, alpha=True
            ),
        ),
    ]
    figures: dict[str, Any] = {
        "create rows/s": [count / seconds, count / raw_seconds],
        "bytes per instance": [per_instance, raw_per_instance],
    }
    table = [
        f"### {count:,} instances",
        "",
        f"- Bulk creation: limpyd `create_many` {count / seconds:,.0f} rows/s (batches of "
        f"1,000, each row atomic with its indexes and unique check); raw redis-py "
        f"{count / raw_seconds:,.0f} rows/s (pipelined, no atomicity, no check).",
        f"- Redis memory per instance: limpyd {per_instance:,.0f} bytes (hash, collection, "
        f"3 equality indexes, a unique and a text-range index on `name`); raw "
        f"{raw_per_instance:,.0f} bytes (hash, 5 sets).",
        "",
        "| question | limpyd | raw redis-py | limpyd / raw |",
        "|---|--:|--:|--:|",
    ]
    for label, ask, native in questions:
        ours, theirs = median_ms(ask, reps), median_ms(native, reps)
        figures[label] = [ours, theirs]
        table.append(f"| {label} | {ours:.2f} ms | {theirs:.2f} ms | {ours / theirs:.2f} |")
    return table, figures


def delete_section(db: RedisDatabase, counts: list[int], reps: int) -> list[str]:
    class Target(RelatedModel):
        database = db
        namespace = "scaledel"
        name = fields.InstanceHashField()

    class Referrer(RelatedModel):
        database = db
        namespace = "scaledel"
        target = FKInstanceHashField(Target, related_name="referrers")

    rows = ["| referenced by | limpyd delete | raw redis-py (pipelined) |", "|--:|--:|--:|"]
    client = db.client
    for count in counts:
        samples, raw_samples = [], []
        for _ in range(min(reps, 5)):
            target = Target(name="t")
            Referrer.create_many([{"target": target.pk.get()} for _ in range(count)], 1000)
            started = time.perf_counter()
            target.delete()
            samples.append(time.perf_counter() - started)
            client.delete(*client.keys("scaledel:*"))
            # raw: the target's hash, and each referrer's FK field and its index entry
            for i in range(count):
                client.hset(f"rawdel:ref:{i}", "target", "1")
            client.sadd("rawdel:idx:target:1", *range(count))
            started = time.perf_counter()
            with client.pipeline(transaction=True) as tx:
                tx.delete("rawdel:target:1")
                for i in range(count):
                    tx.hdel(f"rawdel:ref:{i}", "target")
                tx.delete("rawdel:idx:target:1")
                tx.execute()
            raw_samples.append(time.perf_counter() - started)
        ours, theirs = statistics.median(samples) * 1000, statistics.median(raw_samples) * 1000
        rows.append(f"| {count:,} | {ours:.2f} ms | {theirs:.2f} ms |")
    return rows


def growth_rows(by_count: dict[int, dict]) -> list[str]:
    """How each figure grows from the smallest to the largest number of instances."""
    counts = sorted(by_count)
    low, high = counts[0], counts[-1]
    rows = [
        f"| figure | limpyd at {low:,} | at {high:,} | growth | raw growth |",
        "|---|--:|--:|--:|--:|",
    ]
    for label in by_count[low]:
        (a, ra), (b, rb) = by_count[low][label], by_count[high][label]
        rows.append(f"| {label} | {a:,.2f} | {b:,.2f} | {b / a:.2f}x | {rb / ra:.2f}x |")
    return rows


def chart(by_count: dict[int, dict], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = sorted(by_count)
    questions = [q for q in by_count[counts[0]] if q not in ("create rows/s", "bytes per instance")]
    figure, axis = plt.subplots(figsize=(9, 5.5))
    for index, label in enumerate(questions):
        color = f"C{index}"
        axis.plot(counts, [by_count[c][label][0] for c in counts], "o-", color=color, label=label)
        axis.plot(counts, [by_count[c][label][1] for c in counts], "x--", color=color, alpha=0.5)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("instances")
    axis.set_ylabel("ms (median); dashed: raw redis-py")
    axis.set_title("limpyd at scale: time per question against the number of instances")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(target, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="1000,10000,100000", help="set sizes, comma-separated")
    parser.add_argument("--instances", default="100000,1000000", help="comma-separated")
    parser.add_argument("--deletes", default="10,100,1000", help="references, comma-separated")
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    parser.add_argument("--chart", type=Path, help="write the chart to this PNG")
    options = parser.parse_args(argv)
    sizes = [int(size) for size in options.sets.split(",") if size]
    counts = [int(count) for count in options.instances.split(",") if count]
    references = [int(count) for count in options.deletes.split(",") if count]
    by_count: dict[int, dict] = {}
    with RedisServerExecutor() as server:
        db = RedisDatabase.from_url(server.url)
        lines = [
            f"# limpyd at scale ({time.strftime('%Y-%m-%d')}, redis-server {server.version})",
            "",
            "## One-member `sadd` on an indexed set",
            "",
            *set_section(db, sizes, options.reps),
            "",
            "## Deleting an instance referenced by others",
            "",
            *delete_section(db, references, options.reps),
            "",
            "## Queries on many instances",
            "",
        ]
        for count in counts:
            table, by_count[count] = instance_section(db, count, options.reps)
            lines += [*table, ""]
        if len(counts) > 1:
            lines += ["## Growth", "", *growth_rows(by_count), ""]
    report = "\n".join(lines)
    print(report)
    if options.output:
        options.output.write_text(report)
        options.output.with_suffix(".json").write_text(json.dumps(by_count, indent=1))
    if options.chart:
        chart(by_count, options.chart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
