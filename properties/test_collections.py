"""Machine 4: collection semantics, against a pure-Python implementation of them."""

from __future__ import annotations

import functools
import operator
import re
from typing import Any

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule
from redis.exceptions import ResponseError

from limpyd.contrib.collection import SORTED_SCORE
from limpyd.exceptions import (
    DoesNotExist,
    ImplementationError,
    MultipleObjectsReturned,
    RefusedValueError,
)
from limpyd.indexes import parse_number
from limpyd_testing.snapshot import snapshot
from properties.models import (
    COLORS,
    INTEGER_PKS,
    ITEM_PKS,
    NAMES,
    NUMBERS,
    TAGS,
    collection_models,
)
from properties.support import (
    NUMERIC_PK,
    DatabaseMachine,
    default_order,
    number_of,
    raw,
    scaled,
)

SINGLE = ("name", "num", "color", "plain")
VALUE_NAMES = ("pk", "name", "num", "color", "plain")
OPERATIONS = {"|": operator.or_, "&": operator.and_, "-": operator.sub, "^": operator.xor}
SCORES = (0.0, 1.0, 2.0, -1.5, 0.5, 3.0)
MISSING_KEY = "props-collections:{collections}:no-such-key"  # in the models' slot
#: Pks that intersections and pk filters may name: the items' and one never used.
ANY_PKS = (*ITEM_PKS, "zz")
#: A pk limpyd orders exactly, not as a double: an integer written canonically.
CANONICAL_INTEGER = re.compile(r"0|-?[1-9][0-9]*")


def disguised(pk: str) -> st.SearchStrategy[Any]:
    """`pk`, or a value redis-py sends as the same text: its bytes, the int or the float
    whose text it is (`repr`)."""
    forms: list[Any] = [pk, raw(pk)]
    if CANONICAL_INTEGER.fullmatch(pk):
        forms.append(int(pk))
    elif NUMERIC_PK.fullmatch(pk) and repr(float(pk)) == pk:
        forms.append(float(pk))
    return st.sampled_from(forms)


#: A pk of the pool (or one never used) in any of its forms.
ANY_PK_FORMS = st.sampled_from(ANY_PKS).flatmap(disguised)


def exact_order(pks: Any) -> list[str]:
    """The default order, integer pks compared exactly (`2**53 + 1` after `2**53`) when
    every pk is one."""
    pks = list(pks)
    if pks and all(CANONICAL_INTEGER.fullmatch(pk) for pk in pks):
        return sorted(pks, key=int)
    return default_order(pks)


# Queries: a plain description, built into a collection, and evaluated by the oracle --------


#: Filters that match some of the items, seldom none or all: the operands of `| & - ^`.
BROAD = (
    "name__gt",
    "name__gte",
    "name__lt",
    "name__lte",
    "name__isnull",
    "num__gt",
    "num__gte",
    "num__lt",
    "num__lte",
    "num__isnull",
    "color__in",
    "color__isnull",
    "tags__in",
    "pk__in",
)


def _some(values: Any, max_size: int, broad: bool) -> st.SearchStrategy[list[Any]]:
    """The values of an `__in` filter: seldom none (never if `broad`)."""
    some = st.lists(st.sampled_from(values), min_size=1, max_size=max_size)
    return some if broad else st.one_of(some, some, some, st.just([]))


def _some_pks(broad: bool) -> st.SearchStrategy[list[Any]]:
    """The values of a `pk__in` filter, in any form."""
    some = st.lists(ANY_PK_FORMS, min_size=1, max_size=3)
    return some if broad else st.one_of(some, some, some, st.just([]))


def _filter_options(broad: bool) -> dict[str, st.SearchStrategy[Any]]:
    """The values of each filter (`__in` with a value at least if `broad`)."""
    values = [*NUMBERS, 0, 1, -1, 2, 1.5, 100, "abc"]
    numbers = st.sampled_from(values)
    return {
        "name": st.sampled_from(NAMES),
        "name__eq": st.sampled_from(NAMES),
        "name__in": _some(NAMES, 3, broad),
        "name__gt": st.sampled_from(NAMES),
        "name__gte": st.sampled_from(NAMES),
        "name__lt": st.sampled_from(NAMES),
        "name__lte": st.sampled_from(NAMES),
        "name__startswith": st.sampled_from([*NAMES, "a", "\x00"]),
        "name__isnull": st.booleans(),
        "num": numbers,
        "num__in": _some(values, 3, broad),
        "num__gt": numbers,
        "num__gte": numbers,
        "num__lt": numbers,
        "num__lte": numbers,
        "num__isnull": st.booleans(),
        "color": st.sampled_from(COLORS),
        "color__in": _some(COLORS, 2, broad),
        "color__isnull": st.booleans(),
        "tags": st.sampled_from(TAGS),
        "tags__in": _some(TAGS, 2, broad),
        "tags__all": st.lists(st.sampled_from(TAGS), max_size=2),
        "pk": ANY_PK_FORMS,
        "pk__in": _some_pks(broad),
    }


_OPTIONS = {broad: _filter_options(broad) for broad in (False, True)}


@functools.cache
def filters(
    max_size: int = 2, broad: bool = False, min_size: int = 0
) -> st.SearchStrategy[dict[str, Any]]:
    """Filters on every field and suffix (`__isnull`, `__all` and the pk included), from
    `min_size` to `max_size` of them; only `BROAD` ones (one at least, `__in` with a value
    at least) if `broad`.

    Strategies are built once: building them for each draw would cost more than the
    queries they draw."""
    options = _OPTIONS[broad]
    names = sorted(BROAD if broad else options)
    least = max(min_size, broad)
    keys = st.lists(st.sampled_from(names), min_size=least, max_size=max_size, unique=True)

    @st.composite
    def drawn(draw: Any) -> dict[str, Any]:
        return {key: draw(options[key], label=key) for key in draw(keys)}

    return drawn()


_INTERSECTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("pks"), st.lists(st.sampled_from(ANY_PKS), min_size=3, max_size=8)),
        st.tuples(st.just("field"), st.sampled_from(["picks", "ranking", "queue"])),
        st.tuples(st.just("key"), st.sampled_from(["picks", "missing"])),
    ),
    min_size=1,
    max_size=2,
)
_BY = st.sampled_from(["pk", "name", "num", "plain", "color"]).flatmap(
    lambda name: st.sampled_from([name, "-" + name])
)
#: The keys of multi-key sorts (on distinct fields): mostly alpha, or numeric on `num`, so
#: they seldom fail.
_SORT_KEY = st.one_of(
    st.tuples(_BY, st.just(True)),
    st.tuples(st.sampled_from(["num", "-num"]), st.just(False)),
    st.tuples(_BY, st.booleans()),
)


def _multi_sorts(min_size: int) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(
        st.just("multi"),
        st.lists(
            _SORT_KEY, min_size=min_size, max_size=3, unique_by=lambda key: key[0].lstrip("-")
        ),
        st.booleans(),
    ).map(lambda m: (m[0], [k[0] for k in m[1]], [k[1] for k in m[1]], m[2]))


_SORTS = st.one_of(
    st.none(),
    st.tuples(st.just("by"), _BY, st.booleans(), st.booleans()),
    st.tuples(st.just("by"), st.sampled_from(["num", "-num", "pk"]), st.just(False), st.booleans()),
    _multi_sorts(1),
    st.tuples(st.just("score"), st.booleans()),
)
#: Sorts on two or three keys: the order of ties on the first key is the next key's.
MULTI_SORTS = _multi_sorts(2)
_BOUND = st.none() | st.integers(-5, 5)
_SLICE = st.tuples(_BOUND, _BOUND, st.sampled_from([None, 1, 2, -1, -2, 3]), st.integers(0, 3)).map(
    lambda piece: _mostly_forward(piece)
)


def _outputs(names: st.SearchStrategy[list[str]]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.one_of(
        st.just(("pks",)),
        st.just(("instances",)),
        st.tuples(st.just("values"), names),
        st.tuples(st.just("values_list"), names, st.just(False)),
        st.tuples(
            st.just("values_list"),
            st.lists(st.sampled_from(VALUE_NAMES), min_size=1, max_size=1),
            st.just(True),
        ),
    )


_OUTPUTS = _outputs(st.lists(st.sampled_from(VALUE_NAMES), max_size=3, unique=True))
#: Outputs of collections sorted by score: `sorted_score` among the values.
_SCORED_OUTPUTS = _outputs(
    st.lists(st.sampled_from([*VALUE_NAMES, SORTED_SCORE]), max_size=3, unique=True)
)


@st.composite
def queries(draw: Any, sorts: st.SearchStrategy[Any] = _SORTS) -> dict[str, Any]:
    """A random query: filters, excludes, set algebra, intersections, a sort (from
    `sorts`), slices, an output, maybe an index or a store."""
    # Each part now and then only, so that results are often not empty; the operands of a
    # set operation are broad filters, so that each operation differs from the others.
    combine = _sometimes(draw, 3)
    spec: dict[str, Any] = {
        "filters": draw(filters()) if _sometimes(draw, 4 if combine else 2) else {}
    }
    # An exclude without filters (rarely drawn) excludes nothing.
    if _sometimes(draw, 5):
        spec["excludes"] = [draw(filters(max_size=1, min_size=not _sometimes(draw, 4)))]
    else:
        spec["excludes"] = []
    if combine:
        spec["combine"] = (
            draw(st.sampled_from(sorted(OPERATIONS))),
            draw(filters(max_size=1, broad=True)),
            draw(filters(max_size=1, broad=not _sometimes(draw, 4))),
        )
    spec["intersect"] = draw(_INTERSECTIONS) if _sometimes(draw, 4) else []
    spec["sort"] = draw(sorts)
    # Slices (mostly going the way of their step) half the time, two of them now and then.
    spec["slices"] = [draw(_SLICE) for _ in range(_sometimes(draw, 2) + _sometimes(draw, 4))]
    scored = spec["sort"] is not None and spec["sort"][0] == "score"
    spec["output"] = draw(_SCORED_OUTPUTS if scored else _OUTPUTS)
    spec["index"] = draw(st.integers(-4, 4)) if _sometimes(draw, 6) else None
    spec["store"] = _sometimes(draw, 6)
    return spec


def _mostly_forward(piece: tuple[Any, Any, Any, int]) -> tuple[Any, Any, Any]:
    """A slice whose bounds go the way of its step (so it is seldom empty), unless `turn`
    is 0 (one time in four)."""
    start, stop, step, turn = piece
    backward = step is not None and step < 0
    if turn and start is not None and stop is not None and (start > stop) != backward:
        start, stop = stop, start
    return start, stop, step


_CHOICES = {n: st.integers(0, n - 1) for n in range(2, 7)}


def _sometimes(draw: Any, n: int) -> bool:
    """True once in `n` draws (False is what examples shrink to)."""
    return draw(_CHOICES[n]) == n - 1


def build(models: Any, board: Any, spec: dict[str, Any], store_key: str) -> Any:
    """The collection `spec` describes, evaluated: a list, or one item for an index."""
    Item = models.Item
    if "combine" in spec:
        op, a, b = spec["combine"]
        collection = OPERATIONS[op](Item.collection(**a), Item.collection(**b)).filter(
            **spec["filters"]
        )
    else:
        collection = Item.collection(**spec["filters"])
    for excluded in spec["excludes"]:
        collection = collection.exclude(**excluded)
    for kind, source in spec["intersect"]:
        if kind == "pks":
            collection = collection.intersect(source)
        elif kind == "field":
            collection = collection.intersect(getattr(board, source))
        else:
            key = getattr(board, source).key if source != "missing" else MISSING_KEY
            collection = collection.intersect(key)
    sort = spec["sort"]
    if sort is not None:
        if sort[0] == "by":
            collection = collection.sort(by=sort[1], alpha=sort[2], desc=sort[3])
        elif sort[0] == "multi":
            collection = collection.sort(by=sort[1], alpha=sort[2], desc=sort[3])
        else:
            collection = collection.sort(by_score=board.ranking, desc=sort[1])
    output = spec["output"]
    if output[0] == "instances":
        collection = collection.instances()
    elif output[0] == "values":
        collection = collection.values(*output[1])
    elif output[0] == "values_list":
        collection = collection.values_list(*output[1], flat=output[2])
    for piece in spec["slices"]:
        collection = collection[slice(*piece)]
    if spec["store"]:
        collection = collection.store(key=store_key, ttl=None)
    if spec["index"] is not None:
        return _plain(collection[spec["index"]])
    return [_plain(item) for item in collection]


def _plain(item: Any) -> Any:
    """Instances as ('instance', pk), to compare them."""
    from limpyd.model import RedisModel

    return ("instance", item._pk) if isinstance(item, RedisModel) else item


class Refused(Exception):
    """What the oracle expects instead of a result: `error` is raised."""

    def __init__(self, error: type[Exception]) -> None:
        super().__init__(error.__name__)
        self.error = error


def _number(text: str) -> float:
    """A value a numeric sort reads: a number, else the query fails."""
    if not NUMERIC_PK.fullmatch(text):
        raise Refused(RefusedValueError)
    return float(text)


def _score_text(score: float) -> str:
    """How Redis prints a score (%.17g)."""
    return f"{score:.17g}"


class Oracle:
    """The items, the board, and the documented semantics of collections."""

    def __init__(self) -> None:
        #: pk -> {field: value}; `tags` a frozenset (absent when empty).
        self.items: dict[str, dict[str, Any]] = {}
        self.picks: frozenset[str] = frozenset()
        self.ranking: dict[str, float] = {}
        self.queue: tuple[str, ...] = ("-",)

    def value(self, pk: str, name: str) -> str | None:
        return pk if name == "pk" else self.items[pk].get(name)

    def matches(self, pk: str, key: str, wanted: Any) -> bool:
        name, _, suffix = key.partition("__")
        if name == "pk":
            return pk in ([_text(w) for w in wanted] if suffix == "in" else [_text(wanted)])
        if suffix == "isnull":
            return (name not in self.items[pk]) == wanted
        if name == "tags":
            held = self.items[pk].get("tags", frozenset())
            if suffix == "all":
                return all(w in held for w in wanted)
            return any(w in held for w in (wanted if suffix == "in" else [wanted]))
        stored = self.items[pk].get(name)
        if stored is None:
            return False
        texts = [_text(w) for w in wanted] if suffix == "in" else [_text(wanted)]
        op = suffix if suffix not in ("", "in") else "eq"
        if name == "num":  # NumberRangeIndex: as doubles (checked numbers, see filtered)
            a, bs = number_of(stored), [number_of(t) for t in texts]
        elif op in ("eq",):  # EqualIndex: the text
            a, bs = stored, texts
        else:  # TextRangeIndex: bytes
            a, bs = raw(stored), [raw(t) for t in texts]
        compare = {
            "eq": operator.eq,
            "gt": operator.gt,
            "gte": operator.ge,
            "lt": operator.lt,
            "lte": operator.le,
            "startswith": lambda x, y: x.startswith(y),
        }[op]
        return any(compare(a, b) for b in bs)

    def filtered(self, pks: set[str], given: dict[str, Any]) -> set[str]:
        """The pks matching `given`; Refused(ValueError) when a filter value of the
        NumberRangeIndex is not a decimal number (refused when the filter is given)."""
        for key, wanted in given.items():
            name, _, suffix = key.partition("__")
            if name == "num" and suffix != "isnull":
                texts = [_text(w) for w in wanted] if suffix == "in" else [_text(wanted)]
                if any(parse_number(text) is None for text in texts):
                    raise Refused(ValueError)
        return {pk for pk in pks if all(self.matches(pk, k, v) for k, v in given.items())}

    def source(self, kind: str, source: Any) -> set[str]:
        if kind == "pks":
            return set(source)
        if source == "missing":
            return set()
        return set({"picks": self.picks, "ranking": self.ranking, "queue": self.queue}[source])

    def order(self, pks: set[str], sort: Any) -> list[str]:
        if sort is None:
            return exact_order(pks)
        if sort[0] == "score":
            ordered = sorted(pks, key=lambda pk: (self.ranking.get(pk, 0.0), raw(pk)))
            return ordered[::-1] if sort[1] else ordered
        if sort[0] == "by":
            _, by, alpha, desc = sort
            name = by.lstrip("-")
            if alpha:
                key = lambda pk: (raw(self.value(pk, name) or ""), raw(pk))  # noqa: E731
            elif name == "pk" and all(CANONICAL_INTEGER.fullmatch(pk) for pk in pks):
                ordered = exact_order(pks)  # exact, not as doubles
                return ordered[::-1] if desc != by.startswith("-") else ordered
            else:
                numbers = {pk: _number(self.value(pk, name) or "0") for pk in pks}
                key = lambda pk: (numbers[pk], raw(pk))  # noqa: E731
            ordered = sorted(pks, key=key)
            return ordered[::-1] if desc != by.startswith("-") else ordered
        _, bys, alphas, desc = sort
        keys = [
            (by.lstrip("-"), alpha, by.startswith("-") != desc)
            for by, alpha in zip(bys, alphas, strict=True)
        ]
        rows = {}
        for pk in pks:
            row = []
            for name, alpha, _ in keys:
                value = self.value(pk, name)
                row.append(raw(value or "") if alpha else _number(value or "0"))
            rows[pk] = row

        def compare(a: str, b: str) -> int:
            for i, (_, _, reverse) in enumerate(keys):
                x, y = rows[a][i], rows[b][i]
                if x != y:
                    return (1 if x > y else -1) * (-1 if reverse else 1)
            return -1 if raw(a) < raw(b) else 1  # ties: by pk, ascending, whatever desc

        return sorted(pks, key=functools.cmp_to_key(compare))

    def evaluate(self, spec: dict[str, Any]) -> Any:
        """The result of `build(spec)`; raises Refused(error) for an expected error."""
        output = spec["output"]
        # filter values are checked when given, before anything else
        given = [spec["filters"], *spec["excludes"], *spec.get("combine", ("", {}, {}))[1:]]
        for filters in given:
            self.filtered(set(), filters)
        if spec["store"] and len(output) > 1 and SORTED_SCORE in output[1]:
            raise Refused(ImplementationError)  # scores are not stored: refused first
        pks = set(self.items)
        if "combine" in spec:
            op, a, b = spec["combine"]
            pks = OPERATIONS[op](self.filtered(pks, a), self.filtered(pks, b))
        pks = self.filtered(pks, spec["filters"])
        for excluded in spec["excludes"]:
            if excluded:  # exclude() without filters excludes nothing
                pks -= self.filtered(pks, excluded)
        for kind, source in spec["intersect"]:
            pks &= self.source(kind, source)
        ordered = self.order(pks, spec["sort"])
        for piece in spec["slices"]:
            ordered = ordered[slice(*piece)]
        rows = [self.output(pk, spec) for pk in ordered]
        if spec["index"] is not None:
            try:
                return rows[spec["index"]]
            except IndexError:
                raise Refused(IndexError) from None
        return rows

    def output(self, pk: str, spec: dict[str, Any]) -> Any:
        kind, *options = spec["output"]
        if kind == "pks":
            return pk
        if kind == "instances":
            return ("instance", pk)
        # without names, every field, the pk under its own name (Item's is `id`)
        names = list(options[0]) or ["id", *VALUE_NAMES[1:]]
        values = []
        for name in names:
            if name == SORTED_SCORE:
                score = self.ranking.get(pk)
                values.append(None if score is None else _score_text(score))
            else:
                values.append(self.value(pk, "pk" if name == "id" else name))
        if kind == "values":
            return dict(zip(names, values, strict=True))
        return values[0] if options[1] else tuple(values)


def _text(value: Any) -> str:
    """The text redis-py sends for a value."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value if isinstance(value, str) else repr(value)


ITEM_VALUES = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(NAMES),
        "num": st.sampled_from(NUMBERS),
        "color": st.sampled_from(COLORS),
        "plain": st.sampled_from(NAMES),
        "tags": st.lists(st.sampled_from(TAGS), max_size=3),
    },
)


class CollectionMachine(DatabaseMachine):
    """`Item` (PKField pks from a pool mixing numbers and texts; an InstanceHashField
    `name` with an EqualIndex and a TextRangeIndex, a StringField `num` with a
    NumberRangeIndex, an indexed `color`, an indexed SetField `tags`, a plain `plain`),
    with an ExtendedCollectionManager; a `Board` holding item pks in a set, a sorted set
    and a list. Values come from small pools full of ties and byte-order traps.

    Queries: filters with every suffix (eq, in, gt/gte/lt/lte, startswith, isnull, all,
    pk/pk__in), `exclude`, `| & - ^`, `intersect` (pks, Set/SortedSet/List fields, keys,
    a missing key), `sort(by=, alpha=, desc=)` on the pk and every single-value field
    (`-name` too), multi-key sorts, `sort(by_score=)`, chained slices with negative bounds
    and steps, an index (`collection[i]`), `instances()`, `values()`, `values_list()` (flat
    too, `sorted_score` too), `store()`; stored collections read again later
    (`from_stored`, filtered), after writes, and after their key is gone. `Item.get()` by
    filters and by pk; `lazy_connect`, `get` and pk filters given the pk as bytes, an int
    or a float; creations with an empty pk.

    Invariant: every result equals the oracle's, which implements the documented
    semantics: default order by pk (numeric when every pk is a number, exact when every pk
    is an integer written canonically, else byte-wise);
    `alpha` sorts byte-wise on the UTF-8 bytes (missing values as ''), numeric ones on the
    numbers (missing as 0; a value that is not a number fails the query with RefusedValueError);
    ties by pk byte-wise, and `desc` reverses the whole order (ties included), except in
    multi-key sorts where ties stay by ascending pk; by_score on the score (missing as 0);
    Python's slices and indexes (IndexError out of range); TextRangeIndex byte-wise,
    NumberRangeIndex float with non-numbers as 0; values as str; a stored collection reads
    its pks in their stored order, without the instances deleted since, and raises
    DoesNotExist once its key is gone; `store()` refuses (ImplementationError) a collection
    whose values include `sorted_score`, which cannot be stored; `get()` raises
    DoesNotExist for no match and MultipleObjectsReturned for several; a pk is the text
    redis-py sends for it (bytes decoded, `repr` of numbers); an empty pk is refused
    (ValueError) without any write.
    """

    weight = 1.0
    max_items = 7

    def setup(self) -> None:
        self.models = collection_models(self.database)
        self.board = self.models.Board(queue=["-"])
        self.oracle = Oracle()
        #: stored key -> the pks stored (None once the key is deleted).
        self.stored: dict[str, list[str] | None] = {}

    # Writes ------------------------------------------------------------------------------

    @initialize(
        data=st.data(),
        pks=st.one_of(
            st.lists(st.sampled_from(ITEM_PKS), min_size=4, max_size=7, unique=True),
            st.lists(st.sampled_from(INTEGER_PKS), min_size=4, max_size=7, unique=True),
            # integers but one with a leading zero: the default order is not numeric
            st.lists(st.sampled_from(INTEGER_PKS), min_size=3, max_size=6, unique=True).map(
                lambda pks: [*pks, "01"]
            ),
        ),
    )
    def populate(self, data: st.DataObject, pks: list[str]) -> None:
        """Start with a few items (whatever rules an example leaves out)."""
        for pk in pks:
            self.create(pk, data.draw(ITEM_VALUES, label="values"))

    @rule(pk=st.sampled_from(ITEM_PKS), given=ITEM_VALUES)
    def create(self, pk: str, given: dict[str, Any]) -> None:
        if pk in self.oracle.items or len(self.oracle.items) >= self.max_items:
            return
        note(f"Item(id={pk!r}, **{given!r})")
        self.models.Item(id=pk, **given)
        values = {k: v for k, v in given.items() if k != "tags"}
        if given.get("tags"):
            values["tags"] = frozenset(given["tags"])
        self.oracle.items[pk] = values

    @rule(pk=st.sampled_from(["", b""]), given=ITEM_VALUES)
    def create_empty_pk(self, pk: Any, given: dict[str, Any]) -> None:
        """A pk cannot be empty: the creation is refused (ValueError) and writes nothing."""
        note(f"Item(id={pk!r}, **{given!r})")
        before = snapshot(self.database)
        try:
            self.models.Item(id=pk, **given)
        except ValueError:
            assert snapshot(self.database) == before, "a refused creation wrote"
            return
        raise AssertionError(f"an instance was created with the pk {pk!r}")

    def _connect(self, data: st.DataObject) -> tuple[str, Any]:
        """An item's pk, and its instance from `lazy_connect` given the pk in any form."""
        pk = data.draw(st.sampled_from(sorted(self.oracle.items)), label="pk")
        form = data.draw(disguised(pk), label="pk form")
        return pk, self.models.Item.lazy_connect(form)

    @precondition(lambda self: self.oracle.items)
    @rule(data=st.data(), name=st.sampled_from(SINGLE), delete=st.booleans())
    def write(self, data: st.DataObject, name: str, delete: bool) -> None:
        pk, instance = self._connect(data)
        bound = getattr(instance, name)
        if delete:
            note(f"Item({pk!r}).{name}.delete()")
            bound.delete()
            self.oracle.items[pk].pop(name, None)
            return
        value = data.draw(st.sampled_from(NUMBERS if name == "num" else NAMES), label="value")
        note(f"Item({pk!r}).{name}.set({value!r})")
        bound.set(value)
        self.oracle.items[pk][name] = value

    @precondition(lambda self: self.oracle.items)
    @rule(data=st.data(), members=st.lists(st.sampled_from(TAGS), min_size=1), add=st.booleans())
    def write_tags(self, data: st.DataObject, members: list[str], add: bool) -> None:
        pk, instance = self._connect(data)
        note(f"Item({pk!r}).tags.{'sadd' if add else 'srem'}(*{members!r})")
        bound = instance.tags
        (bound.sadd if add else bound.srem)(*members)
        held = self.oracle.items[pk].get("tags", frozenset())
        held = held | set(members) if add else held - set(members)
        if held:
            self.oracle.items[pk]["tags"] = frozenset(held)
        else:
            self.oracle.items[pk].pop("tags", None)

    @precondition(
        lambda self: len(self.oracle.items) > 4
    )  # four items at least: results are seldom empty
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        pk, instance = self._connect(data)
        note(f"Item({pk!r}).delete()")
        instance.delete()
        del self.oracle.items[pk]

    @rule(
        which=st.sampled_from(["picks", "ranking", "queue"]),
        member=st.sampled_from(ANY_PKS),
        score=st.sampled_from(SCORES),
        add=st.booleans(),
    )
    def write_board(self, which: str, member: str, score: float, add: bool) -> None:
        """Item pks (existing or not) added to or removed from the board."""
        bound = getattr(self.board, which)
        o = self.oracle
        if which == "picks":
            (bound.sadd if add else bound.srem)(member)
            o.picks = o.picks | {member} if add else o.picks - {member}
        elif which == "ranking":
            if add:
                bound.zadd({member: score})
                o.ranking = {**o.ranking, member: score}
            else:
                bound.zrem(member)
                o.ranking = {m: s for m, s in o.ranking.items() if m != member}
        elif add:
            bound.rpush(member)
            o.queue = (*o.queue, member)
        else:
            bound.lrem(0, member)
            o.queue = tuple(m for m in o.queue if m != member)
        note(f"board.{which} {'+' if add else '-'} {member!r}")

    # Queries -----------------------------------------------------------------------------

    @precondition(lambda self: self.oracle.items)
    @rule(data=st.data(), name=st.sampled_from(SINGLE))
    def read(self, data: st.DataObject, name: str) -> None:
        """A value read through `lazy_connect(pk)` and `get(pk)`, the pk in any form: both
        reach the instance whose pk is its text, which `collection(pk=form)` finds."""
        pk, instance = self._connect(data)
        form = data.draw(disguised(pk), label="other pk form")
        again = self.models.Item.get(form)
        found_pks = list(self.models.Item.collection(pk=form))
        assert found_pks == [pk], f"collection(pk={form!r}) is {found_pks!r}"
        for found in (instance, again):
            note(f"Item({pk!r}).{name}.get()")
            assert found.pk.get() == pk, f"connected to {found.pk.get()!r}, not {pk!r}"
            value = getattr(found, name).get()
            assert value == self.oracle.value(pk, name), f"{name} read {value!r}"

    @rule(given=filters(max_size=2, min_size=1))
    def get_one(self, given: dict[str, Any]) -> None:
        """`Item.get(**filters)`: the only match; DoesNotExist for none, and
        MultipleObjectsReturned (a ValueError) for several."""
        note(f"Item.get(**{given!r})")
        try:
            expected: list[str] | None = sorted(self.oracle.filtered(set(self.oracle.items), given))
        except Refused:  # a filter value of the NumberRangeIndex is not a number
            expected = None
        try:
            found = self.models.Item.get(**given)
        except MultipleObjectsReturned:
            assert expected is not None and len(expected) > 1, f"several, expected {expected!r}"
        except DoesNotExist:
            assert expected == [], f"none, expected {expected!r}"
        except ValueError as error:
            assert expected is None, f"get raised {error!r}, expected {expected!r}"
        else:
            assert expected == [found.pk.get()], f"got {found.pk.get()!r}, expected {expected!r}"

    @rule(spec=queries())
    def query(self, spec: dict[str, Any]) -> None:
        """A random query, compared with the oracle's result or error."""
        key = f"props-collections:{{collections}}:stored:{len(self.stored)}"  # in the models' slot
        note(f"query {spec!r}")
        try:
            expected: Any = self.oracle.evaluate(spec)
        except Refused as refused:
            expected = refused.error
        try:
            found: Any = build(self.models, self.board, spec, key)
        except (ResponseError, IndexError, ImplementationError, ValueError) as error:
            assert isinstance(expected, type) and isinstance(error, expected), (
                f"query raised {error!r}, expected {expected!r}"
            )
            return
        assert found == expected, f"query gave {found!r}, expected {expected!r}"
        if spec["store"]:
            # an empty result stores no key: from_stored then raises DoesNotExist, as for
            # a key that is gone (docs/decisions.md, Coming from redis-limpyd)
            self.stored[key] = self._stored_pks(spec) or None

    @rule(spec=queries(sorts=MULTI_SORTS))
    def query_sorted(self, spec: dict[str, Any]) -> None:
        """A random query sorted on several keys (ties on one key, and each key's own
        direction, are where sorts go wrong), compared with the oracle's."""
        self.query(spec)

    def _stored_pks(self, spec: dict[str, Any]) -> list[str]:
        """The pks `store()` writes for a spec: its result before output and index."""
        plain = {**spec, "output": ("pks",), "index": None}
        return self.oracle.evaluate(plain)

    @precondition(lambda self: self.stored)
    @rule(data=st.data(), given=filters(max_size=1), drop=st.integers(0, 4))
    def read_stored(self, data: st.DataObject, given: dict[str, Any], drop: int) -> None:
        """`collection().from_stored(key)`, maybe filtered, later; or after deleting the key."""
        key = data.draw(st.sampled_from(sorted(self.stored)), label="key")
        if drop == 0 and self.stored[key] is not None:
            self.database.client.delete(key)
            self.stored[key] = None
        note(f"Item.collection().from_stored({key!r}).filter(**{given!r})")

        def read() -> list[str]:  # a refused filter value may raise at filter() or when read
            return list(self.models.Item.collection().from_stored(key).filter(**given))

        pks = self.stored[key]
        try:
            self.oracle.filtered(set(), given)
        except Refused:  # a non-number filter value of the NumberRangeIndex
            try:
                found = read()
            except (ValueError, DoesNotExist) as error:
                assert pks is None or isinstance(error, ValueError), f"unexpected {error!r}"
                return
            raise AssertionError(f"a filter value is not a number, yet gave {found!r}") from None
        if pks is None:
            try:
                found = read()
            except DoesNotExist:
                return
            raise AssertionError(f"{key} is gone, yet the stored collection gave {found!r}")
        alive = self.oracle.filtered(set(self.oracle.items) & set(pks), given)
        expected = [pk for pk in pks if pk in alive]
        found = read()
        assert found == expected, f"stored collection is {found!r}, expected {expected!r}"

    @invariant()
    def collection_is_exact(self) -> None:
        found = list(self.models.Item.collection())
        assert found == exact_order(self.oracle.items), f"collection() is {found!r}"


def test_collections(limpyd_database_factory, profile):
    CollectionMachine.run(
        limpyd_database_factory, settings=scaled(profile, CollectionMachine.weight)
    )
