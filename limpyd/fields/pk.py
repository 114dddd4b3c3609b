"""Primary-key fields. A pk is not stored in a key of its own: it is a member of the model's
collection set, and part of the keys of the instance's other fields."""

from __future__ import annotations

import re
from typing import Any

from limpyd.exceptions import ImplementationError
from limpyd.fields.base import NO_DEFAULT
from limpyd.fields.strings import StringField

__all__ = ["COUNTER_RULE", "MAX_COUNTER", "AutoPKField", "PKField", "counter_value"]

#: The largest value of a Redis counter (a signed 64-bit integer): INCR cannot go past it.
MAX_COUNTER = 2**63 - 1

#: A counter a creation takes the next pk from: an integer as Redis writes one, from 0.
_COUNTER = re.compile(r"0|[1-9][0-9]{0,18}")
#: What `counter_value` takes, as messages say it.
COUNTER_RULE = f"an integer from 0 to {MAX_COUNTER - 1}, as Redis writes one"


def counter_value(text: str | bytes | None) -> int | None:
    """The value of an AutoPKField's counter holding `text` (0 when it has none); None when
    a creation cannot take the next pk from it: not an integer as Redis writes one, below
    0, or the last (apply.lua's `counter` check, the native functions' too)."""
    if text is None:
        return 0
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    if not _COUNTER.fullmatch(text):
        return None
    value = int(text)
    return value if value < MAX_COUNTER else None


class PKField(StringField):
    """A primary key given by the user: any string, set once when the instance is created."""

    getters = ("get",)
    modifiers = ("set",)
    #: Whether values come from the model's counter instead of the user.
    auto = False

    def __init__(self, **options: Any) -> None:
        if options.get("indexable") or options.get("unique") or options.get("indexes"):
            raise ImplementationError(
                "A PKField is unique by nature and cannot be given indexes; "
                "filter on it with collection(pk=...)"
            )
        if options.get("default", NO_DEFAULT) is not NO_DEFAULT:
            raise ImplementationError("A PKField cannot have a default value")
        super().__init__(**options)

    def get(self) -> str | None:
        """The primary key (None for an instance not saved yet). No round trip."""
        return self.bound_instance._pk

    def get_now(self) -> str | None:
        """As `get()`: no round trip, in a pipeline too."""
        return self.get()

    def exists(self, value: Any = None) -> bool:
        """Whether an instance has the pk `value` (by default, this instance's pk), as
        redis-limpyd's `pk.exists()`."""
        pk = self.bound_instance._pk if value is None else self.text(value)
        return pk is not None and self.model._meta.pk_exists(pk)

    def set(self, value: Any) -> bool:  # type: ignore[override]  # a pk takes no SET option
        """Give an unsaved instance its pk, which creates it. A pk cannot be changed."""
        instance = self.bound_instance
        if self.auto:
            raise ImplementationError(
                f"{self.describe()}: an AutoPKField is set by limpyd, not assigned (got {value!r})"
            )
        if instance._pk is not None:
            raise ImplementationError(
                f"{self.describe()}: the pk of an instance cannot be changed "
                f"(from {instance._pk!r} to {value!r})"
            )
        instance._create({self.name: value})
        return True

    def _modify(self, name: str, *args: Any, **kwargs: Any) -> Any:
        raise ImplementationError(f"{self.describe()}: a primary key only supports get() and set()")

    def _check_expirable(self) -> None:
        raise ImplementationError(
            f"{self.describe()}: a primary key cannot expire alone; expire the instance"
        )

    def delete(self) -> int:
        raise ImplementationError(
            f"{self.describe()}: a primary key cannot be deleted alone; delete the instance"
        )

    def normalize(self, value: Any) -> str:
        """The pk as text; ValueError naming model and value if it is not a valid pk."""
        if self.auto:
            raise ImplementationError(
                f"{self.describe()}: an AutoPKField is set by limpyd, not assigned (got {value!r})"
            )
        text = self.text(value)
        if not text:
            raise ValueError(f"{self.describe()}: invalid value {value!r}: a pk cannot be empty")
        return text

    def require_auto(self) -> None:
        """Creating without a pk value: fine for an AutoPKField (the write takes one)."""
        if not self.auto:
            raise ImplementationError(
                f"{self.describe()}: a value for the PKField {self.name!r} is needed to create "
                "an instance"
            )


class AutoPKField(PKField):
    """A primary key given by limpyd: 1, 2, 3... from a counter (INCR) per model."""

    auto = True
