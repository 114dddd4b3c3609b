"""Machine 2: uniqueness."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from limpyd.exceptions import UniquenessError
from limpyd_testing.integrity import check
from limpyd_testing.snapshot import snapshot
from properties.models import UNIQUE_PKS, UNIQUE_POOL, unique_models
from properties.support import DatabaseMachine, canonical, default_order, number_of, scaled

#: How each unique field compares values: two values with the same key collide.
UNIQUE_KEYS: dict[str, Callable[[str], Any]] = {
    "email": lambda v: v,  # EqualIndex: the text
    "login": lambda v: v,
    "nick": lambda v: canonical(v.lower()),  # the lowercased text (a transform)
    "code": lambda v: v,  # TextRangeIndex: the exact text
    "rank": number_of,  # NumberRangeIndex: the number (non-numbers are 0)
}
SINGLE = ("email", "login", "nick", "code", "rank", "city", "street", "note")
HASHED = ("login", "nick", "code", "city", "street", "note")
STRINGS = ("email", "rank")
values = st.sampled_from(UNIQUE_POOL)
ACCOUNT_VALUES = st.fixed_dictionaries(
    {}, optional={**{name: values for name in SINGLE}, "tags": st.lists(values, max_size=3)}
)


class UniquenessMachine(DatabaseMachine):
    """An `Account` model (PKField pk) with unique fields of every storage and index: a
    StringField and an InstanceHashField on an EqualIndex, an InstanceHashField on a
    lowercasing EqualIndex, one on a TextRangeIndex, a StringField on a NumberRangeIndex
    (`'1'`, `'1.0'`, `'01'` collide; non-numbers all count as 0), a SetField (each member
    unique), and `unique_together = [('city', 'street')]`. Values come from a pool of 19
    so collisions are frequent; pks from a pool of 7.

    Writes: constructors (several values, or an unsaved instance given its pk with
    `pk.set()`), `set`/`getset`/`setnx`/`incr` on StringFields, `hset`/`hsetnx`/`set` on
    InstanceHashFields, `sadd`/`srem`, the instance's `hmset` and `hdel`, field and
    instance deletion (which free values).

    Invariants:
    - no value (as its index compares it) is ever held by two instances, nor a pk by two
      instances, nor a (city, street) pair;
    - a write refused with UniquenessError is exactly one the oracle predicts, and changes
      nothing: the oracle is unchanged and so is Redis, key by key (`snapshot`);
    - every other write succeeds and leaves the values the oracle computes;
    - the integrity check is clean (no missing or stale index entry, no unique value twice).
    """

    weight = 1.0

    def setup(self) -> None:
        self.Account = unique_models(self.database).Account
        #: pk -> {field name: value}; `tags` is a frozenset (absent when empty).
        self.data: dict[str, dict[str, Any]] = {}

    # The oracle -----------------------------------------------------------------------

    def conflicts(self, pk: str | None, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
        """Why writing the instance `pk` from `old` to `new` breaks uniqueness (empty: it
        does not)."""
        found = []
        others = [states for other, states in self.data.items() if other != pk]
        for name, key in UNIQUE_KEYS.items():
            value = new.get(name)
            if value is None or value == old.get(name):
                continue
            if any(name in s and key(s[name]) == key(value) for s in others):
                found.append(f"{name}={value!r}")
        for member in new.get("tags", frozenset()) - old.get("tags", frozenset()):
            if any(member in s.get("tags", ()) for s in others):
                found.append(f"tags member {member!r}")
        pair = _pair(new)
        if pair is not None and pair != _pair(old):
            if any(_pair(s) == pair for s in others):
                found.append(f"(city, street)={pair!r}")
        return found

    def attempt(
        self, what: str, pk: str | None, new: dict[str, Any], call: Callable[[], Any]
    ) -> tuple[bool, Any]:
        """Run a write of the instance `pk` (None: a creation, `new['id']` its pk) leaving
        the values `new`; check it is refused exactly when the oracle says so. (Whether it
        was done, its reply.)"""
        old = self.data.get(pk, {}) if pk is not None else {}
        refused = self.conflicts(pk, old, new)
        if pk is None and new["id"] in self.data:
            refused.append(f"pk {new['id']!r}")
        note(f"{what}  # expected: {'UniquenessError: ' + ', '.join(refused) if refused else 'ok'}")
        before = snapshot(self.database) if refused else None
        try:
            reply = call()
        except UniquenessError as error:
            assert refused, f"{what}: unexpected {error!r}"
            assert snapshot(self.database) == before, f"{what}: refused, but keys changed"
            return False, None
        assert not refused, f"{what}: not refused ({', '.join(refused)} already held)"
        self.data[new["id"] if pk is None else pk] = {
            k: v for k, v in new.items() if k != "id" and v not in (None, frozenset())
        }
        return True, reply

    # Rules -------------------------------------------------------------------------------

    @initialize(data=st.data(), count=st.integers(1, 4))
    def populate(self, data: st.DataObject, count: int) -> None:
        """Start with a few accounts (whatever rules an example leaves out)."""
        for _ in range(count):
            pk = data.draw(st.sampled_from(UNIQUE_PKS), label="pk")
            self.create(pk, data.draw(ACCOUNT_VALUES, label="values"), False)

    @rule(pk=st.sampled_from(UNIQUE_PKS), given=ACCOUNT_VALUES, unsaved=st.booleans())
    def create(self, pk: str, given: dict[str, Any], unsaved: bool) -> None:
        """`Account(id=pk, **values)`, or `Account()` then `.id.set(pk)`."""
        if unsaved and not given:
            instance = self.Account()
            self.attempt(f"Account().id.set({pk!r})", None, {"id": pk}, lambda: instance.id.set(pk))
            return
        new = {**given, "id": pk}
        if "tags" in new:
            new["tags"] = frozenset(new["tags"])
        self.attempt(
            f"Account(id={pk!r}, **{given!r})", None, new, lambda: self.Account(id=pk, **given)
        )

    def _instances(self) -> st.SearchStrategy[str]:
        return st.sampled_from(sorted(self.data))

    @precondition(lambda self: self.data)
    @rule(data=st.data(), name=st.sampled_from(SINGLE), value=values)
    def write_field(self, data: st.DataObject, name: str, value: str) -> None:
        """One command writing a single-value field."""
        pk = data.draw(self._instances(), label="pk")
        old = self.data[pk]
        methods = ["set", "getset", "setnx"] if name in STRINGS else ["hset", "hsetnx", "set"]
        if name == "rank" and (old.get(name) is None or _integer(old[name]) is not None):
            methods.append("incr")
        method = data.draw(st.sampled_from(methods), label="method")
        args: tuple[Any, ...] = (value,)
        new_value = value
        if method in ("setnx", "hsetnx") and old.get(name) is not None:
            new_value = old[name]
        if method == "incr":
            args, new_value = (), str((_integer(old.get(name)) or 0) + 1)
        bound = getattr(self.Account(pk), name)
        done, reply = self.attempt(
            f"Account({pk!r}).{name}.{method}(*{args!r})",
            pk,
            {**old, name: new_value},
            lambda: getattr(bound, method)(*args),
        )
        if done and method == "getset":
            assert reply == old.get(name), f"getset replied {reply!r}"
        if done and method in ("setnx", "hsetnx"):
            assert bool(reply) == (old.get(name) is None), f"{method} replied {reply!r}"

    @precondition(lambda self: self.data)
    @rule(
        data=st.data(),
        given=st.dictionaries(st.sampled_from(HASHED), values, min_size=1),
    )
    def hmset(self, data: st.DataObject, given: dict[str, str]) -> None:
        """`instance.hmset(**values)`: all the values, or none if one collides."""
        pk = data.draw(self._instances(), label="pk")
        instance = self.Account(pk)
        self.attempt(
            f"Account({pk!r}).hmset(**{given!r})",
            pk,
            {**self.data[pk], **given},
            lambda: instance.hmset(**given),
        )

    @precondition(lambda self: self.data)
    @rule(data=st.data(), members=st.lists(values, min_size=1, max_size=3), add=st.booleans())
    def tags(self, data: st.DataObject, members: list[str], add: bool) -> None:
        """`tags.sadd(*members)` or `tags.srem(*members)`."""
        pk = data.draw(self._instances(), label="pk")
        old = self.data[pk]
        tags = old.get("tags", frozenset())
        new = tags | set(members) if add else tags - set(members)
        method = "sadd" if add else "srem"
        bound = self.Account(pk).tags
        done, reply = self.attempt(
            f"Account({pk!r}).tags.{method}(*{members!r})",
            pk,
            {**old, "tags": frozenset(new)},
            lambda: getattr(bound, method)(*members),
        )
        if done:
            assert reply == len(new ^ tags), f"{method} replied {reply!r}"

    @precondition(lambda self: self.data)
    @rule(data=st.data(), names=st.lists(st.sampled_from((*SINGLE, "tags")), min_size=1))
    def delete_fields(self, data: st.DataObject, names: list[str]) -> None:
        """`field.delete()` for a StringField or SetField, the instance's `hdel` for the
        InstanceHashFields: values are freed."""
        pk = data.draw(self._instances(), label="pk")
        instance = self.Account(pk)
        hashed = [n for n in dict.fromkeys(names) if n in HASHED]
        others = [n for n in dict.fromkeys(names) if n not in HASHED]
        note(f"Account({pk!r}).hdel(*{hashed!r}); " + "; ".join(f"{n}.delete()" for n in others))
        if hashed:
            had = sum(n in self.data[pk] for n in hashed)
            assert instance.hdel(*hashed) == had
        for name in others:
            assert getattr(instance, name).delete() == int(name in self.data[pk])
        for name in names:
            self.data[pk].pop(name, None)

    @precondition(lambda self: self.data)
    @rule(data=st.data())
    def delete_instance(self, data: st.DataObject) -> None:
        """`instance.delete()`: its values and pk are free again."""
        pk = data.draw(self._instances(), label="pk")
        note(f"Account({pk!r}).delete()")
        self.Account(pk).delete()
        del self.data[pk]

    # Invariants --------------------------------------------------------------------------

    @invariant()
    def consistent(self) -> None:
        """The invariants of the docstring, read from Redis."""
        Account = self.Account
        pks = list(Account.collection())
        assert pks == default_order(self.data), f"collection() is {pks!r}"
        stored: dict[str, dict[str, Any]] = {}
        for pk in pks:
            instance = Account.lazy_connect(pk)
            values_ = dict(instance.hgetall())
            for name in STRINGS:
                value = getattr(instance, name).get()
                if value is not None:
                    values_[name] = value
            tags = frozenset(instance.tags.smembers())
            if tags:
                values_["tags"] = tags
            stored[pk] = values_
            assert values_ == self.data[pk], f"Account({pk!r}) holds {values_!r}"
        for name, key in UNIQUE_KEYS.items():
            holders: dict[Any, str] = {}
            for pk, values_ in stored.items():
                if name in values_:
                    other = holders.setdefault(key(values_[name]), pk)
                    assert other == pk, f"{name}: {pk!r} and {other!r} hold the same value"
        members = [m for values_ in stored.values() for m in values_.get("tags", ())]
        assert len(members) == len(set(members)), f"a tag is held twice: {sorted(members)!r}"
        pairs = [_pair(v) for v in stored.values() if _pair(v) is not None]
        assert len(pairs) == len(set(pairs)), f"a (city, street) is held twice: {pairs!r}"
        problems = check(Account)
        assert not problems, "integrity check:\n" + "\n".join(map(str, problems))


def _pair(values_: dict[str, Any]) -> tuple[str, str] | None:
    if values_.get("city") is None or values_.get("street") is None:
        return None
    return values_["city"], values_["street"]


def _integer(value: str | None) -> int | None:
    """The integer INCR adds to (missing: 0), None when the machine does not INCR it."""
    if value is None:
        return 0
    return int(value) if re.fullmatch(r"0|-?[1-9][0-9]{0,15}", value) else None


def test_uniqueness(limpyd_database_factory, profile):
    UniquenessMachine.run(
        limpyd_database_factory, settings=scaled(profile, UniquenessMachine.weight)
    )
