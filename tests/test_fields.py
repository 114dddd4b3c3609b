"""Field commands (getters, scans, sort) and the rules of pk fields and field declarations."""

from __future__ import annotations

import pytest

from limpyd import fields, model
from limpyd.exceptions import (
    DoesNotExist,
    ImplementationError,
    MultipleObjectsReturned,
    UniquenessError,
)


@pytest.fixture
def Example(db):
    class Example(model.RedisModel):
        database = db
        text = fields.StringField()
        items = fields.SetField()
        queue = fields.ListField()
        ranks = fields.SortedSetField()
        data = fields.HashField()
        one = fields.InstanceHashField()

    return Example


def test_string_getters(Example):
    example = Example(text="hello")
    assert example.text.strlen() == 5
    assert example.text.getrange(1, 3) == "ell"
    assert example.text.bitcount() == 21
    assert example.text.getbit(1) == 1
    assert example.text.setnx("other") is False
    assert example.text.get() == "hello"


def test_scans_hide_the_cursor(Example):
    example = Example(
        items=[f"m{i}" for i in range(50)],
        ranks={f"r{i}": i for i in range(50)},
        data={f"k{i}": str(i) for i in range(50)},
    )
    assert sorted(example.items.sscan()) == sorted(f"m{i}" for i in range(50))
    assert set(example.items.sscan(match="m1*")) == {"m1", *(f"m1{i}" for i in range(10))}
    assert dict(example.ranks.zscan()) == {f"r{i}": float(i) for i in range(50)}
    assert dict(example.data.hscan(count=5)) == {f"k{i}": str(i) for i in range(50)}


def test_scan_arguments_are_checked_at_the_call(Example):
    example = Example(data={"a": "1"}, items=["m"], ranks={"r": 1})
    for scan in (example.data.hscan, example.items.sscan, example.ranks.zscan):
        with pytest.raises(ValueError, match=r"^Example\.\w+: invalid value \['x'\] \(list\)"):
            scan(match=["x"], count=False)
        with pytest.raises(ValueError, match=r"^Example\.\w+\.\w+scan: .* '0': not a size"):
            scan(count=0)  # Redis refuses it ("syntax error")
    assert list(example.items.sscan(match="nothing*")) == []


def test_sort_on_multi_value_fields(Example):
    example = Example(items=["3", "1", "2"], queue=["b", "c", "a"], ranks={"x": 2, "y": 1})
    assert example.items.sort() == ["1", "2", "3"]
    assert example.queue.sort(alpha=True, desc=True) == ["c", "b", "a"]
    assert example.ranks.sort(alpha=True) == ["x", "y"]


def test_hash_field_getters(Example):
    example = Example(data={"a": "1", "b": "22"})
    assert example.data.hexists("a") and not example.data.hexists("z")
    assert example.data.hlen() == 2
    assert sorted(example.data.hkeys()) == ["a", "b"]
    assert sorted(example.data.hvals()) == ["1", "22"]
    assert example.data.hmget("a", "b", "z") == ["1", "22", None]
    assert example.data.hstrlen("b") == 2
    assert example.data.hsetnx("a", "x") == 0


def test_list_and_sorted_set_getters(Example):
    example = Example(queue=["a", "b", "a"], ranks={"a": 1, "b": 2, "c": 3})
    assert example.queue.llen() == 3
    assert example.queue.lpos("a", rank=2) == 2
    assert example.ranks.zcard() == 3
    assert example.ranks.zcount(2, 3) == 2
    assert example.ranks.zrank("b") == 1
    assert example.ranks.zrevrank("b") == 1
    assert example.ranks.zscore("c") == 3.0
    assert example.ranks.zrevrange(0, 0) == ["c"]
    assert example.ranks.zrevrangebyscore(3, 2) == ["c", "b"]
    assert example.ranks.zincrby(0.5, "a") == 1.5
    assert example.ranks.zadd({"d": 4}, e=5) == 2


def test_delete_on_every_field(Example, db):
    example = Example(text="t", items=["i"], queue=["q"], ranks={"r": 1}, data={"d": "1"}, one="o")
    for name in ("text", "items", "queue", "ranks", "data", "one"):
        assert getattr(example, name).delete() == 1
    assert set(db.scan_keys()) == {":{example}:example:collection", ":{example}:example:max_pk"}


def test_auto_pk_rules(db):
    class Auto(model.RedisModel):
        database = db
        name = fields.StringField()

    first, second = Auto(name="a"), Auto(name="b")
    assert (first.pk.get(), second.pk.get()) == ("1", "2")
    with pytest.raises(ImplementationError, match="AutoPKField"):
        first.pk.set(5)
    with pytest.raises(ImplementationError, match="AutoPKField"):
        Auto(pk=5, name="c")
    with pytest.raises(ImplementationError):
        first.pk.delete()
    assert Auto.get_field("pk") is Auto.get_field("pk")


def test_pk_field_rules(db, unchanged):
    class Named(model.RedisModel):
        database = db
        name = fields.PKField()
        color = fields.StringField(indexable=True)

    red = Named(name="red", color="r")
    assert red.pk.get() == red.name.get() == "red"
    with pytest.raises(ImplementationError, match="cannot be changed"):
        red.name.set("blue")
    with unchanged(), pytest.raises(UniquenessError, match="red"):
        Named(name="red", color="x")
    with unchanged(), pytest.raises(ImplementationError, match="a value for the PKField"):
        Named(color="x")
    blank = Named()
    blank.pk.set("blank")
    assert Named.exists("blank") and blank.pk.get() == "blank"
    with pytest.raises(ImplementationError):
        Named().color.set("x")
    assert list(Named.collection(pk="red")) == ["red"]
    assert sorted(Named.collection(name__in=["red", "blank", "none"])) == ["blank", "red"]
    with pytest.raises(ValueError, match="empty"):
        Named(name="")
    with pytest.raises(ImplementationError):
        fields.PKField(indexable=True)


def test_declaration_errors(db):
    with pytest.raises(ImplementationError, match="reserved"):

        class BadPk(model.RedisModel):
            database = db
            pk = fields.StringField()

    with pytest.raises(ImplementationError, match="'_'"):

        class Underscore(model.RedisModel):
            database = db
            _x = fields.StringField()

    with pytest.raises(ImplementationError, match="method of RedisModel"):

        class Clash(model.RedisModel):
            database = db
            delete = fields.StringField()

    with pytest.raises(ImplementationError, match="several pk"):

        class TwoPks(model.RedisModel):
            database = db
            a = fields.PKField()
            b = fields.AutoPKField()

    with pytest.raises(ImplementationError, match="namespace"):

        class BadNamespace(model.RedisModel):
            database = db
            namespace = "a:b"


def test_inherited_fields_are_per_model(db):
    class Parent(model.RedisModel):
        database = db
        name = fields.StringField(indexable=True)

    class Child(Parent):
        extra = fields.StringField()

    assert Child.get_field("name") is not Parent.get_field("name")
    assert Child.get_field("name").model is Child
    Parent(name="x")
    Child(name="x", extra="e")
    assert list(Parent.collection(name="x")) == ["1"]
    assert list(Child.collection(name="x")) == ["1"]
    assert Child(1).extra.get() == "e"
    with pytest.raises(ValueError, match="no field 'extra'"):
        Parent.get_field("extra")


def test_get_exists_and_lazy_connect(db):
    class Person(model.RedisModel):
        database = db
        name = fields.InstanceHashField(indexable=True)

    Person(name="a")
    Person(name="a")
    with pytest.raises(MultipleObjectsReturned):
        Person.get(name="a")
    with pytest.raises(ValueError):  # the manual's contract: ValueError
        Person.get(name="a")
    with pytest.raises(DoesNotExist):
        Person.get(name="zz")
    with pytest.raises(DoesNotExist):
        Person.get(99)
    assert Person.exists(1) and not Person.exists(99)
    ghost = Person.lazy_connect(99)
    with pytest.raises(DoesNotExist):
        ghost.name.hset("x")
    assert list(Person.collection(name="x")) == []
    with pytest.raises(AttributeError, match="set"):
        ghost.name = "x"


@pytest.mark.parametrize("name", ["a:b", "", "x y", "é-1", "1st"])
def test_a_field_name_that_is_not_an_identifier_is_refused(db, name):
    """Only type() can give such a name: `a:b` of pk 1 and `b` of pk `1:a` had the same key,
    each instance overwriting the other's value."""
    attrs = {"database": db, name: fields.StringField(), "b": fields.StringField()}
    with pytest.raises(ImplementationError, match=r"^Odd\.'.*': a field name is a Python id"):
        type("Odd", (model.RedisModel,), attrs)
    assert "odd" not in str(list(db.models))


def test_arguments_redis_py_cannot_use_are_refused_by_name(Example, unchanged):
    """A list of names given to hmget/hdel (a bare "unhashable type: 'list'"), a text given
    to zmscore (a TypeError from inside redis-py)."""
    from limpyd.exceptions import UnknownFieldError

    example = Example(one="1", text="t")
    example.ranks.zadd({"a": 1})
    with unchanged():
        for call in (lambda: example.hmget(["one"]), lambda: example.hdel(["one"])):
            with pytest.raises(UnknownFieldError, match=r"^Example has no field \['one'\]"):
                call()
        with pytest.raises(TypeError, match=r"^Example\.ranks\.zmscore: "):
            example.ranks.zmscore("a")
        for call in (lambda: example.text.getrange(0), lambda: example.text.get(foo=1)):
            with pytest.raises(TypeError, match=r"^Example\.text\.get"):  # named, as above
                call()
    assert example.ranks.zmscore(["a", "b"]) == [1.0, None]
    assert example.hmget("one") == ["1"]


def test_a_field_expiry_takes_redis_options(Example, unchanged):
    """`expire(10, nx=True)` was a TypeError: Redis 7's NX, XX, GT and LT are passed on."""
    example = Example(text="t")
    assert example.text.expire(100, nx=True) is True
    assert example.text.expire(50, nx=True) is False  # it has one already
    assert example.text.expire(50, gt=True) is False  # not greater
    assert example.text.expire(200, gt=True) is True
    assert 100 < example.text.ttl() <= 200
    assert example.text.expire(10, xx=True, lt=True) is True and example.text.ttl() <= 10
    with unchanged(), pytest.raises(ValueError, match=r"^Example\.text\.expire: nx=1: a bool"):
        example.text.expire(10, nx=1)
    for together in ({"gt": True, "lt": True}, {"nx": True, "xx": True}):
        with unchanged(), pytest.raises(ValueError, match=r"Redis does not take together"):
            example.text.expire(10, **together)
