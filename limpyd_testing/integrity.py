"""The integrity checker, for tests: `assert_consistent(*models)` fails listing every problem.

The checker and the repair are limpyd's own (`limpyd.integrity`, also `python -m limpyd
check`): production data is checked and repaired without the testing toolkit.
"""

from limpyd.integrity import IntegrityError, Problem, assert_consistent, check, repair

__all__ = ["IntegrityError", "Problem", "assert_consistent", "check", "repair"]
