"""Every ```python block of the README and of docs/ runs, on every backend, with the results
its comments give checked: an example cannot go stale.

The blocks of one file run in order in one namespace (a chapter builds on its earlier
blocks). Every database an example makes (`RedisDatabase.from_url(...)`, or
`PipelineDatabase.from_url(...)`) is a new database of that class on the test's backend. A
comment on an expression's line is its result when it reads as a Python literal
(`# ['1', '2']`; text after ` (` is a note: `# 0 (or: ...)`), or the exception it raises
(`# UniquenessError: message`); any other comment is prose. A block that is not an example
to run says so in an HTML comment right above it: `<!-- not run: why -->`; one that needs
a real server, `<!-- real server: why -->`: it runs on the redis backend only (a standalone
server, whose replies a cluster client may shape otherwise).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from limpyd.database import RedisDatabase

ROOT = Path(__file__).parents[1]
BLOCK = re.compile(r"(?:<!--\s*(?P<mark>[^\n]*?)\s*-->\s*\n)?```python\n(?P<code>.*?)```", re.S)
#: The README and every page of docs/ that holds a python block.
FILES = [
    path
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    if BLOCK.search(path.read_text())
]
RAISES = re.compile(r"^(?P<type>[A-Z]\w*(?:Error|Exist|Exception|Returned)\w*): (?P<text>.*)$")


def blocks(path: Path) -> Iterator[tuple[int, str | None, str]]:
    """(line, mark, code) of each python block of a file."""
    text = path.read_text()
    for match in BLOCK.finditer(text):
        line = text.count("\n", 0, match.start("code")) + 1
        yield line, match.group("mark"), match.group("code")


def comments(code: str) -> dict[int, str]:
    tokens = tokenize.generate_tokens(io.StringIO(code).readline)
    return {t.start[0]: t.string[1:].strip() for t in tokens if t.type == tokenize.COMMENT}


def expected(comment: str) -> tuple[str, Any] | None:
    """What a comment says an expression gives: ("raises", (type, text)), ("value", v), or
    None for prose."""
    raised = RAISES.match(comment)
    if raised:
        return "raises", (raised.group("type"), raised.group("text"))
    for text in (comment, comment.split(" (", 1)[0]):
        try:
            return "value", ast.literal_eval(text)
        except (ValueError, SyntaxError):
            continue
    return None


def run_block(code: str, namespace: dict[str, Any], where: str) -> int:
    """Run a block statement by statement; how many results were checked."""
    said = comments(code)
    statements = ast.parse(code).body
    checked = 0
    for index, statement in enumerate(statements):
        last_on_line = index + 1 == len(statements) or (
            statements[index + 1].lineno != statement.end_lineno
        )
        claim = expected(said.get(statement.end_lineno or 0, "")) if last_on_line else None
        at = f"{where}, line {statement.lineno}: {ast.unparse(statement)[:80]}"
        if isinstance(statement, ast.Expr) and claim is not None:
            expression = compile(ast.Expression(statement.value), at, "eval")
            if claim[0] == "raises":
                with pytest.raises(Exception) as raised:
                    eval(expression, namespace)
                got = (type(raised.value).__name__, str(raised.value))
                assert got == claim[1], at
            else:
                assert eval(expression, namespace) == claim[1], at
            checked += 1
        else:
            exec(compile(ast.Module(body=[statement], type_ignores=[]), at, "exec"), namespace)
    return checked


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_every_example_runs_and_gives_what_it_says(
    path, limpyd_database_factory, limpyd_backend, monkeypatch
):
    examples = list(blocks(path))
    monkeypatch.setattr(
        RedisDatabase,
        "from_url",
        classmethod(lambda cls, url, **kw: limpyd_database_factory(cls=cls)),
    )
    namespace: dict[str, Any] = {"__name__": "doc_example"}
    ran = 0
    for line, mark, code in examples:
        if mark and mark.startswith("not run:"):
            continue
        if mark and mark.startswith("real server:") and limpyd_backend != "redis":
            continue
        run_block(code, namespace, f"{path.name}:{line}")
        ran += 1
    assert ran, f"{path.name}: every block is marked not run"


def test_the_runner_checks_results_and_exceptions():
    namespace: dict[str, Any] = {}
    assert run_block("x = [1]\nx + [2]  # [1, 2]\nlen(x)  # 1 (a note)\n", namespace, "t") == 2
    with pytest.raises(AssertionError):
        run_block("1 + 1  # 3\n", namespace, "t")
    with pytest.raises(AssertionError):
        run_block("int('x')  # ValueError: wrong text\n", namespace, "t")
    assert (
        run_block(
            "int('x')  # ValueError: invalid literal for int() with base 10: 'x'\n", namespace, "t"
        )
        == 1
    )
    assert run_block("a = 1; a  # 1\nprint  # prose\n", namespace, "t") == 1
