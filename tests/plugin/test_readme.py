"""The README's examples run and say what they print: the quick start (each commented
result checked), and the Testing chapter's test module, on both backends."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

from limpyd.backends import FakeBackend

README = Path(__file__).parents[2] / "README.md"


def python_block(after: str) -> str:
    """The first ```python block after the heading or sentence `after`."""
    text = README.read_text()
    start = text.index(after)
    match = re.compile(r"```python\n(.*?)```", re.S).search(text, start)
    assert match is not None, f"no python block after {after!r}"
    return match.group(1)


def comments(source: str) -> dict[int, str]:
    """The comment of each line, by line number."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {t.start[0]: t.string[1:].strip() for t in tokens if t.type == tokenize.COMMENT}


def test_quick_start_prints_what_it_says():
    source = python_block("## Quick start")
    said = comments(source)
    namespace: dict = {}
    checked = 0
    FakeBackend.drop_server("demo")  # the example's in-memory server, empty
    try:
        for statement in ast.parse(source).body:
            comment = said.get(statement.lineno, "")
            if isinstance(statement, ast.Expr) and re.match(r"\w+Error:", comment):
                with pytest.raises(Exception) as raised:  # its type and text: checked below
                    eval(compile(ast.Expression(statement.value), "README", "eval"), namespace)
                assert f"{type(raised.value).__name__}: {raised.value}" == comment
                checked += 1
            elif isinstance(statement, ast.Expr) and comment:
                value = eval(compile(ast.Expression(statement.value), "README", "eval"), namespace)
                assert value == ast.literal_eval(comment), ast.unparse(statement)
                checked += 1
            else:
                module = ast.Module(body=[statement], type_ignores=[])
                exec(compile(module, "README", "exec"), namespace)
    finally:
        FakeBackend.drop_server("demo")
    assert checked == 4


#: The inner session's first draws pay Hypothesis's one-time costs (its Unicode table, built
#: in pytester's fresh directory; the strategies' construction): about 0.5 s on an idle core,
#: over the 1 s of the too_slow health check on a busy one (as under `-n 4`). Timing says
#: nothing about the module here, as in properties/ whose profiles suppress it too.
NO_TIMING_CHECK = """
from hypothesis import HealthCheck, settings

settings.register_profile("readme", suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("readme")
"""


@pytest.mark.slow
def test_testing_chapter_module_runs_on_both_backends(pytester, redis_server_path):
    pytester.makeconftest(NO_TIMING_CHECK)
    pytester.makepyfile(test_readme_example=python_block("A test asks for a database"))
    result = pytester.runpytest_subprocess(
        "--limpyd-backend=both",
        f"--limpyd-redis-server={redis_server_path}",
        "--limpyd-require-redis",
        "-p",
        "no:cacheprovider",
    )
    # every test twice, the real-server one once
    result.assert_outcomes(passed=9)
