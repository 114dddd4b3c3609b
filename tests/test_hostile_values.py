"""Hostile values: subclasses of str/int/float/bytes, NaN and huge numbers, writes reaching
other fields, numbers a NumberRangeIndex cannot tell apart, odd model names and pks."""

from __future__ import annotations

import enum
import math
import re
import time

import pytest

from limpyd import fields, model
from limpyd.exceptions import ImplementationError, InvalidQueryError, UniquenessError
from limpyd.indexes import NumberRangeIndex, parse_number
from limpyd.text import to_text


class Status(str, enum.Enum):
    ACTIVE = "active"
    PAUSED = "paused"


class Country(str, enum.Enum):
    FR = "fr"
    DE = "de"


class Code(enum.IntEnum):
    ONE = 1
    TWO = 2


class Loud(int):
    """An int whose str() is not its number (its repr is)."""

    def __str__(self) -> str:
        return "loud"

    __format__ = None  # type: ignore[assignment]


class Masked(int):
    """An int whose repr (what redis-py sends) is not its number."""

    def __repr__(self) -> str:
        return "masked"


class Ratio(float):
    pass


class Blob(bytes):
    def __str__(self) -> str:
        return "blob"


# Conversion to text ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [Status.ACTIVE, Loud(5), Ratio(0.5), Blob(b"\xffraw"), math.nan, math.inf, -math.inf,
     2**64, -(2**70), 0.1, "é\udcff"],
    ids=repr,
)  # fmt: skip
def test_text_is_what_redis_py_sends(db, value):
    """One conversion: the text of a value is what redis-py itself stores for it."""
    db.client.set("probe", value)
    assert db.client.get("probe") == to_text(value)
    assert type(to_text(value)) is str


def _unchanged_refusal(db, unchanged, call, *words):
    with unchanged(), pytest.raises(ValueError) as raised:
        call()
    for word in words:
        assert word in str(raised.value), (word, str(raised.value))


@pytest.fixture
def User(db):
    class User(model.RedisModel):
        database = db
        status = fields.StringField(indexable=True)
        email = fields.InstanceHashField(unique=True)
        data = fields.HashField(indexable=True)
        tags = fields.SetField(indexable=True)

    return User


def test_str_subclasses_are_their_content_everywhere(User, consistent):
    one = User(status=Status.ACTIVE, email=Status.ACTIVE, data={Status.ACTIVE: Status.PAUSED})
    two = User(status="paused", tags=[Status.ACTIVE, Status.PAUSED])
    p1, p2 = one.pk.get(), two.pk.get()
    assert one.status.get() == "active"
    assert User.collection(status="active") == [p1]
    assert User.collection(status=Status.ACTIVE) == [p1]
    assert User.collection(status__in=[Status.ACTIVE, Status.PAUSED]) == [p1, p2]
    assert User.collection(email="active") == [p1]
    assert User.collection(data__active="paused") == [p1]
    assert User.collection(data__active=Status.PAUSED) == [p1]
    assert User.collection(tags=Status.PAUSED) == [p2]
    assert one.data.hkeys() == ["active"]
    # through commands (the modifier path)
    two.status.set(Status.ACTIVE)
    two.data.hset(Status.PAUSED, Status.ACTIVE)
    one.tags.sadd(Status.PAUSED)
    assert User.collection(status="active") == [p1, p2]
    assert User.collection(data__paused="active") == [p2]
    assert User.collection(tags="paused") == [p1, p2]
    assert list(User.collection().sort(by="status", alpha=True)) == [p1, p2]
    consistent(User)


def test_a_unique_str_subclass_value_is_held_once(User, unchanged):
    User(email=Status.ACTIVE)
    for write in (lambda: User(email="active"), lambda: User().email.hset(Status.ACTIVE)):
        with unchanged(), pytest.raises(UniquenessError):
            write()
    other = User(email="x")
    with unchanged(), pytest.raises(UniquenessError):
        other.email.set(Status.ACTIVE)


def test_str_subclass_pks(db, consistent):
    class Land(model.RedisModel):
        database = db
        code = fields.PKField()
        name = fields.StringField(indexable=True)

    Land(code=Country.FR, name="France")
    assert Land.collection() == ["fr"]
    assert Land(Country.FR).name.get() == "France"
    assert Land("fr").name.get() == "France"
    assert Land.exists(code=Country.FR)
    assert Land.collection(pk=Country.FR) == ["fr"]
    assert Land.collection(code__in=[Country.FR, Country.DE]) == ["fr"]
    assert Land.collection(name="France").instances()[0].pk.get() == "fr"
    assert not [key for key in db.client.scan_iter() if "Country" in key]
    with pytest.raises(Exception, match="pk"):
        Land(code="fr", name="again")
    consistent(Land)


def test_int_subclasses_with_a_number_repr_are_their_number(User, consistent):
    one = User(status=Loud(5), data={Loud(1): Ratio(0.5)}, tags=[Loud(7)])
    pk = one.pk.get()
    assert one.status.get() == "5"
    assert User.collection(status=5) == [pk]
    assert User.collection(status=Loud(5)) == [pk]
    assert User.collection(status__in=[Loud(5)]) == [pk]
    assert User.collection(data__1="0.5") == [pk]
    assert User.collection(tags="7") == [pk]
    one.status.set(Loud(6))
    assert User.collection(status="6") == [pk]
    consistent(User)


@pytest.mark.parametrize("value", [Code.ONE, Masked(3), 10**5000], ids=["IntEnum", "repr", "huge"])
def test_values_redis_py_would_not_send_as_numbers_are_refused(db, User, unchanged, value):
    class Keyed(model.RedisModel):
        database = db
        code = fields.PKField()

    existing = User(status="x", email="x@x")
    shown = "int of" if value == 10**5000 else repr(value)
    for call, where in [
        (lambda: User(status=value), "User.status"),
        (lambda: User(email=value), "User.email"),
        (lambda: existing.status.set(value), "User.status"),
        (lambda: existing.email.hset(value), "User.email"),
        (lambda: existing.data.hset(value, "1"), "User.data"),
        (lambda: existing.data.hset("k", value), "User.data"),
        (lambda: User(data={value: "1"}), "User.data"),
        (lambda: existing.tags.sadd("a", value), "User.tags"),
        (lambda: Keyed(code=value), "Keyed.code"),
        (lambda: list(User.collection(status=value)), "User.status"),
        (lambda: list(User.collection(status__in=["x", value])), "User.status"),
        (lambda: list(User.collection(pk=value)), "User.pk"),
    ]:
        _unchanged_refusal(db, unchanged, call, where, shown)


def test_bytes_subclasses_nan_infinities_and_big_ints_as_values(User, consistent):
    one = User(status=Blob(b"\xff\x00b"), tags=[math.nan, math.inf, 2**80])
    pk = one.pk.get()
    assert one.status.get() == "\udcff\x00b"
    assert User.collection(status=b"\xff\x00b") == [pk]
    assert sorted(one.tags.smembers()) == sorted(["nan", "inf", str(2**80)])
    assert User.collection(tags=math.nan) == [pk]
    assert User.collection(tags="inf") == [pk]
    assert User.collection(tags=2**80) == [pk]
    with pytest.raises(ValueError, match=r"User\.status.*True"):
        User(status=True)
    consistent(User)


# Writes reaching other fields ---------------------------------------------------------------


@pytest.fixture
def Account(db):
    class Account(model.RedisModel):
        database = db
        email = fields.InstanceHashField(unique=True)
        name = fields.InstanceHashField(indexable=True)
        note = fields.InstanceHashField()
        data = fields.HashField(indexable=True)

    return Account


@pytest.mark.parametrize("field_name", ["email", "name", "note"])
def test_instance_hash_field_hset_writes_its_field_only(Account, unchanged, field_name):
    Account(email="a@a", name="a")
    other = Account(email="b@b", name="b", note="b")
    field = getattr(other, field_name)
    for args, kwargs in [
        (("v",), {"mapping": {"email": "a@a"}}),
        (("v",), {"items": ["name", "z"]}),
        (("v", {"email": "a@a"}), {}),
        ((), {"mapping": {"note": "n"}}),
        (("v", "w"), {}),
        ((), {}),
    ]:
        with unchanged(), pytest.raises(ValueError, match=rf"Account\.{field_name}\.hset"):
            field.hset(*args, **kwargs)
    assert field.hset("new") == 0
    assert field.get() == "new"
    assert Account(email="c@c").note.hsetnx("n") == 1


def test_hash_field_hset_with_a_mapping_keeps_indexes_exact(Account, consistent):
    one = Account(data={"a": "1"})
    pk = one.pk.get()
    assert one.data.hset("b", "2", mapping={"c": "3", "a": "4"}, items=["d", "5"]) == 3
    assert one.data.hgetall() == {"a": "4", "b": "2", "c": "3", "d": "5"}
    for key, value in {"a": "4", "b": "2", "c": "3", "d": "5"}.items():
        assert Account.collection(**{f"data__{key}": value}) == [pk]
    assert Account.collection(data__a="1") == []
    consistent(Account)


# NumberRangeIndex: numbers only, uniqueness exact ------------------------------------------


@pytest.fixture
def Item(db):
    class Item(model.RedisModel):
        database = db
        number = fields.StringField(unique=True, indexes=[NumberRangeIndex])
        steps = fields.ListField(indexes=[NumberRangeIndex])
        sizes = fields.HashField(unique=True, indexes=[NumberRangeIndex])

    return Item


@pytest.mark.parametrize(
    "first, second",
    [("abc", "def"), (2**53, 2**53 + 1), ("1_000", "1000"), (" 5", "5"), ("nan", "0"),
     ("0x10", "16"), ("1e999999999999999999999", "1"), ("\u0663", "3")],
)  # fmt: skip
def test_distinct_values_never_collide_in_a_unique_number_index(
    db, Item, unchanged, consistent, first, second
):
    """Either both are held (distinct numbers), or the one that is not a number is refused."""
    held = []
    for value in (first, second):
        if parse_number(to_text(value)) is None:
            refused = repr(to_text(value))
            _unchanged_refusal(
                db, unchanged, lambda v=value: Item(number=v), "Item.number", refused
            )
            continue
        held.append((Item(number=value).pk.get(), value))
    for pk, value in held:
        assert Item.collection(number=value) == [pk]  # exact, for a unique field
        assert Item.get(number=value).pk.get() == pk
    consistent(Item)


@pytest.mark.parametrize(
    "first, second",
    [(0.1, "0.10"), ("1e2", 100), ("-0", 0), (".5", "5e-1"), ("inf", "+INF"), ("7", "007.000")],
)
def test_equal_numbers_collide_in_a_unique_number_index(Item, unchanged, first, second):
    pk = Item(number=first).pk.get()
    with unchanged(), pytest.raises(UniquenessError, match=r"Item\.number"):
        Item(number=second)
    other = Item(number="12345")
    with unchanged(), pytest.raises(UniquenessError, match=r"Item\.number"):
        other.number.set(second)
    assert Item.collection(number=second) == [pk]


@pytest.mark.parametrize(
    "filters",
    [{"number__gt": "abc"}, {"number__in": [1, "x"]}, {"number": None}, {"steps__lte": math.nan},
     {"number__lt": b"\xff"}, {"sizes__a": object()}],
)  # fmt: skip
def test_a_filter_value_refused_is_an_invalid_query_naming_the_filter(Item, filters):
    """As redis-limpyd's code catches: an InvalidQueryError (a ValueError) naming the model,
    the field and the filter, raised when the collection is built."""
    (key,) = filters
    field = key.split("__")[0]
    with pytest.raises(InvalidQueryError, match=rf"^Item\.{field}: .*\(filter {key}\)$"):
        Item.collection(**filters)


def test_a_number_index_holds_numbers_only(db, Item, unchanged, consistent):
    item = Item(number="1", steps=[1, 2], sizes={"a": "1"})
    refusals = [
        (lambda: Item(steps=["3", "x"]), "Item.steps", "'x'"),
        (lambda: item.steps.rpush(math.nan), "Item.steps", "'nan'"),
        (lambda: item.number.append("x"), "Item.number", "'1x'"),
        (lambda: item.number.set(""), "Item.number", "''"),
        (lambda: item.sizes.hset("b", "big"), "Item.sizes", "'big'"),
        (lambda: item.sizes.hset(mapping={"c": "2", "d": " 2"}), "Item.sizes", "' 2'"),
        (lambda: list(Item.collection(number__gt="abc")), "Item.number", "'abc'"),
        (lambda: list(Item.collection(steps__lte=math.nan)), "Item.steps", "'nan'"),
        (lambda: list(Item.collection(number__in=["1", "1_0"])), "Item.number", "'1_0'"),
        (lambda: list(Item.collection(sizes__a__gte=" 1")), "Item.sizes", "' 1'"),
    ]
    for call, *words in refusals:
        _unchanged_refusal(db, unchanged, call, *words)
    item.number.incr(2**60)
    assert Item.collection(number__gt=2**59) == [item.pk.get()]
    two = Item(sizes={"a": str(2**53 + 1)})
    with unchanged(), pytest.raises(UniquenessError, match=r"Item\.sizes"):
        Item(sizes={"a": "1.0"})
    assert Item.collection(sizes__a=2**53 + 1) == [two.pk.get()]
    assert Item.collection(steps__gte=2, steps__lt=3) == [item.pk.get()]
    consistent(Item)


# Model names, pk order, exclude() ----------------------------------------------------------


@pytest.mark.parametrize("name", ["a:obj:1", "a b", "a*", "a[1]", "a\\b", "", "1a", "a\n"])
def test_model_names_are_identifiers(db, name):
    with pytest.raises(ImplementationError, match=re.escape(repr(name))):
        type(name, (model.RedisModel,), {"database": db, "__module__": __name__})


def test_a_model_name_cannot_reach_the_keys_of_another(db):
    class a(model.RedisModel):
        database = db
        name = fields.StringField()

    a(name="x")
    before = sorted(db.client.scan_iter())
    with pytest.raises(ImplementationError):
        type("a:obj:1", (model.RedisModel,), {"database": db, "name": fields.StringField()})
    assert sorted(db.client.scan_iter()) == before


def test_default_order_of_integer_pks_is_exact_beyond_doubles(db):
    class Big(model.RedisModel):
        database = db
        id = fields.PKField()

    numbers = [2**53, 2**53 + 1, 2**53 - 1, 2**53 + 2, 10, 0, -5, -(2**53 + 1), -(2**53),
               10**30, 10**30 + 1, -(10**40)]  # fmt: skip
    for number in reversed(numbers):
        Big(id=number)
    expected = [str(n) for n in sorted(numbers)]
    assert Big.collection() == expected
    assert Big.collection().sort() == expected
    assert Big.collection().sort(desc=True) == expected[::-1]
    assert Big.collection().sort(by="-id") == expected[::-1]
    assert Big.collection()[2:5] == expected[2:5]
    assert Big.collection(id__in=[2**53 + 1, 2**53]) == [str(2**53), str(2**53 + 1)]
    Big(id="007")  # not canonical: every pk is then ordered byte-wise
    as_bytes = sorted([*expected, "007"], key=str.encode)
    assert Big.collection().sort(alpha=True) == as_bytes


def test_exclude_without_filters_excludes_nothing(User):
    pks = [User(status=s).pk.get() for s in ("a", "b")]
    assert User.collection().exclude() == pks
    assert User.collection(status="a").exclude() == pks[:1]
    assert len(User.collection().exclude()) == 2
    assert User.collection().exclude().exclude(status="a") == pks[1:]


def test_a_pkfield_given_none_is_a_wrong_value(db, unchanged):
    """`None` is refused as any value is (ValueError naming the field); no pk at all is a
    missing one (ImplementationError); an AutoPKField given None takes the next pk."""

    class Keyed(model.RedisModel):
        database = db
        key = fields.PKField()
        name = fields.StringField(indexable=True)

    class Auto(model.RedisModel):
        database = db
        name = fields.StringField(indexable=True)

    with unchanged(), pytest.raises(ValueError, match=r"Keyed\.key: invalid value None"):
        Keyed(key=None, name="a")
    with unchanged(), pytest.raises(ValueError, match=r"Keyed\.key: invalid value None"):
        Keyed(pk=None)
    with unchanged(), pytest.raises(ImplementationError, match="needed"):
        Keyed(name="a")
    assert Auto(pk=None, name="b").pk.get() == "1"


# Numbers Redis reads, which the two backends must read alike ---------------------------------


@pytest.fixture
def Meter(db):
    class Meter(model.RedisModel):
        database = db
        level = fields.StringField()
        gauge = fields.InstanceHashField(indexable=True, indexes=[NumberRangeIndex])
        board = fields.SortedSetField()
        ranked = fields.SortedSetField(indexable=True)
        queue = fields.ListField(indexable=True)

    return Meter


HEXADECIMAL = ["0x10", "0X.8", "0x1p3", "-0x1P-2"]


@pytest.mark.parametrize("text", ["\u0663", "1\u0663", "\uff11.5"])  # Arabic-Indic, fullwidth
def test_numbers_with_digits_redis_does_not_read_are_refused(Meter, unchanged, text):
    # Python's float() reads any Unicode digit; Redis only 0-9
    meter = Meter(level="1", board={"a": 1})
    with unchanged():
        for call in (
            lambda: meter.board.zadd({"x": text}),
            lambda: meter.level.incrbyfloat(text),
            lambda: meter.board.zcount(text, 5),
        ):
            with pytest.raises(ValueError, match=r"Meter\.(board|level)"):
                call()


@pytest.mark.parametrize("text", HEXADECIMAL)
def test_hexadecimal_numbers_are_refused_on_every_backend(Meter, unchanged, text):
    # Redis reads them (strtod), fakeredis does not: refused before anything is sent
    meter = Meter(level="1", gauge="1", board={"a": 1}, ranked={"a": 1})
    calls = {
        "creation": lambda: Meter(board={"x": text}),
        "zadd": lambda: meter.board.zadd({"x": text}),
        "indexed zadd": lambda: meter.ranked.zadd({"x": text}),
        "zincrby": lambda: meter.board.zincrby(text, "a"),
        "zremrangebyscore": lambda: meter.board.zremrangebyscore(text, "+inf"),
        "zcount": lambda: meter.board.zcount(text, "+inf"),
        "zrangebyscore": lambda: meter.board.zrangebyscore(min="-inf", max=text),
        "zrevrangebyscore": lambda: meter.board.zrevrangebyscore(f"({text}", "-inf"),
        "zrange byscore": lambda: meter.board.zrange(text, "+inf", byscore=True),
        "zrange byscore desc": lambda: meter.board.zrange(
            "+inf", f"({text}", byscore=True, desc=True
        ),
        "zrange byscore by name": lambda: meter.board.zrange(start="-inf", end=text, byscore=True),
        "zrange byscore by place": lambda: meter.board.zrange(text, 5, False, False, float, True),
        "incrbyfloat": lambda: meter.level.incrbyfloat(text),
        "hincrbyfloat": lambda: meter.gauge.hincrbyfloat(text),
    }
    with unchanged():
        for call in calls.values():
            with pytest.raises(ValueError, match=rf"Meter\.\w+.*{re.escape(text)}.*hexadecimal"):
                call()  # each of `calls`, by what it does


def test_zrange_bounds_are_ranks_unless_byscore(Meter):
    meter = Meter(board={"a": 1, "b": 2, "c": 16})
    assert meter.board.zrange(0, 1) == ["a", "b"]
    assert meter.board.zrange("(1", "16", byscore=True) == ["b", "c"]
    assert meter.board.zrange("(16", "-inf", byscore=True, desc=True) == ["b", "a"]


READS_WITH_NUMBERS = {
    "lindex": (lambda m: m.queue.lindex, ("abc",), {}, "not a 64-bit integer"),
    "lrange": (lambda m: m.queue.lrange, (0, 2**64), {}, "not a 64-bit integer"),
    "lpos rank": (lambda m: m.queue.lpos, ("a",), {"rank": 0}, "not a rank"),
    "lpos maxlen": (lambda m: m.queue.lpos, ("a",), {"maxlen": -1}, "not a count"),
    "list sort": (lambda m: m.queue.sort, (), {"start": "x", "num": 1}, "not a 64-bit"),
    "getrange": (lambda m: m.level.getrange, ("1.5", 2), {}, "not a 64-bit integer"),
    "getbit": (lambda m: m.level.getbit, (-1,), {}, "not an offset"),
    "bitcount": (lambda m: m.level.bitcount, ("", 2), {}, "not a 64-bit integer"),
    "zrevrange": (lambda m: m.board.zrevrange, (0, 1.5), {}, "not a 64-bit integer"),
    "zrange": (lambda m: m.board.zrange, ("abc", -1), {}, "not a 64-bit integer"),
    "zrange bylex": (lambda m: m.board.zrange, ("a", "+"), {"bylex": True}, "lexicographic"),
    "zrange limit": (
        lambda m: m.board.zrange,
        (0, 5),
        {"byscore": True, "offset": "x", "num": 1},
        "64-bit",
    ),
    "zrangebyscore": (lambda m: m.board.zrangebyscore, (math.nan, 1), {}, "score bound"),
    "zlexcount": (lambda m: m.board.zlexcount, ("a", "+"), {}, "lexicographic"),
    "zscan": (lambda m: m.board.zscan, (), {"count": 0}, "not a size"),
    "zrange limit num": (lambda m: m.board.zrange, (0, 1), {"offset": 1, "num": "x"}, "64-bit"),
}


@pytest.mark.parametrize("read", READS_WITH_NUMBERS)
def test_reads_check_their_numbers_as_writes_do(Meter, unchanged, read):
    """Redis's refusal came back raw (a ResponseError naming nothing), with words that
    differ between the backends; now a ValueError naming the model, field, read and value."""
    method, args, kwargs, why = READS_WITH_NUMBERS[read]
    meter = Meter(level="abc", board={"a": 1, "b": 2}, queue=["a", "b"])
    with unchanged():
        with pytest.raises(ValueError, match=rf"^Meter\.\w+\.\w+: invalid value .*{why}"):
            result = method(meter)(*args, **kwargs)
            list(result) if read == "zscan" else result


@pytest.mark.parametrize(
    "option, value",
    [("ex", 0), ("px", -1), ("ex", "abc"), ("ex", 10**20), ("exat", 0), ("pxat", 2**63)],
)
def test_a_plain_string_field_checks_its_set_expiry(Meter, unchanged, option, value):
    """It reached Redis: its error, worded differently by the two backends."""
    meter = Meter(level="a")
    with unchanged():
        with pytest.raises(ValueError, match=r"^Meter\.level\.set: .*(not an expiry|must be)"):
            meter.level.set("x", **{option: value})
    assert meter.level.set("x", ex=(2**63 - 1 - 2**42) // 1000) is True
    # Redis adds the time now to a relative one: up to its clock's overflow, it takes it
    assert meter.level.set("x", px=2**63 - 1 - int(time.time() * 1000) - 7_200_000) is True


def test_an_argument_of_the_wrong_type_is_named(db, unchanged):
    """redis-py's AttributeError ('str' object has no attribute 'items') was the message."""

    class Bag(model.RedisModel):
        database = db
        data = fields.HashField(indexable=True)
        plain = fields.HashField()

    bag = Bag(data={"a": "1"}, plain={"a": "1"})
    with unchanged():
        for field in (bag.data, bag.plain):
            with pytest.raises(
                ValueError, match=r"^Bag\.\w+\.hset\('k', 'v', 'extra'\): an argument of the wrong"
            ):
                field.hset("k", "v", "extra")


def test_srandmember_refuses_the_count_redis_cannot_negate(db):
    """-2**63 passed the check: Redis's raw "value is out of range", an OverflowError on
    the fake."""

    class Bag(model.RedisModel):
        database = db
        items = fields.SetField()

    bag = Bag(items=["a"])
    with pytest.raises(ValueError, match=r"^Bag\.items\.srandmember: .*not a count"):
        bag.items.srandmember(-(2**63))
    assert bag.items.srandmember(-2) == ["a", "a"]


@pytest.mark.parametrize("value", [Code.ONE, Masked(1)])
def test_reads_refuse_an_int_whose_repr_is_not_its_number(Meter, value):
    """redis-py sends `repr(value)`: `lrange(0, Code.ONE)` read no range (`<Code.ONE: 1>`), and
    `zscore(Code.ONE)` looked for another member."""
    meter = Meter(board={"1": 1}, queue=["a", "b", "c"])
    for read, args in ((meter.queue.lrange, (0, value)), (meter.board.zscore, (value,))):
        with pytest.raises(ValueError, match=r"^Meter\.\w+: invalid value .* pass int\(value\)"):
            read(*args)
    assert meter.queue.lrange(0, int(value)) == ["a", "b"]
    assert meter.board.zscore(int(value)) == 1.0


@pytest.mark.parametrize("where", ["behind", "", "BEFORE ", 0, None, b"\xff"])
def test_linsert_takes_before_or_after(Meter, unchanged, where):
    meter = Meter(queue=["a"])
    with unchanged():
        with pytest.raises(ValueError, match=r"Meter\.queue(\.linsert)?: invalid value"):
            meter.queue.linsert(where, "a", "x")
    assert meter.queue.linsert("before", "a", "x") == 2
    assert meter.queue.linsert("AFTER", "a", "y") == 3
    assert meter.queue.lrange(0, -1) == ["x", "a", "y"]


@pytest.mark.parametrize(
    "amount, why",
    [("1e400", "too large"), ("-1e5000", "too large"), ("1e-5000", "too small"),
     ("inf", "not a finite"), ("nan", "not a finite")],
)  # fmt: skip
def test_float_increments_a_double_cannot_hold_are_refused(Meter, unchanged, amount, why):
    # Redis reads INCRBYFLOAT amounts as long doubles (1e400 taken, 1e5000 refused bare)
    meter = Meter(level="1", gauge="1")
    with unchanged():
        for call in (meter.level.incrbyfloat, meter.gauge.hincrbyfloat):
            with pytest.raises(ValueError, match=rf"Meter\.\w+\.h?incrbyfloat: .*{why}"):
                call(amount)
    assert meter.level.incrbyfloat("1e300") == 1e300
    assert meter.gauge.hincrbyfloat("-0.5") == 0.5


def test_a_command_without_its_values_names_the_field(db, unchanged):
    """Redis refuses SADD/SREM/RPUSH/HDEL/HSET without values, and from a script with a
    message of its own ("Wrong number of args calling Redis command from script"), unlike
    the fake: a ValueError naming the field, before anything is sent."""

    class Box(model.RedisModel):
        database = db
        tags = fields.SetField(indexable=True)
        history = fields.ListField()
        links = fields.HashField()
        plain = fields.SetField()

    box = Box(tags=["a"], history=["x"], links={"k": "v"}, plain=["p"])
    calls = [
        ("tags", lambda: box.tags.sadd()),
        ("tags", lambda: box.tags.srem()),
        ("plain", lambda: box.plain.sadd()),
        ("history", lambda: box.history.rpush()),
        ("history", lambda: box.history.lpush()),
        ("links", lambda: box.links.hdel()),
        ("links", lambda: box.links.hset(items=["a"])),
        ("links", lambda: box.links.hset(items=["a", "1", "b"])),
    ]
    for name, call in calls:
        with unchanged(), pytest.raises(ValueError, match=rf"^Box\.{name}\.\w+: (no value|its)"):
            call()
    assert box.links.hset(items=["a", "1"]) == 1


def test_a_field_key_of_another_type_is_refused_by_name(db, unchanged):
    """Another client replaced a field's key by a list: a write reading its value (set,
    delete) is a RefusedValueError naming the model and the key, nothing written, on every
    backend (a bare WRONGTYPE, or a script error on Redis); the integrity checker reports
    it, and once the key is put right the instance can be deleted."""
    from limpyd.exceptions import RefusedValueError
    from limpyd.integrity import check

    class Doc(model.RedisModel):
        database = db
        title = fields.StringField(indexable=True)
        nick = fields.InstanceHashField(indexable=True)
        tags = fields.SetField(indexable=True)

    doc = Doc(title="a", nick="n", tags=["x"])
    key = Doc._meta.instance_key(doc.pk.get(), "title")
    db.client.delete(key)
    db.client.rpush(key, "junk")
    pattern = rf"^Doc: the key '{re.escape(key)}' holds a list, not the string .*nothing was"
    for call in (lambda: doc.title.set("b"), doc.delete, lambda: doc.title.getset("c")):
        with unchanged(), pytest.raises(RefusedValueError, match=pattern):
            call()
    assert sorted(p.kind for p in check(Doc)) == ["invalid", "stale"]  # its "a" entry too
    db.client.delete(key)
    db.client.set(key, "a")
    doc.delete()
    assert Doc.collection() == [] and db.client.keys("*doc*") == [Doc._meta.max_pk_key]


def test_values_longer_than_redis_takes_are_refused_by_name(db, unchanged, monkeypatch):
    """A value near 512 MiB: its index key is past what Redis takes in one argument, and the
    server dropped the connection (the fake stored it). Refused before anything is sent, on
    every backend, naming the model, the field and the size (not the value); the limit made
    small here so as not to send 512 MiB."""
    import limpyd.text

    assert limpyd.text.MAX_BYTES == 512 * 1024 * 1024 - 64 * 1024
    monkeypatch.setattr(limpyd.text, "MAX_BYTES", 100)

    class Doc(model.RedisModel):
        database = db
        plain = fields.StringField()
        tag = fields.StringField(indexable=True, unique=True)
        attrs = fields.HashField(indexable=True)

    doc = Doc(plain="x" * 100, tag="t")  # at the limit: taken
    too_long = [
        lambda: Doc(plain="é" * 51),  # 102 bytes in 51 characters
        lambda: doc.plain.set(b"b" * 101),
        lambda: doc.tag.set("y" * 101),
        lambda: doc.tag.setrange(100, "x"),  # the value it would make
        lambda: doc.attrs.hset("k" * 101, "v"),
    ]
    for write in too_long:
        with unchanged(), pytest.raises(ValueError, match=r"^Doc\.\w+: .*of 10[12] bytes is too"):
            write()
    with pytest.raises(ValueError, match=r"of 101 bytes is too long"):
        list(Doc.collection(tag="z" * 101))
    assert doc.tag.get() == "t" and Doc.collection(tag="t") == [doc.pk.get()]
