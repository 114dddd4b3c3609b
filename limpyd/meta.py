"""What a model is made of, built once when its class is defined: `ModelOptions` (its
`_meta`: fields, pk field, key layout, cluster group) and `MetaRedisModel`, the metaclass that
checks the declaration (names, namespace, `unique_together`, `ttl`, `cluster_group`) and
builds it, so the paths that run per command stay short."""

from __future__ import annotations

import copy
import math
import weakref
from typing import TYPE_CHECKING, Any, ClassVar, cast

from limpyd.collection import CollectionManager
from limpyd.database import RedisDatabase
from limpyd.exceptions import ImplementationError, UnknownFieldError
from limpyd.fields import AutoPKField, InstanceHashField, PKField, RedisField, StringField
from limpyd.indexes import EqualIndex
from limpyd.keys import KeyLayout

if TYPE_CHECKING:
    from limpyd.model import RedisModel

__all__ = ["MetaRedisModel", "ModelOptions"]

_FORBIDDEN_NAMESPACE_CHARS = set(":*?[]\\{}")


class ModelOptions(KeyLayout):
    """What the metaclass knows of a model (`Model._meta`): its fields and its key layout."""

    def __init__(
        self,
        model: type[RedisModel],
        declared: dict[str, RedisField],
        fields: dict[str, RedisField],
        pk_field: PKField,
        abstract: bool,
    ) -> None:
        self.model = model
        #: The fields as declared (unattached), for subclasses to inherit.
        self.declared = declared
        #: The names of the fields this model declares itself (not inherited).
        self.own: frozenset[str] = frozenset()
        #: Every field by name, the pk field included, each attached to this model.
        self.fields = fields
        self.pk_field = pk_field
        self.abstract = abstract
        self.name = model.__name__.lower()
        self.namespace: str = model.namespace
        self.full_name = f"{self.namespace}:{self.name}"
        #: The unit of co-location of the model's keys (see `RedisModel.cluster_group`).
        self.cluster_group = _cluster_group(model)
        super().__init__(self.namespace, self.cluster_group, self.name)
        self.hash_fields = [n for n, f in fields.items() if isinstance(f, InstanceHashField)]
        self.data_fields = [f for f in fields.values() if f is not pk_field]
        self.unique_together = [tuple(group) for group in model.unique_together]
        self.default_ttl: float | None = None

    def together_partners(self, field: RedisField) -> list[RedisField]:
        """The other fields of the `unique_together` groups `field` belongs to."""
        names = {n for group in self.unique_together if field.name in group for n in group}
        return [self.fields[n] for n in sorted(names) if n != field.name]

    def together_key(self, names: tuple[str, ...], states: dict[str, list[str]]) -> str | None:
        """The set holding the pk of the instance with these fields' values (None when one
        of them has no value: missing values never collide)."""
        firsts = [state[0] for name in names if (state := states.get(name))]
        if len(firsts) < len(names):
            return None
        return self.combination_key(names, firsts)

    @property
    def database(self) -> RedisDatabase:
        """The model's database; a clear error if it has none."""
        database = self.model.database
        if not isinstance(database, RedisDatabase):
            raise ImplementationError(
                f"Model {self.model.__name__} has no database: set its `database` attribute "
                "to a RedisDatabase, or call use_database() on it or on a parent model"
            )
        return database

    def pk_exists(self, pk: str) -> bool:
        """Whether the instance `pk` exists and has not expired: one read-only query (the
        server's clock decides; a cluster cannot pipeline TIME)."""
        return len(self.model.collection(manager=CollectionManager, pk=pk)) > 0

    def field(self, name: str) -> RedisField:
        """The field called `name` (`pk` is the pk field); ValueError naming it otherwise."""
        if name == "pk":
            return self.pk_field
        try:
            return self.fields[name]
        except (KeyError, TypeError):  # TypeError: a list given for a name
            raise UnknownFieldError(f"{self.model.__name__} has no field {name!r}") from None

    def hash_field(self, name: str) -> InstanceHashField:
        field = self.field(name)
        if not isinstance(field, InstanceHashField):
            raise ValueError(f"{field.describe()} is not an InstanceHashField")
        return field


class MetaRedisModel(type):
    """Builds `_meta`, attaches the fields, and registers concrete models in their database."""

    #: The first model built, `RedisModel` itself: no field may hide one of its methods.
    root: ClassVar[type | None] = None

    def __new__(mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> MetaRedisModel:
        declared = {k: v for k, v in attrs.items() if isinstance(v, RedisField)}
        for key in declared:
            del attrs[key]
        # `ttl = <seconds>` on a model is the default of its instances; `ttl()` stays the
        # instances' method.
        default_ttl = attrs.get("ttl", _ABSENT)
        if default_ttl is not _ABSENT and not callable(default_ttl):
            del attrs["ttl"]
        else:
            default_ttl = _ABSENT
        attrs.setdefault("abstract", False)
        cls = cast("type[RedisModel]", super().__new__(mcs, name, bases, attrs))
        try:
            _declare(cls, attrs, declared, default_ttl)
        except BaseException:
            REFUSED.add(cls)  # it may live on until collected: never a model's subclass
            raise
        return cls


def _declare(
    cls: type[RedisModel], attrs: dict[str, Any], declared: dict[str, RedisField], ttl: Any
) -> None:
    """Build the model `cls` (its fields, pk, `_meta`) from its own `declared` fields and its
    parents', check it, and register it in its database."""
    name = cls.__name__
    _check_namespace(cls)

    parents = [b.__dict__["_meta"] for b in cls.__mro__[1:] if "_meta" in b.__dict__]
    for base in cls.__mro__[1:]:  # a mixin's fields would be silently left out
        mixed = [k for k, v in vars(base).items() if isinstance(v, RedisField)]
        if mixed and "_meta" not in base.__dict__:
            raise ImplementationError(
                f"{name}.{mixed[0]}: declared on {base.__name__}, which is not a model: "
                "declare shared fields on an abstract model (abstract = True) instead"
            )
    # each inherited field is the one of the first class in the MRO that declares it (as
    # Python finds attributes), in the order the root's fields come first
    winners: dict[str, tuple[RedisField, str]] = {}
    for meta in parents:
        for key in meta.own:
            winners.setdefault(key, (meta.declared[key], meta.model.__name__))
    inherited: dict[str, RedisField] = {}
    origins: dict[str, str] = {}  # the model that declared each inherited field
    for meta in reversed(parents):
        for key in meta.declared:
            if key in winners and key not in inherited:
                inherited[key], origins[key] = winners[key]
    hidden = [k for k in inherited if k not in declared and k in attrs]
    if hidden:
        raise ImplementationError(
            f"{name}.{hidden[0]}: hides the field {hidden[0]!r} of {origins[hidden[0]]} with "
            f"{attrs[hidden[0]]!r}; declare a field to replace it, or use another name"
        )
    pk_name, pk_declared = _pk_of(name, inherited, origins, declared)
    # the pk first, as redis-limpyd listed it (values_list() without names)
    all_declared = {pk_name: pk_declared, **inherited, **declared}
    for field_name, field in all_declared.items():
        _check_field(name, field_name, field)
    all_declared = _with_together_indexes(cls, all_declared)

    fields = {k: f.attach(cls, k) for k, f in all_declared.items()}
    for field_name, field in fields.items():
        setattr(cls, field_name, field)
    pk_field = cast(PKField, fields[pk_name])
    cls.pk = pk_field
    # the pk limpyd adds is not declared: a subclass may still declare one
    if pk_name not in inherited and pk_name not in declared:
        del all_declared[pk_name]
    cls._meta = ModelOptions(cls, all_declared, fields, pk_field, attrs["abstract"])
    cls._meta.own = frozenset(declared)
    cls._hashable_fields = list(cls._meta.hash_fields)
    cls._meta.default_ttl = _default_ttl(cls, ttl)
    database = cls.__dict__.get("database", cls.database)
    if database is not None and not isinstance(database, RedisDatabase):
        raise ImplementationError(
            f"Model {name}: `database` must be a RedisDatabase, not {database!r}"
        )
    if database is not None and not cls._meta.abstract:
        database._add_model(cls)
    if MetaRedisModel.root is None:
        MetaRedisModel.root = cls


_ABSENT: Any = object()

#: The classes whose declaration was refused: a refused class may live on, among its
#: parents' `__subclasses__()`, until it is garbage-collected.
REFUSED: weakref.WeakSet[type] = weakref.WeakSet()


def _pk_of(
    model: str,
    inherited: dict[str, RedisField],
    origins: dict[str, str],
    declared: dict[str, RedisField],
) -> tuple[str, PKField]:
    """The name and field of the pk of a model declaring `declared` and inheriting
    `inherited`: the one it declares, else the one its parents declared (a subclass
    inherits it), else an AutoPKField named `pk`. A model has one pk field: a second one,
    or a field hiding the inherited one, is refused."""
    own = [k for k, f in declared.items() if isinstance(f, PKField)]
    parents = [k for k, f in inherited.items() if isinstance(f, PKField)]
    if len(own) > 1 or len(parents) > 1:
        raise ImplementationError(
            f"Model {model} has several pk fields: {', '.join(own if len(own) > 1 else parents)}"
        )
    if parents:
        parent = origins[parents[0]]
        if own:
            raise ImplementationError(
                f"{model}.{own[0]}: a second pk field; the model already has the pk field "
                f"{parent}.{parents[0]} (a model has one pk field)"
            )
        if parents[0] in declared:
            raise ImplementationError(
                f"{model}.{parents[0]}: this name is the pk field of {parent}, inherited; "
                "it cannot be declared again"
            )
        return parents[0], cast(PKField, inherited[parents[0]])
    if own:
        return own[0], cast(PKField, declared[own[0]])
    return "pk", AutoPKField()


def _default_ttl(cls: type[RedisModel], declared: Any) -> float | None:
    """The `ttl` a model declares, or the one it inherits."""
    if declared is _ABSENT:
        parent: ModelOptions | None = next(
            (b.__dict__["_meta"] for b in cls.__mro__[1:] if "_meta" in b.__dict__), None
        )
        return parent.default_ttl if parent is not None else None
    if declared is not None and (
        isinstance(declared, bool)
        or not isinstance(declared, int | float)
        or not _positive_finite(declared)
    ):
        huge = isinstance(declared, int) and declared.bit_length() > 64
        shown = f"an int of {declared.bit_length()} bits" if huge else repr(declared)[:40]
        raise ImplementationError(
            f"Model {cls.__name__}: ttl must be a positive, finite number of seconds (got {shown})"
        )
    return declared


def _positive_finite(number: float) -> bool:
    try:
        return math.isfinite(number) and number > 0
    except OverflowError:  # an int no float holds
        return False


def _with_together_indexes(
    cls: type[RedisModel], declared: dict[str, RedisField]
) -> dict[str, RedisField]:
    """Check `unique_together`; its fields get the default index if they have none, so
    they can be filtered on together."""
    declared = dict(declared)
    groups = cls.unique_together
    if not isinstance(groups, list | tuple):  # read again when the model is built
        raise ImplementationError(
            f"{cls.__name__}.unique_together: {groups!r} is not a list of groups of field names"
        )
    seen: set[frozenset[Any]] = set()
    for group in groups:
        if (
            not isinstance(group, list | tuple)
            or not all(isinstance(name, str) for name in group)
            or len(group) < 2
            or len(set(group)) < len(group)
        ):
            raise ImplementationError(
                f"{cls.__name__}.unique_together: {group!r} is not a group of different field names"
            )
        if frozenset(group) in seen:
            raise ImplementationError(
                f"{cls.__name__}.unique_together: the group {group!r} is given twice"
            )
        seen.add(frozenset(group))
        for name in group:
            field = declared.get(name)
            if field is None or not isinstance(field, StringField | InstanceHashField):
                raise ImplementationError(
                    f"{cls.__name__}.unique_together: {name!r} is not a StringField or an "
                    "InstanceHashField of the model"
                )
            if isinstance(field, PKField):
                raise ImplementationError(f"{cls.__name__}.unique_together: the pk is unique")
            if not field.index_classes:
                field = declared[name] = copy.copy(field)
                field.indexable, field.index_classes = True, [EqualIndex]
    return declared


def _cluster_group(model: type[RedisModel]) -> str:
    """The group `model.cluster_group` names: a name, another model's group, or (None) the
    model's own name."""
    group = model.cluster_group
    if group is None:
        return model.__name__.lower()
    if isinstance(group, MetaRedisModel):  # a model
        return group._meta.cluster_group
    if (
        type(group) is not str
        or not group
        or _FORBIDDEN_NAMESPACE_CHARS & set(group)
        or not group.isprintable()
    ):
        raise ImplementationError(
            f"Model {model.__name__}: invalid cluster_group {group!r} (a model, or a non-empty "
            "printable string without ':', '*', '?', '[', ']', '{', '}' or '\\\\' is expected)"
        )
    return group


def _check_namespace(cls: type[RedisModel]) -> None:
    """The namespace and the name of a model are parts of its keys: neither may hold a
    separator (`:`), a SCAN pattern character or, for the name, anything but an identifier
    (`type("a:obj:1", ...)` would share the keys of model `a`)."""
    if not cls.__name__.isidentifier():
        raise ImplementationError(
            f"Model {cls.__name__!r}: invalid name (a Python identifier is expected)"
        )
    namespace = cls.namespace
    if not isinstance(namespace, str) or _FORBIDDEN_NAMESPACE_CHARS & set(namespace):
        raise ImplementationError(
            f"Model {cls.__name__}: invalid namespace {namespace!r} (a string without "
            "':', '*', '?', '[', ']', '{', '}' or '\\\\' is expected)"
        )


def _check_field(model: str, name: str, field: RedisField) -> None:
    """Refuse a field's name, or a declaration redis-limpyd refused too, naming both."""
    if not name.isidentifier():  # possible through type(): its keys could collide
        raise ImplementationError(
            f"{model}.{name!r}: a field name is a Python identifier (no ':', space...): an "
            "instance's keys end with it, and another instance's could end the same"
        )
    if name.startswith("_"):
        raise ImplementationError(f"{model}.{name}: field names cannot start with '_'")
    if name == "pk" and not isinstance(field, PKField):
        raise ImplementationError(f"{model}.pk: the name 'pk' is reserved for the pk field")
    if "__" in name:
        raise ImplementationError(
            f"{model}.{name}: field names cannot contain '__' (filters use it)"
        )
    if field.default is None:  # every creation without a value would be refused
        raise ImplementationError(
            f"{model}.{name}: default=None is no value Redis can hold (a field without a value "
            "needs no default: leave it out)"
        )
    root = MetaRedisModel.root
    if root is not None and hasattr(root, name) and name != "pk":
        raise ImplementationError(f"{model}.{name}: this name is a method of RedisModel")
    if field.declared_indexable is False and field.index_classes and not field.unique:
        raise ImplementationError(
            f"{model}.{name}: indexes given to a field declared indexable=False; drop "
            "indexable=False (indexes make a field indexable)"
        )
