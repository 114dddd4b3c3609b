"""The survey of a model's old data: what it holds, what stops its migration."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from limpyd.exceptions import ImplementationError
from limpyd.fields.pk import COUNTER_RULE, MAX_COUNTER, counter_value
from limpyd.maintenance import SCAN_COUNT, batches
from limpyd.migration.source import SHOWN, Instance, OldModel, State, in_batches, old_prefix
from limpyd.text import glob_escape, member_pk, shown

if TYPE_CHECKING:
    from limpyd.fields.base import RedisField
    from limpyd.model import RedisModel

__all__ = ["KINDS", "Lines", "Survey", "survey"]

#: The kinds of old keys, in the order the survey reports them.
KINDS = ("collection", "max_pk", "instance keys", "old index keys", "keys of undeclared fields")


class Lines:
    """Lines of one kind for the user: all counted, the first SHOWN kept."""

    def __init__(self) -> None:
        self.count = 0
        self.shown: list[str] = []

    def add(self, line: str) -> None:
        """Count `line`, keep it if fewer than SHOWN are kept."""
        self.count += 1
        if len(self.shown) < SHOWN:
            self.shown.append(line)

    def __bool__(self) -> bool:
        return self.count > 0


@dataclass
class Survey:
    """What a model's old data holds, and what stops its migration."""

    old: OldModel
    instances: int = 0
    max_pk: int | None = None
    keys: dict[str, int] = field(default_factory=dict)
    #: Values that stop the migration (invalid for an index, unique values held twice...).
    errors: Lines = field(default_factory=Lines)
    #: What is not migrated, values of fields the limpyd model does not declare: by field,
    #: how many keys hold some, and the first one.
    undeclared: dict[str, tuple[int, str]] = field(default_factory=dict)

    def not_migrated(self, what: str, key: str) -> None:
        """Note that `key` holds values of `what`, which the limpyd model does not declare."""
        count, first = self.undeclared.get(what, (0, key))
        self.undeclared[what] = (count + 1, first)

    @property
    def model(self) -> type[RedisModel]:
        """The limpyd model."""
        return self.old.model

    @property
    def found(self) -> bool:
        """Whether redis-limpyd left anything of the model (a key of it an error names too)."""
        return bool(
            self.instances or self.max_pk is not None or any(self.keys.values()) or self.errors
        )


def survey(old: OldModel) -> Survey:
    """Read (never write) a model's old keys and values."""
    result = Survey(old)
    client = old.client
    kinds = dict(zip((old.collection_key, old.max_pk_key), _types(client, old), strict=True))
    for key, wanted in ((old.collection_key, "set"), (old.max_pk_key, "string")):
        if kinds[key] not in (wanted, "none"):
            result.errors.add(f"{key!r} is a {kinds[key]}, not a {wanted}")
    if result.errors:
        return result  # nothing else can be read
    raw_max = cast("str | None", client.get(old.max_pk_key))
    if raw_max is not None:
        result.max_pk = counter_value(raw_max)
        if result.max_pk is None:
            result.errors.add(f"{old.max_pk_key!r} holds {shown(raw_max)}, {_NO_COUNTER}")
    for refused in _target_refusals(old.model):
        result.errors.add(refused)
    _count_keys(old, result)
    #: who holds each unique value (or combination): {what: {pk: the value as held}}
    holders: dict[Any, dict[str, str]] = {}
    meta = old.model._meta
    migrated: set[str] = set()  # the pks the copy writes (a limpyd instance of one is replaced)
    for pks in in_batches(old.pks()):
        instances = old.states(pks)
        references = _references(old, instances)
        for line in [*_dangling(old, references), *_mistyped_links(old, references)]:
            result.errors.add(line)
        for instance in instances:
            result.instances += 1
            migrated.add(instance.pk)
            pk_refused = _pk_refusal(old.model, instance.pk)
            if pk_refused is not None:
                result.errors.add(pk_refused)
                continue
            if old.model._meta.pk_field.auto:
                # the counter must be past every pk, whatever max_pk said
                result.max_pk = max(result.max_pk or 0, int(instance.pk))
            for what, key in instance.undeclared:
                result.not_migrated(what, key)
            for line in instance.errors:
                result.errors.add(line)
            for name, state in instance.states.items():
                _check_values(meta.fields[name], instance.pk, state, holders, result.errors)
            for group in meta.unique_together:
                if meta.together_key(group, instance.states) is not None:
                    values = tuple(instance.states[name][0] for name in group)
                    holders.setdefault(("together", group, values), {})[instance.pk] = ""
    for what, held in holders.items():
        if len(held) > 1:
            result.errors.add(_conflict(old.model, what, held))
    for line in _held_already(old.model, holders, migrated):
        result.errors.add(line)
    return result


def _held_already(
    model: type[RedisModel], holders: dict[Any, dict[str, str]], migrated: set[str]
) -> list[str]:
    """The unique values (and combinations) old instances hold that a limpyd instance the
    copy keeps (of another pk) holds already: the copy would give them to two instances."""
    meta = model._meta
    client = meta.database.client
    lines = []
    conflicts: list[tuple[Any, list[str]]] = []
    for batch in batches(holders):
        with client.pipeline(transaction=False) as pipeline:
            for what in batch:
                if what[0] == "together":
                    names, values = what[1], what[2]
                    state = {n: [v] for n, v in zip(names, values, strict=True)}
                    # a combination is noted only when its key exists (see `survey`)
                    pipeline.smembers(cast(str, meta.together_key(names, state)))
                    continue
                how, key, low, high = what[2]
                if how == "set":
                    pipeline.smembers(key)
                elif how == "lex":
                    pipeline.zrangebylex(key, low, high)
                else:
                    pipeline.zrangebyscore(key, low, high)
            replies = pipeline.execute(raise_on_error=False)
        for what, reply in zip(batch, replies, strict=True):
            if isinstance(reply, Exception):
                lines.append(f"{model.__name__}: cannot read limpyd's index of {what!r}: {reply}")
                continue
            ranged = what[0] != "together" and what[2][0] != "set"
            found = {member_pk(m) if ranged else m for m in reply} - {None}
            kept = sorted(str(pk) for pk in found - migrated)
            if kept:
                conflicts.append((what, kept))
    expired = _expired(model, [pk for _, kept in conflicts for pk in kept])
    for what, kept in conflicts:
        old = ", ".join(repr(pk) for pk in sorted(holders[what], key=_pk_order))
        gone = " (expired, not reaped yet: run `python -m limpyd reap` first)"
        lines.append(
            f"{_unique_where(model, what)}: old instance(s) {old} hold a value that "
            f"limpyd's instance(s) {', '.join(map(repr, kept))} (not migrated over) "
            f"hold already{gone if set(kept) <= expired else ''}"
        )
    return lines


def _expired(model: type[RedisModel], pks: list[str]) -> set[str]:
    """Those of these limpyd instances whose time has passed (by the server's clock)."""
    if not pks:
        return set()
    meta = model._meta
    with meta.database.client.pipeline(transaction=False) as pipeline:
        pipeline.time()
        pipeline.zmscore(meta.expiry_key, pks)
        (seconds, microseconds), times = pipeline.execute(raise_on_error=False)
    if isinstance(times, Exception):  # an expiry key of another type: said elsewhere
        return set()
    now = seconds + microseconds / 1e6
    return {pk for pk, at in zip(pks, times, strict=True) if at is not None and at <= now}


def _unique_where(model: type[RedisModel], what: tuple[Any, ...]) -> str:
    """The unique field (or unique_together group) a holders' entry is about."""
    if what[0] == "together":
        return f"{model.__name__}: unique_together ({', '.join(what[1])})"
    return f"{model.__name__}.{what[0]}" + (f"[{what[1]!r}]" if what[1] is not None else "")


#: Why a text cannot be a pk counter.
_NO_COUNTER = f"not a pk counter ({COUNTER_RULE})"


def _target_refusals(model: type[RedisModel]) -> list[str]:
    """Why the copy could not write limpyd's keys of `model` (its collection, expiry times,
    pk counter: another client's of another type), or raise its pk counter."""
    meta = model._meta
    wanted = {meta.collection_key: "set", meta.expiry_key: "zset", meta.max_pk_key: "string"}
    with meta.database.client.pipeline(transaction=False) as pipeline:
        for key in wanted:
            pipeline.type(key)
        pipeline.get(meta.max_pk_key)
        *kinds, value = pipeline.execute(raise_on_error=False)
    lines = [
        f"limpyd's {key!r} is a {kind}, not a {want}"
        for (key, want), kind in zip(wanted.items(), kinds, strict=True)
        if kind not in (want, "none")
    ]
    if meta.pk_field.auto and kinds[2] in ("string", "none") and counter_value(value) is None:
        lines.append(f"limpyd's {meta.max_pk_key!r} holds {shown(value)}, {_NO_COUNTER}")
    return lines


def _types(client: Any, old: OldModel) -> list[str]:
    with client.pipeline(transaction=False) as pipeline:
        pipeline.type(old.collection_key)
        pipeline.type(old.max_pk_key)
        return list(pipeline.execute())


def _references(old: OldModel, instances: list[Instance]) -> list[Any]:
    """The (pk, field, value, related model) references of these instances."""
    meta = old.model._meta
    return [
        # type-ignored: a field with `references` is a contrib.related field (not imported here)
        (instance.pk, f, value, f.require_related_model())  # type: ignore[attr-defined]
        for instance in instances
        for name, state in instance.states.items()
        if (f := meta.fields[name]).references
        for _, value in f.items_of(state)
    ]


def _dangling(old: OldModel, references: list[Any]) -> list[str]:
    """The `references` (see `_references`) to instances neither the old data nor limpyd's
    holds (a run stopped while deleting the source leaves instances only limpyd holds), and
    a collection those are read in that is no set."""
    lines: list[str] = []
    for client, collection in (
        (old.client, lambda m: f"{old_prefix(m)}:collection"),
        (old.model._meta.database.client, lambda m: m._meta.collection_key),
    ):
        references = _absent(client, references, collection, lines)
    return lines + [
        f"{old.model.__name__} {pk!r}: {f.describe()} points to {value!r}, an instance of "
        f"{related.__name__} that neither the old data nor limpyd's holds"
        for pk, f, value, related in references
    ]


def _absent(
    client: Any,
    references: list[Any],
    collection: Callable[[type[RedisModel]], str],
    lines: list[str],
) -> list[Any]:
    """The (pk, field, value, related model) references whose value is not in the related
    model's `collection` on `client`; a collection that cannot be read (another type) is
    said in `lines`, and its references are not said dangling (nothing tells if they are)."""
    with client.pipeline(transaction=False) as pipeline:
        for _, _, value, related in references:
            pipeline.sismember(collection(related), value)
        found = pipeline.execute(raise_on_error=False)
    for key in dict.fromkeys(
        collection(related)
        for (_, _, _, related), exists in zip(references, found, strict=True)
        if isinstance(exists, Exception)
    ):
        lines.append(f"{key!r} cannot be read as a set of pks (another type)")
    return [
        r
        for r, exists in zip(references, found, strict=True)
        if not isinstance(exists, Exception) and not exists
    ]


def _mistyped_links(old: OldModel, references: list[Any]) -> list[str]:
    """The link records the rebuild writes for these `references` (a hash on each instance
    referred to) that another client made another type."""
    keys = list(dict.fromkeys(related._meta.links_key(value) for *_, value, related in references))
    with old.model._meta.database.client.pipeline(transaction=False) as pipeline:
        for key in keys:
            pipeline.type(key)
        kinds = pipeline.execute()
    return [
        f"limpyd's link records {key!r} are a {kind}, not a hash"
        for key, kind in zip(keys, kinds, strict=True)
        if kind not in ("hash", "none")
    ]


def _check_values(
    f: RedisField, pk: str, state: State, holders: dict[Any, dict[str, str]], errors: Lines
) -> None:
    """Compute the index entries of a value (an index refusing it is an error) and note who
    holds each unique value."""
    for hkey, value in f.items_of(state):
        for index in f.indexes:
            try:
                index.entries(value, pk, hkey)
                check = index.unique_check(value, pk, hkey) if f.unique else None
            except (ValueError, ImplementationError) as error:
                errors.add(f"{f.model.__name__} {pk!r}: {error}")
                continue
            if check is not None and index.handle_uniqueness:
                holders.setdefault((f.name, hkey, check), {})[pk] = value


def _conflict(model: type[RedisModel], what: tuple[Any, ...], holders: dict[str, str]) -> str:
    pks = sorted(holders, key=_pk_order)
    held = ", ".join(repr(pk) for pk in pks[:SHOWN])
    held += f" (and {len(pks) - SHOWN} more)" if len(pks) > SHOWN else ""
    if what[0] == "together":
        same = ", ".join(f"{n}={v!r}" for n, v in zip(what[1], what[2], strict=True))
        return f"{model.__name__}: unique_together: instances {held} hold the same {same}"
    name, hkey = what[0], what[1]
    where = f"{model.__name__}.{name}" + (f"[{hkey!r}]" if hkey is not None else "")
    values = sorted(set(holders.values()))
    if len(values) == 1:
        return f"{where} is unique, but instances {held} hold the same value {values[0]!r}"
    shown = ", ".join(map(repr, values[:SHOWN]))
    return f"{where} is unique, but instances {held} hold values its index takes as one: {shown}"


#: The pks an AutoPKField gives (its counter's values), the only ones its model can hold.
_AUTO_PK = re.compile(r"[1-9][0-9]*")


def _pk_refusal(model: type[RedisModel], pk: str) -> str | None:
    """Why `model` cannot hold an instance of pk `pk`, if it cannot."""
    pk_field = model._meta.pk_field
    if pk_field.auto and not _AUTO_PK.fullmatch(pk):
        return (
            f"{model.__name__} {pk!r}: not a pk its {type(pk_field).__name__} gives (1, 2, "
            "3...): declare the PKField the old model had"
        )
    if pk_field.auto and int(pk) >= MAX_COUNTER:
        return (
            f"{model.__name__} {pk!r}: its {type(pk_field).__name__}'s counter could give no "
            f"pk after it (a Redis counter stops at {MAX_COUNTER})"
        )
    if not pk:
        return f"{model.__name__}: an instance of pk '' (a pk cannot be empty)"
    return None


def _pk_order(pk: str) -> tuple[int, str]:
    """Numbers in their order, then texts."""
    return (int(pk), "") if pk.isascii() and pk.isdigit() else (1 << 62, pk)


def _count_keys(old: OldModel, result: Survey) -> None:
    """Sort the old keys: instance keys (copied), index keys and others (rebuilt or left)."""
    client = old.client
    start = len(old.prefix) + 1
    names = {f.name for f in old.keyed_fields} | ({"hash"} if old.hash_fields else set())
    counts = result.keys
    pattern = glob_escape(old.prefix) + ":*"
    for keys in in_batches(client.scan_iter(match=pattern, count=SCAN_COUNT)):
        rests = [key[start:] for key in keys]
        splits = [rest.rpartition(":") for rest in rests]
        with client.pipeline(transaction=False) as pipeline:
            for pk, _, _ in splits:
                pipeline.sismember(old.collection_key, pk)
            members = pipeline.execute()
        for key, rest, (_, _, name), member in zip(keys, rests, splits, members, strict=True):
            if rest in ("collection", "max_pk"):
                kind = rest
            elif member and name in names:
                kind = "instance keys"
            elif member:
                kind = "keys of undeclared fields"
                result.not_migrated(f"field {name!r}", key)
            else:
                kind = "old index keys"
            counts[kind] = counts.get(kind, 0) + 1
