"""`python -m limpyd_testing check module:Model ... [--url URL] [--repair]`

Checks the data and indexes of the named models (see `limpyd_testing.integrity`), prints the
problems, and exits with status 1 when there are some (0 when all is consistent, also after
`--repair` fixed every index problem). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys

from limpyd.database import RedisDatabase
from limpyd.integrity import check, repair, stderr_progress
from limpyd.model import import_model


def main(argv: list[str] | None = None) -> int:
    """Run the command line; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m limpyd_testing")
    commands = parser.add_subparsers(dest="command", required=True)
    checking = commands.add_parser("check", help="check models' indexes and relations")
    checking.add_argument("models", nargs="+", metavar="module:Model")
    checking.add_argument("--url", help="database URL (default: the models' own database)")
    checking.add_argument("--repair", action="store_true", help="rebuild broken indexes")
    options = parser.parse_args(argv)

    models = [import_model(name) for name in options.models]
    if options.url:
        database = RedisDatabase.from_url(options.url)
        for model in models:
            model.use_database(database)
    problems = check(*models, progress=stderr_progress)
    for problem in problems:
        print(problem)
    if problems and options.repair:
        for repaired in repair(problems):
            if isinstance(repaired, type):
                print(f"rebuilt the unique_together combinations of {repaired.__name__}")
            else:
                print(f"rebuilt the indexes of {repaired.describe()}")
        problems = check(*models)
    print(f"{len(problems)} problem(s)" if problems else "no problem found")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
