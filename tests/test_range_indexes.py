"""TextRangeIndex and NumberRangeIndex: byte-wise text ranges with any character, float
ranges, on single-value, multi-value and HashField fields."""

from __future__ import annotations

import pytest

from limpyd import fields, model
from limpyd.contrib.collection import ExtendedCollectionManager
from limpyd.indexes import EqualIndex, NumberRangeIndex, TextRangeIndex, parse_number

TEXTS = ["", " ", "a", "a b", "a:b", "a\x00", "a\x00b", "a\x01", "ab", "b", "é", "\xff", "z" * 5,
         "\x00", "\x00\x00", "a\x00\x00b", "\udcff", "Jo", "Joe", "Jon"]  # fmt: skip


def _bytes(text):
    return text.encode("utf-8", "surrogateescape")


@pytest.fixture
def Word(db):
    class Word(model.RedisModel):
        database = db
        text = fields.StringField(indexes=[TextRangeIndex])

    for text in TEXTS:
        Word(text=text)
    return Word


def _expected(Word, predicate):
    return sorted(pk for pk in Word.collection() if predicate(_bytes(Word(pk).text.get())))


@pytest.mark.parametrize("probe", ["", "a", "a\x00", "a\x00b", "Jo", "\xff", "b", "\x00"])
def test_text_ranges_follow_byte_order(Word, probe, consistent):
    p = _bytes(probe)
    checks = {
        "eq": lambda v: v == p,
        "gt": lambda v: v > p,
        "gte": lambda v: v >= p,
        "lt": lambda v: v < p,
        "lte": lambda v: v <= p,
        "startswith": lambda v: v.startswith(p),
    }
    for suffix, predicate in checks.items():
        found = sorted(Word.collection(**{f"text__{suffix}": probe}))
        assert found == _expected(Word, predicate), (suffix, probe)
    consistent(Word)


def test_number_ranges(db, consistent):
    class Measure(model.RedisModel):
        database = db
        value = fields.InstanceHashField(indexes=[NumberRangeIndex])

    values = ["-10", "-0.5", "0", "1e3", "2.5", str(2**53), "inf", "-inf", ".5e1", "-0"]
    pks = {Measure(value=v).pk.get(): v for v in values}

    def expected(predicate):
        return sorted(pk for pk, v in pks.items() if predicate(float(v)))

    operators = {"gt": float.__gt__, "gte": float.__ge__, "lt": float.__lt__,
                 "lte": float.__le__, "eq": float.__eq__}  # fmt: skip
    for probe in (-10, -0.5, 0, 2.5, 1000, 2**53):
        for suffix, operator in operators.items():
            found = sorted(Measure.collection(**{f"value__{suffix}": probe}))
            assert found == expected(lambda n, op=operator, p=probe: op(n, float(p))), suffix
    assert sorted(Measure.collection(value__in=[0, 2.5])) == expected(lambda n: n in (0, 2.5))
    # beyond 2**53, neighbours share a float: the index cannot tell them apart
    big = Measure(value=str(2**53 + 1)).pk.get()
    assert big in Measure.collection(value=2**53)
    consistent(Measure)


def test_range_indexes_on_multi_value_and_hash_fields(db, consistent):
    class Doc(model.RedisModel):
        database = db
        tags = fields.SetField(indexes=[TextRangeIndex])
        steps = fields.ListField(indexes=[NumberRangeIndex])
        ranks = fields.SortedSetField(indexes=[TextRangeIndex, EqualIndex])
        # its keys hold texts and numbers: the number index skips the texts (None)
        meta = fields.HashField(
            indexes=[
                TextRangeIndex,
                NumberRangeIndex.configure(
                    prefix="n", transform=lambda v: v if parse_number(v) else None
                ),
            ]
        )

    one = Doc(tags=["apple", "banana"], steps=[1, 5, 5], ranks={"x": 1}, meta={"size": "10"})
    two = Doc(tags=["cherry"], steps=[7], ranks={"y": 2}, meta={"size": "9", "kind": "big"})
    p1, p2 = one.pk.get(), two.pk.get()
    assert sorted(Doc.collection(tags__startswith="b")) == [p1]
    assert sorted(Doc.collection(tags__gt="b")) == [p1, p2]
    assert sorted(Doc.collection(steps__gte=5)) == [p1, p2]
    assert sorted(Doc.collection(steps__lt=5)) == [p1]
    assert sorted(Doc.collection(ranks__lte="x")) == [p1]
    assert sorted(Doc.collection(ranks="y")) == [p2]
    assert sorted(Doc.collection(meta__size__lt="9")) == [p1]  # text: "10" < "9"
    assert sorted(Doc.collection(meta__size__n__lt=10)) == [p2]  # numbers
    assert sorted(Doc.collection(meta__kind__startswith="b")) == [p2]
    one.steps.lrem(0, 5)
    one.tags.srem("banana")
    two.meta.hdel("kind")
    one.ranks.zincrby(1, "x")
    assert Doc.collection(steps__gte=5) == [p2]
    assert Doc.collection(tags__startswith="b") == []
    assert Doc.collection(meta__kind__startswith="b") == []
    consistent(Doc)


def test_unique_with_range_indexes(db, unchanged):
    from limpyd.exceptions import UniquenessError

    class Code(model.RedisModel):
        database = db
        text = fields.StringField(unique=True, indexes=[TextRangeIndex])
        number = fields.StringField(unique=True, indexes=[NumberRangeIndex])

    Code(text="a\x00b", number="1.0")
    Code(text="a", number="2")  # "a" is a prefix of "a\x00b": not the same value
    with unchanged(), pytest.raises(UniquenessError, match=r"Code\.text"):
        Code(text="a\x00b")
    with unchanged(), pytest.raises(UniquenessError, match=r"Code\.number"):
        Code(number="1")  # the same number


@pytest.mark.parametrize(
    ("text", "same", "other"),
    [
        ("1e9999999999999999999", "10e9999999999999999998", "1e9999999999999999998"),
        ("0e9999999999999999999", "-0", "1e-9999999999999999999"),
        ("-2.50e-99999999999999999999", "-25e-100000000000000000000", "-2.5e-9"),
    ],
)
def test_numbers_of_any_exponent_are_taken_and_unique_exactly(db, unchanged, text, same, other):
    """The manual's `[+-]digits[.digits][e[+-]digits]` at any exponent: one of 19 digits
    and more was refused as no number (Decimal cannot hold it), even `0e...`; uniqueness
    stays exact there (scores, doubles, are then infinities or zeros)."""
    from limpyd.exceptions import UniquenessError

    class Amount(model.RedisModel):
        database = db
        value = fields.StringField(unique=True, indexes=[NumberRangeIndex])

    kept = Amount(value=text)
    with unchanged(), pytest.raises(UniquenessError, match=r"Amount\.value"):
        Amount(value=same)
    Amount(value=other)
    assert Amount.collection(value=same) == [kept.pk.get()]
    assert len(Amount.collection(value__gte=min(float(text), float(other)))) == 2


def test_exponents_of_many_digits(db, unchanged):
    """Leading zeros of an exponent count for nothing (an exponent of 5,000 zeros then 1 hit
    Python's limit of digits for int(): a bare ValueError); more than 4,000 digits beyond
    them is refused as no number, naming the field (it was, with Decimal)."""
    from limpyd.exceptions import InvalidQueryError

    class Amount(model.RedisModel):
        database = db
        value = fields.StringField(indexes=[NumberRangeIndex], unique=True)

    tenth = "1e-" + "0" * 5000 + "1"
    assert parse_number(tenth) == ("0.1", "1e-1") and parse_number("1e+05") == parse_number("1e5")
    Amount(value=tenth)
    assert Amount.collection(value__gte=tenth) == ["1"] and Amount.collection(value=".1") == ["1"]
    huge = "1e" + "9" * 4301
    with unchanged(), pytest.raises(ValueError, match=r"^Amount\.value: invalid value '1e999"):
        Amount(value=huge)
    with pytest.raises(InvalidQueryError, match=r"Amount\.value"):
        list(Amount.collection(value__gte=huge))


def test_two_indexes_sharing_keys_are_refused(db):
    from limpyd.exceptions import ImplementationError

    with pytest.raises(ImplementationError, match="share"):

        class Twice(model.RedisModel):
            database = db
            text = fields.StringField(indexes=[TextRangeIndex, TextRangeIndex])

    class Keyed(model.RedisModel):
        database = db
        text = fields.StringField(indexes=[TextRangeIndex, TextRangeIndex.configure(key="other")])

    Keyed(text="x")
    assert Keyed.collection(text="x") == ["1"]


SUFFIXES = ["eq", "gt", "gte", "lt", "lte", "startswith"]
NUMBERS = ["-inf", "-1e3", "-0.5", "0", "2", "2.5", "10", "1e3", "inf"]


def _holds(suffix, value, probe):
    return {
        "eq": value == probe,
        "gt": value > probe,
        "gte": value >= probe,
        "lt": value < probe,
        "lte": value <= probe,
        "startswith": isinstance(value, bytes) and value.startswith(probe),
    }[suffix]


@pytest.mark.parametrize("first", SUFFIXES)
@pytest.mark.parametrize("second", SUFFIXES)
def test_two_ranges_on_one_field_are_one_range(db, first, second):
    """Two range filters on a field holding one value are sent as one range (the tighter
    bounds of both): the result is that of both filters, ties and empty ranges included.
    On a field holding several values they stay two filters: one value may match each."""

    class Row(model.RedisModel):
        database = db
        collection_manager = ExtendedCollectionManager
        text = fields.StringField(indexes=[TextRangeIndex])
        number = fields.InstanceHashField(indexes=[NumberRangeIndex])
        attrs = fields.HashField(indexes=[TextRangeIndex])
        many = fields.ListField(indexes=[NumberRangeIndex])

    rows = {}
    for i, text in enumerate(TEXTS):
        number = NUMBERS[i % len(NUMBERS)]
        row = Row(text=text, number=number, attrs={"k": text}, many=[number, "5"])
        rows[row.pk.get()] = (_bytes(text), float(number))
    for probe_a, probe_b in [("a", "a"), ("a", "b"), ("a\x00", "Jo"), ("\x00", "\xff")]:
        pa, pb = _bytes(probe_a), _bytes(probe_b)
        expected = sorted(
            pk for pk, (text, _) in rows.items()
            if _holds(first, text, pa) and _holds(second, text, pb)
        )  # fmt: skip
        filters = {f"text__{first}": probe_a}
        query = Row.collection(**filters).filter(**{f"text__{second}": probe_b})
        assert sorted(query) == expected, (probe_a, probe_b)
        hashed = Row.collection(**{f"attrs__k__{first}": probe_a})
        assert sorted(hashed.filter(**{f"attrs__k__{second}": probe_b})) == expected
    if "startswith" in (first, second):
        return
    for probe_a, probe_b in [("2", "2"), ("0", "10"), ("-inf", "inf"), ("10", "-1e3")]:
        expected = sorted(
            pk for pk, (_, number) in rows.items()
            if _holds(first, number, float(probe_a)) and _holds(second, number, float(probe_b))
        )  # fmt: skip
        query = Row.collection(**{f"number__{first}": probe_a}).filter(
            **{f"number__{second}": probe_b}
        )
        assert sorted(query) == expected, (probe_a, probe_b)
    # Every row's list holds 5 besides its number: one value per filter may match.
    many = Row.collection(many__lt=0).filter(many__gt=3)
    assert sorted(many) == sorted(pk for pk, (_, n) in rows.items() if n < 0)


def test_merged_ranges_take_values_in_disguise_and_refuse_bad_ones(db):
    """The two filters merged into one range are checked as any filter: str/int subclasses
    and bytes mean their text, infinities are bounds, NaN and non-numbers are refused with
    the model, field and value named."""

    class Reading(model.RedisModel):
        database = db
        collection_manager = ExtendedCollectionManager
        value = fields.InstanceHashField(indexes=[NumberRangeIndex])

    class Text(str):
        pass

    class Number(int):
        pass

    pks = {v: Reading(value=v).pk.get() for v in ["-inf", "0", "5", "inf"]}
    both = Reading.collection(value__gt=Text("0")).filter(value__lt=b"inf")
    assert list(both) == [pks["5"]]
    assert list(Reading.collection(value__gte="-inf").filter(value__lte=Number(5))) == [
        pks["-inf"], pks["0"], pks["5"]
    ]  # fmt: skip
    assert list(Reading.collection(value__gt="inf").filter(value__lt="inf")) == []
    for bad in ["nan", float("nan"), "", "1_0"]:
        with pytest.raises(ValueError, match=r"Reading\.value: invalid value"):
            list(Reading.collection(value__gt=0).filter(value__lt=bad))
