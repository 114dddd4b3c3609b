"""The integrity checker: do a model's indexes and relations hold exactly what its data implies?

`check(*models)` walks the data with SSCAN/SCAN in batches (memory bounded by the batch size,
whatever the database size, but for the values of unique fields and combinations, kept to
find those held twice) and recomputes index entries with the same index classes the
ORM writes with. It reports:

- `missing`: an index entry an instance's value implies is not there;
- `stale`: an index entry no instance's value implies;
- `unique`: a unique value held by several instances (as their values say, whatever the
  index holds);
- `orphan`: a key of an instance that is not in the model's collection, or an expiry time
  of such a pk;
- `dangling`: a related field holding the pk of a missing instance (and `missing`, for the
  field, a link record the instance it points to lacks: deleting it would not unlink);
- `type`: a key where limpyd keeps a set or a sorted set holding another type (its entries
  are then reported `missing` too);
- `invalid`: a value an index of its field refuses, or a data key of another type than its
  field keeps (written by another client): it implies no entry (those stored for it are
  reported `stale`), and no rebuild can index it;
- `counter`: an AutoPKField model's pk counter behind one of its pks (set back by another
  client), or holding what no creation can take the next pk from (`fields.pk.counter_value`):
  the next creations are refused until it is set to the largest pk.

A model's expiry sorted set or pk counter of another type is reported (`type`), not
repaired.

A model's collection of another type than a set is reported (`type`), and nothing else is
checked for that model until it is fixed.

The combinations of `unique_together` groups (`<model>:idx:__together__:...` sets) are checked
the same way (`missing`, `stale`, `unique`: held by several instances), reported without a
field.

`repair(problems)` rebuilds the indexes of the fields with index problems (not of a field
holding an `invalid` value: fix the value first), and the combinations of the models with
combination problems.

Production code and operators use it (`python -m limpyd check`); tests through
`limpyd_testing.integrity` (`assert_consistent`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from limpyd.exceptions import ImplementationError, RefusedValueError
from limpyd.fields.pk import COUNTER_RULE, counter_value
from limpyd.keys import HASH_SUFFIX
from limpyd.maintenance import (
    IN_BATCHES,
    SCAN_COUNT,
    rebuild_indexes,
    rebuild_together,
    together_pattern,
)
from limpyd.maintenance import batches as _batches
from limpyd.refusals import concrete_model, is_wrong_type
from limpyd.text import glob_escape, member_pk, shown
from limpyd.writes import read_states, refuse_in_pipeline

if TYPE_CHECKING:
    from limpyd.fields.base import RedisField
    from limpyd.model import RedisModel

__all__ = ["IntegrityError", "Problem", "assert_consistent", "check", "repair"]

#: Instances, keys or index members handled per round trip.
BATCH = 500
#: Owners whose implied index entries the stale-entry check keeps between batches.
IMPLIED_KEPT = 4 * BATCH

Entry = tuple[str, str, "float | None"]


class IntegrityError(AssertionError):
    """A model's data, indexes or relations are inconsistent."""


@dataclass(frozen=True)
class Problem:
    """One inconsistency: its kind, where, and what."""

    kind: str
    model: type[RedisModel]
    field: RedisField | None
    detail: str

    def __str__(self) -> str:
        where = self.field.describe() if self.field is not None else self.model.__name__
        return f"{where}: {self.kind}: {self.detail}"


#: How the members of each kind of index key are read, a page at a time.
_SCANS = {"set": "sscan", "zset": "zscan"}


def _entry(command: tuple[Any, ...]) -> Entry:
    """(key, member, score) of an index entry's add command."""
    if command[0] == "SADD":
        return command[1], command[2], None
    return command[1], command[3], float(command[2])


def _tolerating_wrong_types(replies: list[Any]) -> list[Any]:
    """A pipeline's replies, None for a key of another type than the command reads; any
    other error raised (a cluster pipeline returns its connection errors too)."""
    for reply in replies:
        if isinstance(reply, Exception) and not is_wrong_type(reply):
            raise reply
    return [None if isinstance(reply, ResponseError) else reply for reply in replies]


#: The Redis type of the key each kind of field keeps its value in.
_DATA_TYPES = {
    "string": "string",
    "hashfield": "hash",
    "hash": "hash",
    "set": "set",
    "list": "list",
    "zset": "zset",
}


class _Checker:
    """The checks of one model, reporting through `report`."""

    def __init__(
        self, model: type[RedisModel], progress: Callable[[str, int, int], None] | None
    ) -> None:
        self.model = model
        self.meta = model._meta
        self.database = self.meta.database
        self.client = self.database.client
        self.progress = progress or (lambda task, done, total: None)
        self.problems: list[Problem] = []
        self.mistyped: set[str] = set()
        self.refused: set[tuple[str, str]] = set()
        #: per (field name, what the write script checks a unique value by): the value as
        #: the smallest pk holds it, and its holders (the model's unique values stay in
        #: memory while it is checked)
        self.holders: dict[tuple[str, tuple[str, ...]], tuple[str, set[str]]] = {}
        #: per `unique_together` combination key, the instances whose values hold it
        self.together_holders: dict[str, set[str]] = {}

    def report(self, kind: str, field: RedisField | None, detail: str) -> None:
        self.problems.append(Problem(kind, self.model, field, detail))

    def wrong_type(self, key: str, field: RedisField | None, wanted: str) -> None:
        """Report, once, a key holding another type than limpyd keeps there."""
        if key not in self.mistyped:
            self.mistyped.add(key)
            self.report("type", field, f"key {key!r} is not {wanted}")

    def states(self, wanted: list[tuple[RedisField, str]]) -> list[list[str]]:
        """The states of these (field, pk) pairs, in one round trip; a data key of another
        type than its field keeps (written by another client) is reported `invalid`, once,
        and read as empty."""
        with contextlib.suppress(RefusedValueError):  # a key of another type (read_state)
            return read_states(self.database, wanted)
        keys = [field.state_location(pk)[0] for field, pk in wanted]
        with self.client.pipeline(transaction=False) as pipeline:
            for key in keys:
                pipeline.type(key)
            found = pipeline.execute()
        readable = []
        for (field, pk), key, kind in zip(wanted, keys, found, strict=True):
            held = _DATA_TYPES[field.state_kind]
            if kind not in ("none", held):
                if (field.name, pk) not in self.refused:  # each field its key holds
                    self.refused.add((field.name, pk))
                    self.report("invalid", field, f"instance {pk!r}: key {key!r} is not a {held}")
            else:
                readable.append((field, pk))
        states, read = iter(read_states(self.database, readable)), set(readable)
        return [next(states) if pair in read else [] for pair in wanted]

    def expected(self, field: RedisField, pk: str, state: list[str]) -> set[Entry]:
        """The index entries `pk`'s value of `field` implies; a value its indexes refuse
        (written by another client) is reported `invalid`, once, and implies none."""
        entries: set[Entry] = set()
        for hkey, value in field.items_of(state):
            for index in field.indexes:  # another index may take what one refuses
                try:
                    entries |= {_entry(add) for add, _ in index.entries(value, pk, hkey)}
                except ValueError as error:
                    if (field.name, pk) not in self.refused:
                        self.refused.add((field.name, pk))
                        self.report("invalid", field, f"instance {pk!r}: {error}")
        return entries

    def present(self, entries: list[Entry]) -> list[bool]:
        """Whether each (key, member, score) is stored: as a set member (score None) or with
        that score. One round trip, with one SMISMEMBER or ZMSCORE per key, not per entry."""
        groups: dict[tuple[str, bool], list[int]] = {}
        for position, (key, _, score) in enumerate(entries):
            groups.setdefault((key, score is None), []).append(position)
        with self.client.pipeline(transaction=False) as pipeline:
            for (key, in_set), positions in groups.items():
                members = [entries[position][1] for position in positions]
                if in_set:
                    pipeline.smismember(key, members)
                else:
                    pipeline.zmscore(key, members)
            replies = _tolerating_wrong_types(pipeline.execute(raise_on_error=False))
        found = [False] * len(entries)
        for ((key, in_set), positions), answers in zip(groups.items(), replies, strict=True):
            if answers is None:  # none of them is there
                self.wrong_type(key, None, "a set" if in_set else "a sorted set")
                continue
            for position, answer in zip(positions, answers, strict=True):
                found[position] = bool(answer) if in_set else answer == entries[position][2]
        return found

    def pks(self) -> Iterator[str]:
        return self.client.sscan_iter(self.meta.collection_key, count=BATCH)

    def run(self) -> list[Problem]:
        indexed = [field for field in self.meta.data_fields if field.indexes]
        related = [field for field in self.meta.data_fields if hasattr(field, "related_model")]
        done = 0
        task = f"{self.model.__name__}: instances checked"
        try:
            total = int(self.client.scard(self.meta.collection_key))
        except ResponseError as error:
            if not is_wrong_type(error):
                raise
            self.wrong_type(self.meta.collection_key, None, "a set")
            return self.problems  # no instances to check: fix the collection first
        self.progress(task, done, total)
        counter = self.check_model_keys()
        largest = 0
        for batch in _batches(self.pks()):
            self.check_instances(batch, indexed, related)
            self.check_combinations(batch)
            largest = max([largest, *(int(pk) for pk in batch if pk.isascii() and pk.isdigit())])
            done += len(batch)
            self.progress(task, done, max(total, done))
        duplicates = {  # one report per value, whatever the indexes checking it
            (name, value, tuple(sorted(holders)))
            for (name, _), (value, holders) in self.holders.items()
            if len(holders) > 1
        }
        for name, value, holders in sorted(duplicates):
            field = self.meta.field(name)
            self.report("unique", field, f"value {shown(value)} held by {list(holders)!r}")
        for key, pks in sorted(self.together_holders.items()):
            if len(pks) > 1:
                self.report("unique", None, f"combination {key!r} held by {sorted(pks)!r}")
        if self.meta.pk_field.auto and counter is not None and largest > counter:
            self.report(
                "counter",
                None,
                f"{self.meta.max_pk_key!r} holds {counter}, behind the instance {largest}: "
                f"creations are refused until it holds {largest}",
            )
        for field in indexed:
            self.check_index_keys(field)
        self.check_combination_keys()
        self.check_orphans()
        return self.problems

    def check_model_keys(self) -> int | None:
        """The types of the model's expiry sorted set and pk counter; the counter's value
        (0 if it has none, None if no creation can take the next pk from it: reported for an
        AutoPKField)."""
        meta = self.meta
        with self.client.pipeline(transaction=False) as pipeline:
            pipeline.type(meta.expiry_key)
            pipeline.type(meta.max_pk_key)
            pipeline.get(meta.max_pk_key)
            expiry, kind, value = pipeline.execute(raise_on_error=False)
        if expiry not in ("zset", "none"):
            self.wrong_type(meta.expiry_key, None, "a sorted set")
        if kind not in ("string", "none"):
            self.wrong_type(meta.max_pk_key, None, "a string")
            return None
        counter = counter_value(value)
        if counter is None and meta.pk_field.auto:
            self.report(
                "counter",
                None,
                f"{meta.max_pk_key!r} holds {shown(value)}, which no creation can take the "
                f"next pk from ({COUNTER_RULE}): creations are "
                "refused until it holds the largest pk",
            )
        return counter

    # unique_together ----------------------------------------------------------------------

    def combinations(self, pks: list[str]) -> dict[str, set[str]]:
        """The combination keys each of these instances' values implies, by pk."""
        meta = self.meta
        names = sorted({name for group in meta.unique_together for name in group})
        states = iter(self.states([(meta.fields[n], pk) for pk in pks for n in names]))
        implied: dict[str, set[str]] = {}
        for pk in pks:
            values = {name: next(states) for name in names}
            keys = (meta.together_key(group, values) for group in meta.unique_together)
            implied[pk] = {key for key in keys if key is not None}
        return implied

    def check_combinations(self, pks: list[str]) -> None:
        """Combinations these instances hold that are not stored (and their holders noted,
        by their values, whatever the combination keys hold)."""
        if not self.meta.unique_together:
            return
        wanted = [(key, pk) for pk, keys in self.combinations(pks).items() for key in keys]
        for key, pk in wanted:
            self.together_holders.setdefault(key, set()).add(pk)
        found = self.present([(key, pk, None) for key, pk in wanted])
        for (key, pk), present in zip(wanted, found, strict=True):
            if not present:
                self.report("missing", None, f"combination of {pk!r} in {key!r}")

    def check_combination_keys(self) -> None:
        """Stored combinations no instance holds."""
        scanned = self.client.scan_iter(match=together_pattern(self.model), count=SCAN_COUNT)
        members = (pair for keys in _batches(scanned) for pair in self.set_members(keys))
        for chunk in _batches(members):
            distinct = list(dict.fromkeys(pk for _, pk in chunk))
            exists = self.exist(distinct)
            implied = self.combinations([pk for pk in distinct if pk in exists])
            for key, pk in chunk:
                if key not in implied.get(pk, ()):
                    self.report("stale", None, f"combination of {pk!r} in {key!r}")

    def set_members(self, keys: list[str]) -> Iterator[tuple[str, str]]:
        """(key, member) of the sets among `keys`: their first pages in one round trip, the
        rest of a big one page by page; a key of another type is reported `type` (found by
        its SSCAN: no round trip more)."""
        for key, page in zip(keys, self._first_pages(keys, "set"), strict=True):
            if page is None:
                self.wrong_type(key, None, "a set")
                continue
            cursor, members = page
            while True:
                yield from ((key, member) for member in members)
                if not int(cursor):
                    break
                cursor, members = self.client.sscan(key, cursor, count=BATCH)

    def check_instances(
        self, pks: list[str], indexed: list[RedisField], related: list[RedisField]
    ) -> None:
        """Missing index entries and link records, and dangling relations, of these
        instances."""
        fields = list(dict.fromkeys(indexed + related))
        states = iter(self.states([(f, pk) for pk in pks for f in fields]))
        expected: list[tuple[RedisField, Entry]] = []
        links: list[tuple[RedisField, str, str]] = []
        for pk in pks:
            for field in fields:
                state = next(states)
                if field.indexes:
                    expected += [(field, entry) for entry in self.expected(field, pk, state)]
                if field.unique:
                    self.note_unique_values(field, pk, state)
                if field in related:
                    links += [(field, pk, value) for _, value in field.items_of(state)]
        for chunk in _batches(expected):
            found = self.present([entry for _, entry in chunk])
            for (field, (key, member, _)), present in zip(chunk, found, strict=True):
                if not present:
                    self.report("missing", field, f"index entry {member!r} in {key!r}")
        for chunk in _batches(links):
            found = self.present(
                [
                    (field.require_related_model()._meta.collection_key, value, None)
                    for field, _, value in chunk
                ]
            )
            pointing = []
            for (field, pk, value), exists in zip(chunk, found, strict=True):
                if not exists:
                    self.report("dangling", field, f"instance {pk!r} points to missing {value!r}")
                else:
                    pointing.append((field, pk, value))
            self.check_link_records(pointing)

    def note_unique_values(self, field: RedisField, pk: str, state: list[str]) -> None:
        """Note `pk` as a holder of each unique value of its `field` (by what the write
        script checks: values a transform makes one are one), whatever the index holds."""
        for hkey, value in field.items_of(state):
            for index in field.indexes:
                if not index.handle_uniqueness:
                    continue
                try:
                    check = index.unique_check(value, pk, hkey)
                except ValueError:  # reported `invalid` by `expected`
                    continue
                if check is None:
                    continue
                shown, holders = self.holders.get((field.name, check), (value, set()))
                if holders and pk < min(holders):  # the smallest pk's: the same every time
                    shown = value
                holders.add(pk)
                self.holders[field.name, check] = (shown, holders)

    def check_link_records(self, links: list[tuple[Any, str, str]]) -> None:
        """The link record each (related field, pk, value it points to) needs in the target's
        links hash: what deleting the target unlinks it with (reported `missing`; a links
        key of another type `type`)."""
        keys = [field.require_related_model()._meta.links_key(value) for field, _, value in links]
        with self.client.pipeline(transaction=False) as pipeline:
            for (field, _, _), key in zip(links, keys, strict=True):
                pipeline.hget(key, field.link_id)
            replies = pipeline.execute(raise_on_error=False)
        for (field, pk, value), key, reply in zip(links, keys, replies, strict=True):
            if isinstance(reply, Exception):
                if not is_wrong_type(reply):
                    raise reply
                self.wrong_type(key, None, "a hash")
            elif reply != field.link_record(value):
                self.report(
                    "missing", field, f"link record of {pk!r} pointing to {value!r} in {key!r}"
                )

    def index_members(self, field: RedisField) -> Iterator[tuple[str, str, float | None]]:
        """(key, member, score) of every entry stored in `field`'s index keys."""
        for index in field.indexes:
            for pattern in index.scan_patterns():
                for keys in _batches(self.client.scan_iter(match=pattern, count=SCAN_COUNT)):
                    yield from self._members(keys, field)

    def _members(
        self, keys: list[str], field: RedisField
    ) -> Iterator[tuple[str, str, float | None]]:
        """(key, member, score) of the sets and sorted sets among `keys`: their first pages
        in one round trip read as sets, those of another type in a second one read as
        sorted sets (index keys are mostly sets), the rest of a big one page by page."""
        pages = self._first_pages(keys, "set")
        others = [key for key, page in zip(keys, pages, strict=True) if page is None]
        pages += self._first_pages(others, "zset")
        found = [(key, "set") for key in keys] + [(key, "zset") for key in others]
        for (key, kind), page in zip(found, pages, strict=True):
            if page is None:
                if kind == "zset":  # neither a set nor a sorted set
                    self.wrong_type(key, field, "a set or a sorted set")
                continue
            cursor, members = page
            scan = getattr(self.client, _SCANS[kind])
            while True:
                if kind == "set":
                    yield from ((key, member, None) for member in members)
                else:
                    yield from ((key, member, score) for member, score in members)
                if not int(cursor):
                    break
                cursor, members = scan(key, cursor, count=BATCH)

    def _first_pages(self, keys: list[str], kind: str) -> list[Any]:
        """The first page (cursor, members) of each key read as a `kind` ("set" or "zset"),
        or None for a key of another type."""
        if not keys:
            return []
        with self.client.pipeline(transaction=False) as pipeline:
            for key in keys:
                getattr(pipeline, _SCANS[kind])(key, 0, count=BATCH)
            return _tolerating_wrong_types(pipeline.execute(raise_on_error=False))

    def check_index_keys(self, field: RedisField) -> None:
        """Stale index entries in `field`'s indexes (an entry of a unique value an instance
        holds is not stale: values held twice are found on the instances)."""
        # the entries each owner's value implies, computed once per owner while kept: a field
        # of many values (a set of thousands of members) has its entries in many chunks
        implied: dict[str, set[Entry]] = {}
        for chunk in _batches(self.index_members(field)):
            if len(implied) > IMPLIED_KEPT:  # memory bounded: an owner met again is read again
                implied.clear()
            owners = [member if score is None else member_pk(member) for _, member, score in chunk]
            distinct = [pk for pk in dict.fromkeys(owners) if pk is not None and pk not in implied]
            states = self.states([(field, pk) for pk in distinct])
            exists = self.exist(distinct)
            implied.update(
                (pk, self.expected(field, pk, state) if pk in exists else set())
                for pk, state in zip(distinct, states, strict=True)
            )
            for (key, member, score), pk in zip(chunk, owners, strict=True):
                if pk is None or (key, member, score) not in implied[pk]:
                    self.report("stale", field, f"index entry {member!r} in {key!r}")

    def exist(self, pks: list[str]) -> set[str]:
        found = self.present([(self.meta.collection_key, pk, None) for pk in pks])
        return {pk for pk, present in zip(pks, found, strict=True) if present}

    def check_orphans(self) -> None:
        """Instance keys whose pk is not in the collection."""
        start = self.meta.instance_prefix
        suffixes = [self.meta.field_suffix(f.name) for f in self.meta.data_fields] + [HASH_SUFFIX]
        pattern = glob_escape(start) + "*"
        for chunk in _batches(self.client.scan_iter(match=pattern, count=SCAN_COUNT)):
            candidates = {
                key: [key[len(start) : -len(s)] for s in suffixes if key.endswith(s)]
                for key in chunk
            }
            exists = self.exist([pk for pks in candidates.values() for pk in pks])
            for key, pks in candidates.items():
                if not exists.intersection(pks):
                    self.report("orphan", None, f"key {key!r} belongs to no instance")
        self.check_expiry_times()

    def check_expiry_times(self) -> None:
        """Expiry times of pks in no collection (another client's, a partial restore): a
        creation of such a pk clears its time, a reap removes it once it has passed."""
        key = self.meta.expiry_key
        if key in self.mistyped:
            return
        for chunk in _batches(pk for pk, _ in self.client.zscan_iter(key, count=BATCH)):
            exists = self.exist(chunk)
            for pk in chunk:
                if pk not in exists:
                    self.report(
                        "orphan",
                        None,
                        f"the expiry time of {pk!r} in {key!r} belongs to no instance",
                    )


def check(
    *models: type[RedisModel], progress: Callable[[str, int, int], None] | None = None
) -> list[Problem]:
    """Every problem found in these models (an empty list when all is consistent).

    `progress(task, done, total)` is called as instances are checked (`total` is the size of
    the collection when the check began). An abstract model (no instances) or what is no
    model is refused, naming it: nothing checked must not read as nothing wrong."""
    for model in models:
        concrete_model(model, "check")
    return [problem for model in models for problem in _Checker(model, progress).run()]


def assert_consistent(*models: type[RedisModel]) -> None:
    """Raise IntegrityError listing, one per line, every problem `check` finds."""
    problems = check(*models)
    if problems:
        raise IntegrityError("\n".join(map(str, problems)))


def repair(
    problems: Iterable[Problem],
    done: Callable[[RedisField | type[RedisModel]], None] | None = None,
) -> list[RedisField | type[RedisModel]]:
    """Rebuild the indexes of every field with missing, stale, unique or type problems (not
    of one holding an invalid value: no rebuild can index it), and the `unique_together`
    combinations of every model with such problems (not if one of their fields holds an
    invalid value); the fields and models rebuilt, each also given to `done` once rebuilt
    (what a rebuild refusing a value leaves said). (Orphan keys, dangling relations and
    invalid values are reported, not changed.)"""
    problems = list(problems)
    for problem in problems:
        if not isinstance(problem, Problem):
            raise ImplementationError(
                f"repair(): the problems check() found are expected, not {problem!r:.200}"
            )
    broken = [p for p in problems if p.kind in ("missing", "stale", "unique")]
    invalid = {p.field for p in problems if p.kind == "invalid"}
    fields = list(
        dict.fromkeys(
            p.field
            for p in [*broken, *(p for p in problems if p.kind == "type")]
            if p.field is not None and p.field not in invalid
        )
    )
    models = [  # not those whose unique_together fields hold an invalid value (unreadable)
        model
        for model in dict.fromkeys(p.model for p in broken if p.field is None)
        if not {model._meta.fields[n] for group in model._meta.unique_together for n in group}
        & invalid
    ]
    for model in dict.fromkeys([*(field.model for field in fields), *models]):
        refuse_in_pipeline(model._meta.database, f"{model.__name__}: repairing indexes", IN_BATCHES)
    for field in fields:  # a unique value held twice is indexed so: still reported
        rebuild_indexes(field, allow_duplicates=True)
        if done is not None:
            done(field)
    for model in models:
        rebuild_together(model, allow_duplicates=True)
        if done is not None:
            done(model)
    return [*fields, *models]
