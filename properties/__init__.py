"""Property-based verification of limpyd: Hypothesis state machines (see conftest.py)."""
