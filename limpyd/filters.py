"""The filters of a collection: what `field[__hkey][__prefix][__suffix][__all]=value` names
(a field, the index answering it, a suffix), checked when the filter is given, and the query
atoms of its values (see query.lua)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from limpyd import protocol
from limpyd.exceptions import InvalidQueryError, UnknownFieldError
from limpyd.fields import HashField
from limpyd.keys import HASH_SUFFIX

if TYPE_CHECKING:
    from limpyd.fields.base import RedisField
    from limpyd.indexes import BaseIndex
    from limpyd.model import RedisModel

__all__ = ["Atom", "Filter", "FilterParsing", "Target", "filter_parts"]

#: A query atom: (operation, arguments...), see query.lua.
Atom = tuple[Any, ...]


@dataclass(frozen=True)
class Target:
    """What the key of a filter names, checked when the filter is given."""

    key: str
    field: RedisField
    #: "pk", "isnull" or "index": how the atoms of a value are made
    kind: str
    #: `__all`: one source per value of an iterable
    each: bool = False
    #: a pk filter with `__in`: an iterable of pks
    many: bool = False
    index: BaseIndex | None = None
    suffix: str | None = None
    hkey: str | None = None


class Filter(NamedTuple):
    """A filter as given, its target, and its sources (None: computed at evaluation, from a
    value read then)."""

    key: str
    value: Any
    target: Target
    sources: list[list[Atom]] | None


def filter_parts(fields: Iterable[str], key: str) -> tuple[str, list[str]]:
    """(field name, the parts after it) of the filter `key`: `name__hkey__suffix`. A field
    named with a trailing `_` is read first: `class___eq` is `class_` and `eq`, even beside a
    field `class` (whose hash key `_eq` it would otherwise name)."""
    for known in sorted((f for f in fields if f.endswith("_")), key=len, reverse=True):
        if key == known or key.startswith(f"{known}__"):
            rest = key[len(known) + 2 :]
            return known, rest.split("__") if rest else []
    name, *parts = key.split("__")
    return name, parts


class FilterParsing:
    """What a collection does with the filters it is given (CollectionManager's)."""

    model: type[RedisModel]

    def _filter(self, key: str, value: Any) -> Filter:
        """The filter `key=value`, checked: its key names a field and an index answering
        it, and its value (unless read at evaluation) makes atoms of that index."""
        if isinstance(value, Iterator):  # read once, so that it can be evaluated again
            value = tuple(value)
        target = self._target(key, value)
        sources = None if self._deferred(value) else self._checked_sources(target, value)
        return Filter(key, value, target, sources)

    def _checked_sources(self, target: Target, value: Any) -> list[list[Atom]]:
        """The sources of a filter; an InvalidQueryError naming the filter for a value the
        field or its index refuses (given, or read at evaluation)."""
        try:
            return self._filter_sources(target, value)
        except InvalidQueryError:
            raise
        except ValueError as error:  # the value is shown in it
            raise InvalidQueryError(f"{error} (filter {target.key})") from None

    def _deferred(self, value: Any) -> bool:
        """Whether a filter value is read at evaluation (see ExtendedCollectionManager)."""
        return False

    def _read(self, value: Any) -> Any:
        """The value a deferred filter value has now."""
        return value

    def _target(self, key: str, value: Any) -> Target:
        """What the filter `field[__hkey][__prefix][__suffix][__all]=value` names; an
        error naming the model, the field and the filter if no index of a field answers it."""
        meta = self.model._meta
        name, parts = filter_parts(meta.fields, key)
        try:
            field = meta.field(name)
        except UnknownFieldError:
            raise UnknownFieldError(
                f"{self.model.__name__} has no field {name!r} (filter {key}={value!r})"
            ) from None
        each = (
            parts[-1:] == ["all"]
            and field is not meta.pk_field
            and not (isinstance(field, HashField) and len(parts) == 1)  # a hash key 'all'
        )
        if each:
            parts = parts[:-1]
            if field.state_kind not in ("set", "list", "zset"):
                raise InvalidQueryError(
                    f"{field.describe()}: the filter {key!r} is for Set, List and SortedSet fields"
                )
        if field is meta.pk_field:
            if parts not in ([], ["eq"], ["in"]):
                raise InvalidQueryError(
                    f"{field.describe()}: the pk can only be filtered with no suffix, "
                    f"'__eq' or '__in' (filter {key!r})"
                )
            return Target(key, field, "pk", many=parts == ["in"])
        hkey = None
        if isinstance(field, HashField):
            if not parts:
                raise InvalidQueryError(
                    f"{field.describe()}: filter on one key of the hash, like {name}__<key>=value "
                    f"(filter {key!r})"
                )
            hkey, parts = parts[0], parts[1:]
        if not field.indexes:
            raise InvalidQueryError(
                f"{field.describe()} is not indexable: it cannot be filtered on "
                f"(filter {key}={value!r})"
            )
        if parts == ["isnull"]:
            if field.state_kind not in ("string", "hashfield"):
                raise InvalidQueryError(
                    f"{field.describe()}: {key} is for a StringField or an InstanceHashField"
                )
            return Target(key, field, "isnull")
        index, suffix = self._index_for(field, parts, key)
        return Target(key, field, "index", each, index=index, suffix=suffix, hkey=hkey)

    def _filter_sources(self, target: Target, value: Any) -> list[list[Atom]]:
        """The sources (and-ed) of a filter: one, or one per value for `__all`."""
        if not target.each:
            return [self._atoms(target, value)]
        return [self._atoms(target, item) for item in self._iterable(target, value)]

    @staticmethod
    def _iterable(target: Target, value: Any) -> Iterable[Any]:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise InvalidQueryError(
                f"{target.field.describe()}: the value of the filter {target.key!r} must be "
                f"an iterable of values, not {value!r}"
            )
        return value

    def _atoms(self, target: Target, value: Any) -> list[Atom]:
        """The atoms (unioned) of one value of a filter."""
        if target.kind == "pk":
            values = self._iterable(target, value) if target.many else [value]
            pks = [self._pk_text(target.field, item) for item in values]
            return [(protocol.PK_LIST, len(pks), *pks)]
        if target.kind == "isnull":
            return [self._isnull_atom(target, value)]
        assert target.index is not None
        if target.suffix == "in":
            self._iterable(target, value)
        return target.index.atoms(target.suffix, value, target.hkey)

    def _pk_text(self, field: RedisField, value: Any) -> str:
        """A pk filter value: a pk, or an instance of the model (its pk)."""
        from limpyd.model import RedisModel

        if not isinstance(value, RedisModel):
            return field.text(value)
        if type(value) is not self.model:  # a subclass's instances have other keys
            raise InvalidQueryError(
                f"{field.describe()}: invalid value {value!r} (a {type(value).__name__}): "
                f"a {self.model.__name__} or its pk is expected"
            )
        return value._require_pk()

    def _isnull_atom(self, target: Target, value: Any) -> Atom:
        field = target.field
        if not isinstance(value, bool):
            raise InvalidQueryError(
                f"{field.describe()}: {target.key} takes True or False (got {value!r})"
            )
        meta = self.model._meta
        start, want = meta.instance_prefix, "0" if value else "1"
        if field.state_kind == "hashfield":
            return (protocol.FIELD_EXISTS, start, HASH_SUFFIX, field.name, want)
        return (protocol.FIELD_EXISTS, start, meta.field_suffix(field.name), "", want)

    @staticmethod
    def _index_for(field: RedisField, parts: list[str], key: str) -> tuple[BaseIndex, str | None]:
        """The index answering these filter parts (an optional prefix, an optional suffix)."""
        prefixes = {index.prefix for index in field.indexes}
        prefix = parts[0] if parts and parts[0] in prefixes else None
        if prefix is not None:
            parts = parts[1:]
        if len(parts) <= 1:
            suffix = parts[0] if parts else None
            for index in field.indexes:
                if index.prefix == prefix and suffix in index.handled_suffixes:
                    return index, suffix
        raise InvalidQueryError(
            f"{field.describe()}: no index of this field answers the filter {key!r}"
        )
