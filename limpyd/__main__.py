"""`python -m limpyd COMMAND`: `reap module:Model ...` deletes the expired instances of these
models; `migrate-from-redis-limpyd module:Model ... --url URL` moves a database written by
redis-limpyd to limpyd's layout (see docs/coming-from-redis-limpyd.md)."""

from __future__ import annotations

import argparse
import sys

from limpyd.model import RedisModel, import_model


def main(argv: list[str] | None = None) -> int:
    """Run the command line; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m limpyd")
    commands = parser.add_subparsers(dest="command", required=True)
    reaping = commands.add_parser("reap", help="delete the expired instances of models")
    reaping.add_argument("models", nargs="+", metavar="module:Model")
    migrating = commands.add_parser(
        "migrate-from-redis-limpyd",
        help="move the data redis-limpyd (1.3.x, 2.x) wrote to limpyd's layout",
        description="Copy the instances redis-limpyd wrote for these models (same namespaces, "
        "model and field names) to limpyd's key layout, rebuild every index, and check the "
        "result with the integrity checker. Safe to run again; the source is kept unless "
        "--delete-source.",
    )
    migrating.add_argument("models", nargs="+", metavar="module:Model")
    migrating.add_argument("--url", required=True, help="the database redis-limpyd wrote")
    migrating.add_argument(
        "--target-url", help="where to write limpyd's layout (default: in place, at --url)"
    )
    migrating.add_argument(
        "--dry-run", action="store_true", help="say what would be done, write nothing"
    )
    migrating.add_argument(
        "--delete-source",
        action="store_true",
        help="delete redis-limpyd's keys of these models once the result is checked",
    )
    options = parser.parse_args(argv)
    if options.command == "reap":
        for model in map(import_model, options.models):
            print(f"{model.__name__}: {model.reap_expired()} expired instance(s) reaped")
        return 0
    return _migrate(options)


def _migrate(options: argparse.Namespace) -> int:
    from limpyd.migration import MigrationError, migrate

    try:
        models = [_load(path) for path in options.models]
        return migrate(
            models,
            options.url,
            options.target_url,
            dry_run=options.dry_run,
            delete_source=options.delete_source,
            say=lambda line: print(line, flush=True),
        )
    except MigrationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _load(path: str) -> type[RedisModel]:
    """The model `module:Model`; a one-line MigrationError otherwise."""
    from limpyd.migration import MigrationError

    try:
        return import_model(path)
    except ImportError as error:
        raise MigrationError(f"cannot import the model {path!r}: {error}") from None
    except SystemExit as error:
        raise MigrationError(str(error.code)) from None


if __name__ == "__main__":
    sys.exit(main())
