"""Collections: lazy queries on a model's instances, evaluated by one script call.

`Model.collection(**filters)` ands the filters (each one a set of pks, a union when a filter
matches several index entries), within the model's collection: only existing instances come
back (a filter read from indexes alone is not intersected with it again, as limpyd keeps
index entries for existing instances only; one written by another client is what
`limpyd.integrity.check` reports as stale; a filter is checked when given: see
`limpyd.filters`). Sorting, slicing and the output happen in the same call: a collection
costs one round trip per evaluation, whatever its size.

A collection object is evaluated once, when its data is first needed (iterating, `len`,
`repr`...), and keeps that result, as Django's querysets do; chaining (`sort`, slicing,
`instances`...) gives a new, unevaluated collection.

Without `sort()`, pks come in a stable order on every backend: numeric if all of them are
numbers, else byte-wise.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar, overload

from limpyd import protocol
from limpyd.exceptions import (
    DoesNotExist,
    ImplementationError,
    InvalidQueryError,
    MultipleObjectsReturned,
)
from limpyd.fields import InstanceHashField, StringField
from limpyd.filters import Atom, Filter, FilterParsing
from limpyd.indexes import TextRangeIndex, intersect_ranges
from limpyd.keys import HASH_SUFFIX
from limpyd.lua import QUERY, STORE
from limpyd.protocol import Key

if TYPE_CHECKING:
    from limpyd.model import RedisModel

__all__ = ["CollectionManager"]

#: A collection class: chaining calls give a collection of the same class.
_Collection = TypeVar("_Collection", bound="CollectionManager")


class CollectionManager(FilterParsing):
    """The pks (or, after `instances()`, the instances) of the matching instances."""

    def __init__(self, model: type[RedisModel]) -> None:
        self.model = model
        self._filters: list[Filter] = []
        self._excludes: list[list[Filter]] = []
        #: The set expression the filters narrow: the whole collection, or an operation
        #: (`|`, `&`, `-`, `^`) on other collections.
        self._base: tuple[str, list[CollectionManager]] | None = None
        #: The sort operation and its arguments (see protocol): by pk by default.
        self._sort: tuple[Any, ...] = self._pk_sort(False)
        self._slices: list[tuple[int | None, int | None, int | None]] = []
        self._instances = False
        self._cache: list[Any] | None = None

    def _derive(self: _Collection) -> _Collection:
        """The collection a chaining call (`sort`, `instances`...) changes and returns: a
        copy here (ExtendedCollectionManager changes itself, as in redis-limpyd)."""
        return self._clone()

    def _clone(self: _Collection) -> _Collection:
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._filters = list(self._filters)
        clone._excludes = list(self._excludes)
        clone._slices = list(self._slices)
        clone._cache = None
        return clone

    # Building ---------------------------------------------------------------------------

    def __call__(self: _Collection, **filters: Any) -> _Collection:
        """This collection with more filters (and-ed), each checked now."""
        return self._filtered(filters)

    def _given(self, filters: dict[str, Any]) -> list[Filter]:
        """The filters given to add, checked (before the collection changes)."""
        self._refuse_sliced("filter")
        return [self._filter(key, value) for key, value in filters.items()]

    def _refuse_sliced(self, what: str) -> None:
        """A sliced collection is a window of its rows: filtering, intersecting or sorting
        it again would choose other rows, not refine these."""
        if self._slices:
            raise ImplementationError(
                f"{self.model.__name__} collection: cannot {what} a collection after slicing it"
            )

    def _filtered(self: _Collection, filters: dict[str, Any]) -> _Collection:
        given = self._given(filters)
        clone = self._derive()
        clone._filters += given
        return clone

    def exclude(self: _Collection, **filters: Any) -> _Collection:
        """This collection without the instances matching all these filters (none: the
        same instances)."""
        given = self._given(filters)
        clone = self._derive()
        if given:
            clone._excludes.append(given)
        return clone

    def _combine(self: _Collection, operation: str, other: object) -> _Collection:
        if not isinstance(other, CollectionManager):
            # for the operators calling this; typeshed types NotImplemented as Any
            return NotImplemented  # type: ignore[no-any-return]
        if other.model is not self.model:
            raise ImplementationError(
                f"Cannot combine collections of {self.model.__name__} and {other.model.__name__}"
            )
        if self._slices or other._slices:
            raise ImplementationError("Cannot combine sliced collections")
        combined = type(self)(self.model)
        combined._base = (operation, [self._clone(), other._clone()])
        return combined

    def __or__(self: _Collection, other: object) -> _Collection:
        return self._combine(protocol.UNION, other)

    def __and__(self: _Collection, other: object) -> _Collection:
        return self._combine(protocol.INTERSECTION, other)

    def __sub__(self: _Collection, other: object) -> _Collection:
        return self._combine(protocol.DIFFERENCE, other)

    def __xor__(self: _Collection, other: object) -> _Collection:
        return self._combine(protocol.SYMMETRIC_DIFFERENCE, other)

    def sort(
        self: _Collection,
        by: str | list[str] | tuple[str, ...] | None = None,
        alpha: bool | list[bool] | tuple[bool, ...] = False,
        desc: bool = False,
    ) -> _Collection:
        """Sort by pk (default) or by a StringField / InstanceHashField (`-name` or `desc`:
        descending); numeric unless `alpha` (byte-wise). Ties are ordered by pk.

        `by` may be a list of names, each with its own `-`; `alpha` then a bool for all or a
        list of bools, one per name."""
        self._refuse_sliced("sort")
        clone = self._derive()
        desc = self._flag("desc", desc)
        if isinstance(by, list | tuple):
            alphas = list(alpha) if isinstance(alpha, list | tuple) else [alpha] * len(by)
            if not by or len(alphas) != len(by):
                raise ImplementationError(
                    "sort(by=[...]): give at least one field, and one alpha per field"
                )
            keys: list[Any] = []
            for name, one_alpha in zip(by, alphas, strict=True):
                kind, field_name, key_desc = self._sort_key(name)
                keys += [kind, field_name, self._flag("alpha", one_alpha), key_desc != desc]
            clone._sort = (protocol.BY_KEYS, len(by), *keys)
            return clone
        kind, field_name, key_desc = self._sort_key(by)
        alpha = self._flag("alpha", alpha)
        if kind == protocol.BY_PK and not alpha and (by is None or self.model._meta.pk_field.auto):
            # `sort()`: the default order (text pks by bytes), or its reverse
            clone._sort = self._pk_sort(key_desc != desc)
            return clone
        index = self._text_index(by) if by and alpha and kind != protocol.BY_PK else None
        if index is not None:
            clone._sort = (protocol.BY_INDEXED, kind, True, key_desc != desc, field_name, index)
            return clone
        extra = [field_name] if kind != protocol.BY_PK else []
        clone._sort = (kind, bool(alpha), key_desc != desc, *extra)
        return clone

    def _flag(self, name: str, value: Any) -> bool:
        """`alpha` or `desc` of a sort: a bool (or 0 or 1); an InvalidQueryError for anything
        else (a list for a single name was read as its truth, None as descending)."""
        if isinstance(value, bool) or (type(value) is int and value in (0, 1)):
            return bool(value)
        listed = " (a list of them with a list of names in `by`)" if name == "alpha" else ""
        raise InvalidQueryError(
            f"{self.model.__name__} collection: sort({name}={value!r}): True or False is "
            f"expected{listed}"
        )

    def _text_index(self, by: str) -> Key | None:
        """The key of an untransformed TextRangeIndex of the field `by` (`-name` too) names,
        which keeps its values in the byte-wise order, ties by pk, of an alpha sort."""
        field = self.model._meta.field(by.removeprefix("-"))
        for index in field.indexes:
            if isinstance(index, TextRangeIndex) and index.stores_text:
                return Key(index.base_key())
        return None

    def _pk_sort(self, desc: bool) -> tuple[Any, ...]:
        """The default order: an AutoPKField's pks are canonical integers, which the server
        may sort as numbers (see query.lua)."""
        if self.model._meta.pk_field.auto:
            return (protocol.BY_AUTO_PK, desc)
        return (protocol.BY_DEFAULT, desc)

    def _sort_key(self, by: str | None) -> tuple[str, str, bool]:
        """(kind, what names the value, descending) of one sort key (see query.lua);
        `-name` is descending."""
        if by is not None and (not isinstance(by, str) or by in ("", "-")):
            raise InvalidQueryError(
                f"{self.model.__name__} collection: sort(by={by!r}): the name of a field is "
                "expected, '-' before it to sort descending"
            )
        by = None if by is None else str(by)
        reverse = bool(by and by.startswith("-"))
        name = by[1:] if by and reverse else by
        meta = self.model._meta
        field = meta.field(name) if name else meta.pk_field
        if field is meta.pk_field:
            return protocol.BY_PK, field.name, reverse
        if isinstance(field, InstanceHashField):
            return protocol.BY_HASH, field.name, reverse
        if isinstance(field, StringField):
            return protocol.BY_STRING, meta.field_suffix(field.name), reverse
        raise ImplementationError(
            f"{field.describe()}: collections sort on the pk, a StringField or an InstanceHashField"
        )

    def instances(
        self: _Collection, lazy: bool = False, skip_exist_test: bool = False
    ) -> _Collection:
        """Instances instead of pks. Their existence is part of the query itself, so there is
        no per-instance check to skip (`lazy` and `skip_exist_test` are accepted for
        compatibility)."""
        clone = self._derive()
        clone._instances = True
        return clone

    def primary_keys(self: _Collection) -> _Collection:
        """Pks again after `instances()`."""
        clone = self._derive()
        clone._instances = False
        return clone

    # Evaluating ---------------------------------------------------------------------------

    def _arguments(
        self, slices: list[tuple[Any, Any, Any]], output: list[Any], sort: tuple[Any, ...]
    ) -> list[Any]:
        meta = self.model._meta
        args: list[Any] = [
            Key(meta.collection_key),
            meta.instance_prefix,
            HASH_SUFFIX,
            Key(meta.expiry_key),
        ]
        args += self._expression()
        args += protocol.encode_sort(sort)
        args.append(len(slices))
        for piece in slices:
            args += ["" if x is None else x for x in piece]
        return args + output

    def _sources(self) -> list[list[Atom]]:
        """The atoms of each source the query intersects."""
        return self._sources_of(self._filters)

    def _sources_of(self, filters: list[Filter]) -> list[list[Atom]]:
        """The sources of `filters`; two ranges on the index of a field holding one value
        (`age__gte=20, age__lt=30`) are one range, which reads only what both hold."""
        sources: list[list[Atom]] = []
        ranges: dict[tuple[Any, Any], int] = {}
        for given in filters:
            single = given.target.field.state_kind in ("string", "hashfield", "hash")
            found = given.sources
            if found is None:
                found = self._checked_sources(given.target, self._read(given.value))
            for source in found:
                atom = source[0] if len(source) == 1 else None
                if not (single and atom and atom[0] in _RANGE_ATOMS):
                    sources.append(source)
                elif (atom[0], atom[1]) in ranges:
                    at = ranges[atom[0], atom[1]]
                    sources[at] = [intersect_ranges(sources[at][0], atom)]
                else:
                    ranges[atom[0], atom[1]] = len(sources)
                    sources.append(source)
        return sources

    def _expression(self) -> list[Any]:
        """The set expression (see query.lua) of this collection's pks, unsorted."""
        sources = self._sources()
        if self._base is None:
            # Index entries only exist for existing instances: a source read from indexes
            # alone is within the collection already.
            indexed = any(atoms and all(a[0] in _INDEX_ATOMS for a in atoms) for atoms in sources)
            expression: list[Any] = [] if indexed else [protocol.COLLECTION]
        else:
            operation, operands = self._base
            expression = [operation, len(operands)]
            for operand in operands:
                expression += operand._expression()
        parts = len(sources) + (1 if expression else 0)
        if parts > 1:
            expression = [
                protocol.INTERSECTION,
                parts,
                *expression,
                *protocol.encode_sources(sources),
            ]
        elif sources:
            expression = protocol.encode_sources(sources)
        for excluded in self._excludes:
            removed = self._sources_of(excluded)
            expression = [
                *(protocol.DIFFERENCE, 2, *expression),
                *(
                    protocol.INTERSECTION,
                    len(removed) + 1,
                    protocol.COLLECTION,
                    *protocol.encode_sources(removed),
                ),
            ]
        return expression

    def _query(self, output: list[Any], extra_slice: tuple[Any, Any, Any] | None = None) -> Any:
        slices = self._slices + ([extra_slice] if extra_slice else [])
        if any(s[2] == 0 for s in slices):
            raise ValueError("slice step cannot be zero")
        script = STORE if output[0] == "store" else QUERY
        client, guard = self.model._meta.database.client, self.model._meta.probe_key
        kind, desc = self._sort[0], self._sort[1]
        if kind not in _PK_SORTS or slices or output[0] != "pks":
            return script(
                client, self._arguments(slices, output, self._sort), guard=guard, model=self.model
            )
        # All the pks in the default order: sorted here, where it costs less than in Lua
        # (not values' rows: a pk column to sort them by costs more to read than the sort).
        unsorted = self._arguments(slices, output, (protocol.UNSORTED,))
        rows = script(client, unsorted, guard=guard, model=self.model)
        return default_order(rows, desc)  # (an AutoPK's pks are integers: sorted so)

    def _output(self) -> list[Any]:
        """What the query returns for this collection's results."""
        return ["pks"]

    def _wrap(self, rows: list[Any]) -> list[Any]:
        """The results, from the rows the query returned."""
        if self._instances:
            return [self.model._from_known_pk(pk) for pk in rows]
        return list(rows)

    def _rows(self) -> list[Any]:
        if self._cache is None:
            self._cache = self._query(self._output())
        return self._cache

    def _results(self) -> list[Any]:
        return self._wrap(self._rows())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._results())

    def __len__(self) -> int:
        """The number of results: counted by the server (nothing read, nothing sorted),
        unless they were already read."""
        if self._cache is not None:
            return len(self._cache)
        return int(self._query(["count"]))

    def __bool__(self) -> bool:
        return bool(self._rows()) if self._cache is not None else self._any()

    def __getitem__(self, item: int | slice) -> Any:
        if isinstance(item, slice):
            clone = self._clone()
            clone._slices.append((_index(item.start), _index(item.stop), _index(item.step)))
            return clone
        position = _index(item)
        if position is None:
            raise TypeError(
                f"{self.model.__name__} collection indices must be integers or slices, not {item!r}"
            )
        if self._cache is not None:
            try:
                return self._wrap([self._cache[position]])[0]
            except IndexError:
                raise IndexError(
                    f"{self.model.__name__} collection index {item} out of range"
                ) from None
        stop = position + 1 if position != -1 else None
        found = self._wrap(self._query(self._output(), (position, stop, 1)))
        if not found:
            raise IndexError(f"{self.model.__name__} collection index {item} out of range")
        return found[0]

    def _any(self) -> bool:
        return bool(self._query(["count"], (0, 1, 1)))

    def _only(self) -> RedisModel:
        """The only matching instance (for `Model.get`): any two results tell, in no order
        unless the collection is sliced."""
        pks = self._query(["pks"], (0, 2, 1)) if self._slices else self._query(["any", 2])
        name, filters = self.model.__name__, {f.key: f.value for f in self._filters}
        if not pks:
            raise DoesNotExist(f"{name}: no instance matches {filters!r}")
        if len(pks) > 1:
            raise MultipleObjectsReturned(f"{name}: several instances match {filters!r}")
        return self.model._from_known_pk(pks[0])

    def __contains__(self, item: Any) -> bool:
        return item in self._results()

    def __eq__(self, other: object) -> bool:
        """Equal to a list or tuple of its results (as redis-limpyd's slices, lists, were);
        two collections are equal only when they are the same object, as in redis-limpyd
        (comparing their results would run both queries)."""
        if isinstance(other, list | tuple):
            return self._results() == list(other)
        return NotImplemented

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return repr(self._results())


#: The default order, sorted by the client when the whole result is asked for.
_PK_SORTS = frozenset({protocol.BY_DEFAULT, protocol.BY_AUTO_PK})
#: What the query script takes for a number in the default order (see query.lua).
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_CANONICAL_INTEGER = re.compile(r"0|-?[1-9][0-9]*")


def default_order(pks: list[str], desc: bool = False) -> list[str]:
    """`pks` in the default order, as the query script gives it: numeric when every pk is
    a canonical integer (exact at any length) or a decimal number (ties byte-wise), else
    byte-wise."""

    def as_bytes(pk: str) -> bytes:
        return pk.encode("utf-8", "surrogateescape")

    if all(_CANONICAL_INTEGER.fullmatch(pk) for pk in pks):
        return sorted(pks, key=int, reverse=desc)
    if all(_DECIMAL.fullmatch(pk) for pk in pks):
        return sorted(pks, key=lambda pk: (float(pk), as_bytes(pk)), reverse=desc)
    return sorted(pks, key=as_bytes, reverse=desc)


#: Atoms reading a range of a sorted-set index (two on one key can be one).
_RANGE_ATOMS = frozenset({protocol.LEX_RANGE, protocol.SCORE_RANGE})
#: Atoms read from indexes (and the isnull scan of the collection).
_INDEX_ATOMS = frozenset(
    {protocol.SET_KEY, protocol.LEX_RANGE, protocol.SCORE_RANGE, protocol.FIELD_EXISTS}
)


@overload
def _index(value: int) -> int: ...
@overload
def _index(value: Any) -> int | None: ...
def _index(value: Any) -> int | None:
    """A plain int (an IntEnum member's number: redis-py would send its repr), or None."""
    if value is None:
        return None
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"collection indices must be integers, not {value!r}") from None
