"""MkDocs hook: the benchmark's charts (bench/results/*.png, *.svg) are pages' pictures
without a copy of them in docs/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).parent


def on_files(files: Files, config: Any) -> Files:
    """Add every chart of bench/results to the site, at the same path."""
    for chart in sorted((ROOT / "bench" / "results").glob("*")):
        if chart.suffix in (".png", ".svg"):
            uri = chart.relative_to(ROOT).as_posix()
            files.append(File.generated(config, uri, abs_src_path=str(chart)))
    return files
