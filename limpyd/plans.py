"""What a write changes besides its own keys: the index entries and uniqueness checks of the
fields it touches, added to a `Write` as commands and checks.

A field command (SADD, HSET, ...) is planned one of three ways: member by member (the script
adds or removes the entries of the members it finds touched), value by value (the script
reads the old and new values and applies entry templates to them), or from states read
beforehand (guarded, recomputed on a conflict). `writes` runs the plans.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from limpyd.commands import Command
from limpyd.fields.numbers import zadd_flags
from limpyd.protocol import placeholder
from limpyd.text import escape_value

if TYPE_CHECKING:
    from limpyd.fields.base import RedisField
    from limpyd.writes import Write

__all__ = [
    "State",
    "counter_read_back",
    "counter_value",
    "found_by_script",
    "index_entries",
    "member_wise",
    "new_value",
    "plan_index_changes",
    "plan_member_changes",
    "plan_together",
    "plan_unique",
    "plan_value_changes",
    "value_wise",
]

#: A field's state, as read_state gives it (see common.lua).
State = list[str]


def plan_index_changes(write: Write, field: RedisField, old: State, new: State) -> None:
    """Add to `write` the index updates (and uniqueness checks) of `field` going old -> new."""
    old_items, new_items = field.items_of(old), field.items_of(new)
    known = set(old_items)
    field.plan_references(
        write, [value for item in new_items if item not in known for value in item[1:]]
    )
    before = index_entries(field, write.pk, old_items, held=True)
    after = {
        **index_entries(field, write.pk, [i for i in new_items if i in known], held=True),
        **index_entries(field, write.pk, [i for i in new_items if i not in known]),
    }
    for add, remove in before.items():
        if add not in after:
            write.call(*remove)
    for add in after:
        if add not in before:
            write.call(*add)
    if field.unique:
        known = set(old_items)
        for hkey, value in dict.fromkeys(new_items):
            if (hkey, value) not in known:
                plan_unique(write, field, hkey, value)


def plan_unique(write: Write, field: RedisField, hkey: str | None, value: str) -> None:
    """No other instance may hold `value` (under `hkey`) in `field`."""
    for index in field.indexes:
        check = index.unique_check(value, write.pk, hkey) if index.handle_uniqueness else None
        if check is not None:
            kept = index.normalize(value)
            write.unique(field.describe(), value, check, None if kept == value else kept)


def plan_together(write: Write, old: dict[str, State], new: dict[str, State]) -> None:
    """Add to `write` the changes of the model's `unique_together` entries (one set per
    combination of values, holding the pk), and their uniqueness checks, for fields going
    from the states in `old` to those in `new` (by field name)."""
    meta = write.model._meta
    for names in meta.unique_together:
        before, after = meta.together_key(names, old), meta.together_key(names, new)
        if before == after:
            continue
        if before is not None:
            write.call("SREM", before, write.pk)
        if after is not None:
            values = tuple(new[name][0] for name in names)
            label = f"{write.model.__name__}.({', '.join(names)})"
            write.unique(label, values, ("set", after, "", ""))
            write.call("SADD", after, write.pk)


def index_entries(
    field: RedisField, pk: str, items: list[tuple[str | None, str]], held: bool = False
) -> dict[Any, Any]:
    """{add: remove} of the index entries of these values; `held`: values stored already,
    of which one an index refuses (written by another client) has none, as limpyd never
    indexed it (else a ValueError names it)."""
    entries: dict[Any, Any] = {}
    for index in field.indexes:
        for hkey, value in items:
            try:
                entries.update(index.entries(value, pk, hkey))
            except ValueError:
                if not held:
                    raise
    return entries


def touched_members(command: Command) -> tuple[bool, list[str]]:
    """Whether `command` removes members (else it adds), and those it may remove or add."""
    args = command.args
    if command.name in ("SREM", "ZREM"):
        return True, list(args[2:])
    if command.name == "ZADD":
        flags = zadd_flags(args)
        return False, [] if "XX" in flags else list(args[3 + len(flags) :: 2])
    if command.name == "ZINCRBY":
        return False, [args[3]]
    return False, list(args[2:])  # SADD


#: The commands whose index changes follow from their own members, by state kind.
_MEMBER_WISE = {"set": {"SADD", "SREM"}, "zset": {"ZADD", "ZREM", "ZINCRBY"}}


def member_wise(field: RedisField, creating: bool, command: Command) -> bool:
    """Whether this write of an existing instance can plan its index changes from the
    command's own members (one round trip, costs what it changes)."""
    if creating or command.name not in _MEMBER_WISE.get(field.state_kind, ()):
        return False
    return all(index.separable for index in field.indexes)


def plan_member_changes(write: Write, field: RedisField, command: Command) -> None:
    """Add to `write` the index entries (and checks) of the members `command` adds to or
    removes from `field`, each applied only if the member is indeed added or removed."""
    removing, touched = touched_members(command)
    members = list(dict.fromkeys(touched))
    if not removing:
        field.plan_references(write, members, unless_held=True)
    if not removing and field.unique:
        for member in members:
            plan_unique(write, field, None, member)
    plans = {
        member: [
            remove if removing else add
            for add, remove in index_entries(field, write.pk, [(None, member)], removing).items()
        ]
        for member in members
    }
    write.call_per_member(field.state_kind, command.args[1], removing, plans)


#: SET's options making it conditional: whether it writes is known once it ran.
_SET_CONDITIONS = frozenset({"NX", "XX", "IFEQ", "IFNE", "IFDEQ", "IFDNE"})


def new_value(command: Command) -> str | None:
    """The value a SET or an InstanceHashField's HSET writes unconditionally, else None."""
    if command.name == "SET" and not _SET_CONDITIONS & {a.upper() for a in command.args[3:]}:
        return cast(str, command.args[2])  # values are texts (RedisField.command)
    if command.name == "HSET" and len(command.args) == 4:
        return cast(str, command.args[3])
    return None


def value_templates(
    field: RedisField, pk: str, removals_only: bool = False
) -> tuple[str, list[Any], list[Any]] | None:
    """(a token, the removals, the additions) of the index entries of a value of `field`
    with the token in its place (`removals_only`: no additions, which some indexes cannot
    template); None when an entry is not the value's text as it is or escaped (a reversed
    or transformed value)."""
    if not all(index.stores_text for index in field.indexes):
        return None
    token = placeholder()
    escaped = escape_value(token)
    try:  # an index that parses the value (a number's score) refuses the token
        if removals_only:
            removes = [c for index in field.indexes for c in index.removals(token, pk)]
            adds: list[Any] = []
        elif all(index.separable for index in field.indexes):
            entries = [entry for index in field.indexes for entry in index.entries(token, pk)]
            removes, adds = [remove for _, remove in entries], [add for add, _ in entries]
        else:
            return None
    except ValueError:
        return None
    for command in [*removes, *adds]:
        if not any(token in str(a) or escaped in str(a) for a in command[1:]):
            return None
    return token, removes, adds


#: The fields whose every value the script can read (a hash's values are under hash keys).
_FOUND_KINDS = {"string", "hashfield", "set", "zset", "list"}


def found_by_script(field: RedisField, deleting: bool = False) -> bool:
    """Whether the index changes of a write of this indexed field of an existing instance
    can be found in the script: from its single value before and after the write, or
    (`deleting` it) from every value it held."""
    known = field.derived.get(("found by script", deleting))
    if known is None:
        known = field.derived[("found by script", deleting)] = _findable(field, deleting)
    return known


def _findable(field: RedisField, deleting: bool) -> bool:
    single = field.state_kind in ("string", "hashfield")
    if not (single or (deleting and field.state_kind in _FOUND_KINDS)):
        return False
    if any(field.name in group for group in field.model._meta.unique_together):
        return False
    return value_templates(field, "", removals_only=deleting) is not None


def value_wise(field: RedisField, creating: bool, command: Command) -> bool:
    """Whether this modifier is written in one round trip by `plan_value_changes` (a
    unique value, or a reference, must be known to be checked before any write)."""
    if creating or (command.name == "HSET" and len(command.args) != 4):
        return False
    checked = field.unique or field.references
    return found_by_script(field) and not (checked and new_value(command) is None)


def plan_value_changes(write: Write, field: RedisField, new: State | None) -> None:
    """Add to `write`, after its commands, the removal of the entries of `field`'s value
    before the write and the entries of its value after: `new`, its state, when known
    (then also checked for uniqueness), else found by the script."""
    templates = value_templates(field, write.pk, removals_only=new == [])
    assert templates is not None  # found_by_script
    token, removes, adds = templates
    write.value_entries("old", field, removes, token)
    if new is None:
        write.value_entries("new", field, adds, token)
        return
    field.plan_references(write, new, unless_held=True)
    for add in index_entries(field, write.pk, field.items_of(new)):
        write.call(*add)
    if field.unique:
        for value in new:
            plan_unique(write, field, None, value)


#: Commands whose integer reply is the field's new value. Script replies pass through Lua
#: numbers (doubles), exact only up to 2**53: their reply is read back as text instead.
_COUNTERS = frozenset({"INCR", "INCRBY", "DECR", "DECRBY", "HINCRBY"})


def counter_read_back(command: Command) -> tuple[Any, ...] | None:
    """The read giving the exact new value after a counter command, None for others."""
    if command.name not in _COUNTERS:
        return None
    if command.name == "HINCRBY":
        return ("HGET", command.args[1], command.args[2])
    return ("GET", command.args[1])


def counter_value(field: RedisField, command: Command, new: State) -> int:
    """The reply of a counter command, from the field's new state."""
    if field.state_kind == "hash":
        return int(dict(zip(new[::2], new[1::2], strict=True))[command.args[2]])
    return int(new[0])
