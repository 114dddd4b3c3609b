"""Machine 3: related-deletion propagation."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import event, note
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule
from redis.exceptions import ResponseError

from limpyd import writes
from limpyd.backends import FakeBackend
from limpyd.database import RedisDatabase
from limpyd.exceptions import DoesNotExist, UniquenessError
from limpyd.text import glob_escape
from limpyd_testing.integrity import check
from limpyd_testing.snapshot import snapshot
from properties.models import BADGE_KINDS, GROUP_PKS, LABEL_PKS, related_models
from properties.relmodels_targets import target_models
from properties.support import DatabaseMachine, default_order, scaled

#: (model, field) -> (kind, target model, related name).
RELATIONS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("Person", "boss"): ("fk", "Person", "subordinates"),
    ("Person", "friends"): ("set", "Person", "friend_of"),
    ("Group", "owner"): ("fk", "Person", "owned_groups"),
    ("Group", "members"): ("set", "Person", "memberships"),
    ("Group", "queue"): ("list", "Person", "queued_in"),
    ("Group", "ranking"): ("zset", "Person", "ranked_in"),
    ("Group", "parent"): ("fk", "Group", "children"),
    ("Tag", "person"): ("fk", "Person", "tags"),
    ("Tag", "groups"): ("list", "Group", "tagged"),
    ("Badge", "group"): ("fk", "Group", "badges"),
    ("Badge", "label"): ("fk", "Label", "badges"),
    ("Badge", "alias"): ("fk", "Label", "aliased"),
    ("Badge", "stamps"): ("set", "Stamp", "badges"),
}
#: Fields holding an FK in the instance's hash (read with hget), the others with get.
HASHED_FK = {("Person", "boss"), ("Badge", "group"), ("Badge", "alias")}
#: Plain fields, and the texts they take.
PLAIN = {"Person": "name", "Tag": "label", "Badge": "kind"}
PLAIN_TEXTS = {"Person": ("x", "y", ""), "Tag": ("x", "y", ""), "Badge": BADGE_KINDS}
MODELS = ("Person", "Group", "Tag", "Label", "Stamp", "Badge")
#: Models with a PKField, and the pks they take (the others have an AutoPK).
PKS = {"Group": GROUP_PKS, "Label": LABEL_PKS}
#: Badges never expire: an expired badge holding a (group, kind) combination would make
#: the refusals of writes on that combination depend on what the write reaps first.
EXPIRABLE = tuple(m for m in MODELS if m != "Badge")
#: The models a fresh process knows when it imports only `relmodels_targets`.
ELSEWHERE = ("Person", "Label", "Stamp")
#: `unique_together` of Badge.
TOGETHER = ("group", "kind")
#: Relations whose only equality index transforms: the related collection filters the
#: field with the target's pk as given, and filter values are taken as already transformed
#: (manual 2.5.5.1), so `label.aliased()` lists the badges whose alias lowercases to the
#: label's pk (none for `Label('L')`, those aliased to 'L' or 'l' for `Label('l')`).
REVERSE_MATCH: dict[tuple[str, str], Any] = {("Badge", "alias"): str.lower}
EMPTY: dict[str, Any] = {"fk": None, "set": frozenset(), "list": (), "zset": {}}
_EMPTY_STATES: tuple[Any, ...] = (None, frozenset(), (), {})
#: Pks that never exist (the AutoPK models count from 1, the others use their pools).
MISSING = ("999", "nobody")
scores = st.sampled_from([0.0, 1.0, -1.5, 2.0, 1e10])
#: Scores a sorted set refuses: the write must fail and change nothing.
BAD_SCORES = ("abc", "nan", float("nan"))
BAD_SCORE_ERRORS: tuple[type[Exception], ...] = (ValueError, ResponseError)
#: The repository root, for the PYTHONPATH of a fresh process.
ROOT = Path(__file__).resolve().parent.parent


def _references(kind: str, state: Any) -> set[str]:
    if state is None:
        return set()
    if kind == "fk":
        return {state}
    return set(state)


def _pair(model: str, states: dict[str, Any]) -> tuple[Any, ...] | None:
    """The `unique_together` combination `states` hold (None: none, a value is missing)."""
    if model != "Badge" or any(states.get(name) is None for name in TOGETHER):
        return None
    return tuple(states[name] for name in TOGETHER)


def _bad_score(score: Any) -> bool:
    return isinstance(score, str) or score != score


def _server_now(database: Any) -> float:
    seconds, microseconds = database.client.time()
    return seconds + microseconds / 1e6


class RelatedDeletionMachine(DatabaseMachine):
    """Six related models. Targets (`relmodels_targets`): `Person` (a self FK `boss` in the
    hash, a self M2M set `friends`), and two pk-only models, `Label` (a PKField, pks equal
    in pairs once lowercased) and `Stamp` (an AutoPK, created with `Stamp(pk=None)`).
    Sources (`relmodels_sources`): `Group` (PKField; FK `owner` to Person, M2M set
    `members`, M2M list `queue`, M2M sorted set `ranking`, a self FK `parent`), `Tag` (FK
    `person` given by name, M2M list `groups` to Group), `Badge` (an FK `group` to Group
    in `unique_together = [('group', 'kind')]` with a text `kind`; FKs to Label `label`,
    under an EqualIndex and a lowercasing one with a prefix, and `alias`, whose only index
    lowercases; an M2M set `stamps` to Stamp). Badges never expire.

    Rules set, change and clear relations with every writing command of their field types
    (`set`/`hset`/`delete` for FKs, `sadd`/`srem`, `rpush`/`lpush`/`lset`/`lrem`/`linsert`,
    `zadd`/`zincrby`/`zrem`), give instances or pks, create instances with relations, and
    delete instances on either side (self-relations included); some writes point to a
    missing instance, some give a sorted set a score Redis refuses ('abc', NaN); Badge
    writes take (group, kind) combinations other badges hold.

    Elsewhere: `delete_elsewhere` deletes a target instance (or reaps a target model) from
    a process that imported only `relmodels_targets` (Redis: a fresh interpreter; in
    memory: a second database on the same server with only the target models), so knows
    none of the models pointing to it. `reap_race` re-creates an expired Group or Label
    between `reap_expired()`'s listing of the due pks and its deletes.

    Expiry rules: expire an instance now (`expireat(server now - 1)` or `expire(-1)`);
    `expire(1000)` / `persist()` on a live instance (only `ttl()` changes); reap a model
    (`Model.reap_expired()`, which replies how many expired instances it reaped); write
    to an expired instance (a field write, `delete()`, `persist()`, `expire*()`); create a
    Group with the pk of an expired one. Drawn relation values sometimes are expired pks.

    Invariants:
    - no stored reference to a missing instance: FK fields pointing to a deleted instance
      are deleted, its pk is removed from M2M sets and sorted sets, and every occurrence of
      it from M2M lists, the remaining order kept; every field equals the oracle's value;
    - an expired instance is gone for every read at once: `Model.collection()`, `exists`,
      `Model(pk)`, related collections and M2M collections (`group.members()`) leave it
      out; the stored references to it stay (fields still read them) until it is reaped,
      then they are gone exactly as `delete()` removes them; references to an expired,
      unreaped instance are the only references allowed to an instance that is not alive;
    - a write that meets an expired instance (its own field, `delete`, `persist`, a
      Group created with its pk) reaps it: DoesNotExist (the creation goes on), and its
      references are removed as by `delete()`;
    - writing a relation to a missing or expired instance (or creating an instance with
      one) raises DoesNotExist and changes nothing, key by key (but an expired reference
      the field already holds is no new reference: it is not checked); a creation refused
      consumes no pk; so does a write or creation with a refused score (ValueError or the
      server's ResponseError), and one taking a (group, kind) another Badge holds
      (UniquenessError);
    - the `unique_together` sets hold exactly the combinations of the live badges: a
      badge whose group was deleted (its FK unlinked) holds none;
    - a deletion or reaping made where the referencing models are not imported unlinks
      every reference all the same; an instance re-created during a reaping survives it
      (and is not counted);
    - `reap_expired()` replies exactly the number of expired, unreaped instances of its
      model, and afterwards nothing refers to them;
    - every related collection (`person.owned_groups()`, ...; `label.aliased()`
      through its lowercasing index, see REVERSE_MATCH) equals the oracle's reverse
      mapping and every M2M collection (`group.members()`) its forward one without
      expired instances, in the default order (checked after every deletion, expiry and
      reaping, and for one instance by a rule);
    - `ttl()` is None for an instance that does not expire, else within the time given;
    - the integrity check is clean (no dangling relation, no missing or stale entry, no
      orphan key left by a reaping).
    """

    weight = 1.0
    max_instances = 5

    def setup(self) -> None:
        self.models = related_models(self.database)
        self.data: dict[str, dict[str, dict[str, Any]]] = {m: {} for m in MODELS}
        self.counters = {m: 0 for m in MODELS if m not in PKS}
        #: Instances whose time has passed but that were not reaped yet (their stored
        #: references may remain), and live instances with a (future) expiry time.
        self.expired: dict[str, set[str]] = {m: set() for m in MODELS}
        self.expiring: set[tuple[str, str]] = set()
        #: Deletions run in another process (see `delete_elsewhere`).
        self.elsewhere = 0

    def model(self, name: str) -> Any:
        return getattr(self.models, name)

    # Drawing -----------------------------------------------------------------------------

    def target(self, data: st.DataObject, target: str) -> Any:
        """A pk of `target` (now and then a missing or an expired one), sometimes as an
        instance; None when `target` has no instance (and the draw does not ask for a
        missing one)."""
        pks = sorted(self.data[target])
        if data.draw(st.integers(0, 15), label="missing?") == 15:
            pk = data.draw(st.sampled_from(MISSING), label=f"missing {target} pk")
        elif self.expired[target] and data.draw(st.integers(0, 3), label="expired?") == 3:
            pk = data.draw(st.sampled_from(sorted(self.expired[target])), label="expired pk")
        elif pks:
            pk = data.draw(st.sampled_from(pks), label=f"{target} pk")
        else:
            return None
        if data.draw(st.integers(0, 3), label="as instance") == 3:
            return self.model(target).lazy_connect(pk)
        return pk

    @staticmethod
    def pk_of(value: Any) -> str:
        return value if isinstance(value, str) else value._pk

    def relation_value(self, data: st.DataObject, kind: str, target: str) -> Any:
        if kind == "fk":
            return self.target(data, target)
        size = data.draw(st.integers(1, 3), label="size")
        items = [self.target(data, target) for _ in range(size)]
        items = [item for item in items if item is not None]
        if kind == "zset":
            return {self.pk_of(i): self.score(data) for i in items}
        return items

    @staticmethod
    def score(data: st.DataObject) -> Any:
        """A score, now and then one Redis refuses."""
        if data.draw(st.integers(0, 15), label="bad score?") == 15:
            return data.draw(st.sampled_from(BAD_SCORES), label="bad score")
        return data.draw(scores, label="score")

    @staticmethod
    def state_of(kind: str, value: Any) -> Any:
        if kind == "fk":
            return value if isinstance(value, str) or value is None else value._pk
        pks = [v if isinstance(v, str) else v._pk for v in value]
        if kind == "set":
            return frozenset(pks)
        if kind == "list":
            return tuple(pks)
        return dict(value)

    def missing_in(self, target: str, pks: set[str]) -> list[str]:
        """The pks that are not alive (missing, or expired)."""
        return sorted(pk for pk in pks if pk not in self.data[target])

    def alive(self, target: str, pks: Any) -> set[str]:
        return {pk for pk in pks if pk in self.data[target]}

    # The write protocol ------------------------------------------------------------------

    def attempt(
        self, what: str, expected: tuple[type[Exception], ...], call: Any, reaps: bool = False
    ) -> tuple[bool, Any]:
        """Run a write; when a refusal is `expected` (one of these exceptions), it must be
        raised and change nothing (unless the write `reaps` an expired instance on its way:
        then the invariants check what changed). (Whether the write was done, its reply.)"""
        names = " or ".join(e.__name__ for e in expected)
        note(f"{what}  # expected: {names or 'ok'}")
        before = snapshot(self.database) if expected and not reaps else None
        try:
            reply = call()
        except (DoesNotExist, UniquenessError, *BAD_SCORE_ERRORS) as error:
            assert isinstance(error, expected), f"{what}: unexpected {error!r}"
            if before is not None:
                assert snapshot(self.database) == before, f"{what}: refused, but keys changed"
            return False, None
        assert not expected, f"{what}: {names} expected, it succeeded"
        return True, reply

    # Rules -------------------------------------------------------------------------------

    @initialize(data=st.data(), count=st.integers(2, 8))
    def populate(self, data: st.DataObject, count: int) -> None:
        """Start with a few instances (whatever rules an example leaves out)."""
        for _ in range(count):
            self.create(data, data.draw(st.sampled_from(MODELS), label="model"))

    @rule(data=st.data(), name=st.sampled_from(MODELS))
    def create(self, data: st.DataObject, name: str) -> None:
        """Create an instance with some relations (maybe one to a missing instance, or a
        sorted set with a score Redis refuses); `Label(id=pk)` and `Stamp(pk=None)` for
        the pk-only models."""
        values: dict[str, Any] = {}
        if name in PLAIN and data.draw(st.booleans(), label="plain"):
            texts = st.sampled_from(PLAIN_TEXTS[name])
            values[PLAIN[name]] = data.draw(texts, label="text")
        for (model, field), (kind, target, _) in RELATIONS.items():
            if model == name and data.draw(st.booleans(), label=f"with {field}"):
                value = self.relation_value(data, kind, target)
                if value not in (None, [], {}):
                    values[field] = value
        if name in PKS:
            values["id"] = data.draw(st.sampled_from(PKS[name]), label="pk")
        elif name == "Stamp":
            values["pk"] = None  # an AutoPK model without other fields
        if not values or len(self.data[name]) >= self.max_instances:
            return
        states = {
            field: self.state_of(RELATIONS[(name, field)][0], value)
            for field, value in values.items()
            if (name, field) in RELATIONS
        }
        refs = {
            field: _references(RELATIONS[(name, field)][0], state)
            for field, state in states.items()
        }
        missing = [
            pk
            for field, pks in refs.items()
            for pk in self.missing_in(RELATIONS[(name, field)][1], pks)
        ]
        record = {k: v for k, v in values.items() if k == PLAIN.get(name)}
        record.update({k: v for k, v in states.items() if v not in (None, frozenset(), (), {})})
        # Every refusal changes nothing; which check comes first is not specified. An
        # expired instance with the pk is reaped first (whether the creation is then
        # refused or not).
        expected: tuple[type[Exception], ...] = ()
        if missing:
            expected += (DoesNotExist,)
        if name in PKS and values["id"] in self.data[name]:
            expected += (UniquenessError,)
        if self.together_taken(name, None, record):
            event("create: (group, kind) taken")
            expected += (UniquenessError,)
        if any(_bad_score(s) for s in states.get("ranking", {}).values()):
            event("create: a bad score")
            expected += BAD_SCORE_ERRORS
        reaps = name in PKS and values["id"] in self.expired[name]
        model = self.model(name)
        done, instance = self.attempt(
            f"{name}(**{values!r})", expected, lambda: model(**values), reaps=reaps
        )
        if any(
            pk in self.expired[RELATIONS[(name, f)][1]] for f, pks in refs.items() for pk in pks
        ):
            event("create: refused, a reference to an expired instance")
        if reaps:
            event(f"create: a {name} with an expired pk reaps it")
            self.reaped(name, values["id"])
        if not done:
            return
        if name in PKS:
            pk = values["id"]
        else:
            self.counters[name] += 1
            pk = str(self.counters[name])
        assert instance._pk == pk, f"created with pk {instance._pk!r}, expected {pk!r}"
        self.data[name][pk] = record

    def together_taken(self, model: str, pk: str | None, record: dict[str, Any]) -> bool:
        """Whether another live Badge holds the (group, kind) of `record`."""
        pair = _pair(model, record)
        held = [_pair(model, states) for other, states in self.data[model].items() if other != pk]
        return pair is not None and pair in held

    def _relation(self, data: st.DataObject, kinds: tuple[str, ...]) -> tuple[str, str, str, str]:
        """(model, pk, field, kind) of an existing instance and one of its relations."""
        choices = [
            (model, field)
            for (model, field), (kind, _, _) in RELATIONS.items()
            if kind in kinds and self.data[model]
        ]
        model, field = data.draw(st.sampled_from(choices), label="relation")
        pk = data.draw(st.sampled_from(sorted(self.data[model])), label="pk")
        return model, pk, field, RELATIONS[(model, field)][0]

    def _has(self, *kinds: str) -> bool:
        return any(k in kinds and self.data[m] for (m, _), (k, _, _) in RELATIONS.items())

    def _write(
        self,
        model: str,
        pk: str,
        field: str,
        what: str,
        new: Any,
        call: Any,
        added: set[str],
        errors: tuple[type[Exception], ...] = (),
    ) -> tuple[bool, Any]:
        """A write of one relation leaving `new`, that adds references to `added` (and is
        refused with one of `errors` for another reason)."""
        target = RELATIONS[(model, field)][1]
        missing = self.missing_in(target, added)
        if set(missing) & self.expired[target]:
            event("write: refused, a new reference to an expired instance")
        elif set(_references(RELATIONS[(model, field)][0], new)) & self.expired[target]:
            event("write: keeps a reference to an expired instance")
        expected = errors + ((DoesNotExist,) if missing else ())
        return self._apply(model, pk, field, what, new, call, expected)

    def _apply(
        self,
        model: str,
        pk: str,
        field: str,
        what: str,
        new: Any,
        call: Any,
        expected: tuple[type[Exception], ...],
    ) -> tuple[bool, Any]:
        """Run a write of one field leaving `new` (refused with one of `expected`, or with
        UniquenessError when it takes a (group, kind) held by another Badge)."""
        old = self.data[model][pk]
        record = {k: v for k, v in {**old, field: new}.items() if v not in _EMPTY_STATES}
        if _pair(model, record) != _pair(model, old) and self.together_taken(model, pk, record):
            event("write: (group, kind) taken")
            expected += (UniquenessError,)
        done, reply = self.attempt(f"{model}({pk!r}).{field}.{what}", expected, call)
        if done:
            self.data[model][pk] = record
        return done, reply

    @precondition(lambda self: self.data["Badge"])
    @rule(data=st.data(), kind=st.sampled_from((None, *BADGE_KINDS)))
    def write_kind(self, data: st.DataObject, kind: str | None) -> None:
        """`badge.kind.hset(kind)` or `badge.kind.delete()` (the other half of its
        `unique_together` with the FK `group`)."""
        pk = data.draw(st.sampled_from(sorted(self.data["Badge"])), label="pk")
        bound = self.model("Badge").lazy_connect(pk).kind
        if kind is None:
            self._apply("Badge", pk, "kind", "delete()", None, bound.delete, ())
        else:
            self._apply("Badge", pk, "kind", f"hset({kind!r})", kind, lambda: bound.hset(kind), ())

    @precondition(lambda self: self._has("fk"))
    @rule(data=st.data())
    def write_fk(self, data: st.DataObject) -> None:
        """Set (to an instance or a pk, maybe missing) or delete a foreign key."""
        model, pk, field, _ = self._relation(data, ("fk",))
        bound = getattr(self.model(model).lazy_connect(pk), field)
        old = self.data[model][pk].get(field)
        methods = ["set", "delete"] + (["hset"] if (model, field) in HASHED_FK else ["getset"])
        method = data.draw(st.sampled_from(methods), label="method")
        if method == "delete":
            done, reply = self._write(model, pk, field, "delete()", None, bound.delete, set())
            assert reply == int(old is not None)
            return
        value = self.target(data, RELATIONS[(model, field)][1])
        if value is None:
            return
        new = self.state_of("fk", value)
        done, reply = self._write(
            model,
            pk,
            field,
            f"{method}({value!r})",
            new,
            lambda: getattr(bound, method)(value),
            {new} - {old},  # the pk it holds already is no new reference
        )
        if done and method == "getset":
            assert reply == old, f"getset replied {reply!r}, expected {old!r}"

    @precondition(lambda self: self._has("set"))
    @rule(data=st.data(), add=st.booleans())
    def write_m2m_set(self, data: st.DataObject, add: bool) -> None:
        """`sadd` or `srem` pks or instances."""
        model, pk, field, _ = self._relation(data, ("set",))
        items = self.relation_value(data, "set", RELATIONS[(model, field)][1])
        if not items:
            return
        old = self.data[model][pk].get(field, frozenset())
        pks = set(self.state_of("set", items))
        new = old | pks if add else old - pks
        method = "sadd" if add else "srem"
        bound = getattr(self.model(model).lazy_connect(pk), field)
        done, reply = self._write(
            model,
            pk,
            field,
            f"{method}(*{items!r})",
            frozenset(new),
            lambda: getattr(bound, method)(*items),
            pks - old if add else set(),
        )
        if done:
            assert reply == len(new ^ old), f"{method} replied {reply!r}"

    @precondition(lambda self: self._has("list"))
    @rule(data=st.data())
    def write_m2m_list(self, data: st.DataObject) -> None:
        """`rpush`/`lpush` pks or instances, `lrem`, `lset`, `linsert`."""
        model, pk, field, _ = self._relation(data, ("list",))
        target = RELATIONS[(model, field)][1]
        old: tuple[str, ...] = self.data[model][pk].get(field, ())
        method = data.draw(
            st.sampled_from(["rpush", "lpush", "lrem", "lset", "linsert"] if old else ["rpush"]),
            label="method",
        )
        bound = getattr(self.model(model).lazy_connect(pk), field)
        if method in ("rpush", "lpush"):
            items = self.relation_value(data, "list", target)
            if old and data.draw(st.booleans(), label="repeat one"):
                items.append(data.draw(st.sampled_from(old), label="repeated"))  # duplicates
            if not items:
                return
            pks = self.state_of("list", items)
            new = old + pks if method == "rpush" else pks[::-1] + old
            args: tuple[Any, ...] = tuple(items)
            added = set(pks) - set(old)
        elif method == "lrem":
            count = data.draw(st.integers(-2, 2), label="count")
            value = data.draw(st.sampled_from(sorted(set(old))), label="value")
            hits = [i for i, v in enumerate(old) if v == value]
            hits = hits[:count] if count > 0 else hits[count:] if count < 0 else hits
            new = tuple(v for i, v in enumerate(old) if i not in hits)
            args, added = (count, value), set()
        elif method == "lset":
            index = data.draw(st.integers(-len(old), len(old) - 1), label="index")
            value = self.target(data, target)
            if value is None:
                return
            new_list = list(old)
            new_list[index] = self.pk_of(value)
            new, args = tuple(new_list), (index, value)
            added = {self.pk_of(value)} - set(old)
        else:
            where = data.draw(st.sampled_from(["BEFORE", "AFTER"]), label="where")
            pivot = data.draw(st.sampled_from(sorted(set(old))), label="pivot")
            value = self.target(data, target)
            if value is None:
                return
            at = old.index(pivot) + (where == "AFTER")
            new = (*old[:at], self.pk_of(value), *old[at:])
            args, added = (where, pivot, value), {self.pk_of(value)} - set(old)
        self._write(
            model,
            pk,
            field,
            f"{method}(*{args!r})",
            new,
            lambda: getattr(bound, method)(*args),
            added,
        )

    @precondition(lambda self: self._has("zset"))
    @rule(data=st.data())
    def write_m2m_zset(self, data: st.DataObject) -> None:
        """`zadd` (pks or instances as members), `zincrby`, `zrem`."""
        model, pk, field, _ = self._relation(data, ("zset",))
        target = RELATIONS[(model, field)][1]
        old: dict[str, float] = self.data[model][pk].get(field, {})
        method = data.draw(st.sampled_from(["zadd", "zincrby", "zrem"]), label="method")
        bound = getattr(self.model(model).lazy_connect(pk), field)
        value = self.target(data, target)
        if value is None:
            return
        errors: tuple[type[Exception], ...] = ()
        if method == "zadd":
            score = self.score(data)
            errors = BAD_SCORE_ERRORS if _bad_score(score) else ()
            member = self.pk_of(value)
            new = {**old, member: score}
            call, what = (lambda: bound.zadd({value: score})), f"zadd({{{value!r}: {score}}})"
        elif method == "zincrby":
            member = self.pk_of(value)
            new = {**old, member: old.get(member, 0.0) + 1}
            call, what = (lambda: bound.zincrby(1, value)), f"zincrby(1, {value!r})"
        else:
            member = self.pk_of(value)
            new = {m: s for m, s in old.items() if m != member}
            call, what = (lambda: bound.zrem(value)), f"zrem({value!r})"
        added = {member} - set(old) if method != "zrem" else set()
        self._write(model, pk, field, what, new, call, added, errors)

    @precondition(lambda self: any(self.data.values()))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        """Delete an instance: everything pointing to it is unlinked in the same write."""
        name = data.draw(st.sampled_from([m for m in MODELS if self.data[m]]), label="model")
        pk = data.draw(st.sampled_from(sorted(self.data[name])), label="pk")
        self.attempt(f"{name}({pk!r}).delete()", (), self.model(name)(pk).delete)
        del self.data[name][pk]
        self.expiring.discard((name, pk))
        self.unlink(name, pk)
        self.check_collections()

    def unlink(self, name: str, pk: str) -> None:
        """The oracle of a deletion (or a reaping) of `name` `pk`: what refers to it."""
        for (model, field), (kind, target, _) in RELATIONS.items():
            if target != name:
                continue
            for states in self.data[model].values():
                state = states.get(field)
                if state is None:
                    continue
                if kind == "fk":
                    new = None if state == pk else state
                elif kind == "set":
                    new = state - {pk}
                elif kind == "list":
                    new = tuple(v for v in state if v != pk)  # the others keep their order
                else:
                    new = {m: s for m, s in state.items() if m != pk}
                if new in (None, frozenset(), (), {}):
                    del states[field]
                else:
                    states[field] = new

    def referred(self, name: str, pk: str) -> bool:
        """Whether a live instance refers to `name` `pk`."""
        return any(
            pk in _references(kind, states.get(field))
            for (model, field), (kind, target, _) in RELATIONS.items()
            if target == name
            for states in self.data[model].values()
        )

    def reaped(self, name: str, pk: str) -> None:
        """The oracle of the reaping of the expired `name` `pk`."""
        self.expired[name].remove(pk)
        self.unlink(name, pk)

    # Expiry ------------------------------------------------------------------------------

    @precondition(lambda self: any(self.data[m] for m in EXPIRABLE))
    @rule(data=st.data(), how=st.sampled_from(["expireat", "expire"]))
    def expire_now(self, data: st.DataObject, how: str) -> None:
        """Expire an instance now: from then on no read finds it, though the references
        to it are still stored (until it is reaped). Mostly one that is referred to."""
        referred = [(m, pk) for m in MODELS for pk in sorted(self.data[m]) if self.referred(m, pk)]
        if referred and data.draw(st.integers(0, 3), label="referred to?") > 0:
            name, pk = data.draw(st.sampled_from(referred), label="instance")
        else:
            names = [m for m in EXPIRABLE if self.data[m]]
            name = data.draw(st.sampled_from(names), label="model")
            pk = data.draw(st.sampled_from(sorted(self.data[name])), label="pk")
        model = self.model(name)
        instance = model.lazy_connect(pk)
        if how == "expireat":
            at = _server_now(self.database) - 1
            note(f"{name}({pk!r}).expireat(server now - 1)")
            assert instance.expireat(at) is True
        else:
            note(f"{name}({pk!r}).expire(-1)")
            assert instance.expire(-1) is True
        del self.data[name][pk]
        self.expiring.discard((name, pk))
        self.expired[name].add(pk)
        event(f"expire_now: {'still referred to' if self.referred(name, pk) else 'no reference'}")
        assert not model.exists(pk), f"{name}({pk!r}) expired, but exists() says it is there"
        try:
            model(pk)
        except DoesNotExist:
            pass
        else:
            raise AssertionError(f"{name}({pk!r}) expired, but {name}(pk) found it")
        self.check_collections()

    @precondition(lambda self: any(self.data.values()))
    @rule(data=st.data(), persist=st.booleans())
    def expire_later(self, data: st.DataObject, persist: bool) -> None:
        """`expire(1000)` or `persist()`: only `ttl()` changes."""
        name = data.draw(st.sampled_from([m for m in MODELS if self.data[m]]), label="model")
        pk = data.draw(st.sampled_from(sorted(self.data[name])), label="pk")
        instance = self.model(name).lazy_connect(pk)
        if persist:
            note(f"{name}({pk!r}).persist()")
            had = (name, pk) in self.expiring
            assert instance.persist() is had, f"persist() did not reply {had!r}"
            self.expiring.discard((name, pk))
        else:
            note(f"{name}({pk!r}).expire(1000)")
            assert instance.expire(1000) is True
            self.expiring.add((name, pk))
        ttl = instance.ttl()
        if (name, pk) in self.expiring:
            assert ttl is not None and 990 < ttl <= 1000, f"ttl() is {ttl!r}"
        else:
            assert ttl is None, f"ttl() is {ttl!r}, None expected"

    @precondition(lambda self: any(self.expired.values()))
    @rule(data=st.data())
    def reap(self, data: st.DataObject) -> None:
        """`Model.reap_expired()`: every expired instance of the model, and every reference
        to it, is deleted as `delete()` would (a model without any: 0, nothing changes)."""
        names = [m for m in MODELS if self.expired[m]]
        names += [m for m in MODELS if m not in names][:1]
        name = data.draw(st.sampled_from(names), label="model")
        due = sorted(self.expired[name])
        note(f"{name}.reap_expired()  # expected: {len(due)}")
        reaped = self.model(name).reap_expired()
        assert reaped == len(due), f"{name}.reap_expired() replied {reaped}, expected {len(due)}"
        event(f"reap: {min(len(due), 2)}{'+' if len(due) > 2 else ''} reaped")
        if any(self.referred(name, pk) for pk in due):
            event("reap: references to unlink")
        for pk in due:
            self.reaped(name, pk)
        # Nothing refers to them any more (the invariant also compares every field).
        for (model, field), (kind, target, _) in RELATIONS.items():
            if target != name:
                continue
            for other in self.data[model]:
                bound = getattr(self.model(model).lazy_connect(other), field)
                stored = _references(kind, _read(bound, kind, (model, field) in HASHED_FK))
                assert not stored & set(due), (
                    f"{model}({other!r}).{field} still refers to reaped {sorted(stored & set(due))}"
                )
        self.check_collections()

    @precondition(lambda self: any(self.expired.values()))
    @rule(data=st.data())
    def write_expired(self, data: st.DataObject) -> None:
        """A write to an expired instance: DoesNotExist, and it is reaped on the way."""
        name = data.draw(st.sampled_from([m for m in MODELS if self.expired[m]]), label="model")
        pk = data.draw(st.sampled_from(sorted(self.expired[name])), label="pk")
        instance = self.model(name).lazy_connect(pk)
        fields = [field for (m, field) in RELATIONS if m == name]
        how = data.draw(
            st.sampled_from(["delete", "persist", "expire", "expireat", *fields]), label="write"
        )
        if how == "delete":
            what, call = "delete()", instance.delete
        elif how == "persist":
            what, call = "persist()", instance.persist
        elif how == "expire":
            what, call = "expire(1000)", lambda: instance.expire(1000)
        elif how == "expireat":
            at = _server_now(self.database) + 1000
            what, call = "expireat(later)", lambda: instance.expireat(at)
        else:
            kind, target, _ = RELATIONS[(name, how)]
            value = self.target(data, target)
            bound = getattr(instance, how)
            if value is None:
                what, call = f"{how}.delete()", bound.delete
            elif kind == "fk":
                what, call = f"{how}.set({value!r})", lambda: bound.set(value)
            elif kind == "set":
                what, call = f"{how}.sadd({value!r})", lambda: bound.sadd(value)
            elif kind == "list":
                what, call = f"{how}.rpush({value!r})", lambda: bound.rpush(value)
            else:
                what, call = f"{how}.zadd({{{value!r}: 1.0}})", lambda: bound.zadd({value: 1.0})
        self.attempt(f"{name}({pk!r}) (expired).{what}", (DoesNotExist,), call, reaps=True)
        event(f"write_expired: {how if how in ('delete', 'persist') else 'other'}")
        self.reaped(name, pk)

    @precondition(lambda self: any(self.expired[m] for m in PKS))
    @rule(data=st.data())
    def reap_race(self, data: st.DataObject) -> None:
        """`Model.reap_expired()` while another client re-creates an expired instance
        between the reaper's listing of the due pks and its deletes: the new instance is
        alive, it must survive (and is not counted as reaped)."""
        name = data.draw(st.sampled_from([m for m in PKS if self.expired[m]]), label="model")
        pk = data.draw(st.sampled_from(sorted(self.expired[name])), label="pk")
        due = sorted(self.expired[name])
        model = self.model(name)
        note(f"{name}.reap_expired(), {name}(id={pk!r}) created after its listing")

        def recreate() -> None:
            model(id=pk)  # reaps the expired one on its way
            self.reaped(name, pk)
            self.data[name][pk] = {}

        with _before(writes, "rewrite_many", recreate):
            reaped = model.reap_expired()
        assert model.exists(pk), f"reap_expired() deleted {name}({pk!r}), re-created alive"
        assert reaped == len(due) - 1, f"reap_expired() replied {reaped}, expected {len(due) - 1}"
        for other in due:
            if other != pk:
                self.reaped(name, other)
        self.check_collections()

    def elsewhere_allowed(self) -> bool:
        """Deleting in a fresh process is slow on Redis (a new interpreter): once an
        example there, a few times in memory."""
        limit = 3 if isinstance(self.database.backend, FakeBackend) else 1
        return self.elsewhere < limit and any(self.data[m] or self.expired[m] for m in ELSEWHERE)

    @precondition(lambda self: self.elsewhere_allowed())
    @rule(data=st.data())
    def delete_elsewhere(self, data: st.DataObject) -> None:
        """Delete an instance of a target model (or reap its expired ones) from a process
        that imported only `relmodels_targets`, so knows no model pointing to it: every
        reference to it must go all the same. On Redis, a fresh interpreter; in memory, a
        second database on the same server where only the target models are registered."""
        names = [m for m in ELSEWHERE if self.data[m] or self.expired[m]]
        name = data.draw(st.sampled_from(names), label="model")
        reap = not self.data[name] or (
            bool(self.expired[name]) and data.draw(st.booleans(), label="reap?")
        )
        self.elsewhere += 1
        if reap:
            due = sorted(self.expired[name])
            note(f"{name}.reap_expired() elsewhere  # expected: {len(due)}")
            reaped = _elsewhere(self.database, name, None)
            assert reaped == len(due), f"reap_expired() elsewhere replied {reaped}"
            for pk in due:
                self.reaped(name, pk)
        else:
            pk = data.draw(st.sampled_from(sorted(self.data[name])), label="pk")
            note(f"{name}({pk!r}).delete() elsewhere")
            _elsewhere(self.database, name, pk)
            del self.data[name][pk]
            self.expiring.discard((name, pk))
            self.unlink(name, pk)
        event(f"delete_elsewhere: {'reap' if reap else 'delete'} {name}")
        self.check_collections()

    @precondition(lambda self: any(self.data.values()))
    @rule(data=st.data())
    def related_collections(self, data: st.DataObject) -> None:
        """The related and M2M collections of one instance."""
        name = data.draw(st.sampled_from([m for m in MODELS if self.data[m]]), label="model")
        pk = data.draw(st.sampled_from(sorted(self.data[name])), label="pk")
        self.check_collections([(name, pk)])

    # Checks ------------------------------------------------------------------------------

    def check_collections(self, only: list[tuple[str, str]] | None = None) -> None:
        """Reverse mappings (related collections) and forward ones (M2M collections)."""
        instances = only or [(m, pk) for m in MODELS for pk in self.data[m]]
        for name, pk in instances:
            instance = self.model(name)(pk)
            for (model, field), (kind, target, related_name) in RELATIONS.items():
                if target == name:
                    match = REVERSE_MATCH.get((model, field), str)
                    expected = default_order(
                        other
                        for other, states in self.data[model].items()
                        if pk in map(match, _references(kind, states.get(field)))
                    )
                    found = list(getattr(instance, related_name)())
                    assert found == expected, (
                        f"{name}({pk!r}).{related_name}() is {found!r}, expected {expected!r}"
                    )
                if model == name and kind != "fk":
                    expected = default_order(self.alive(target, self.data[name][pk].get(field, ())))
                    found = list(getattr(instance, field)())
                    assert found == expected, (
                        f"{name}({pk!r}).{field}() is {found!r}, expected {expected!r}"
                    )

    def check_together(self) -> None:
        """The `unique_together` sets of Badge hold exactly the combinations the live
        badges hold (one whose FK was unlinked holds none: it is free again)."""
        meta = self.model("Badge")._meta
        wanted: dict[str, set[str]] = {}
        for pk, states in self.data["Badge"].items():
            pair = _pair("Badge", states)
            if pair is not None:
                states_ = {n: [v] for n, v in zip(TOGETHER, pair, strict=True)}
                key = meta.together_key(TOGETHER, states_)
                wanted.setdefault(key, set()).add(pk)
        client = self.database.client
        pattern = glob_escape(f"{meta.prefix}:idx:__together__:") + "*"
        stored = {key: set(client.smembers(key)) for key in client.scan_iter(match=pattern)}
        assert stored == wanted, f"(group, kind) sets are {stored!r}, expected {wanted!r}"

    @invariant()
    def consistent(self) -> None:
        """Collections, every relation's stored value, and the integrity check."""
        for name in MODELS:
            model = self.model(name)
            found = list(model.collection())
            assert found == default_order(self.data[name]), f"{name}.collection() is {found!r}"
            for pk, states in self.data[name].items():
                instance = model.lazy_connect(pk)
                if name in PLAIN:
                    assert getattr(instance, PLAIN[name]).get() == states.get(PLAIN[name])
                for (model_name, field), (kind, _, _) in RELATIONS.items():
                    if model_name != name:
                        continue
                    stored = _read(getattr(instance, field), kind, (name, field) in HASHED_FK)
                    wanted = states.get(field, EMPTY[kind])
                    assert stored == wanted, (
                        f"{name}({pk!r}).{field} is {stored!r}, expected {wanted!r}"
                    )
                    target = RELATIONS[(name, field)][1]
                    dangling = self.missing_in(target, _references(kind, stored))
                    unreaped = self.expired[target]
                    assert set(dangling) <= unreaped, (
                        f"{name}({pk!r}).{field} refers to missing {dangling!r}"
                    )
            for pk in self.expired[name]:
                assert not model.exists(pk), f"{name}({pk!r}) expired, but exists() finds it"
        self.check_together()
        problems = check(*self.models.all)
        assert not problems, "integrity check:\n" + "\n".join(map(str, problems))


@contextmanager
def _before(module: Any, name: str, action: Any) -> Any:
    """Within the block, `module.name(...)` runs `action()` first (once)."""
    original = getattr(module, name)
    done = []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not done:
            done.append(action())
        return original(*args, **kwargs)

    setattr(module, name, wrapped)
    try:
        yield
    finally:
        setattr(module, name, original)
    assert done, f"{module.__name__}.{name} was not called"


def _elsewhere(database: RedisDatabase, name: str, pk: str | None) -> int | None:
    """Delete the `name` `pk` (None: reap the expired instances of `name`, and return how
    many) where only `relmodels_targets` is imported. On Redis, in a fresh interpreter;
    in memory (no other process reaches it), through a second database on the same
    server, where only the target models are registered."""
    url = database.backend.describe()
    if isinstance(database.backend, FakeBackend):
        other = RedisDatabase.from_url(url)
        model = getattr(target_models(other), name)
        return model.reap_expired() if pk is None else model(pk).delete()
    program = (
        "import sys\n"
        "from limpyd.database import RedisDatabase\n"
        "from properties.relmodels_targets import target_models\n"
        "assert not any(m.endswith('relmodels_sources') for m in sys.modules)\n"
        f"model = target_models(RedisDatabase.from_url({url!r})).{name}\n"
        f"print(model.reap_expired() if {pk!r} is None else model({pk!r}).delete())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"{name} {pk!r}: the other process failed:\n{done.stderr}"
    return int(done.stdout) if pk is None else None


def _read(bound: Any, kind: str, hashed: bool) -> Any:
    if kind == "fk":
        return bound.hget() if hashed else bound.get()
    if kind == "set":
        return frozenset(bound.smembers())
    if kind == "list":
        return tuple(bound.lrange(0, -1))
    return dict(bound.zrange(0, -1, withscores=True))


def test_related_deletion(limpyd_database_factory, profile):
    RelatedDeletionMachine.run(
        limpyd_database_factory, settings=scaled(profile, RelatedDeletionMachine.weight)
    )
