"""The README's Testing chapter module runs as a pytest module, on both backends (every
other block of the README runs in tests/test_doc_examples.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"


def python_block(after: str) -> str:
    """The first ```python block after the heading or sentence `after`."""
    text = README.read_text()
    start = text.index(after)
    match = re.compile(r"```python\n(.*?)```", re.S).search(text, start)
    assert match is not None, f"no python block after {after!r}"
    return match.group(1)


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
        "--hypothesis-seed=0",  # the same draws every run: its state machine's cost varies 5x
        "-p",
        "no:cacheprovider",
    )
    # every test twice, the real-server one once
    result.assert_outcomes(passed=9)
