"""Related fields (chapter "Related models and deletion"): foreign keys and many-to-many
relations between models.

A related field stores pks of another model (`to`) and is always indexed, so the other side
of the relation is a collection: `person.owned_groups(**filters)`. Wherever a value is
stored an instance may be given: its pk is stored.

Deleting an instance updates everything that points to it in the same atomic write: FK
fields holding its pk are deleted, its pk is removed from M2M fields (every occurrence in
lists), with their index entries and the `unique_together` combinations they are part of.
The relations are known to the database, not only to the process that defined the models:
each write that adds a pk `d` to a related field also writes (in its script, no extra round
trip) a *link record* in the hash `<target prefix>:relations:<d>`, under the field's
`link_id`. The record, computed by the process that knows the field, says where the
field's value is for any referencing pk, which index atom finds the instances holding `d`,
the index entries to remove (transforms applied) and the `unique_together` groups to update.
The deleting script (apply.lua, op 'P') reads the records of the deleted pk, unlinks every
instance the atoms find that still holds `d` (a transform may map several pks to one
entry), then deletes the records: a process that never imported the referencing models
deletes as well, in the same round trips however many relations and references there are.
`rebuild_indexes` of a related field writes its records again (after a change of indexes).
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from limpyd.backends import Backend
from limpyd.contrib.collection import ExtendedCollectionManager
from limpyd.database import RedisDatabase
from limpyd.exceptions import ImplementationError, InvalidQueryError
from limpyd.fields import InstanceHashField, ListField, SetField, SortedSetField, StringField
from limpyd.fields.base import RedisField
from limpyd.filters import filter_parts
from limpyd.indexes import EqualIndex, TextRangeIndex
from limpyd.meta import REFUSED
from limpyd.model import MetaRedisModel, RedisModel, _subclasses
from limpyd.protocol import placeholder
from limpyd.writes import Write

__all__ = [
    "FKInstanceHashField",
    "FKStringField",
    "M2MListField",
    "M2MSetField",
    "M2MSortedSetField",
    "RelatedModel",
]


class RelatedFieldMixin(RedisField):
    """What every related field adds to its base field type."""

    references = True

    def __init__(self, to: Any, *, related_name: str | None = None, **options: Any) -> None:
        options["indexable"] = True
        super().__init__(**options)
        if not (isinstance(to, str) or (isinstance(to, type) and issubclass(to, RedisModel))):
            raise ImplementationError(f"Related field: `to` must be a model or a name, not {to!r}")
        if isinstance(to, type) and (problem := _target_problem(to)):
            raise ImplementationError(f"Related field: invalid `to` {to.__name__}: {problem}")
        if related_name is not None and not isinstance(related_name, str):
            raise ImplementationError(f"Related field: invalid related_name {related_name!r}")
        self.to = to
        self._related_name = related_name

    # The other side ---------------------------------------------------------------------

    @property
    def related_model(self) -> type[RelatedModel] | None:
        """The model this field points to, None while it is not defined yet."""
        to = self.to
        if isinstance(to, type):
            # type-ignored: a RedisModel subclass (checked in __init__); a RelatedModel on use
            return to  # type: ignore[return-value]
        if to == "self":
            # type-ignored: the model declaring a related field is a RelatedModel (MetaRelatedModel)
            return self.model  # type: ignore[return-value]
        namespace, _, name = to.rpartition(":")
        database = self.model.database
        if database is None:
            return None
        found = database.get_model(name, namespace if ":" in to else self.model.namespace)
        # type-ignored: a model the database hosts; related ones are RelatedModels
        return found  # type: ignore[return-value]

    def require_related_model(self) -> type[RelatedModel]:
        model = self.related_model
        if model is None:
            raise ImplementationError(
                f"{self.describe()}: the related model {self.to!r} is not defined"
            )
        _check_target(self, model)
        if model.database is not self.model.database:  # one of them was moved alone
            raise ImplementationError(
                f"{self.describe()}: the related model {model.__name__} must use the same "
                f"database ({model.__name__} uses {model.database!r}, {self.model.__name__} "
                f"{self.model.database!r}): move them together"
            )
        return model

    @property
    def related_name(self) -> str:
        """The name of the related collection on the other side."""
        template = self._related_name or "%(model)s_set"
        namespace = re.sub(r"\W", "_", self.model.namespace)
        return template % {"namespace": namespace, "model": self.model.__name__.lower()}

    # Values -----------------------------------------------------------------------------

    def text(self, value: Any) -> str:
        """The pk of an instance, or the one a bound foreign key field holds (as redis-limpyd
        took them), or the text of the value."""
        if isinstance(value, RedisModel):
            related = self.related_model
            if related is not None and type(value) is not related:  # a subclass has other keys
                raise ValueError(
                    f"{self.describe()}: invalid value {value!r}: a {related.__name__} is expected"
                )
            return value._require_pk()
        if isinstance(value, RedisField):
            return self._pk_held_by(value)
        return super().text(value)

    def _pk_held_by(self, field: RedisField) -> str:
        """The pk the bound foreign key `field` holds (read now), for a value of this field."""

        def refuse(why: str) -> ValueError:
            return ValueError(f"{self.describe()}: invalid value {field!r}: {why}")

        if not isinstance(field, _FKMixin):
            raise refuse(
                "a field stands for a value only if it is a foreign key (FKStringField or "
                "FKInstanceHashField) bound to an instance; pass values"
            )
        if field._instance is None:
            raise refuse(f"a field bound to an instance is expected (instance.{field.name})")
        related, theirs = self.related_model, field.related_model
        if related is not None and theirs is not None and theirs is not related:
            raise refuse(f"it points to a {theirs.__name__}, a {related.__name__} is expected")
        pk = field.get_now()  # at once, in a pipeline too
        if pk is None:
            raise refuse("it is empty (it points to no instance)")
        return pk

    def command(self, name: str, pk: str, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = self._pks_in_arguments(args, kwargs)
        return super().command(name, pk, *args, **kwargs)

    def _read(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Reads taking a value (`sismember`, `zscore`, `lpos`...) take instances and bound
        foreign key fields too."""
        args, kwargs = self._pks_in_arguments(args, kwargs)
        return super()._read(name, *args, **kwargs)

    def _pks_in_arguments(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """A command's arguments with the instances and fields they hold as pks."""
        return tuple(map(self._pks_in, args)), {k: self._pks_in(v) for k, v in kwargs.items()}

    def _pks_in(self, value: Any) -> Any:
        """`value` with the instances and bound foreign key fields it holds (alone, in a
        mapping or a sequence) as pks."""
        if isinstance(value, RedisModel | RedisField):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self._pks_in(k): v for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._pks_in(item) for item in value)
        return value

    def plan_references(self, write: Write, values: list[str], unless_held: bool = False) -> None:
        """The instances these new values point to must exist when the write runs (with
        `unless_held`, those the field does not hold then); each gets the link record its
        deletion will unlink this field with (see the module docstring)."""
        related = self.require_related_model()
        held = self if unless_held else None
        for pk in dict.fromkeys(values):
            write.require_instance(self.describe(), related, pk, held)
        for command in self.link_commands(values):
            write.call(*command)

    def link_commands(self, values: list[str]) -> list[tuple[str, ...]]:
        """The commands writing the link records of these values (also run by
        `rebuild_indexes`, so records follow a change of the field's indexes)."""
        related = self.require_related_model()
        return [
            ("HSET", related._meta.links_key(pk), self.link_id, self.link_record(pk))
            for pk in dict.fromkeys(values)
        ]

    # Deletion of a related instance -----------------------------------------------------

    @property
    def link_id(self) -> str:
        """This field's name in the link records of the instances it points to."""
        return self.model._meta.link_id(self.name)

    def link_record(self, pk: str) -> str:
        """How the deleting script unlinks `pk` from any instance of this field's model
        (the instance `r` in what follows): where r's value is, how to find the instances
        holding `pk`, the index entries and `unique_together` combinations to remove."""
        # what stands for r's pk: a fresh nonce, which no pk holds (a fixed text can be a
        # pk's, which the template would then be cut at); the record holds only the pieces
        # around it, the same whatever the nonce
        r = placeholder()
        record = [self.state_kind, *_template(self.key_for(r), r), self.state_location(r)[1]]
        record += self._finder(pk)
        removes = [remove for index in self.indexes for _, remove in index.entries(pk, r)]
        record.append(str(len(removes)))
        for op in removes:
            record.append(str(len(op)))
            for arg in op:
                text = str(arg)
                record += ["+", *_template(text, r)] if r in text else ["=", text]
        record += self._together_parts(pk, r)
        return "".join(f"{len(x.encode('utf-8', 'surrogateescape'))}:{x}" for x in record)

    def _finder(self, pk: str) -> list[str]:
        """The query atom finding the instances holding `pk`: through an index whose
        equality entries are exact (an EqualIndex or a TextRangeIndex)."""
        for index in _finding_indexes(self):
            normalized = index.normalize(pk)
            if normalized is not None:
                return list(index._atoms("eq", normalized, None)[0])
        raise ImplementationError(
            f"{self.describe()}: no index finds the instances holding {pk!r}: {_FINDER_NEEDED}"
        )

    def _together_parts(self, pk: str, r: str) -> list[str]:
        """The `unique_together` groups of this field: each the prefix of its keys, then per
        field of the group the text `pk` gives in the key ('V') or where r's value is ('R',
        `r` standing for r's pk)."""
        meta = self.model._meta
        groups = [names for names in meta.unique_together if self.name in names]
        parts = [str(len(groups))]
        for names in groups:
            # the key of empty values ends with '0:' per field: what precedes is the prefix
            key = str(meta.together_key(names, {name: [""] for name in names}))
            parts += [key[: -2 * len(names)], str(len(names))]
            for name in names:
                if name == self.name:
                    parts += ["V", f"{len(pk)}:{pk}"]
                else:
                    field = meta.fields[name]
                    location, sub = field.state_location(r)
                    parts += ["R", field.state_kind, *_template(location, r), sub]
        return parts


def _finding_indexes(field: RelatedFieldMixin) -> list[Any]:
    """The indexes of `field` whose equality entries are exact: those a deletion finds the
    instances pointing to it through."""
    return [
        index
        for index in field.indexes
        if isinstance(index, EqualIndex | TextRangeIndex) and "eq" in index.handled_suffixes
    ]


_FINDER_NEEDED = "a related field needs an EqualIndex or a TextRangeIndex keeping its values"


def _target_problem(target: type[RedisModel]) -> str | None:
    """Why `target` cannot be pointed to, if it cannot: only a concrete RelatedModel unlinks
    the fields pointing to an instance it deletes."""
    if not issubclass(target, RelatedModel):
        return (
            "a related field points to a RelatedModel (deleting a plain model's instance "
            "would not unlink the fields pointing to it)"
        )
    if target._meta.abstract:
        return "an abstract model has no instances to point to"
    return None


def _check_target(field: RelatedFieldMixin, target: type[RedisModel]) -> None:
    problem = _target_problem(target)
    if problem is not None:
        raise ImplementationError(
            f"{field.describe()}: invalid related model {target.__name__}: {problem}"
        )


def _template(text: str, r: str) -> list[str]:
    """`text` holding `r` once, as what comes before and after it."""
    before, _, after = text.partition(r)
    return [before, after]


class _FKMixin(RelatedFieldMixin):
    """Foreign keys hold one pk; bound to an instance, one stands for that pk as a value of
    a related field (`group.owner.hset(other.owner)`)."""

    if TYPE_CHECKING:  # from StringField or InstanceHashField

        def get_now(self) -> str | None: ...

    def instance(self) -> RelatedModel | None:
        """The related instance (None if the field is empty); read at once, in a pipeline
        too (the instance needs its pk now)."""
        pk = self.get_now()
        return None if pk is None else self.require_related_model()(pk)


class FKStringField(_FKMixin, StringField):
    """A foreign key in a StringField."""


class FKInstanceHashField(_FKMixin, InstanceHashField):
    """A foreign key in an InstanceHashField (readable with the instance's `hmget`)."""


class _M2MMixin(RelatedFieldMixin):
    """Many-to-many fields are callable: the related instances as a collection."""

    def __call__(self, **filters: Any) -> ExtendedCollectionManager:
        return self.collection(**filters)

    def collection(self, **filters: Any) -> ExtendedCollectionManager:
        """The related instances this field holds (an ExtendedCollectionManager)."""
        related = self.require_related_model()
        collection = related.collection(manager=ExtendedCollectionManager, **filters)
        return collection.intersect(self)


class M2MSetField(_M2MMixin, SetField):
    """Many pks in a SetField: unordered, unique."""


class M2MListField(_M2MMixin, ListField):
    """Many pks in a ListField: ordered, repeats allowed."""


class M2MSortedSetField(_M2MMixin, SortedSetField):
    """Many pks in a SortedSetField: unique, ordered by score."""


def _incoming(model: type[RedisModel]) -> list[RelatedFieldMixin]:
    """The related fields, on every model of `model`'s database, that point to it (computed
    once per set of models the database hosts)."""
    database = model.database
    if database is None:
        return []

    def scan() -> list[RelatedFieldMixin]:
        return [
            field
            for other in database.models.values()
            for field in other._meta.fields.values()
            if isinstance(field, RelatedFieldMixin) and field.related_model is model
        ]

    return database.derived(("related.incoming", model), scan)


def _check_relations(model: type[RedisModel]) -> None:
    """Clear errors for relations across databases and clashing related names."""
    for field in model._meta.fields.values():
        if isinstance(field, RelatedFieldMixin):
            target = field.related_model
            if target is None:
                continue
            _check_target(field, target)
            if target.database is not None and target.database is not model.database:
                raise ImplementationError(
                    f"{field.describe()}: the related model {target.__name__} must use the "
                    "same database"
                )
            _check_related_names(target)
    _check_related_names(model)
    if model.database is not None:
        _check_cluster_groups(model, model.database.backend)


def _check_cluster_groups(model: type[RedisModel], backend: Backend) -> None:
    """On a cluster (keys spread over hash slots), the models a related field ties must share
    a `cluster_group`: one script checks and updates both (a deletion unlinks the instances
    pointing to the deleted one)."""
    if not backend.spreads_keys:
        return
    own = [f for f in model._meta.fields.values() if isinstance(f, RelatedFieldMixin)]
    for field in [*own, *_incoming(model)]:
        source, target = field.model, field.related_model
        if target is None or source._meta.cluster_group == target._meta.cluster_group:
            continue
        raise ImplementationError(
            f"{field.describe()}: on a Redis Cluster, {source.__name__} (cluster_group "
            f"{source._meta.cluster_group!r}) and {target.__name__} (cluster_group "
            f"{target._meta.cluster_group!r}) must share a cluster_group, since one script "
            f"writes both: set `cluster_group` on them (e.g. `cluster_group = "
            f"{target.__name__}` in {source.__name__})"
        )


def _check_related_name(field: RelatedFieldMixin) -> None:
    """The related collection is an attribute of the instances pointed to: its name must be
    a Python identifier, not a keyword nor starting with '__' (as redis-limpyd, at class
    creation)."""
    try:
        name = field.related_name
    except (KeyError, ValueError, TypeError):  # a template with unknown or bad `%` parts
        name = ""
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("__"):
        raise ImplementationError(
            f"{field.describe()}: invalid related_name {field._related_name!r}: the related "
            "collection's name must be a Python identifier, not a keyword nor starting with "
            "'__' (`%(model)s` and `%(namespace)s` are replaced)"
        )


def _check_related_names(target: type[RedisModel]) -> None:
    seen: dict[str, RelatedFieldMixin] = {}
    for field in _incoming(target):
        name = field.related_name
        if name in seen:
            one, other = field.describe(), seen[name].describe()
            if one == other:  # models of one name: their namespaces tell them apart
                one = f"{one} (namespace {field.model._meta.namespace!r})"
                other = f"{other} (namespace {seen[name].model._meta.namespace!r})"
            raise ImplementationError(
                f"{one} and {other} both want the related collection {name!r} on "
                f"{target.__name__}: give one a related_name"
            )
        if hasattr(target, name) or name in target._instance_attributes:
            raise ImplementationError(
                f"{field.describe()}: the related name {name!r} is already an attribute of "
                f"{target.__name__}"
            )
        seen[name] = field


def _check_unique_entries(field: RedisField) -> None:
    """A unique field of several pks must check uniqueness with indexes giving each pk an
    entry of its own: deleting a target removes the entries of its pk from the instances
    holding it, whatever else they hold (a transform, or a NumberRangeIndex's numbers,
    gives '1' and '01' one entry: the other pk would lose its check)."""
    if not field.unique or field.state_kind not in ("set", "list", "zset"):
        return
    shared = [i for i in field.indexes if i.handle_uniqueness and not i.separable]
    if shared:
        names = ", ".join(type(index).__name__ for index in shared)
        raise ImplementationError(
            f"{field.describe()}: a unique {type(field).__name__} checks uniqueness with "
            f"indexes giving each pk an entry of its own, not {names} (two pks can share "
            "an entry, which deleting one of them removes): use an EqualIndex without a "
            "transform, or give those handle_uniqueness=False"
        )


class MetaRelatedModel(MetaRedisModel):
    """Checks the relations of each concrete related model when it is created."""

    def __new__(mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> MetaRelatedModel:
        cls = cast("type[RelatedModel]", super().__new__(mcs, name, bases, attrs))
        database = None if cls._meta.abstract else cls.database  # where it was registered
        try:
            for field in cls._meta.fields.values():
                if isinstance(field, RelatedFieldMixin):
                    _check_related_name(field)
                    if not _finding_indexes(field):
                        raise ImplementationError(f"{field.describe()}: {_FINDER_NEEDED}")
                    _check_unique_entries(field)
            if database is not None:
                _check_relations(cls)
        except ImplementationError:
            if database is not None:
                database._remove_model(cls)
            REFUSED.add(cls)
            raise
        return cls


class RelatedModel(RedisModel, metaclass=MetaRelatedModel):
    """A model that can hold related fields and be pointed to by them."""

    abstract = True

    @classmethod
    def _check_moved(cls, database: RedisDatabase) -> None:
        for model in [cls, *_subclasses(cls)]:
            if not model._meta.abstract and model.database is database:
                _check_relations(model)

    @classmethod
    def _check_backend(cls, backend: Backend) -> None:
        _check_cluster_groups(cls, backend)

    def __getattr__(self, name: str) -> _RelatedCollection:
        """Related collections: `instance.<related_name>(**filters)`."""
        if name.startswith("__"):
            raise AttributeError(name)
        for field in _incoming(type(self)):
            if field.related_name == name:
                return _RelatedCollection(field, self)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _prepare_delete(self, write: Write) -> None:
        """Unlink the instance from whatever points to it, as its link records say."""
        pk = self._require_pk()
        write.unlink_references(type(self)._meta.links_key(pk), pk)


class _RelatedCollection:
    """The other side of a relation, bound to an instance: call it for the collection."""

    def __init__(self, field: RelatedFieldMixin, instance: RedisModel) -> None:
        self.field = field
        self.instance = instance

    def __call__(self, **filters: Any) -> ExtendedCollectionManager:
        model = self.field.model
        for key, value in filters.items():
            if filter_parts(model._meta.fields, key)[0] == self.field.name:
                raise InvalidQueryError(
                    f"{self!r}: it filters on {self.field.describe()} itself; filter on other "
                    f"fields (got {key}={value!r})"
                )
        return self.field.model.collection(
            manager=ExtendedCollectionManager,
            **{self.field.name: self.instance._require_pk()},
            **filters,
        )

    def __repr__(self) -> str:
        return f"<related collection {self.field.related_name} of {self.instance!r}>"
