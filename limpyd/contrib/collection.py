"""`ExtendedCollectionManager` (chapter "Collections"): values, chained filters,
intersections, sort by score, fields as arguments, and stored results.

As in redis-limpyd, `filter`, `intersect`, `sort`, `instances`, `values`, `values_list` and
`primary_keys` change the collection itself and return it; slicing returns a new one. Every
evaluation is still one script call: values come back with the pks, not one round trip per
row.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from limpyd import protocol
from limpyd.collection import CollectionManager
from limpyd.exceptions import ImplementationError, InvalidQueryError
from limpyd.fields import InstanceHashField, ListField, SetField, SortedSetField, StringField
from limpyd.fields.base import RedisField, whole_seconds
from limpyd.filters import Atom
from limpyd.keys import is_model_key
from limpyd.protocol import Key

if TYPE_CHECKING:
    from limpyd.model import RedisModel

__all__ = ["DEFAULT_STORE_TTL", "SORTED_SCORE", "ExtendedCollectionManager"]

#: Seconds a stored collection lives by default.
DEFAULT_STORE_TTL = 60
_MAX_STORE_TTL = 10**protocol.STORE_TTL_DIGITS - 1
#: The name of the `by_score` score in `values()` / `values_list()`.
SORTED_SCORE = "sorted_score"


class ExtendedCollectionManager(CollectionManager):
    """A collection with the extras of redis-limpyd's extended collections."""

    def __init__(self, model: type[RedisModel]) -> None:
        super().__init__(model)
        self._intersections: list[Atom] = []
        self._values: tuple[str, list[str], bool] | None = None
        self.stored_key: str | None = None

    def _derive(self) -> ExtendedCollectionManager:
        self._cache = None
        return self

    def _clone(self) -> ExtendedCollectionManager:
        clone = super()._clone()
        clone._intersections = list(self._intersections)
        return clone

    # Building -------------------------------------------------------------------------

    def filter(self, **filters: Any) -> ExtendedCollectionManager:
        """Add filters (and-ed), checked now; values may be bound single-value fields, read
        at evaluation."""
        return self._filtered(filters)

    def intersect(self, *pks_sources: Any) -> ExtendedCollectionManager:
        """Keep only pks also in each source: a list/set/tuple of pks, the key of a Redis
        set, sorted set or list, or a bound SetField, ListField or SortedSetField; a
        ValueError (InvalidQueryError) for anything else, and at evaluation for a key
        holding another type."""
        self._refuse_sliced("intersect")
        added: list[Atom] = []
        for source in pks_sources:
            if isinstance(source, RedisField):
                if not isinstance(source, SetField | ListField | SortedSetField):
                    raise InvalidQueryError(
                        f"{self.model.__name__} collection: cannot intersect with "
                        f"{source.describe()} (only with a Set, List or SortedSet field)"
                    )
                if source._instance is None:
                    raise InvalidQueryError(
                        f"{self.model.__name__} collection: cannot intersect with "
                        f"{source.describe()}, not bound to an instance"
                    )
                added.append((protocol.KEY_MEMBERS, source.key))
            elif isinstance(source, str):
                added.append((protocol.KEY_MEMBERS, source))
            elif isinstance(source, list | set | tuple | frozenset):
                pks = [self._pk_text(self.model._meta.pk_field, pk) for pk in source]
                added.append((protocol.PK_LIST, len(pks), *pks))
            else:
                raise InvalidQueryError(
                    f"{self.model.__name__} collection: cannot intersect with {source!r}"
                )
        self._intersections += added
        return self._derive()

    # type-ignored: `by` also takes fields, `by_score` is added
    def sort(  # type: ignore[override]
        self,
        by: str | RedisField | list[str | RedisField] | None = None,
        alpha: bool | list[bool] = False,
        desc: bool = False,
        by_score: str | SortedSetField | None = None,
    ) -> ExtendedCollectionManager:
        """Sort as the base collection does (`by` may be a field, or a list of names and
        fields), or `by_score`: by the scores in a sorted set (a key or a bound
        SortedSetField)."""
        self._refuse_sliced("sort")
        if by_score is not None:
            if by is not None:
                raise InvalidQueryError(
                    f"{self.model.__name__} collection: sort() takes `by` or `by_score`, not both"
                )
            if isinstance(by_score, RedisField):
                if not isinstance(by_score, SortedSetField):
                    raise InvalidQueryError(
                        f"{self.model.__name__} collection: sort(by_score=...) takes a "
                        f"SortedSetField, not {by_score.describe()}"
                    )
                if by_score._instance is None:
                    raise InvalidQueryError(
                        f"{self.model.__name__} collection: sort(by_score=...) takes a "
                        f"SortedSetField bound to an instance, not {by_score.describe()}"
                    )
                by_score = by_score.key
            elif not isinstance(by_score, str) or not by_score:
                raise InvalidQueryError(
                    f"{self.model.__name__} collection: sort(by_score={by_score!r:.200}): the "
                    "key of a sorted set (a non-empty str) or a bound SortedSetField is expected"
                )
            flags = self._flag("alpha", alpha), self._flag("desc", desc)
            self._sort = (protocol.BY_SCORE, *flags, by_score)
            return self._derive()
        if isinstance(by, list | tuple):
            by = [self._sort_name(one) for one in by]
        return super().sort(by=self._sort_name(by), alpha=alpha, desc=desc)

    def _sort_name(self, by: Any) -> Any:
        """The name of a field `sort(by=...)` was given (one of the model or of a parent)."""
        if not isinstance(by, RedisField):
            return by
        if not issubclass(self.model, by.model):
            raise InvalidQueryError(
                f"{self.model.__name__} collection: sort(by={by.describe()}): a field of "
                f"{self.model.__name__} is expected"
            )
        return by.name

    def _value_names(self, names: tuple[str, ...]) -> list[str]:
        meta = self.model._meta
        if not names:
            return [
                name
                for name, field in meta.fields.items()
                if isinstance(field, StringField | InstanceHashField)
            ]
        checked = []
        for name in names:
            if self._is_score(name):
                checked.append(name)
                continue
            field = meta.field(name)
            if not isinstance(field, StringField | InstanceHashField):
                raise InvalidQueryError(
                    f"{field.describe()}: values() and values_list() only read single-value "
                    "fields (pk, StringField, InstanceHashField)"
                )
            checked.append(name)  # the pk under the name asked: `pk` or its field's
        return checked

    def _is_score(self, name: str) -> bool:
        """Whether `name` asks for the score of a `by_score` sort: SORTED_SCORE, unless the
        model has a field of that name (the field is read then)."""
        return name == SORTED_SCORE and name not in self.model._meta.fields

    def values(self, *fields: str) -> ExtendedCollectionManager:
        """Dicts of these fields' values (all single-value fields by default)."""
        self._values = ("dict", self._value_names(fields), False)
        return self._derive()

    def values_list(self, *fields: str, flat: bool = False) -> ExtendedCollectionManager:
        """Tuples of these fields' values; with `flat` and one field, the values themselves."""
        names = self._value_names(fields)
        if flat and len(names) != 1:
            raise InvalidQueryError(
                f"{self.model.__name__} collection: values_list(flat=True) takes exactly one "
                f"field (got {', '.join(names)})"
            )
        self._values = ("tuple", names, flat)
        return self._derive()

    def instances(
        self, lazy: bool = False, skip_exist_test: bool = False
    ) -> ExtendedCollectionManager:
        self._values = None
        return super().instances(lazy=lazy, skip_exist_test=skip_exist_test)

    def primary_keys(self) -> ExtendedCollectionManager:
        self._values = None
        return super().primary_keys()

    # Evaluating -----------------------------------------------------------------------

    def _deferred(self, value: Any) -> bool:
        """A bound single-value field is read at evaluation, and the pk of an instance not
        saved yet taken then (as redis-limpyd did)."""
        from limpyd.model import RedisModel

        return _bound_value_field(value) or (isinstance(value, RedisModel) and value._pk is None)

    def _read(self, value: Any) -> Any:
        # at once, as the collection itself runs (in a pipeline too)
        return value.get_now() if _bound_value_field(value) else value

    def _sources(self) -> list[list[Atom]]:
        return super()._sources() + [[atom] for atom in self._intersections]

    def _output(self) -> list[Any]:
        if self._values is None:
            return ["pks"]
        meta = self.model._meta
        specs = []
        for name in self._values[1]:
            if self._is_score(name):
                if self._sort[0] != protocol.BY_SCORE:
                    raise InvalidQueryError(
                        f"{self.model.__name__} collection: values(..., {SORTED_SCORE}) needs "
                        "a collection sorted with sort(by_score=...)"
                    )
                specs.append("score")
            elif meta.field(name) is meta.pk_field:
                specs.append("pk")
            else:
                field = meta.fields[name]
                if isinstance(field, InstanceHashField):
                    specs.append(f"H:{name}")
                else:
                    specs.append(f"S{meta.field_suffix(name)}")
        return ["values", len(specs), *specs]

    def _wrap(self, rows: list[Any]) -> list[Any]:
        if self._values is None:
            return super()._wrap(rows)
        shape, names, flat = self._values
        if shape == "dict":
            return [dict(zip(names, row, strict=True)) for row in rows]
        if flat:
            return [row[0] for row in rows]
        return [tuple(row) for row in rows]

    def _query(self, output: list[Any], extra_slice: tuple[Any, Any, Any] | None = None) -> Any:
        found = super()._query(output, extra_slice)
        if output[0] != "values":
            return found
        width = output[1]  # the script sends the rows flat
        return [found[at : at + width] for at in range(0, len(found), width)]

    # Storing --------------------------------------------------------------------------

    def store(
        self, key: str | None = None, ttl: int | timedelta | None = DEFAULT_STORE_TTL
    ) -> ExtendedCollectionManager:
        """Run the collection and keep its pks, in order, in a Redis list (`key`, random by
        default) expiring after `ttl` seconds (None: never). A new collection reads them,
        with the same output settings; its `stored_key` is the key."""
        if self._values is not None and any(map(self._is_score, self._values[1])):
            raise ImplementationError(
                f"{SORTED_SCORE} cannot be read back from a stored collection (only pks are "
                "stored): store the collection before asking for values(..., SORTED_SCORE)"
            )
        if key is not None:
            _refuse_a_model_key(self.model, key)
        seconds = None if ttl is None else whole_seconds(ttl)
        if ttl is not None and (seconds is None or not 1 <= seconds <= _MAX_STORE_TTL):
            raise ValueError(
                f"{self.model.__name__}.collection().store(ttl={ttl!r}): a whole number of "
                f"seconds from 1 to {_MAX_STORE_TTL} is expected (an int, its text or a "
                "timedelta), or None (the key never expires); nothing was written"
            )
        key = key or self.model._meta.stored_key(uuid.uuid4().hex)
        count = self._query(["store", Key(key), "" if seconds is None else seconds])
        stored = type(self)(self.model)._stored(key, empty=not count)
        stored._instances, stored._values = self._instances, self._values
        return stored

    def from_stored(self, key: str) -> ExtendedCollectionManager:
        """A collection of the pks stored in `key` by `store()`, in their stored order
        (DoesNotExist at evaluation if the key expired; an empty result stores no key)."""
        _check_key_text(self.model, "from_stored", key)
        return self._stored(key, empty=False)

    def _stored(self, key: str, empty: bool) -> ExtendedCollectionManager:
        """Based on the pks stored in `key`; `empty`: none were (store() wrote no key), so
        the collection is empty whatever the key holds later."""
        self.stored_key = key
        self._intersections.append((protocol.PK_LIST, 0) if empty else (protocol.STORED_LIST, key))
        self._sort = (protocol.BY_LIST, False, False, key)
        return self._derive()


def _check_key_text(model: type[RedisModel], method: str, key: Any) -> None:
    """A stored collection's key is a non-empty str (what `store` writes and reads)."""
    if not isinstance(key, str) or not key:
        raise ValueError(
            f"{model.__name__}.collection().{method}(key={key!r}): a key is a non-empty str "
            "(store() takes None for a new random one); nothing was written"
        )


def _refuse_a_model_key(model: type[RedisModel], key: Any) -> None:
    """`store()` replaces what `key` holds: a non-empty text, not the data or indexes of a
    model of the database (it would break that model), but a key of the user's or a stored
    one."""
    _check_key_text(model, "store", key)
    for other in model._meta.database.models.values():
        meta = other._meta
        if key.startswith(meta.prefix + ":") and not key.startswith(meta.stored_key("")):
            raise ValueError(
                f"{model.__name__}.collection().store(key={key!r}): the key is one of model "
                f"{other.__name__}'s (its data and indexes), which storing would replace; store "
                f"under a key of your own or under {meta.stored_key('<name>')!r}; nothing was "
                "written"
            )
    if is_model_key(key):
        raise ValueError(
            f"{model.__name__}.collection().store(key={key!r}): the key has the layout of a "
            "model's data or indexes (of another database?), which storing would replace; "
            f"store under a key of your own or under {model._meta.stored_key('<name>')!r}; "
            "nothing was written"
        )


def _bound_value_field(value: Any) -> bool:
    """Whether a filter value is a bound single-value field (read at evaluation)."""
    return isinstance(value, StringField | InstanceHashField) and value._instance is not None
