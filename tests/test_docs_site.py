"""The documentation site's structure: every chapter is in the nav, and the README links to
the chapters instead of repeating them (the build itself, `mkdocs build --strict`, runs in CI;
every example of the chapters runs in tests/test_doc_examples.py)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
CHAPTERS = [
    "getting-started.md",
    "models-and-fields.md",
    "indexes-and-filters.md",
    "collections.md",
    "related-models.md",
    "pipelines.md",
    "expiry.md",
    "uniqueness.md",
    "guarantees.md",
    "testing/index.md",
    "testing/state-machines.md",
    "performance.md",
    "scaling-out.md",
    "coming-from-redis-limpyd.md",
    "decisions.md",
    "changelog.md",
]


def nav_pages() -> list[str]:
    """The pages mkdocs.yml's nav lists (its YAML has Python tags: read as text)."""
    text = (ROOT / "mkdocs.yml").read_text()
    nav = text[text.index("\nnav:") : text.index("\nmarkdown_extensions:")]
    return re.findall(r"([\w/.-]+\.md)\s*$", nav, re.M)


def test_every_page_is_in_the_nav_and_every_chapter_exists():
    pages = nav_pages()
    on_disk = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(pages) == on_disk
    assert set(CHAPTERS) <= set(pages)


def test_the_readme_links_to_every_chapter():
    readme = (ROOT / "README.md").read_text()
    linked = set(re.findall(r"\]\(docs/([\w/.-]+\.md)\)", readme))
    assert set(CHAPTERS) - {"changelog.md"} <= linked
    assert "](CHANGELOG.md)" in readme
    # the README keeps its short parts only: the chapters hold the rest
    headings = re.findall(r"^## (.*)$", readme, re.M)
    assert headings == ["Documentation", "Quick start", "Two commands", "Performance", "Testing"]


def test_the_changelog_page_includes_the_changelog():
    assert (DOCS / "changelog.md").read_text() == '--8<-- "CHANGELOG.md"\n'
