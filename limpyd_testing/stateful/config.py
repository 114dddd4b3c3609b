"""Where machines get their databases: `configure()`, the process-wide default factory,
and `use_database`, which lends the models an example's database and gives them theirs back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from limpyd.database import RedisDatabase
from limpyd.exceptions import ImplementationError
from limpyd.model import RedisModel

#: The shortest default `ttl` of a model the machine accepts (seconds): no instance may
#: expire by the clock during an example, only when a rule makes it.
MIN_DEFAULT_TTL = 3600

#: Makes the database of one example (called once per example).
DatabaseFactory = Callable[[], RedisDatabase]


@dataclass
class StatefulConfig:
    """Process-wide settings of the machines (state machines cannot take fixtures)."""

    #: Where machines without a factory of their own get their databases.
    database_factory: DatabaseFactory | None = None


#: The settings `configure()` changes.
config = StatefulConfig()


def configure(database_factory: DatabaseFactory | None) -> DatabaseFactory | None:
    """Give every machine without a factory of its own this one (None: back to the default
    in-memory servers). Returns the previous factory, to put it back."""
    previous = config.database_factory
    config.database_factory = database_factory
    return previous


_MISSING: Any = object()


def use_database(models: list[type[RedisModel]], database: RedisDatabase) -> Callable[[], None]:
    """Point `models` at `database` with `use_database`; the function that puts them back.

    A related model refuses to move (and stays) while a model it points to is not there
    yet: the refused ones are moved again, as long as a round moves some."""
    saved = [(model, model.__dict__.get("database", _MISSING), model.database) for model in models]

    def move(target: Callable[[type[RedisModel]], RedisDatabase | None]) -> None:
        pending = [(model, to) for model in models if (to := target(model)) is not None]
        while pending:
            refused, errors = [], []
            for model, to in pending:
                try:
                    model.use_database(to)
                except ImplementationError as error:
                    refused.append((model, to))
                    errors.append(error)
            if len(refused) == len(pending):
                raise errors[0]
            pending = refused

    def restore() -> None:
        previous = {model: old for model, _, old in saved}
        try:
            move(lambda model: previous[model])
        except ImplementationError:
            pass
        for model, own, _ in saved:
            if own is _MISSING:
                if "database" in model.__dict__:
                    delattr(model, "database")
            elif not isinstance(own, RedisDatabase):
                model.database = own

    try:
        move(lambda model: database)
    except BaseException:
        restore()
        raise
    return restore
