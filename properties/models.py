"""The models the machines drive, built by functions so each database (each example, and
each side of the parity machine) gets its own classes: `index_models(db)`,
`unique_models(db)`, `related_models(db)`, `collection_models(db)`.

`index_models(None)` gives models without a database, for the index-consistency machine
(`ModelStateMachine` points them at each example's database with `use_database`).
"""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import strategies as st

from limpyd import fields
from limpyd.contrib.collection import ExtendedCollectionManager
from limpyd.contrib.indexes import (
    DateIndex,
    DateTimeIndex,
    EndsWithIndex,
    MultiIndexes,
    SimpleDateTimeIndex,
    TimeIndex,
)
from limpyd.database import RedisDatabase
from limpyd.indexes import EqualIndex, NumberRangeIndex, TextRangeIndex
from limpyd.model import RedisModel
from limpyd_testing import strategies as lst
from properties.relmodels_sources import source_models
from properties.relmodels_targets import target_models

# Indexes ------------------------------------------------------------------------------------

#: Equality on the lowercased value, under the prefix `lower` (field__lower=...).
LowerIndex = EqualIndex.configure(prefix="lower", transform=lambda value: value.lower())
#: Equality and a text range (prefix `text`) on the stripped value; blank values are not
#: indexed (a transform returning None).
StrippedIndexes = MultiIndexes.compose(
    [EqualIndex, TextRangeIndex.configure(prefix="text")],
    name="StrippedIndexes",
    key="stripped",
    transform=lambda value: value.strip() or None,
)
#: A composed pair with a key of its own, so it can sit next to the plain indexes.
PairIndexes = MultiIndexes.compose([EqualIndex, NumberRangeIndex], name="PairIndexes", key="pair")


def _two(n: int) -> st.SearchStrategy[str]:
    return st.integers(0, n).map(lambda i: f"{i:02d}")


def dates() -> st.SearchStrategy[str]:
    """'YYYY-MM-DD' texts, few distinct (so filters match), and sometimes anything."""
    good = st.builds(
        lambda y, m, d: f"{y}-{m}-{d}",
        st.sampled_from(["1999", "2024", "2025"]),
        _two(13),
        _two(32),
    )
    return st.one_of(good, good, lst.texts())


def times() -> st.SearchStrategy[str]:
    """'HH:MM:SS' texts, and sometimes anything."""
    good = st.builds(lambda h, m, s: f"{h}:{m}:{s}", _two(24), _two(3), _two(3))
    return st.one_of(good, good, lst.texts())


def datetimes() -> st.SearchStrategy[str]:
    """'YYYY-MM-DD HH:MM:SS[...]' texts (the date/time indexes cut them), and anything."""
    good = st.builds(
        lambda d, t, tail: f"{d} {t}{tail}",
        dates().filter(lambda d: len(d) == 10),
        times().filter(lambda t: len(t) == 8),
        st.sampled_from(["", "", ".5", "Z"]),
    )
    return st.one_of(good, good, lst.texts())


# 1. Index consistency ----------------------------------------------------------------------


def index_models(database: RedisDatabase | None) -> SimpleNamespace:
    """Every field type under every index type: plain, configured (prefix, transform), a
    transform dropping values, composed multi-indexes, the date/time indexes, EndsWith; and
    a model with nothing but its pk (a PKField)."""

    class Record(RedisModel):
        namespace = "props-index"
        name = fields.StringField(indexes=[EqualIndex, TextRangeIndex, EndsWithIndex])
        label = fields.InstanceHashField(indexes=[LowerIndex, TextRangeIndex])
        amount = fields.InstanceHashField(indexes=[NumberRangeIndex, StrippedIndexes])
        email = fields.InstanceHashField(unique=True)
        tags = fields.SetField(indexes=[EqualIndex, TextRangeIndex.configure(prefix="text")])
        log = fields.ListField(indexes=[PairIndexes, EndsWithIndex])
        attrs = fields.HashField(indexes=[EqualIndex, NumberRangeIndex])
        ranking = fields.SortedSetField(indexes=[TextRangeIndex, LowerIndex])
        at = fields.StringField(indexes=[DateTimeIndex])
        day = fields.InstanceHashField(indexes=[DateIndex])
        note = fields.StringField()

    class Entry(RedisModel):
        namespace = "props-index"
        key = fields.PKField()
        stamp = fields.StringField(indexes=[SimpleDateTimeIndex])
        time = fields.InstanceHashField(indexes=[TimeIndex])
        words = fields.ListField(indexes=[TextRangeIndex, EndsWithIndex])
        size = fields.StringField(indexes=[NumberRangeIndex], unique=True)
        code = fields.InstanceHashField(indexes=[TextRangeIndex], unique=True)
        bag = fields.HashField(indexes=[StrippedIndexes])
        points = fields.SortedSetField(indexes=[NumberRangeIndex])

    class Key(RedisModel):
        """Only a pk: created, deleted, expired, reaped and created again by pk."""

        namespace = "props-index"
        key = fields.PKField()

    models = [Record, Entry, Key]
    if database is not None:
        for model in models:
            model.use_database(database)
    return SimpleNamespace(Record=Record, Entry=Entry, Key=Key, all=models)


#: Texts with ':' that a key layout without lengths would confuse ('a' + 'b:c' = 'a:b' + 'c').
COLON_TEXTS = st.one_of(lst.texts(), st.sampled_from(["a", "b", "c", "a:b", "b:c", ":", "a:"]))

#: Texts per field: dates and times for the date/time-indexed fields (and anything), texts
#: and hash keys ("[]") with ':' for a HashField.
INDEX_FIELD_TEXTS = {
    "Entry.bag": COLON_TEXTS,
    "Entry.bag[]": COLON_TEXTS,
    "Record.at": datetimes(),
    "Record.day": dates(),
    "Entry.stamp": datetimes(),
    "Entry.time": times(),
}


# 2. Uniqueness -----------------------------------------------------------------------------

#: Values unique fields take: few, so collisions are frequent; some equal once lowercased.
UNIQUE_POOL = (
    "a", "A", "b", "B", "é", "É", "", " ", "1", "1.0", "01", "1e0", "2", "-0", "0", "x:y", "a:",
    "\x00", "\udcff", "nan",
)  # fmt: skip
UNIQUE_PKS = ("p1", "p2", "p3", "1", "2", "é", "a:b")
#: Keys of the unique HashFields (one unique space per key): few, so values meet.
HASH_KEYS = ("k", "K", "", "x:y")
#: Values of the unique number-range fields: numbers, and texts that look like them. Two
#: collide iff they are the same number exactly ('1e3', '1000', 1000.0; '0.1', '0.10';
#: not 2**53 and 2**53 + 1); texts that are not decimal numbers ('1_000', ' 5', 'abc',
#: 'nan') are refused.
NUMBER_POOL = (
    "1_000", "1000", "1e3", 1000, 1000.0, " 5", "5", "5 ", "+5", 5, "0.1", "0.10", ".1", 0.1,
    "0", "-0", 0, "abc", "def", "", "nan", 2**53, 2**53 + 1, str(2**53 + 1), "-2.5",
)  # fmt: skip


def unique_models(database: RedisDatabase) -> SimpleNamespace:
    """Unique fields of every kind of storage and index, and a `unique_together`."""

    class Account(RedisModel):
        namespace = "props-unique"
        unique_together = [("city", "street")]
        id = fields.PKField()
        email = fields.StringField(unique=True)  # EqualIndex
        login = fields.InstanceHashField(unique=True)  # EqualIndex, in the hash
        nick = fields.InstanceHashField(unique=True, indexes=[LowerIndex])  # lowercased
        code = fields.InstanceHashField(unique=True, indexes=[TextRangeIndex])  # lex check
        rank = fields.StringField(unique=True, indexes=[NumberRangeIndex])  # same number
        score = fields.InstanceHashField(unique=True, indexes=[NumberRangeIndex])
        tags = fields.SetField(unique=True)  # each member
        attrs = fields.HashField(unique=True)  # EqualIndex, per hash key
        marks = fields.HashField(unique=True, indexes=[TextRangeIndex])  # lex, per hash key
        city = fields.InstanceHashField()
        street = fields.InstanceHashField()
        note = fields.InstanceHashField()

    Account.use_database(database)
    return SimpleNamespace(Account=Account, all=[Account])


# 3. Related-deletion propagation -----------------------------------------------------------

GROUP_PKS = ("g1", "g2", "10", "2", "a:b", "é", "G")
#: Label pks: pairs equal once lowercased, so the lowercasing indexes of `Badge` mix them.
LABEL_PKS = ("L", "l", "Ab", "aB", "é", "É")
BADGE_KINDS = ("x", "y")


def related_models(database: RedisDatabase) -> SimpleNamespace:
    """The targets (`relmodels_targets`: Person, and the pk-only Label and Stamp) and the
    models pointing to them (`relmodels_sources`: Group, Tag, Badge): FK and M2M fields
    (set, list, sorted set), self-relations, by class and by name, an FK in a
    `unique_together`, FKs under lowercasing indexes."""
    targets = target_models(database)
    sources = source_models(database, targets)
    models = {**vars(targets), **vars(sources), "all": [*targets.all, *sources.all]}
    return SimpleNamespace(**models)


# 4. Collections ----------------------------------------------------------------------------

#: Names: ties and byte-order traps (case, accents, NUL, a lone surrogate, a prefix).
NAMES = ("a", "ab", "A", "b", "é", "e", "", "a\x00", "\udcff", "a b", "10", "9")
#: Numbers as text (numeric sorts need numbers): ties in several spellings.
NUMBERS = ("0", "1", "-1", "2", "10", "1.5", "-0.5", "01", "1e1", "2.50", "-0", "100")
COLORS = ("red", "blue", "Red", "")
TAGS = ("x", "y", "z", "x y")
#: Integer pks (what an AutoPKField gives), two of 17 digits sharing a double and one of 16
#: digits not exact in a double: the default order of integers is exact.
INTEGER_PKS = (
    "1",
    "2",
    "3",
    "10",
    "-1",
    "11",
    "12345678901234567",
    "12345678901234568",
    "9007199254740993",
)
ITEM_PKS = (*INTEGER_PKS, "01", "1.5", "a", "B", "é", "a:b")


def collection_models(database: RedisDatabase) -> SimpleNamespace:
    """A model queried in every way, and a board holding its pks in a set, a sorted set
    and a list (sources for `intersect` and `sort(by_score=)`)."""

    class Item(RedisModel):
        namespace = "props-collections"
        cluster_group = "collections"  # with Board: queries read both (one slot on a cluster)
        collection_manager = ExtendedCollectionManager
        id = fields.PKField()
        name = fields.InstanceHashField(indexes=[EqualIndex, TextRangeIndex])
        num = fields.StringField(indexes=[NumberRangeIndex])
        color = fields.StringField(indexable=True)
        tags = fields.SetField(indexable=True)
        plain = fields.InstanceHashField()

    class Board(RedisModel):
        namespace = "props-collections"
        cluster_group = "collections"
        picks = fields.SetField()
        ranking = fields.SortedSetField()
        queue = fields.ListField()

    for model in (Item, Board):
        model.use_database(database)
    return SimpleNamespace(Item=Item, Board=Board, all=[Item, Board])
