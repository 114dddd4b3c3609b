"""Machine 2: uniqueness."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any

from hypothesis import event, note
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from limpyd.exceptions import UniquenessError
from limpyd_testing.integrity import check
from limpyd_testing.snapshot import snapshot
from limpyd_testing.stateful.values import resplits
from properties.models import HASH_KEYS, NUMBER_POOL, UNIQUE_PKS, UNIQUE_POOL, unique_models
from properties.support import NUMERIC_PK, DatabaseMachine, canonical, default_order, scaled


def number(value: str) -> Decimal | None:
    """The number a unique NumberRangeIndex compares exactly; None: not a decimal number
    (refused with ValueError)."""
    return Decimal(value) if NUMERIC_PK.fullmatch(value) else None


def stored(value: Any) -> str:
    """The text Redis holds for a value given to a field."""
    return value if isinstance(value, str) else repr(value)


#: How each unique field compares values: two values with the same key collide.
UNIQUE_KEYS: dict[str, Callable[[str], Any]] = {
    "email": lambda v: v,  # EqualIndex: the text
    "login": lambda v: v,
    "nick": lambda v: canonical(v.lower()),  # the lowercased text (a transform)
    "code": lambda v: v,  # TextRangeIndex: the exact text
    "rank": number,  # NumberRangeIndex: the same number exactly
    "score": number,
}
#: Unique fields on a NumberRangeIndex: they take numbers only.
NUMERIC = ("rank", "score")
SINGLE = ("email", "login", "nick", "code", "rank", "score", "city", "street", "note")
HASHED = ("login", "nick", "code", "score", "city", "street", "note")
STRINGS = ("email", "rank")
#: Unique HashFields: EqualIndex and TextRangeIndex, a value unique per hash key.
HASHES = ("attrs", "marks")
values = st.sampled_from(UNIQUE_POOL)
numbers = st.sampled_from(NUMBER_POOL)
hash_keys = st.sampled_from(HASH_KEYS)
ACCOUNT_VALUES = st.fixed_dictionaries(
    {},
    optional={
        **{name: numbers if name in NUMERIC else values for name in SINGLE},
        "tags": st.lists(values, max_size=3),
        **{name: st.dictionaries(hash_keys, values, max_size=3) for name in HASHES},
    },
)
HASHED_VALUES = st.fixed_dictionaries(
    {}, optional={name: numbers if name in NUMERIC else values for name in HASHED}
).filter(bool)


class UniquenessMachine(DatabaseMachine):
    """An `Account` model (PKField pk) with unique fields of every storage and index: a
    StringField and an InstanceHashField on an EqualIndex, an InstanceHashField on a
    lowercasing EqualIndex, one on a TextRangeIndex, a StringField and an InstanceHashField
    on a NumberRangeIndex, a SetField (each member unique), and
    `unique_together = [('city', 'street')]`, and two HashFields (EqualIndex, TextRangeIndex)
    whose values are unique per hash key (the same value under two keys does not collide).
    Values come from a pool of 19 so collisions are frequent; pks from a pool of 7. The
    number-range fields take numbers (ints, floats) and texts like them (`NUMBER_POOL`):
    two values collide iff they are the same decimal number exactly (`'1e3'`, `'1000'` and
    `1000.0`; `'0.1'` and `'0.10'`; not `2**53` and `2**53 + 1`), and a text that is not a
    decimal number (`'1_000'`, `' 5'`, `'abc'`, `'nan'`, `''`) is refused with ValueError.

    Writes: constructors (several values, or an unsaved instance given its pk with
    `pk.set()`), `set`/`getset`/`setnx`/`incr` on StringFields, `hset`/`hsetnx`/`set` on
    InstanceHashFields, `sadd`/`srem`, the instance's `hmset` and `hdel`, field and
    instance deletion (which free values); HashField `hset`/`hsetnx`/`hmset`/`hdel`, often
    with a value another instance holds; updates of a (city, street) into a held one; writes
    (creations, updates) taking a value or pk of a holder just expired, which must reap it and
    succeed. Queries: the number-range fields filtered with every suffix (`eq`, `gt`, `gte`,
    `lt`, `lte`, `in`), by numbers and by texts that are not numbers (ValueError).

    Invariants:
    - no value (as its index compares it) is ever held by two instances, nor a pk by two
      instances, nor a (city, street) pair;
    - a write refused with UniquenessError, or ValueError, is exactly one the oracle
      predicts, and changes nothing: the oracle is unchanged and so is Redis, key by key
      (`snapshot`);
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
            if value is None or value == old.get(name) or key(value) is None:
                continue
            if any(name in s and key(s[name]) == key(value) for s in others):
                found.append(f"{name}={value!r}")
        for member in new.get("tags", frozenset()) - old.get("tags", frozenset()):
            if any(member in s.get("tags", ()) for s in others):
                found.append(f"tags member {member!r}")
        for name in HASHES:
            for hkey, value in new.get(name, {}).items():
                if old.get(name, {}).get(hkey) == value:
                    continue
                if any(s.get(name, {}).get(hkey) == value for s in others):
                    found.append(f"{name}[{hkey!r}]={value!r}")
        pair = _pair(new)
        if pair is not None and pair != _pair(old):
            if any(_pair(s) == pair for s in others):
                found.append(f"(city, street)={pair!r}")
        return found

    @staticmethod
    def invalid(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
        """The new values of number-range unique fields that are not numbers."""
        return [
            f"{name}={new[name]!r}"
            for name in NUMERIC
            if new.get(name) is not None
            and new[name] != old.get(name)
            and number(new[name]) is None
        ]

    def attempt(
        self, what: str, pk: str | None, new: dict[str, Any], call: Callable[[], Any]
    ) -> tuple[bool, Any]:
        """Run a write of the instance `pk` (None: a creation, `new['id']` its pk) leaving
        the values `new` (as stored); check it is refused exactly when the oracle says so:
        ValueError for a value that is not a number on a number-range unique field,
        UniquenessError for a value, pk or pair held by another instance (either when
        both). (Whether it was done, its reply.)"""
        old = self.data.get(pk, {}) if pk is not None else {}
        refused = self.conflicts(pk, old, new)
        if pk is None and new["id"] in self.data:
            refused.append(f"pk {new['id']!r}")
        invalid = self.invalid(old, new)
        expected: tuple[type[Exception], ...] = (ValueError,) if invalid else ()
        expected += (UniquenessError,) if refused else ()
        names = " or ".join(e.__name__ for e in expected)
        why = ", ".join(invalid + refused)
        note(f"{what}  # expected: {names + ': ' + why if expected else 'ok'}")
        if invalid:
            event("write: a value that is not a number")
        before = snapshot(self.database) if expected else None
        try:
            reply = call()
        except (UniquenessError, ValueError) as error:
            assert isinstance(error, expected), f"{what}: unexpected {error!r}"
            assert snapshot(self.database) == before, f"{what}: refused, but keys changed"
            return False, None
        assert not expected, f"{what}: not refused ({names}: {why})"
        self.data[new["id"] if pk is None else pk] = {
            k: v for k, v in new.items() if k != "id" and v not in (None, frozenset(), {})
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
        new: dict[str, Any] = {k: stored(v) for k, v in given.items() if k in SINGLE}
        new["id"] = pk
        if "tags" in given:
            new["tags"] = frozenset(given["tags"])
        new.update({k: dict(v) for k, v in given.items() if k in HASHES})
        self.attempt(
            f"Account(id={pk!r}, **{given!r})", None, new, lambda: self.Account(id=pk, **given)
        )

    def _instances(self) -> st.SearchStrategy[str]:
        return st.sampled_from(sorted(self.data))

    @precondition(lambda self: self.data)
    @rule(data=st.data(), name=st.sampled_from(SINGLE))
    def write_field(self, data: st.DataObject, name: str) -> None:
        """One command writing a single-value field."""
        pk = data.draw(self._instances(), label="pk")
        value = data.draw(numbers if name in NUMERIC else values, label="value")
        old = self.data[pk]
        methods = ["set", "getset", "setnx"] if name in STRINGS else ["hset", "hsetnx", "set"]
        if name == "rank" and (old.get(name) is None or _integer(old[name]) is not None):
            methods.append("incr")
        method = data.draw(st.sampled_from(methods), label="method")
        args: tuple[Any, ...] = (value,)
        new_value = stored(value)
        if method in ("setnx", "hsetnx") and old.get(name) is not None:
            if name in NUMERIC and number(new_value) is None:
                return  # refused, or ignored (a value is there): not specified
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
    @rule(data=st.data(), given=HASHED_VALUES)
    def hmset(self, data: st.DataObject, given: dict[str, Any]) -> None:
        """`instance.hmset(**values)`: all the values, or none if one collides."""
        pk = data.draw(self._instances(), label="pk")
        instance = self.Account(pk)
        self.attempt(
            f"Account({pk!r}).hmset(**{given!r})",
            pk,
            {**self.data[pk], **{k: stored(v) for k, v in given.items()}},
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

    def _hash_item(self, data: st.DataObject, pk: str, name: str) -> tuple[str, str]:
        """A (hash key, value) for the HashField `name` of `pk`: three times in four a value
        another instance holds, under its hash key (a collision) or any other."""
        held = sorted(
            {
                item
                for other, s in self.data.items()
                if other != pk
                for item in s.get(name, {}).items()
            }
        )
        if held and data.draw(st.integers(0, 3), label="taken"):
            hkey, value = data.draw(st.sampled_from(held), label="held")
            return data.draw(st.sampled_from([hkey] * 3 + [*HASH_KEYS]), label="hkey"), value
        return data.draw(hash_keys, label="hkey"), data.draw(values, label="value")

    @precondition(lambda self: self.data)
    @rule(
        data=st.data(),
        name=st.sampled_from(HASHES),
        method=st.sampled_from(["hset", "hsetnx", "hmset", "hset(mapping=)", "hdel"]),
    )
    def hash_write(self, data: st.DataObject, name: str, method: str) -> None:
        """`hset(key, value)`, `hsetnx`, `hmset({...})`, `hset(mapping={...})` or
        `hdel(*keys)` on a unique HashField: values are unique per hash key."""
        pk = data.draw(self._instances(), label="pk")
        old = self.data[pk]
        held = old.get(name, {})
        bound = getattr(self.Account(pk), name)
        if method == "hdel":
            keys = data.draw(st.lists(hash_keys, min_size=1, max_size=3), label="keys")
            kept = {k: v for k, v in held.items() if k not in keys}
            done, reply = self.attempt(
                f"Account({pk!r}).{name}.hdel(*{keys!r})",
                pk,
                {**old, name: kept},
                lambda: bound.hdel(*keys),
            )
            assert reply == len(set(keys) & set(held)), f"hdel replied {reply!r}"
            return
        count = data.draw(st.integers(1, 3), label="count") if "m" in method else 1
        items = dict(self._hash_item(data, pk, name) for _ in range(count))
        if method == "hsetnx":
            ((hkey, value),) = items.items()
            items = {} if hkey in held else items
            args: tuple[Any, ...] = (hkey, value)
            expected: Any = int(hkey not in held)
        elif method == "hset":
            args, expected = next(iter(items.items())), int(not set(items) <= set(held))
        else:
            args, expected = (), True if method == "hmset" else len(set(items) - set(held))
        call = {
            "hmset": lambda: bound.hmset(items),
            "hset(mapping=)": lambda: bound.hset(mapping=items),
        }.get(method, lambda: getattr(bound, method)(*args))
        done, reply = self.attempt(
            f"Account({pk!r}).{name}.{method}(*{args!r}) with {items!r}",
            pk,
            {**old, name: {**held, **items}},
            call,
        )
        if done:
            assert reply == expected, f"{method} replied {reply!r}, expected {expected!r}"

    @precondition(lambda self: len(self.data) > 1 and any(map(_pair, self.data.values())))
    @rule(data=st.data(), stepwise=st.booleans())
    def take_pair(self, data: st.DataObject, stepwise: bool) -> None:
        """Another instance (one holding a combination, if any) is updated to the
        (city, street) of a holder: `hmset(city=, street=)`, or `street.hset()` then
        `city.hset()`; refused whether it held a combination before or not. Or the same
        text cut elsewhere ('x:y', 'a' -> 'x', 'y:a'): a combination of its own."""
        holder = data.draw(
            st.sampled_from(sorted(pk for pk, s in self.data.items() if _pair(s))), label="holder"
        )
        city, street = _pair(self.data[holder])  # type: ignore[misc]
        cuts = resplits(city, street)
        if cuts and data.draw(st.booleans(), label="recut"):
            # the same text cut elsewhere: another combination, free unless held
            city, street = data.draw(st.sampled_from(cuts), label="cut")
        others = sorted(set(self.data) - {holder})
        paired = [pk for pk in others if _pair(self.data[pk])]
        pk = data.draw(st.sampled_from(paired or others), label="pk")
        account = self.Account(pk)
        if not paired:  # first a combination of its own: the take is then an update of it
            mine = {"city": data.draw(values, label="city"), "street": data.draw(values)}
            self.attempt(
                f"Account({pk!r}).hmset(**{mine!r})",
                pk,
                {**self.data[pk], **mine},
                lambda: account.hmset(**mine),
            )
        if not stepwise:
            self.attempt(
                f"Account({pk!r}).hmset(city={city!r}, street={street!r})",
                pk,
                {**self.data[pk], "city": city, "street": street},
                lambda: account.hmset(city=city, street=street),
            )
            return
        for name, value in (("street", street), ("city", city)):
            self.attempt(
                f"Account({pk!r}).{name}.hset({value!r})",
                pk,
                {**self.data[pk], name: value},
                partial(getattr(account, name).hset, value),
            )

    @precondition(lambda self: self.data)
    @rule(data=st.data(), create=st.booleans())
    def take_from_expired(self, data: st.DataObject, create: bool) -> None:
        """`holder.expireat(server time - 1)`, then another instance, created or updated,
        takes one of the holder's unique values (or, created, its pk): an expired holder
        blocks nothing, so the write reaps it and succeeds (no expired instance is left)."""
        holder = data.draw(self._instances(), label="holder")
        held = self.data.pop(holder)
        seconds, microseconds = self.database.client.time()
        note(f"Account({holder!r}).expireat(now - 1)")
        assert self.Account.lazy_connect(holder).expireat(seconds + microseconds / 1e6 - 1)
        takes = _takes(held)
        if create or not self.data or not takes:
            free = [pk for pk in UNIQUE_PKS if pk not in self.data] if takes else [holder]
            pk = data.draw(st.sampled_from(free), label="pk")
            given = {} if pk == holder else data.draw(st.sampled_from(takes), label="take")
            new = {**_state({}, given), "id": pk}
            self.attempt(
                f"Account(id={pk!r}, **{given!r})", None, new, lambda: self.Account(id=pk, **given)
            )
        else:
            pk = data.draw(self._instances(), label="pk")
            given = data.draw(st.sampled_from(takes), label="take")
            account = self.Account(pk)
            self.attempt(
                f"Account({pk!r}) takes {given!r}",
                pk,
                _state(self.data[pk], given),
                lambda: _take(account, given),
            )
        assert self.Account.reap_expired() == 0, f"Account({holder!r}) expired, not reaped"

    @precondition(lambda self: self.data)
    @rule(data=st.data(), names=st.lists(st.sampled_from((*SINGLE, "tags", *HASHES)), min_size=1))
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

    @rule(
        name=st.sampled_from(NUMERIC),
        suffix=st.sampled_from(["eq", "gt", "gte", "lt", "lte", "in"]),
        value=numbers,
        more=numbers,
    )
    def filter_numbers(self, name: str, suffix: str, value: Any, more: Any) -> None:
        """`collection(rank__<suffix>=value)`: a value that is not a number is refused
        with ValueError; numbers select as compared exactly (Decimal), or as the floats a
        sorted set scores them (the two differ only beyond a double's precision)."""
        given = [value, more] if suffix == "in" else value
        wanted = [stored(v) for v in (given if suffix == "in" else [given])]
        what = f"Account.collection({name}__{suffix}={given!r})"
        filters = {f"{name}__{suffix}": given}
        if any(number(v) is None for v in wanted):
            note(f"{what}  # expected: ValueError")
            try:
                found = list(self.Account.collection(**filters))
            except ValueError:
                return
            raise AssertionError(f"{what}: not refused, gave {found!r}")
        found = list(self.Account.collection(**filters))
        answers = [
            default_order(
                pk
                for pk, states in self.data.items()
                if name in states and _matches(suffix, convert(states[name]), wanted, convert)
            )
            for convert in (number, lambda text: float(number(text)))  # type: ignore[arg-type]
        ]
        note(f"{what} -> {found!r}  # expected: {answers[0]!r}")
        if answers[0] != answers[1]:
            event("filter: exact and float comparisons differ")
        assert found in answers, f"{what} gave {found!r}, expected {answers[0]!r}"

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
            for name in HASHES:
                items = getattr(instance, name).hgetall()
                if items:
                    values_[name] = items
            stored[pk] = values_
            assert values_ == self.data[pk], f"Account({pk!r}) holds {values_!r}"
        for name, key in UNIQUE_KEYS.items():
            holders: dict[Any, str] = {}
            for pk, values_ in stored.items():
                if name in values_:
                    other = holders.setdefault(key(values_[name]), pk)
                    assert other == pk, f"{name}: {pk!r} and {other!r} hold the same value"
        for name in HASHES:
            items = [
                (k, v) for values_ in stored.values() for k, v in values_.get(name, {}).items()
            ]
            assert len(items) == len(set(items)), f"{name}: a value is held twice under a key"
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


def _takes(held: dict[str, Any]) -> list[dict[str, Any]]:
    """The unique values of an instance another can take, as constructor arguments: one
    single value, one tag, one hash key's value, or the (city, street)."""
    takes = [{name: held[name]} for name in UNIQUE_KEYS if name in held]
    takes += [{"tags": [member]} for member in sorted(held.get("tags", ()))]
    takes += [{name: {k: v}} for name in HASHES for k, v in sorted(held.get(name, {}).items())]
    pair = _pair(held)
    return takes + ([{"city": pair[0], "street": pair[1]}] if pair else [])


def _state(old: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The state of an instance from `old` after it takes the values `given` (`_takes`)."""
    new = {**old, **{k: v for k, v in given.items() if k not in ("tags", *HASHES)}}
    if "tags" in given:
        new["tags"] = old.get("tags", frozenset()) | set(given["tags"])
    new.update({k: {**old.get(k, {}), **v} for k, v in given.items() if k in HASHES})
    return new


def _take(account: Any, given: dict[str, Any]) -> Any:
    """Write the values `given` (`_takes`) on an existing instance."""
    ((name, value), *rest) = given.items()
    if rest:
        return account.hmset(**given)
    if name == "tags":
        return account.tags.sadd(*value)
    if name in HASHES:
        return getattr(account, name).hset(*next(iter(value.items())))
    return getattr(account, name).set(value)


def _matches(suffix: str, held: Any, wanted: list[str], convert: Callable[[str], Any]) -> bool:
    """Whether a held number passes the filter `suffix` on the `wanted` texts."""
    bound = convert(wanted[0])
    if suffix in ("eq", "in"):
        return any(held == convert(w) for w in wanted)
    return {
        "gt": held > bound,
        "gte": held >= bound,
        "lt": held < bound,
        "lte": held <= bound,
    }[suffix]


def _integer(value: str | None) -> int | None:
    """The integer INCR adds to (missing: 0), None when the machine does not INCR it."""
    if value is None:
        return 0
    return int(value) if re.fullmatch(r"0|-?[1-9][0-9]{0,15}", value) else None


def test_uniqueness(limpyd_database_factory, profile):
    UniquenessMachine.run(
        limpyd_database_factory, settings=scaled(profile, UniquenessMachine.weight)
    )
