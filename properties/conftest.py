"""Hypothesis profiles of the state machines in `properties/`.

- `ci` (the default): bounded, so `pytest properties/ --limpyd-backend=all -n 2` stays
  within a few minutes on a small machine.
- `thorough`: 10x the examples and programs twice as long, for a run before a release.

Select one with Hypothesis's own option `--hypothesis-profile=thorough`, or with the
environment variable `HYPOTHESIS_PROFILE=thorough` (the option wins). The profile also
applies to every Hypothesis test of the session when given with the option (Hypothesis
loads it globally); with the variable, or by default, only the machines here use it.

Each machine runs `weight x max_examples` examples of at most `stateful_step_count` steps
(its `weight` is a class attribute, below 1 for the machines whose steps cost most).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

CI = "ci"
THOROUGH = "thorough"

_common = {
    "deadline": None,  # a step is many Redis calls; its duration says nothing
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
    "print_blob": True,  # a failure prints how to replay it (@reproduce_failure)
}
#: CI draws the same examples on every run (`derandomize`): its duration and its verdict do
#: not depend on luck; `thorough` explores new ones each time.
settings.register_profile(CI, max_examples=30, stateful_step_count=40, derandomize=True, **_common)
settings.register_profile(THOROUGH, max_examples=200, stateful_step_count=50, **_common)


def selected_profile(config: pytest.Config) -> str:
    """The profile the machines use: the option, else the environment, else `ci`."""
    return (
        config.getoption("hypothesis_profile", default=None)
        or os.environ.get("HYPOTHESIS_PROFILE")
        or CI
    )


@pytest.fixture
def profile(request: pytest.FixtureRequest) -> settings:
    """The settings of the selected profile (see the module docstring)."""
    return settings.get_profile(selected_profile(request.config))


def pytest_report_header(config: pytest.Config) -> str:
    return f"limpyd properties: hypothesis profile {selected_profile(config)!r}"
