"""The machines catch broken builds: each test monkeypatches a bug into limpyd and asserts
the relevant machine fails (on a private in-memory server; the parity one on Redis too).

Runs are derandomized (the same examples every time) and do not shrink, so each test is
quick and deterministic.

The tests after `hunting` plant back, one each, the defects part 9 fixed. Those only the
rules of limpyd_testing's ModelStateMachine reach run `IndexConsistencyMachine`.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RULE_MARKER, precondition, rule

from limpyd import creations, lua, plans, writes
from limpyd.backends import fake_connection
from limpyd.collection import CollectionManager
from limpyd.contrib import related
from limpyd.fields import base as fields_base
from limpyd.fields import sortedsets
from limpyd.fields.strings import InstanceHashField
from limpyd.indexes import NumberRangeIndex, TextRangeIndex, parse_number
from limpyd.model import RedisModel
from properties import test_uniqueness
from properties.models import INDEX_FIELD_TEXTS, NUMBER_POOL
from properties.test_backend_parity import BackendParityMachine
from properties.test_collections import CollectionMachine
from properties.test_index_consistency import MODELS, IndexConsistencyMachine
from properties.test_related_deletion import RelatedDeletionMachine
from properties.test_uniqueness import UniquenessMachine


def hunting(examples: int = 50, steps: int = 30) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        phases=(Phase.generate,),
        derandomize=True,
        database=None,
        deadline=None,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


def narrowed(
    machine: Any, *rules: str, weights: dict[str, int] | None = None, **attributes: Any
) -> Any:
    """A subclass of `machine` running only `rules` (the others stay plain methods, still
    callable by the rules kept), each `weights[name]` times as often as the others, with
    these class `attributes` (models...): a hunt aimed at the bug, caught by the machine's
    own invariants."""
    members = dict(inspect.getmembers(machine))
    known = {name for name, member in members.items() if hasattr(member, RULE_MARKER)}
    assert set(rules) <= known, f"{machine.__name__} has no rules {sorted(set(rules) - known)}"
    body = {name: getattr(members[name], RULE_MARKER).function for name in known - set(rules)}
    for name, weight in (weights or {}).items():
        body.update({f"{name}_{i}": members[name] for i in range(1, weight)})
    return type(f"Narrowed{machine.__name__}", (machine,), {**body, **attributes})


#: The rules of ModelStateMachine running one modifier of a field.
MODIFIERS = ("modify_string", "modify_set", "modify_list", "modify_hash", "modify_zset")


def test_index_consistency_catches_a_skipped_index_update(monkeypatch):
    """The indexes of ListFields are never updated."""
    original = plans.plan_index_changes

    def skipping_lists(write, field, old, new):
        if field.state_kind != "list":
            original(write, field, old, new)

    monkeypatch.setattr(plans, "plan_index_changes", skipping_lists)
    with pytest.raises(AssertionError):
        IndexConsistencyMachine.run(settings=hunting())


def test_index_consistency_catches_a_wrong_range(monkeypatch):
    """NumberRangeIndex's `lte` filter excludes its bound. Writes only, of the model with
    two number-range fields (a unique StringField, a SortedSetField's members), their
    values drawn from a few numbers: the invariant probes the values each step wrote with
    each suffix in turn."""
    original = NumberRangeIndex._atoms

    def exclusive_lte(self, suffix, value, hkey):
        atoms = original(self, suffix, value, hkey)
        if suffix == "lte":
            kind, key, low, high = atoms[0]
            atoms = [(kind, key, low, "(" + high)]
        return atoms

    monkeypatch.setattr(NumberRangeIndex, "_atoms", exclusive_lte)
    numbers = st.sampled_from(["0", "1", "-1", "2.5", "10", "1e1"])
    machine = narrowed(
        IndexConsistencyMachine,
        "create",
        "modify_string",
        "modify_zset",
        "delete_instance",
        models=[MODELS.Entry],
        field_texts={**INDEX_FIELD_TEXTS, "Entry.size": numbers, "Entry.points": numbers},
        max_probes=8,
    )
    with pytest.raises(AssertionError):
        machine.run(settings=hunting())


def test_uniqueness_catches_a_skipped_check(monkeypatch):
    """TextRangeIndex never checks uniqueness (the `code` field)."""
    monkeypatch.setattr(
        TextRangeIndex, "_unique_check", lambda self, value, hkey: ("set", "", "", "")
    )
    with pytest.raises(AssertionError):
        UniquenessMachine.run(settings=hunting())


def test_uniqueness_catches_a_combination_left_behind(monkeypatch):
    """Changing a field of a `unique_together` group adds the new combination but never
    frees the old one."""
    original = plans.plan_together

    def keeping_old(write, old, new):
        original(write, {}, new)  # as if nothing was held before

    monkeypatch.setattr(plans, "plan_together", keeping_old)
    with pytest.raises(AssertionError):
        UniquenessMachine.run(settings=hunting())


@precondition(lambda self: self.data)
@rule(data=st.data(), name=st.sampled_from(test_uniqueness.NUMERIC))
def write_number(self: Any, data: st.DataObject, name: str) -> None:
    """UniquenessMachine's `write_field` on a number-range field."""
    UniquenessMachine.write_field(self, data, name)


def test_uniqueness_catches_numbers_compared_as_floats(monkeypatch):
    """The uniqueness of a NumberRangeIndex compares the values as floats (2**53 and
    2**53 + 1 collide). Creations and writes of the number-range fields, which draw their
    numbers from those of `NUMBER_POOL` at stake."""
    pool = [2**53, 2**53 + 1, str(2**53 + 1)]
    assert set(pool) <= set(NUMBER_POOL)
    monkeypatch.setattr(test_uniqueness, "numbers", st.sampled_from(pool))
    monkeypatch.setattr(
        NumberRangeIndex,
        "exact_key",
        lambda self, value, hkey: f"{self.base_key(hkey)}:{self.number(value)[0]}",
    )
    machine = narrowed(UniquenessMachine, "create", write_number=write_number)
    with pytest.raises(AssertionError):
        machine.run(settings=hunting(examples=100))


def test_related_deletion_catches_a_partial_unlink(monkeypatch):
    """Deleting an instance removes only the first occurrence of its pk from M2M lists.
    Creations, (mostly) writes of M2M lists, which repeat pks, and deletions."""
    text = lua.SCRIPT.text.replace(
        "redis.call('LREM', key, 0, pk)", "redis.call('LREM', key, 1, pk)"
    )
    assert text != lua.SCRIPT.text
    monkeypatch.setattr(writes, "APPLY", lua.ScriptMode(lua.LuaScript(text), "apply"))
    machine = narrowed(
        RelatedDeletionMachine,
        "create",
        "write_m2m_list",
        "delete",
        weights={"write_m2m_list": 3, "delete": 2},
    )
    with pytest.raises(AssertionError):
        machine.run(settings=hunting(examples=100))


def test_collections_catch_an_ignored_descending_sort(monkeypatch):
    """`sort(desc=True)` sorts ascending."""
    original = CollectionManager.sort

    def ascending(self, by=None, alpha=False, desc=False):
        return original(self, by=by, alpha=alpha, desc=False)

    monkeypatch.setattr(CollectionManager, "sort", ascending)
    with pytest.raises(AssertionError):
        CollectionMachine.run(settings=hunting())


def test_collections_catch_an_ignored_descending_secondary_key(monkeypatch):
    """In a multi-key sort, `-name` is ascending for every key but the first."""
    original = CollectionManager.sort

    def first_key_only(self, by=None, alpha=False, desc=False):
        if isinstance(by, list | tuple):
            by = [by[0], *(name.lstrip("-") for name in by[1:])]
        return original(self, by=by, alpha=alpha, desc=desc)

    monkeypatch.setattr(CollectionManager, "sort", first_key_only)
    with pytest.raises(AssertionError):
        CollectionMachine.run(settings=hunting())


def test_collections_catch_a_wrong_set_operation(monkeypatch):
    """`a - b` computes `a & b`."""
    monkeypatch.setattr(CollectionManager, "__sub__", lambda self, other: self._combine("I", other))
    with pytest.raises(AssertionError):
        CollectionMachine.run(settings=hunting())


def test_collections_catch_a_symmetric_difference_as_a_union(monkeypatch):
    """`a ^ b` computes `a | b`."""
    monkeypatch.setattr(CollectionManager, "__xor__", lambda self, other: self._combine("U", other))
    with pytest.raises(AssertionError):
        CollectionMachine.run(settings=hunting())


def test_collections_catch_a_slice_off_by_one(monkeypatch):
    """A negative slice stop is one too far (`[:-1]` keeps everything)."""
    original = CollectionManager.__getitem__

    def off_by_one(self, item):
        if isinstance(item, slice) and item.stop is not None and item.stop < 0:
            item = slice(item.start, item.stop + 1, item.step)
        return original(self, item)

    monkeypatch.setattr(CollectionManager, "__getitem__", off_by_one)
    with pytest.raises(AssertionError):
        CollectionMachine.run(settings=hunting())


@pytest.mark.limpyd_backends("redis")
def test_backend_parity_catches_a_fake_difference(monkeypatch, limpyd_database_factory):
    """The fake server prints INCRBYFLOAT results as Python floats ('2.0', not '2')."""
    monkeypatch.setattr(fake_connection, "_redis_float_text", lambda v: repr(float(v)).encode())
    machine = narrowed(BackendParityMachine, "create", "counter_command")
    with pytest.raises(AssertionError):
        machine.run(limpyd_database_factory, settings=hunting())


def test_related_deletion_catches_a_reaping_that_leaves_references(monkeypatch):
    """Reaping an expired instance deletes it, but not the references to it."""
    from limpyd.model import RedisModel

    def careless_reap_plan(self):
        deletion = {**self._deletion(), "prepare": None}  # no propagation to related fields
        return writes.Rewrite(self, **deletion, reaping=True)

    monkeypatch.setattr(RedisModel, "_reap_plan", careless_reap_plan)
    with pytest.raises(AssertionError):
        RelatedDeletionMachine.run(settings=hunting(examples=100))


def test_index_consistency_catches_a_half_applied_refused_creation(monkeypatch):
    """A bad sorted-set score is checked neither in Python nor by the apply script's ZADD
    probe: a creation fails at its ZADD, after its first writes (part 9 defect 1).
    Creations only (some with a wrong value), of the AutoPK model."""
    monkeypatch.setattr(sortedsets, "double_error", lambda text: None)
    text = lua.SCRIPT.text.replace("local err = zadd_error(args)", "local err = nil")
    assert text != lua.SCRIPT.text
    monkeypatch.setattr(writes, "APPLY", lua.ScriptMode(lua.LuaScript(text), "apply"))
    machine = narrowed(
        IndexConsistencyMachine,
        "create",
        "create_wrong",
        "delete_instance",
        weights={"create_wrong": 4},
        models=[MODELS.Record],
    )
    with pytest.raises(AssertionError):
        machine.run(settings=hunting())


def test_related_deletion_catches_a_reap_without_expiry_check(monkeypatch):
    """A reaping write does not check, in its script, that the instance is still expired:
    an instance re-created meanwhile is deleted (`reap_race`)."""
    original = writes.Write.__init__

    def unchecked(self, model, pk, creating=False, reaping=False, new=False):
        original(self, model, pk, creating=creating, reaping=reaping, new=new)
        if reaping:
            del self.checks[:4]  # the 'D' check

    monkeypatch.setattr(writes.Write, "__init__", unchecked)
    with pytest.raises(AssertionError):
        RelatedDeletionMachine.run(settings=hunting(examples=100))


def test_index_consistency_catches_str_subclasses_stored_by_str(monkeypatch):
    """The conversion every write, index entry and filter shares (`RedisField.text`) takes a
    str subclass's `str()` (a str Enum member's 'Choice.MEMBER'), not its content as
    redis-py sends it. (Indexes no longer convert values of their own: they index the
    stored texts, so the part 9 defect, indexes disagreeing with storage, cannot be
    planted as such any more.) Creations and modifiers, which send values in disguise."""
    original = fields_base.to_text

    def by_str(value):
        if isinstance(value, str) and type(value) is not str:
            return str(value)
        return original(value)

    monkeypatch.setattr(fields_base, "to_text", by_str)
    machine = narrowed(IndexConsistencyMachine, "create", *MODIFIERS)
    with pytest.raises(AssertionError):
        machine.run(settings=hunting())


def test_index_consistency_catches_an_instancehashfield_hset_mapping(monkeypatch):
    """`InstanceHashField.hset(mapping=...)` is sent as is: the other field is silently not
    written (the write is simulated on this field only), the reply counts it."""
    monkeypatch.setattr(
        InstanceHashField,
        "hset",
        lambda self, *args, **kwargs: self._modify("hset", *args, **kwargs),
    )
    machine = narrowed(IndexConsistencyMachine, "create", "write_wrong")
    with pytest.raises(AssertionError):
        machine.run(settings=hunting())


def test_related_deletion_catches_missing_link_records(monkeypatch):
    """Related fields write no link records: a deletion leaves the references to the
    deleted instance."""
    monkeypatch.setattr(related.RelatedFieldMixin, "link_commands", lambda self, values: [])
    with pytest.raises(AssertionError):
        RelatedDeletionMachine.run(settings=hunting(examples=100))


def test_related_deletion_catches_a_combination_kept_on_target_deletion(monkeypatch):
    """Deleting the target of an FK in a `unique_together` group clears the FK but keeps
    the combination (Badge: group, kind)."""
    monkeypatch.setattr(related.RelatedFieldMixin, "_together_parts", lambda self, pk, r: ["0"])
    with pytest.raises(AssertionError):
        RelatedDeletionMachine.run(settings=hunting(examples=100))


def test_index_consistency_catches_an_interpreted_marker(monkeypatch):
    """The new-pk placeholder is a fixed text: a value holding it is replaced by the pk
    (`strategies.NASTY_TEXTS` holds that text). Creations only, of the AutoPK model."""
    marker = "\x00limpyd-new-pk:" + "0" * 32 + "\x00"
    for module in (writes, creations):  # every write that may create an instance
        monkeypatch.setattr(module, "placeholder", lambda: marker)
    machine = narrowed(IndexConsistencyMachine, "create", "delete_instance", models=[MODELS.Record])
    with pytest.raises(AssertionError):
        machine.run(settings=hunting())


def test_index_consistency_catches_a_pipelined_write_on_a_missing_instance(monkeypatch):
    """In a pipeline, a write on an instance from `lazy_connect` does not check it exists."""
    original = RedisModel._ensure_exists

    def lax(self):
        if not type(self)._meta.database.pipelined:
            original(self)

    monkeypatch.setattr(RedisModel, "_ensure_exists", lax)
    machine = narrowed(IndexConsistencyMachine, "create", "pipeline_batch")
    with pytest.raises(AssertionError):
        machine.run(settings=hunting())


def test_related_deletion_catches_an_empty_del(monkeypatch):
    """Deleting an instance of a pk-only model (Label, Stamp) sends `DEL` without keys."""
    original = RedisModel._deletion

    def empty_del(self):
        deletion = original(self)
        return {**deletion, "reply": deletion["reply"] or ("DEL",)}

    monkeypatch.setattr(RedisModel, "_deletion", empty_del)
    with pytest.raises(AssertionError):
        RelatedDeletionMachine.run(settings=hunting(examples=100))


def test_uniqueness_catches_non_numbers_scored_0(monkeypatch):
    """NumberRangeIndex takes any text, as the number 0."""
    monkeypatch.setattr(
        NumberRangeIndex, "number", lambda self, value: parse_number(value) or ("0", "0")
    )
    with pytest.raises(AssertionError):
        UniquenessMachine.run(settings=hunting(examples=100))
