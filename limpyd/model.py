"""`RedisModel`: a class of objects stored in Redis, one key per field (InstanceHashFields share
one hash), found again by primary key or, through indexes, by collection.

The metaclass (`limpyd.meta`) builds each model's `_meta` once (fields, pk field, key
layout), so the paths that run per command stay short. No data is cached on instances: every
read asks Redis.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, TypeVar, cast, overload

from limpyd import creations, expiry, writes
from limpyd.backends import Backend
from limpyd.collection import CollectionManager
from limpyd.database import RedisDatabase
from limpyd.exceptions import (
    CreateManyError,
    DoesNotExist,
    ImplementationError,
    UniquenessError,
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
from limpyd.meta import REFUSED, MetaRedisModel, ModelOptions
from limpyd.refusals import missing_instance
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

#: A model class: `Model.get()` and its kin give instances of `Model`.
_Model = TypeVar("_Model", bound="RedisModel")
#: A collection manager class, as given to `Model.collection(manager=...)`.
_Manager = TypeVar("_Manager", bound=CollectionManager)


class RedisModel(metaclass=MetaRedisModel):
    """Base of all models. See the chapter "Models and fields"."""

    _meta: ClassVar[ModelOptions]
    pk: ClassVar[PKField]
    #: The names of the model's InstanceHashFields (redis-limpyd's name, which redis-limpyd's
    #: `hmget_dict` example reads).
    _hashable_fields: ClassVar[list[str]]
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
    #: What `__init__` sets on each instance: no related collection may take these names.
    _instance_attributes: ClassVar[frozenset[str]] = frozenset(
        {"_pk", "_connected", "_bound_fields"}
    )

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
                raise missing_instance(type(self), pk)
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
        cls: type[_Model], rows: Iterable[Mapping[str, Any]], batch_size: int = 500
    ) -> list[_Model]:
        """Create one instance per row (the values `Model(**values)` takes), each atomically
        with its indexes and checks, in ceil(rows / batch_size) round trips. Rows that are
        refused write nothing; the others are created, then `CreateManyError` says which
        rows were refused and why (by position), and holds the created instances. A row
        without values nor defaults gives an unsaved instance, as `Model()` does."""
        cls._check_concrete()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"{cls.__name__}.create_many: invalid batch_size {batch_size!r}")
        if isinstance(rows, str | bytes | Mapping) or not isinstance(rows, Iterable):
            raise ValueError(
                f"{cls.__name__}.create_many: rows are an iterable of mappings (field name: "
                f"value), not {type(rows).__name__} {rows!r:.100}"
            )
        prepared: list[dict[str, Any] | Exception] = []
        for row in rows:
            try:
                if not isinstance(row, Mapping) and not hasattr(row, "keys"):  # as dict() reads
                    raise ValueError(
                        f"{cls.__name__}: a row is a mapping (field name: value), not "
                        f"{type(row).__name__} {row!r:.100}"
                    )
                prepared.append(cls._creation_values(dict(row)))
            except (ValueError, ImplementationError) as error:
                prepared.append(error)
        sendable = [values for values in prepared if isinstance(values, dict) and values]
        outcomes = iter(creations.create_many(cls, sendable, batch_size))
        results: list[str | Exception | None] = [
            values if isinstance(values, Exception) else next(outcomes) if values else None
            for values in prepared
        ]
        instances: list[_Model | None] = []
        errors: dict[int, Exception] = {}
        for position, result in enumerate(results):
            if isinstance(result, Exception):
                errors[position] = result
                instances.append(None)
            elif result is None:  # no values: nothing to write
                instances.append(cls())
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
        return cast("list[_Model]", instances)  # no row refused: no None among them

    @classmethod
    def _check_concrete(cls) -> ModelOptions:
        if cls._meta.abstract:
            raise ImplementationError(f"Model {cls.__name__} is abstract: it has no instances")
        return cls._meta

    @classmethod
    def _named_values(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Values by real field name (`pk` becomes the pk field's name); unknown names refused,
        and two values for the pk (`pk=` and its name, even equal: one is enough)."""
        named: dict[str, Any] = {}
        for name, value in values.items():
            field = cls._meta.field(name)
            if field.name in named:
                pk = field.name
                raise ImplementationError(
                    f"{cls.__name__}: two values for the pk field {pk}: "
                    f"{', '.join(f'{k}={v!r}' for k, v in values.items() if k in ('pk', pk))}; "
                    "give one"
                )
            named[field.name] = value
        return named

    # Instance state ---------------------------------------------------------------------

    def _create(self, values: dict[str, Any]) -> None:
        self._saved(creations.create(self, values))

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
                raise missing_instance(type(self), pk)
            self._connected = True

    @classmethod
    def _from_known_pk(cls: type[_Model], pk: str) -> _Model:
        """An instance whose pk is known to exist (no round trip)."""
        instance = cls.lazy_connect(pk)
        instance._connected = True
        return instance

    # Class methods ------------------------------------------------------------------------

    @classmethod
    def use_database(cls, database: RedisDatabase) -> None:
        """Host this model, and its subclasses that have no other database (inherited, or
        naming the same one, as redis-limpyd moved them), in `database`."""
        if not isinstance(database, RedisDatabase):
            raise ImplementationError(
                f"{cls.__name__}.use_database(): {database!r} is not a RedisDatabase"
            )
        before = cls.database
        affected = [cls, *(s for s in _subclasses(cls) if s.database is before)]
        leaving = [(m, m.database) for m in affected if m.database is not database]
        # the classes whose own `database` attribute is set (the others inherit it)
        owners = {m: m.__dict__.get("database", _NOT_OWN) for m in affected}
        owners = {m: own for m, own in owners.items() if m is cls or own is not _NOT_OWN}
        hosted = [database.get_model(m.__name__, m.namespace) for m, _ in leaving]
        for model, old in leaving:
            if isinstance(old, RedisDatabase):
                old._remove_model(model)
        for model in owners:
            model.database = database
        try:
            for model in affected:
                if not model._meta.abstract:
                    database._add_model(model)
            cls._check_moved(database)
        except BaseException:  # a refused move leaves every model where it was
            for (model, _), previous in zip(leaving, hosted, strict=True):
                database._remove_model(model)
                if previous is not None and previous is not model:  # a definition it replaced
                    database._add_model(previous)
            for model, own in owners.items():
                if own is _NOT_OWN:
                    del model.database
                else:
                    model.database = own
            for model, old in leaving:
                if isinstance(old, RedisDatabase) and not model._meta.abstract:
                    old._add_model(model)
            raise

    @classmethod
    def _check_moved(cls, database: RedisDatabase) -> None:
        """Refuse, with an ImplementationError, the move of this model (and the subclasses
        following it) to `database`, once there: `use_database` then moves them back
        (RelatedModel checks its relations)."""

    @classmethod
    def get(cls: type[_Model], *args: Any, **filters: Any) -> _Model:
        """The instance with this pk, or the only one matching these filters.

        DoesNotExist if none, MultipleObjectsReturned (a ValueError) if several.
        """
        cls._check_concrete()
        if cls._pk_or_filters("get", args, filters):
            return cls(args[0])
        collection: CollectionManager = cls.collection(**filters)
        return cast(_Model, collection._only())  # an instance of `cls`

    @classmethod
    def get_or_connect(cls: type[_Model], **filters: Any) -> tuple[_Model, bool]:
        """`(instance, False)` for the instance matching these equality filters, or
        `(new instance created with them, True)`."""
        refused: UniquenessError | None = None
        for _ in range(2):
            try:
                return cls.get(**filters), False
            except DoesNotExist:
                pass
            try:
                return cls(**filters), True
            except UniquenessError as error:  # created concurrently by another client: get it
                refused = error
        try:
            return cls.get(**filters), False
        except DoesNotExist:  # a unique value held by an instance the filters do not match
            assert refused is not None
            raise refused from None

    @classmethod
    def exists(cls, *args: Any, **filters: Any) -> bool:
        """Whether an instance with this pk, or matching these filters, exists."""
        meta = cls._check_concrete()
        if cls._pk_or_filters("exists", args, filters):
            return bool(meta.pk_exists(meta.pk_field.text(args[0])))
        collection: CollectionManager = cls.collection(**filters)
        return collection._any()

    @classmethod
    def _pk_or_filters(cls, method: str, args: tuple[Any, ...], filters: dict[str, Any]) -> bool:
        """Whether `method` (get, exists) was given a pk (True) or filters (False); an
        ImplementationError (a ValueError, as in redis-limpyd) for anything else."""
        if args and (len(args) > 1 or filters):
            raise ImplementationError(
                f"{cls.__name__}.{method}() takes one pk, or filters: got {args!r} {filters!r}"
            )
        if not args and not filters:
            raise ImplementationError(f"{cls.__name__}.{method}() needs a pk or filters")
        return bool(args)

    @classmethod
    def lazy_connect(cls: type[_Model], pk: Any) -> _Model:
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

    @overload
    @classmethod
    def collection(cls, manager: None = None, **filters: Any) -> CollectionManager: ...
    @overload
    @classmethod
    def collection(cls, manager: type[_Manager], **filters: Any) -> _Manager: ...
    @classmethod
    def collection(
        cls, manager: type[CollectionManager] | None = None, **filters: Any
    ) -> CollectionManager:
        """The pks of the instances matching these filters (lazy; see Collections), through
        the model's `collection_manager` or the given `manager` class."""
        cls._check_concrete()
        return (manager or cls.collection_manager)(cls)(**filters)

    @classmethod
    def instances(cls, lazy: bool = False, **filters: Any) -> CollectionManager:
        """`collection(**filters).instances()`: the matching instances (as in redis-limpyd)."""
        collection: CollectionManager = cls.collection(**filters)
        return collection.instances(lazy=lazy)

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

    @property
    def connection(self) -> Any:
        """The redis client of the instance's database (its pipeline in a pipeline), as in
        redis-limpyd."""
        return type(self)._meta.database.connection

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
        """The write deleting this instance whose time has passed (see `expiry`)."""
        return expiry.reap_plan(self)

    def _reap(self) -> bool:
        """Delete this instance if its time has passed; whether it did."""
        return expiry.reap(self)

    @classmethod
    def _reap_expired_pk(cls, pk: str) -> None:
        """Reap the instance `pk` a write found expired (see `writes.before_reap`)."""
        expiry.reap_pk(cls, pk)

    # Expiry (see `limpyd.expiry`) ------------------------------------------------------------

    def expire(self, seconds: int | float) -> bool:
        """The instance disappears `seconds` from now: from that moment no read returns
        it, and it is deleted (index entries and references included) by the next write
        that meets it or by `reap_expired()`."""
        return expiry.expire(self, seconds)

    def expireat(self, timestamp: int | float) -> bool:
        """As `expire()`, at this Unix time (the server's clock)."""
        return expiry.expireat(self, timestamp)

    def persist(self) -> bool:
        """The instance no longer expires; whether it had an expiry time."""
        return expiry.persist(self)

    def ttl(self) -> float | None:
        """Seconds the instance has left (0 once its time passed), None if it does not
        expire; DoesNotExist if it is gone (deleted, or reaped), as for `expire()`."""
        return expiry.ttl(self)

    @classmethod
    def reap_expired(cls, progress: Callable[[str, int, int], None] | None = None) -> int:
        """Delete every instance whose time has passed (as `delete()`, references
        included); how many. At most four round trips for any number of them, plus two for each
        one a concurrent write got in the way of (it is then deleted alone).

        With `progress(task, done, total)`, they are deleted by batches of
        `expiry.REAP_BATCH` (a few round trips each), `progress` called after each.

        An instance whose data another client corrupted (a key of another type) is left as
        it is, the others reaped: then a RefusedValueError names it and says how many were."""
        return expiry.reap_expired(cls, progress)

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
        self._require_names("hmget", fields, "hgetall() reads them all")
        self._ensure_exists()
        values: list[str | None] = meta.database.connection.hmget(
            meta.hash_key(self._require_pk()), fields
        )
        return values

    def hmset(self, **values: Any) -> Any:
        """Set several InstanceHashFields at once, indexes kept exact (creates an unsaved
        instance); True (in a pipeline: the pipeline, its result there True)."""
        meta = type(self)._meta
        fields = {meta.hash_field(name).name: value for name, value in values.items()}
        self._require_names("hmset", fields, "e.g. hmset(name=value)")
        states = {name: meta.fields[name].state_of(value) for name, value in fields.items()}
        if self._pk is None:
            self._create(fields)
            return True
        flat = [x for name, state in states.items() for x in (name, state[0])]
        # queued in a pipeline: HMSET, whose result there is True, as this call's
        pipelined = meta.database.pipelined
        queued = writes.Rewrite(
            self,
            [(meta.fields[name], state) for name, state in states.items()],
            [("HMSET" if pipelined else "HSET", meta.hash_key(self._pk), *flat)],
        ).run()
        return queued if pipelined else True

    def hdel(self, *names: str) -> int:
        """Delete these InstanceHashFields; the number that had a value."""
        meta = type(self)._meta
        fields = [meta.hash_field(name) for name in names]
        self._require_names("hdel", fields, "e.g. hdel('name')")
        pk = self._require_pk()
        deleted: int = writes.Rewrite(
            self,
            [(f, []) for f in fields],
            [],
            reply=("HDEL", meta.hash_key(pk), *(f.name for f in fields)),
        ).run()
        return deleted

    def _require_names(self, command: str, fields: Any, hint: str) -> None:
        """Refuse `command` given no InstanceHashField, as Redis (and redis-limpyd) did."""
        if not fields:
            raise ValueError(
                f"{type(self).__name__}.{command}(): name at least one InstanceHashField "
                f"({hint}); nothing was sent"
            )

    def _read_hash(self, command: str) -> Any:
        meta = type(self)._meta
        self._ensure_exists()
        return getattr(meta.database.connection, command)(meta.hash_key(self._require_pk()))

    def hgetall(self) -> dict[str, str]:
        """The InstanceHashFields that have a value, by name."""
        reply: dict[str, str] = self._read_hash("hgetall")
        return reply

    def hkeys(self) -> list[str]:
        """The names of the InstanceHashFields that have a value."""
        reply: list[str] = self._read_hash("hkeys")
        return reply

    def hvals(self) -> list[str]:
        """The values of the InstanceHashFields that have one."""
        reply: list[str] = self._read_hash("hvals")
        return reply

    def hlen(self) -> int:
        """How many InstanceHashFields have a value."""
        reply: int = self._read_hash("hlen")
        return reply

    def __repr__(self) -> str:
        return f"<{type(self).__name__} pk={self._pk!r}>"

    def __eq__(self, other: object) -> bool:
        """The same instance: the same model and pk (an unsaved one is equal to itself
        only)."""
        if self is other:
            return True
        return type(other) is type(self) and self._pk is not None and self._pk == other._pk

    def __hash__(self) -> int:
        """By model and pk; an unsaved instance has no hash (its pk, its identity, comes with
        its first write: a set or dict holding it would lose it), as Django's."""
        if self._pk is None:
            raise TypeError(f"an unsaved {type(self).__name__} instance is unhashable")
        return hash((type(self), self._pk))


def import_model(path: str) -> type[RedisModel]:
    """The model named `package.module:Model` (for command lines); SystemExit otherwise."""
    module_name, _, attribute = path.partition(":")
    found = getattr(importlib.import_module(module_name), attribute, None) if attribute else None
    if not (isinstance(found, type) and issubclass(found, RedisModel)):
        raise SystemExit(f"{path!r} is not a limpyd model (expected package.module:Model)")
    return found


#: `use_database` on a model that inherited its database (no attribute of its own).
_NOT_OWN = object()


def _subclasses(model: type[RedisModel]) -> Iterator[type[RedisModel]]:
    """The models declared from `model`, at any depth (not those refused: see REFUSED)."""
    for sub in model.__subclasses__():
        if sub not in REFUSED:
            yield sub
            yield from _subclasses(sub)
