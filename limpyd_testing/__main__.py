"""`python -m limpyd_testing check ...`: the same as `python -m limpyd check ...` (the checker
and its repair are limpyd's own, `limpyd.integrity`)."""

from __future__ import annotations

import sys

from limpyd.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
