"""A benchmark worker: one implementation in one process (see harness.py for the protocol).

    python worker.py limpyd | redis-limpyd | raw [SOURCE]

The driver (run.py) starts it with the Python of the environment the implementation lives in:
the project's for limpyd and raw redis-py, redis-limpyd's virtualenv for redis-limpyd. Both
libraries are imported as `limpyd`, hence one process each.
"""

from __future__ import annotations

import os
import sys

# Run isolated (python -I): only this directory is added, never the project's root, so that
# `import limpyd` finds the library of the environment and nothing else.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import serve


def main() -> None:
    impl = sys.argv[1]
    if len(sys.argv) > 2:
        # A limpyd source tree to import instead of the installed one (run.py --limpyd-src).
        sys.path.insert(0, sys.argv[2])
    if impl == "raw":
        from raw_workload import RawWorkload

        serve(RawWorkload())
    elif impl in ("limpyd", "redis-limpyd"):
        from orm_workload import OrmWorkload

        serve(OrmWorkload(impl))
    else:
        raise SystemExit(f"unknown implementation {impl!r}")


if __name__ == "__main__":
    main()
