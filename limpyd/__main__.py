"""`python -m limpyd reap module:Model ...`: delete the expired instances of these models."""

from __future__ import annotations

import argparse
import importlib
import sys

from limpyd.model import RedisModel


def _load(name: str) -> type[RedisModel]:
    module_name, _, attribute = name.partition(":")
    model = getattr(importlib.import_module(module_name), attribute, None) if attribute else None
    if not (isinstance(model, type) and issubclass(model, RedisModel)):
        raise SystemExit(f"{name!r} is not a limpyd model (expected module:Model)")
    return model


def main(argv: list[str] | None = None) -> int:
    """Run the command line; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m limpyd")
    commands = parser.add_subparsers(dest="command", required=True)
    reaping = commands.add_parser("reap", help="delete the expired instances of models")
    reaping.add_argument("models", nargs="+", metavar="module:Model")
    options = parser.parse_args(argv)
    for model in map(_load, options.models):
        print(f"{model.__name__}: {model.reap_expired()} expired instance(s) reaped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
