"""Bar chart of one backend's ratios: python chart.py RESULT.json OUT.png (needs matplotlib).

For each op, limpyd's median time divided by redis-limpyd's and by raw redis-py's, on a log
scale: below 1 limpyd is faster. Dashed lines mark the issue's targets: 0.2 (5x faster than
redis-limpyd on writes and instances()) and 2 (within 2x of raw redis-py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload as w


def main(source: str, target: str) -> None:
    result = json.loads(Path(source).read_text())
    titles, series = [], {"redis-limpyd": [], "raw": []}
    for key, title, _, _ in w.OPS:
        entries = result["ops"][key]
        mine = entries.get("limpyd", {}).get("median_us")
        titles.append(title)
        for other in series:
            theirs = entries.get(other, {}).get("median_us")
            series[other].append(mine / theirs if mine and theirs else None)

    fig, ax = plt.subplots(figsize=(10, 0.42 * len(titles) + 1.8))
    height = 0.4
    colors = {"redis-limpyd": "#3b7dd8", "raw": "#e0892f"}
    labels = {"redis-limpyd": "limpyd / redis-limpyd 2.1.2", "raw": "limpyd / raw redis-py"}
    for offset, (other, values) in zip((-height / 2, height / 2), series.items(), strict=True):
        ys = [i + offset for i, v in enumerate(values) if v is not None]
        xs = [v for v in values if v is not None]
        if not xs:
            continue
        bars = ax.barh(ys, xs, height=height, color=colors[other], label=labels[other])
        for bar, value in zip(bars, xs, strict=True):
            ax.annotate(
                f"{value:.2f}",
                (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
    ax.set_xscale("log")
    ax.axvline(1, color="black", linewidth=1)
    ax.axvline(0.2, color=colors["redis-limpyd"], linestyle="--", linewidth=1)
    ax.axvline(2, color=colors["raw"], linestyle="--", linewidth=1)
    ax.set_yticks(range(len(titles)), titles, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("time ratio, median (log scale; < 1: limpyd faster)")
    ax.set_title(
        f"limpyd time ratios, {result['backend']} backend, {result['date'][:10]} "
        "(dashed: targets 0.2 vs redis-limpyd, 2 vs raw)",
        fontsize=10,
    )
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(target, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
