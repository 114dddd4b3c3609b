"""`RedisModel`: a class of objects stored in Redis, one key per field (InstanceHashFields share
one hash), found again by primary key or, through indexes, by collection.

The metaclass builds each model's `_meta` once (fields, pk field, key layout), so the paths
that run per command stay short. No data is cached on instances: every read asks Redis.
"""

from __future__ import annotations

import copy
import importlib
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar, cast

from limpyd import writes
from limpyd.backends import Backend
from limpyd.collection import CollectionManager
from limpyd.database import RedisDatabase
from limpyd.exceptions import (
    CreateManyError,
    DoesNotExist,
    ImplementationError,
    UniquenessError,
    UnknownFieldError,
)
from limpyd.fields import (
    AutoPKField,
    HashField,
    InstanceHashField,
    ListField,
    PKField,
    RedisField,
    SetField,
    SortedSetField,
    StringField,
)
from limpyd.fields.base import NO_DEFAULT
from limpyd.indexes import EqualIndex
from limpyd.keys import KeyLayout
from limpyd.text import glob_escape

__all__ = [
    "AutoPKField",
    "HashField",
    "InstanceHashField",
    "ListField",
    "MetaRedisModel",
    "ModelOptions",
    "PKField",
    "RedisDatabase",
    "RedisField",
    "RedisModel",
    "SetField",
    "SortedSetField",
    "StringField",
]

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
        values = [states.get(name) for name in names]
        if not all(values):
            return None
        return self.combination_key(names, [v[0] for v in values])  # type: ignore[index]

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
        except KeyError:
            raise UnknownFieldError(f"{self.model.__name__} has no field {name!r}") from None

    def hash_field(self, name: str) -> InstanceHashField:
        field = self.field(name)
        if not isinstance(field, InstanceHashField):
            raise ValueError(f"{field.describe()} is not an InstanceHashField")
        return field


class MetaRedisModel(type):
    """Builds `_meta`, attaches the fields, and registers concrete models in their database."""

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
        _check_namespace(cls)

        inherited: dict[str, RedisField] = {}
        for base in reversed(cls.__mro__[1:]):
            meta = base.__dict__.get("_meta")
            if meta is not None:
                inherited.update(meta.declared)
        if any(isinstance(f, PKField) for f in declared.values()):
            inherited = {k: f for k, f in inherited.items() if not isinstance(f, PKField)}
        all_declared = {**inherited, **declared}
        pk_names = [k for k, f in all_declared.items() if isinstance(f, PKField)]
        if len(pk_names) > 1:
            raise ImplementationError(f"Model {name} has several pk fields: {', '.join(pk_names)}")
        if not pk_names:
            all_declared = {"pk": AutoPKField(), **all_declared}
            pk_names = ["pk"]
        for field_name, field in all_declared.items():
            _check_field_name(name, field_name, field)
        all_declared = _with_together_indexes(cls, all_declared)

        fields = {k: f.attach(cls, k) for k, f in all_declared.items()}
        for field_name, field in fields.items():
            setattr(cls, field_name, field)
        pk_field = cast(PKField, fields[pk_names[0]])
        cls.pk = pk_field
        cls._meta = ModelOptions(cls, all_declared, fields, pk_field, attrs["abstract"])
        cls._meta.default_ttl = _default_ttl(cls, default_ttl)
        database = cls.__dict__.get("database", cls.database)
        if database is not None and not isinstance(database, RedisDatabase):
            raise ImplementationError(
                f"Model {name}: `database` must be a RedisDatabase, not {database!r}"
            )
        if database is not None and not cls._meta.abstract:
            database._add_model(cls)
        return cls


_ABSENT: Any = object()


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
        or not math.isfinite(declared)
        or declared <= 0
    ):
        raise ImplementationError(f"Model {cls.__name__}: ttl must be a positive number of seconds")
    return declared


def _finite(instance: RedisModel, what: str, value: Any) -> float:
    """`value` as a finite float; ValueError naming the instance otherwise."""
    try:
        number = None if isinstance(value, bool) else float(value)
    except (TypeError, ValueError, OverflowError):
        number = None
    if number is None or not math.isfinite(number):
        raise ValueError(
            f"{instance!r}.{what}: invalid value {value!r}: a finite number is expected"
        )
    return number


def _with_together_indexes(
    cls: type[RedisModel], declared: dict[str, RedisField]
) -> dict[str, RedisField]:
    """Check `unique_together`; its fields get the default index if they have none, so
    they can be filtered on together."""
    declared = dict(declared)
    for group in cls.unique_together:
        if isinstance(group, str) or len(group) < 2:
            raise ImplementationError(
                f"{cls.__name__}.unique_together: {group!r} is not a group of field names"
            )
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
    if isinstance(group, type) and issubclass(group, RedisModel):
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


def _check_field_name(model: str, name: str, field: RedisField) -> None:
    if name.startswith("_"):
        raise ImplementationError(f"{model}.{name}: field names cannot start with '_'")
    if name == "pk" and not isinstance(field, PKField):
        raise ImplementationError(f"{model}.pk: the name 'pk' is reserved for the pk field")
    if "__" in name:
        raise ImplementationError(
            f"{model}.{name}: field names cannot contain '__' (filters use it)"
        )
    if "RedisModel" in globals() and hasattr(RedisModel, name) and name != "pk":
        raise ImplementationError(f"{model}.{name}: this name is a method of RedisModel")


class RedisModel(metaclass=MetaRedisModel):
    """Base of all models. See the manual's Models chapter."""

    _meta: ClassVar[ModelOptions]
    pk: ClassVar[PKField]
    #: The RedisDatabase hosting this model (mandatory to use a concrete model).
    database: ClassVar[RedisDatabase | None] = None
    namespace: ClassVar[str] = ""
    abstract: ClassVar[bool] = True
    #: Accepted for compatibility; writes are lock-free (atomic scripts), see the docs.
    lockable: ClassVar[bool] = True
    collection_manager: ClassVar[type[CollectionManager]] = CollectionManager
    #: Groups of single-value fields whose combined values are unique among instances.
    unique_together: ClassVar[list[tuple[str, ...]]] = []
    #: The unit of co-location on a Redis Cluster: models of one group keep their keys in
    #: one hash slot. A name, or a model (its group); None: the model itself. Inherited.
    #: Models one call ties together (related fields) must share it on a cluster.
    cluster_group: ClassVar[str | type[RedisModel] | None] = None

    def __init__(self, *args: Any, **values: Any) -> None:
        """`Model(pk)` loads an instance (DoesNotExist if absent); `Model(**values)` creates
        one with these values and the fields' defaults; `Model()` without values nor
        defaults is an unsaved instance, created by its first write."""
        meta = self._check_concrete()
        self._pk: str | None = None
        self._connected = False
        self._bound_fields: dict[str, RedisField] = {}
        if args:
            if len(args) > 1 or values:
                raise ImplementationError(
                    f"{type(self).__name__}(pk) loads an instance and takes only the pk; "
                    f"got {args!r} {values!r}"
                )
            pk = meta.pk_field.text(args[0])
            if not meta.pk_exists(pk):
                raise DoesNotExist(f"{type(self).__name__}: no instance with pk {pk!r}")
            self._saved(pk)
            return
        values = self._creation_values(values)
        if values:
            self._create(values)

    @classmethod
    def _creation_values(cls, values: dict[str, Any]) -> dict[str, Any]:
        """`values` by real field name, with the defaults of the fields not given."""
        meta = cls._meta
        values = cls._named_values(values)
        for name, field in meta.fields.items():
            if name not in values and field is not meta.pk_field:
                default = field.resolve_default()
                if default is not NO_DEFAULT:
                    values[name] = default
        return values

    @classmethod
    def create_many(
        cls, rows: Iterable[Mapping[str, Any]], batch_size: int = 500
    ) -> list[RedisModel]:
        """Create one instance per row (the values `Model(**values)` takes), each atomically
        with its indexes and checks, in ceil(rows / batch_size) round trips. Rows that are
        refused write nothing; the others are created, then `CreateManyError` says which
        rows were refused and why (by position), and holds the created instances."""
        cls._check_concrete()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"{cls.__name__}.create_many: invalid batch_size {batch_size!r}")
        prepared: list[dict[str, Any] | Exception] = []
        for row in rows:
            try:
                prepared.append(cls._creation_values(dict(row)))
            except (ValueError, ImplementationError) as error:
                prepared.append(error)
        sendable = [values for values in prepared if not isinstance(values, Exception)]
        outcomes = iter(writes.create_many(cls, sendable, batch_size))
        results: list[str | Exception] = [
            values if isinstance(values, Exception) else next(outcomes) for values in prepared
        ]
        instances: list[RedisModel | None] = []
        errors: dict[int, Exception] = {}
        for position, result in enumerate(results):
            if isinstance(result, Exception):
                errors[position] = result
                instances.append(None)
            else:
                instances.append(cls._from_known_pk(result))
        if errors:
            shown = "; ".join(f"row {p}: {e}" for p, e in list(errors.items())[:10])
            more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
            raise CreateManyError(
                f"{cls.__name__}.create_many: {len(errors)} of {len(results)} rows refused, "
                f"the others created: {shown}{more}",
                errors,
                instances,
            )
        return instances  # type: ignore[return-value]

    @classmethod
    def _check_concrete(cls) -> ModelOptions:
        if cls._meta.abstract:
            raise ImplementationError(f"Model {cls.__name__} is abstract: it has no instances")
        return cls._meta

    @classmethod
    def _named_values(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Values by real field name (`pk` becomes the pk field's name); unknown names refused."""
        named: dict[str, Any] = {}
        for name, value in values.items():
            named[cls._meta.field(name).name] = value
        return named

    # Instance state ---------------------------------------------------------------------

    def _create(self, values: dict[str, Any]) -> None:
        self._saved(writes.create(self, values))

    def _saved(self, pk: str) -> None:
        self._pk = pk
        self._connected = True

    def _require_pk(self) -> str:
        if self._pk is None:
            raise DoesNotExist(
                f"{type(self).__name__}: this instance is not saved yet (it has no pk); "
                "write one of its fields first"
            )
        return self._pk

    def _ensure_exists(self) -> None:
        """Check once that the instance exists (for instances from lazy_connect)."""
        pk = self._require_pk()
        if not self._connected:
            meta = type(self)._meta
            if not meta.pk_exists(pk):
                raise DoesNotExist(f"{type(self).__name__}: no instance with pk {pk!r}")
            self._connected = True

    @classmethod
    def _from_known_pk(cls, pk: str) -> RedisModel:
        """An instance whose pk is known to exist (no round trip)."""
        instance = cls.lazy_connect(pk)
        instance._connected = True
        return instance

    # Class methods ------------------------------------------------------------------------

    @classmethod
    def use_database(cls, database: RedisDatabase) -> None:
        """Host this model, and its subclasses that have no database of their own, in
        `database`."""
        if not isinstance(database, RedisDatabase):
            raise ImplementationError(
                f"{cls.__name__}.use_database(): {database!r} is not a RedisDatabase"
            )
        owner = _database_owner(cls)
        affected = [cls, *(s for s in _subclasses(cls) if _database_owner(s) is owner)]
        for model in affected:
            old = model.database
            if isinstance(old, RedisDatabase) and old is not database:
                old._remove_model(model)
        cls.database = database
        for model in affected:
            if not model._meta.abstract:
                database._add_model(model)

    @classmethod
    def get(cls, *args: Any, **filters: Any) -> RedisModel:
        """The instance with this pk, or the only one matching these filters.

        DoesNotExist if none, MultipleObjectsReturned (a ValueError) if several.
        """
        cls._check_concrete()
        if args:
            if len(args) > 1 or filters:
                raise ImplementationError(f"{cls.__name__}.get() takes a pk or filters, not both")
            return cls(args[0])
        if not filters:
            raise ImplementationError(f"{cls.__name__}.get() needs a pk or filters")
        return cls.collection(**filters)._only()

    @classmethod
    def get_or_connect(cls, **filters: Any) -> tuple[RedisModel, bool]:
        """`(instance, False)` for the instance matching these equality filters, or
        `(new instance created with them, True)`."""
        for _ in range(2):
            try:
                return cls.get(**filters), False
            except DoesNotExist:
                pass
            try:
                return cls(**filters), True
            except UniquenessError:
                continue  # created concurrently by another client: get it
        return cls.get(**filters), False

    @classmethod
    def exists(cls, *args: Any, **filters: Any) -> bool:
        """Whether an instance with this pk, or matching these filters, exists."""
        meta = cls._check_concrete()
        if args:
            if len(args) > 1 or filters:
                raise ImplementationError(
                    f"{cls.__name__}.exists() takes a pk or filters, not both"
                )
            return bool(meta.pk_exists(meta.pk_field.text(args[0])))
        return cls.collection(**filters)._any()

    @classmethod
    def lazy_connect(cls, pk: Any) -> RedisModel:
        """An instance with this pk, its existence checked only when first used."""
        meta = cls._check_concrete()
        instance = cls.__new__(cls)
        instance._pk = meta.pk_field.text(pk)
        instance._connected = False
        instance._bound_fields = {}
        return instance

    @classmethod
    def _check_backend(cls, backend: Backend) -> None:
        """Refuse, with an ImplementationError, a backend the model cannot run on (called when
        its database is pointed at a backend; RelatedModel checks its cluster groups)."""

    @classmethod
    def collection(
        cls, manager: type[CollectionManager] | None = None, **filters: Any
    ) -> CollectionManager:
        """The pks of the instances matching these filters (lazy; see Collections), through
        the model's `collection_manager` or the given `manager` class."""
        cls._check_concrete()
        return (manager or cls.collection_manager)(cls)(**filters)

    @classmethod
    def scan_model_keys(cls) -> Iterator[str]:
        """Every key of this model (collection, counter, indexes, instances), with SCAN."""
        meta = cls._check_concrete()
        return meta.database.scan_keys(match=glob_escape(meta.prefix) + ":*")

    @classmethod
    def get_field(cls, name: str) -> RedisField:
        """The field called `name` (`pk` is the pk field)."""
        return cls._meta.field(name)

    # Instance methods ---------------------------------------------------------------------

    def delete(self) -> None:
        """Delete the instance: its fields, its index entries, its pk from the collection."""
        writes.Rewrite(self, **self._deletion()).run()
        self._connected = False

    def _deletion(self) -> dict[str, Any]:
        """The arguments of the `writes.Rewrite` deleting this instance."""
        meta = type(self)._meta
        pk = self._require_pk()
        keys = sorted({field.key_for(pk) for field in meta.data_fields})
        return {
            "targets": [(field, []) for field in meta.data_fields],
            "commands": [],
            "reply": ("DEL", *keys) if keys else None,  # a model may have no field but its pk
            "last": [("SREM", meta.collection_key, pk), ("ZREM", meta.expiry_key, pk)],
            "prepare": self._prepare_delete,
        }

    def _reap_plan(self) -> writes.Rewrite:
        """The write deleting this instance whose time has passed (as `delete()`,
        references included): what `_reap` and `reap_expired` run. It checks, in its
        script, that the instance is still expired: one re-created (or given more time)
        since it was found expired is left alone."""
        return writes.Rewrite(self, **self._deletion(), reaping=True)

    def _reap(self) -> bool:
        """Delete this instance if its time has passed; whether it did."""
        self._connected = False
        return self._reap_plan().run() is not writes.SKIPPED

    @classmethod
    def _reap_expired_pk(cls, pk: str) -> None:
        """Reap the instance `pk` a write found expired (see `writes.before_reap`)."""
        if writes.before_reap is not None:
            writes.before_reap(cls, [pk])
        cls.lazy_connect(pk)._reap()

    # Expiry -------------------------------------------------------------------------------

    def expire(self, seconds: int | float) -> bool:
        """The instance disappears `seconds` from now: from that moment no read returns
        it, and it is deleted (index entries and references included) by the next write
        that meets it or by `reap_expired()`."""
        write = writes.Write(type(self), self._require_pk())
        write.expire_in(_finite(self, "expire", seconds))
        writes.retry_on_conflict(
            type(self)._meta.database, lambda: write.run(type(self)._meta.database), "expire"
        )
        return True

    def expireat(self, timestamp: int | float) -> bool:
        """As `expire()`, at this Unix time (the server's clock)."""
        meta = type(self)._meta
        write = writes.Write(type(self), self._require_pk())
        write.call("ZADD", meta.expiry_key, _finite(self, "expireat", timestamp), self._pk)
        write.run(meta.database)
        return True

    def persist(self) -> bool:
        """The instance no longer expires; whether it had an expiry time."""
        meta = type(self)._meta
        write = writes.Write(type(self), self._require_pk())
        write.call_for_reply("ZREM", meta.expiry_key, self._pk)
        return bool(write.run(meta.database))

    def ttl(self) -> float | None:
        """Seconds the instance has left, None if it does not expire."""
        meta = type(self)._meta
        self._ensure_exists()
        with meta.database.client.pipeline(transaction=False) as pipeline:
            pipeline.zscore(meta.expiry_key, self._require_pk())
            pipeline.time()
            expires_at, (seconds, microseconds) = pipeline.execute()
        if expires_at is None:
            return None
        return max(0.0, expires_at - (seconds + microseconds / 1e6))

    @classmethod
    def reap_expired(cls) -> int:
        """Delete every instance whose time has passed (as `delete()`, references
        included); how many. At most four round trips for any number of them, plus two for each
        one a concurrent write got in the way of (it is then deleted alone)."""
        meta = cls._check_concrete()
        client = meta.database.client
        seconds, microseconds = client.time()
        now = seconds + microseconds / 1e6
        due: list[str] = client.zrangebyscore(meta.expiry_key, "-inf", now)  # type: ignore[assignment]
        if writes.before_reap is not None:
            writes.before_reap(cls, due)
        instances = [cls.lazy_connect(pk) for pk in due]
        applied = writes.rewrite_many(meta.database, [i._reap_plan() for i in instances])
        # One the batch did not apply runs alone, with the usual retries and errors; it is
        # skipped if it is no longer expired, or gone (its expiry time is then dropped).
        return sum(done or i._reap() for i, done in zip(instances, applied, strict=True))

    def _prepare_delete(self, write: writes.Write) -> None:
        """Add to the deleting write what else it must change (see contrib.related)."""

    def scan_keys(self) -> Iterator[str]:
        """The keys holding this instance's fields (those that exist), in one round trip."""
        meta = type(self)._meta
        self._ensure_exists()
        pk = self._require_pk()
        keys = sorted({field.key_for(pk) for field in meta.data_fields})
        with meta.database.client.pipeline(transaction=False) as pipeline:
            for key in keys:
                pipeline.exists(key)
            found = pipeline.execute()
        return iter([key for key, exists in zip(keys, found, strict=True) if exists])

    def hmget(self, *names: str) -> list[str | None]:
        """The values of these InstanceHashFields, in order (one HMGET)."""
        meta = type(self)._meta
        fields = [meta.hash_field(name).name for name in names]
        if not fields:
            return []
        self._ensure_exists()
        return meta.database.connection.hmget(meta.hash_key(self._require_pk()), fields)

    def hmset(self, **values: Any) -> bool:
        """Set several InstanceHashFields at once, indexes kept exact (creates an unsaved
        instance)."""
        meta = type(self)._meta
        fields = {meta.hash_field(name).name: value for name, value in values.items()}
        if not fields:
            return True
        states = {name: meta.fields[name].state_of(value) for name, value in fields.items()}
        if self._pk is None:
            self._create(fields)
            return True
        flat = [x for name, state in states.items() for x in (name, state[0])]
        writes.Rewrite(
            self,
            [(meta.fields[name], state) for name, state in states.items()],
            [("HSET", meta.hash_key(self._pk), *flat)],
        ).run()
        return True

    def hdel(self, *names: str) -> int:
        """Delete these InstanceHashFields; the number that had a value."""
        meta = type(self)._meta
        fields = [meta.hash_field(name) for name in names]
        if not fields:
            return 0
        pk = self._require_pk()
        return writes.Rewrite(
            self,
            [(f, []) for f in fields],
            [],
            reply=("HDEL", meta.hash_key(pk), *(f.name for f in fields)),
        ).run()

    def _read_hash(self, command: str) -> Any:
        meta = type(self)._meta
        self._ensure_exists()
        return getattr(meta.database.connection, command)(meta.hash_key(self._require_pk()))

    def hgetall(self) -> dict[str, str]:
        """The InstanceHashFields that have a value, by name."""
        return self._read_hash("hgetall")

    def hkeys(self) -> list[str]:
        """The names of the InstanceHashFields that have a value."""
        return self._read_hash("hkeys")

    def hvals(self) -> list[str]:
        """The values of the InstanceHashFields that have one."""
        return self._read_hash("hvals")

    def hlen(self) -> int:
        """How many InstanceHashFields have a value."""
        return self._read_hash("hlen")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} pk={self._pk!r}>"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._pk is not None and self._pk == other._pk  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self._pk))


def import_model(path: str) -> type[RedisModel]:
    """The model named `package.module:Model` (for command lines); SystemExit otherwise."""
    module_name, _, attribute = path.partition(":")
    found = getattr(importlib.import_module(module_name), attribute, None) if attribute else None
    if not (isinstance(found, type) and issubclass(found, RedisModel)):
        raise SystemExit(f"{path!r} is not a limpyd model (expected package.module:Model)")
    return found


def _database_owner(model: type[RedisModel]) -> type | None:
    """The class in `model`'s MRO that defines the database it uses."""
    return next((c for c in model.__mro__ if "database" in c.__dict__), None)


def _subclasses(model: type[RedisModel]) -> Iterator[type[RedisModel]]:
    for sub in model.__subclasses__():
        yield sub
        yield from _subclasses(sub)
