"""`python -m limpyd COMMAND module:Model ... [--url URL]`: operate on the data of models.

- `reap`: delete the expired instances (see `RedisModel.reap_expired`);
- `check [--repair]`: check indexes and relations (`limpyd.integrity`); exit status 1 when
  problems remain;
- `migrate-from-redis-limpyd`: move data written by redis-limpyd to limpyd's layout
  (`limpyd.migration`, chapter "Coming from redis-limpyd").

Each prints the database it works on first. A mistake (a module that does not import, a bad
URL, a server that does not answer, an in-memory URL that no other process can see) is one
line on stderr and exit status 2; progress bars appear on a terminal when tqdm (the `cli`
extra) is installed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import redis
from redis.exceptions import RedisClusterException

from limpyd.backends import backend_from_url
from limpyd.backends.base import redact_url
from limpyd.cli.progress import Counter, progress_bars
from limpyd.database import RedisDatabase
from limpyd.exceptions import ImplementationError, RefusedValueError
from limpyd.fields.base import RedisField
from limpyd.model import RedisModel, import_model

__all__ = ["CommandError", "main"]


class CommandError(Exception):
    """A mistake the command reports in one line (exit status 2)."""


def main(argv: Sequence[str] | None = None, *, in_process_servers: bool = False) -> int:
    """Run the command line; the exit status.

    In-memory servers (`fakeredis://`) are refused: as its own process, the command would
    see an empty store of its own. `in_process_servers=True` accepts them, for a caller that
    shares this process's servers (tests calling `main` directly)."""
    options = _parser().parse_args(argv)
    options.in_process_servers = in_process_servers
    try:
        with progress_bars() as count:
            status: int = options.run(options, count)
            return status
    except (CommandError, ImplementationError, RefusedValueError) as error:
        # usage, models' declarations, data another client corrupted
        print(f"python -m limpyd {options.command}: error: {error}", file=sys.stderr)
        return 2
    except (redis.RedisError, RedisClusterException) as error:
        print(f"python -m limpyd {options.command}: Redis error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # what was done is said; a rebuild or reap finished by a rerun
        print(f"python -m limpyd {options.command}: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m limpyd", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, run: Callable[..., int], help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("models", nargs="+", metavar="module:Model")
        sub.set_defaults(run=run)
        return sub

    reaping = command("reap", _reap, "delete the expired instances of models")
    reaping.add_argument("--url", help="database URL (default: the models' own database)")
    checking = command("check", _check, "check the indexes and relations of models")
    checking.add_argument("--url", help="database URL (default: the models' own database)")
    checking.add_argument(
        "--repair",
        action="store_true",
        help="rebuild broken indexes (stop the writers first: while an index is rebuilt, "
        "writes do not see its entries, and unique values can be taken twice)",
    )
    migrating = command(
        "migrate-from-redis-limpyd",
        _migrate,
        "copy the instances redis-limpyd (1.3.x, 2.x) wrote for these models (same "
        "namespaces, model and field names) to limpyd's key layout, rebuild every index, and "
        "check the result; safe to run again; the source is kept unless --delete-source",
    )
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
    return parser


# Models and their database ------------------------------------------------------------------


def load_models(paths: Sequence[str]) -> list[type[RedisModel]]:
    """The models `package.module:Model`, or a CommandError saying why one is not."""
    models = []
    for path in paths:
        try:
            model = import_model(path)
        except SystemExit as error:  # import_model's own message, or the module's exit
            said = error.code if isinstance(error.code, str) else None
            raise CommandError(said or f"importing {path!r} exited ({error.code})") from None
        except ImportError as error:
            raise CommandError(f"cannot import {path!r}: {error}") from None
        except Exception as error:  # the module's own code failed: whatever it raised
            raise CommandError(f"cannot import {path!r}: {type(error).__name__}: {error}") from None
        if model._meta.abstract:
            raise CommandError(f"model {model.__name__} is abstract: give its concrete models")
        models.append(model)
    return list(dict.fromkeys(models))  # a model named twice is checked once


def open_database(
    models: list[type[RedisModel]], url: str | None, in_process_servers: bool = False
) -> str:
    """Point the models at `url` (if given), check that their database answers (and can be
    seen from another process, unless `in_process_servers`); where they are."""
    if url is not None:  # an empty one is refused, not taken for no URL
        try:
            given = RedisDatabase.from_url(url)
        except (ValueError, ImportError) as error:
            raise CommandError(f"--url: {error}") from None
        for model in models:
            model.use_database(given)
    places: dict[int, RedisDatabase] = {}
    for model in models:
        if not isinstance(model.database, RedisDatabase):
            raise CommandError(f"{model.__name__} has no database: give --url")
        places[id(model.database)] = model.database
    for database in places.values():
        where = database.backend.describe()
        if database.backend.in_process and not in_process_servers:
            raise CommandError(_private(where))
        try:
            database.connection.ping()
        except redis.ConnectionError as error:
            raise CommandError(f"cannot reach {where}: {error}") from None
        except (redis.RedisError, RedisClusterException) as error:
            raise CommandError(f"{where}: {error}") from None
    shown = ", ".join(d.backend.describe() for d in places.values())
    return f"{shown} ({'--url' if url else 'the models own database'})"


def _private(where: str) -> str:
    return (
        f"{where} is an in-memory server private to this process: it holds nothing of your "
        "application's; give the URL of a real server with --url"
    )


def _announce(action: str, models: list[type[RedisModel]], where: str) -> None:
    names = ", ".join(model.__name__ for model in models)
    print(f"{action} {names} on {where}", flush=True)


def _in_process(url: str) -> bool:
    try:
        return backend_from_url(url).in_process
    except (ValueError, ImportError) as error:
        raise CommandError(str(error)) from None


# Commands -----------------------------------------------------------------------------------


def _reap(options: argparse.Namespace, count: Counter) -> int:
    models = load_models(options.models)
    _announce("reaping", models, open_database(models, options.url, options.in_process_servers))
    for model in models:
        print(f"{model.__name__}: {model.reap_expired(progress=count)} expired instance(s) reaped")
    return 0


def _check(options: argparse.Namespace, count: Counter) -> int:
    from limpyd.integrity import check, repair

    models = load_models(options.models)
    _announce("checking", models, open_database(models, options.url, options.in_process_servers))
    problems = check(*models, progress=count)
    for problem in problems:
        print(problem)
    if problems and options.repair:

        def rebuilt(what: RedisField | type[RedisModel]) -> None:
            if isinstance(what, type):
                print(f"rebuilt the unique_together combinations of {what.__name__}", flush=True)
            else:
                print(f"rebuilt the indexes of {what.describe()}", flush=True)

        try:
            repair(problems, done=rebuilt)
        except ValueError as error:  # a value or a key no rebuild can index (named)
            raise CommandError(f"repair stopped: {error}") from None
        problems = check(*models, progress=count)
        for problem in problems:  # what the repair left (another client's writes, say)
            print(f"left: {problem}")
    print(f"{len(problems)} problem(s)" if problems else "no problem found")
    return 1 if problems else 0


def _migrate(options: argparse.Namespace, count: Counter) -> int:
    from limpyd.migration import MigrationError, migrate

    models = load_models(options.models)
    for url in (options.url, options.target_url):
        if url is not None and not options.in_process_servers and _in_process(url):
            raise CommandError(_private(redact_url(url)))
    try:
        return migrate(
            models,
            options.url,
            options.target_url,
            dry_run=options.dry_run,
            delete_source=options.delete_source,
            say=lambda line: print(line, flush=True),
        )
    except MigrationError as error:
        raise CommandError(str(error)) from None
