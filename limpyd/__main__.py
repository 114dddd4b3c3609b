"""`python -m limpyd reap module:Model ...`: delete the expired instances of these models."""

from __future__ import annotations

import argparse
import sys

from limpyd.model import import_model


def main(argv: list[str] | None = None) -> int:
    """Run the command line; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m limpyd")
    commands = parser.add_subparsers(dest="command", required=True)
    reaping = commands.add_parser("reap", help="delete the expired instances of models")
    reaping.add_argument("models", nargs="+", metavar="module:Model")
    options = parser.parse_args(argv)
    for model in map(import_model, options.models):
        print(f"{model.__name__}: {model.reap_expired()} expired instance(s) reaped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
