"""Exceptions raised by limpyd.

Every exception that names bad input carries the model, field and value concerned.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConflictError",
    "CreateManyError",
    "DoesNotExist",
    "ImplementationError",
    "InvalidQueryError",
    "LimpydException",
    "MultipleObjectsReturned",
    "RefusedValueError",
    "UniquenessError",
    "UnknownFieldError",
]


class LimpydException(Exception):
    """Base of every limpyd-specific exception."""


class DoesNotExist(LimpydException):
    """The instance asked for (by pk or by filters) is not in the database."""


class UniquenessError(LimpydException):
    """A write would give a unique field a value that another instance already holds."""


class ImplementationError(LimpydException, ValueError):
    """The models, fields, indexes or a query are declared or used in an unsupported way.

    A `ValueError` too: where redis-limpyd raised `ValueError` for a misuse (a value for an
    AutoPKField, none for a PKField, `get()` without arguments...), limpyd raises this, and
    code catching `ValueError` keeps working."""


class InvalidQueryError(ImplementationError):
    """A collection cannot be built as asked (a filter, an intersection, an output); a
    `ValueError`, as redis-limpyd raised for these."""


class UnknownFieldError(ImplementationError):
    """A model has no field of that name (a ValueError, as for constructor arguments)."""


class MultipleObjectsReturned(LimpydException, ValueError):
    """`get()` found several instances; a `ValueError`, as in redis-limpyd."""


class ConflictError(LimpydException):
    """A write kept meeting concurrent changes and gave up after its bounded retries.

    Nothing was written: retrying later is safe.
    """


class CreateManyError(LimpydException):
    """`Model.create_many()` refused some rows; the others were created.

    `errors`: the exception of each refused row, by its position in the rows given;
    `instances`: one per row, the created instance or None where the row was refused.
    """

    def __init__(self, message: str, errors: dict[int, Exception], instances: list[Any]) -> None:
        super().__init__(message)
        self.errors = errors
        self.instances = instances


class RefusedValueError(LimpydException, ValueError):
    """limpyd's code on the server refused a value it was given or found (a text to sort
    numerically, a key of the wrong type to intersect with, a value Redis refused in a write);
    the message names the model, field and value, the same on every backend."""
