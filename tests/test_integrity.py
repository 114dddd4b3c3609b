"""The integrity checker finds each kind of corruption (made with raw commands), passes on
clean data, repairs indexes, and has a command line."""

from __future__ import annotations

import sys
import types

import pytest

from limpyd import fields, model
from limpyd.cli import main as cli_main
from limpyd.contrib import related
from limpyd.exceptions import ImplementationError
from limpyd.indexes import EqualIndex, NumberRangeIndex, TextRangeIndex
from limpyd_testing import integrity


@pytest.fixture
def models(db):
    class Owner(related.RelatedModel):
        cluster_group = "integrity"
        database = db
        name = fields.StringField(unique=True)

    class Item(related.RelatedModel):
        cluster_group = "integrity"
        database = db
        code = fields.StringField(unique=True)
        color = fields.InstanceHashField(indexable=True)
        size = fields.InstanceHashField(indexes=[NumberRangeIndex])
        tags = fields.SetField(indexes=[TextRangeIndex])
        owner = related.FKStringField(Owner)
        plain = fields.StringField()

    owner = Owner(name="o")
    for i in range(3):
        Item(code=f"c{i}", color="red", size=i, tags=["a", "b"], owner=owner, plain="p")
    return Owner, Item


def kinds(*models):
    return sorted({p.kind for p in integrity.check(*models)})


def test_clean_data_passes(models):
    assert integrity.check(*models) == []
    integrity.assert_consistent(*models)


def test_missing_entry(models, db):
    _, Item = models
    db.client.srem(":{integrity}:item:idx:color:equal:red", "1")
    assert kinds(Item) == ["missing"]
    with pytest.raises(integrity.IntegrityError, match=r"Item\.color: missing"):
        integrity.assert_consistent(Item)


def test_stale_entries_of_every_index_type(models, db):
    _, Item = models
    db.client.sadd(":{integrity}:item:idx:color:equal:blue", "2")
    db.client.zadd(":{integrity}:item:idx:size:number-range", {"7\x00\x002": 7})
    db.client.zadd(":{integrity}:item:idx:tags:text-range", {"zz\x00\x001": 0})
    problems = integrity.check(Item)
    assert {(p.kind, p.field.name) for p in problems} == {
        ("stale", "color"),
        ("stale", "size"),
        ("stale", "tags"),
    }


def test_wrong_score_is_missing(models, db):
    _, Item = models
    db.client.zadd(":{integrity}:item:idx:size:number-range", {"1\x00\x002": 5})
    assert kinds(Item) == ["missing", "stale"]  # the right entry is gone, a wrong one is there


def test_duplicate_unique_value(models, db):
    _, Item = models
    db.client.set(":{integrity}:item:obj:3:code", "c1")  # instance 2 holds c1 too
    db.client.delete(":{integrity}:item:idx:code:equal:c2")
    db.client.sadd(":{integrity}:item:idx:code:equal:c1", "3")
    problems = integrity.check(Item)
    assert [(p.kind, p.field.name) for p in problems] == [("unique", "code")]
    assert "['2', '3']" in str(problems[0])


def test_a_unique_value_written_twice_behind_the_indexes_is_found_at_once(db):
    """Two instances holding one unique value by raw writes, indexes untouched: `unique`
    on the first check, with the value as text (it came only after a repair had indexed
    both, as a tuple's repr for a range index)."""

    class P(model.RedisModel):
        database = db
        name = fields.InstanceHashField(indexable=True, unique=True)
        t = fields.StringField(indexes=[TextRangeIndex], unique=True)
        n = fields.StringField(indexes=[NumberRangeIndex], unique=True)
        two = fields.StringField(indexes=[EqualIndex, TextRangeIndex], unique=True)

    P(name="ann", t="x", n="1", two="a")
    b = P(name="bob", t="y", n="2", two="b")
    db.client.hset(b.name.key, "name", "ann")
    db.client.set(b.t.key, "x")
    db.client.set(b.n.key, "1.0")  # the same number (the value shown: the smallest pk's)
    db.client.set(b.two.key, "a")  # two indexes check it: reported once
    problems = [p for p in integrity.check(P) if p.kind == "unique"]
    assert sorted(p.detail for p in problems) == [
        "value '1' held by ['1', '2']",
        "value 'a' held by ['1', '2']",
        "value 'ann' held by ['1', '2']",
        "value 'x' held by ['1', '2']",
    ], problems
    assert sorted(p.field.name for p in problems) == ["n", "name", "t", "two"]


def test_endswith_entries_of_bytes_reversed_into_text_are_not_stale(db):
    """Bytes A9 C3 reversed are C3 A9, UTF-8 'é': the entry read back is that text, which
    the checker once took for stale (its expected entry kept two lone surrogates)."""
    from limpyd.contrib.indexes import EndsWithIndex

    class E(model.RedisModel):
        database = db
        name = fields.StringField(indexes=[EndsWithIndex])

    for value in (b"\xa9\xc3", b"x\xc3", "é", b"\xff\xfe"):
        E(name=value)
    integrity.assert_consistent(E)
    assert E.collection(name__endswith=b"\xa9\xc3") == ["1"]  # 'é' is C3 A9


def test_orphan_keys_and_dangling_relations(models, db):
    Owner, Item = models
    db.client.set(":{integrity}:item:obj:99:plain", "left behind")
    db.client.srem(":{integrity}:owner:collection", "1")
    problems = integrity.check(Owner, Item)
    found = {p.kind for p in problems}
    assert {"orphan", "dangling"} <= found
    assert any("99" in str(p) for p in problems if p.kind == "orphan")


def test_repair_rebuilds_broken_indexes(models, db):
    _, Item = models
    db.client.srem(":{integrity}:item:idx:color:equal:red", "1")
    db.client.zadd(":{integrity}:item:idx:tags:text-range", {"zz\x00\x001": 0})
    fixed = integrity.repair(integrity.check(Item))
    assert sorted(f.name for f in fixed) == ["color", "tags"]
    assert integrity.check(Item) == []


def test_an_index_key_of_another_type_no_value_implies_is_repaired(models, db):
    _, Item = models
    junk = ":{integrity}:item:idx:color:equal:zzz"  # no instance is 'zzz'
    db.client.set(junk, "x")
    problems = integrity.check(Item)
    assert [(p.kind, p.field.name) for p in problems] == [("type", "color")]
    assert [f.name for f in integrity.repair(problems)] == ["color"]
    assert integrity.check(Item) == [] and not db.client.exists(junk)


def test_a_value_its_index_refuses_is_reported_and_not_rebuilt(models, db):
    _, Item = models
    db.client.hset(Item(2).size.key, "size", "big")  # written by another client
    db.client.srem(":{integrity}:item:idx:color:equal:red", "1")  # and a missing entry
    problems = integrity.check(Item)
    assert sorted((p.kind, p.field.name) for p in problems) == [
        ("invalid", "size"),
        ("missing", "color"),
        ("stale", "size"),  # the entry of its former value
    ]
    invalid = next(p for p in problems if p.kind == "invalid")
    assert "instance '2': Item.size: invalid value 'big'" in str(invalid)
    range_index = ":{integrity}:item:idx:size:number-range"
    before = db.client.zrange(range_index, 0, -1, withscores=True)
    assert [f.name for f in integrity.repair(problems)] == ["color"]  # size: fix the value
    assert db.client.zrange(range_index, 0, -1, withscores=True) == before
    with pytest.raises(ValueError, match=r"Item\.size\.rebuild_indexes\(\): instance '2': .*'big'"):
        Item.get_field("size").rebuild_indexes()
    assert db.client.zrange(range_index, 0, -1, withscores=True) == before  # left as it was
    assert sorted(Item.collection(size__gte=0)) == ["1", "2", "3"]
    assert Item(2).size.hset(5) == 0  # limpyd overwrites it (it never indexed it)
    assert sorted(Item.collection(size__gte=5)) == ["2"]
    assert [f.name for f in integrity.repair(integrity.check(Item))] == ["size"]  # the stale
    assert integrity.check(Item) == []


def test_values_an_index_refuses_can_be_replaced_and_removed(db):
    class Gauge(model.RedisModel):
        database = db
        level = fields.StringField(indexes=[NumberRangeIndex])
        marks = fields.SetField(indexes=[NumberRangeIndex])

    gauge = Gauge(level=1, marks=[1, 2])
    db.client.set(gauge.level.key, "high")  # written by another client
    db.client.sadd(gauge.marks.key, "nan")
    assert {p.kind for p in integrity.check(Gauge)} == {"invalid", "stale"}
    assert gauge.marks.srem("nan") == 1  # limpyd never indexed them: nothing to remove
    assert gauge.level.set(5) is True
    assert gauge.marks.sadd(3) == 1
    with pytest.raises(ValueError, match=r"Gauge\.marks: invalid value 'nan'"):
        gauge.marks.sadd("nan")  # a new value is checked as ever
    assert [(p.kind, p.field.name) for p in integrity.check(Gauge)] == [("stale", "level")]
    assert list(Gauge.collection(level__gte=5)) == ["1"]
    assert list(Gauge.collection(marks__gte=3)) == ["1"]


@pytest.mark.parametrize("kind", ["string", "hash", "list"])
def test_a_key_of_another_type_is_reported_and_repaired(models, db, kind):
    """Another client put another type where an index set, or the related model's
    collection, belongs: reported (the key once, each entry it should hold), not a crash."""
    Owner, Item = models
    write = {
        "string": lambda key: db.client.set(key, "x"),
        "hash": lambda key: db.client.hset(key, "f", "v"),
        "list": lambda key: db.client.rpush(key, "x"),
    }[kind]
    index_key = ":{integrity}:item:idx:color:equal:red"
    db.client.delete(index_key)
    write(index_key)
    problems = integrity.check(Item)
    assert sorted((p.kind, p.field and p.field.name) for p in problems) == [
        *[("missing", "color")] * 3,
        ("type", None),
    ]
    assert index_key in str(next(p for p in problems if p.kind == "type"))
    with pytest.raises(integrity.IntegrityError, match=r"Item: type: key .* is not a set"):
        integrity.assert_consistent(Item)
    integrity.repair(problems)
    assert integrity.check(Item) == []
    collection = Owner._meta.collection_key
    db.client.delete(collection)
    write(collection)
    assert {(p.kind, p.field and p.field.name) for p in integrity.check(Item)} == {
        ("type", None),
        ("dangling", "owner"),
    }


def main(argv):
    """The command line in this process, which shares the test's in-memory server."""
    return cli_main(argv, in_process_servers=True)


def test_command_line(models, db, capsys, monkeypatch):
    Owner, Item = models
    module = types.ModuleType("limpyd_cli_models")
    module.Owner, module.Item = Owner, Item
    monkeypatch.setitem(sys.modules, "limpyd_cli_models", module)
    assert main(["check", "limpyd_cli_models:Owner", "limpyd_cli_models:Item"]) == 0
    assert "no problem found" in capsys.readouterr().out
    db.client.srem(":{integrity}:item:idx:color:equal:red", "1")
    assert main(["check", "limpyd_cli_models:Item"]) == 1
    output = capsys.readouterr()
    assert output.out.startswith(f"checking Item on {db.backend.describe()} (the models own")
    assert "Item.color: missing" in output.out and output.err == ""  # no terminal: no bars
    assert main(["check", "limpyd_cli_models:Item", "--repair"]) == 0
    assert "rebuilt the indexes of Item.color" in capsys.readouterr().out
    # a rebuild refused midway: what was rebuilt before it is said, then the refusal
    db.client.srem(":{integrity}:item:idx:color:equal:red", "1")
    db.client.srem(":{integrity}:item:idx:owner:equal:1", "2")
    links = Owner._meta.links_key("1")
    db.client.delete(links)
    db.client.set(links, "junk")
    assert main(["check", "limpyd_cli_models:Owner", "limpyd_cli_models:Item", "--repair"]) == 2
    output = capsys.readouterr()
    assert "rebuilt the indexes of Item.color\n" in output.out
    assert "repair stopped: Item.owner.rebuild_indexes(): the link records" in output.err
    db.client.delete(links)
    assert main(["check", "limpyd_cli_models:Owner", "limpyd_cli_models:Item", "--repair"]) == 0
    assert main(["check", "limpyd_cli_models:Nope"]) == 2
    assert "'limpyd_cli_models:Nope' is not a limpyd model" in capsys.readouterr().err


def test_command_line_with_url(db, capsys, monkeypatch):
    url = db.backend.describe()

    class Thing(model.RedisModel):
        database = None
        name = fields.StringField(indexable=True)

    module = types.ModuleType("limpyd_cli_url")
    module.Thing = Thing
    monkeypatch.setitem(sys.modules, "limpyd_cli_url", module)
    Thing.use_database(db)
    Thing(name="x")
    Thing.database = None
    assert main(["check", "limpyd_cli_url:Thing", "--url", url]) == 0
    assert Thing.database is not db and Thing.collection(name="x") == ["1"]


@pytest.fixture
def seats(db):
    class Seat(model.RedisModel):
        database = db
        row = fields.StringField()
        number = fields.InstanceHashField()
        unique_together = [("row", "number")]

    for row, number in [("a", "1"), ("a", "2"), ("é\udcff", "1")]:
        Seat(row=row, number=number)
    Seat(row="b")  # no combination: a value is missing
    return Seat


def combination(Seat, row, number):
    return Seat._meta.together_key(("row", "number"), {"row": [row], "number": [number]})


def test_a_combination_two_instances_hold_by_their_values_is_reported(seats, db):
    """Another client gave seat 2 seat 1's values: the checker counted a combination's
    holders in the stored combination keys only, and reported it held twice only once a
    repair had rebuilt them (which the rebuild then refused)."""
    Seat = seats
    db.client.hset(Seat._meta.hash_key("2"), "number", "1")
    problems = integrity.check(Seat)
    held = [p for p in problems if p.kind == "unique"]
    assert [p.detail for p in held] == [
        f"combination {combination(Seat, 'a', '1')!r} held by ['1', '2']"
    ]
    assert {p.kind for p in problems} == {"unique", "missing", "stale"}


def test_what_checks_or_rebuilds_nothing_is_refused(db, seats, unchanged):
    """An abstract model was checked clean ([]), a field without index or a model without
    unique_together said it rebuilt every instance, and what is no model raised a bare
    AttributeError."""
    from limpyd.maintenance import rebuild_together

    class Base(model.RedisModel):
        database = db
        abstract = True
        name = fields.StringField(indexable=True)

    class Plain(model.RedisModel):
        database = db
        x = fields.StringField()

    Plain(x="1")
    with unchanged():
        with pytest.raises(ImplementationError, match=r"^Model Base is abstract"):
            integrity.check(seats, Base)
        for bad in (int, "app:Person", None):
            with pytest.raises(ImplementationError, match=r"^check\(.*\): a model class is"):
                integrity.check(bad)
        with pytest.raises(ImplementationError, match=r"^Plain\.x has no index to rebuild"):
            Plain.get_field("x").rebuild_indexes()
        with pytest.raises(ImplementationError, match=r"^Plain has no unique_together group"):
            rebuild_together(Plain)
        # an abstract model's field "rebuilt" 0 instances; an instance, or what check() did
        # not give, was a bare AttributeError
        for call in (Base.get_field("name").rebuild_indexes, Base.get_field("name").clean_indexes):
            with pytest.raises(ImplementationError, match=r"^Model Base is abstract"):
                call()
        with pytest.raises(ImplementationError, match=r"^Model Base is abstract"):
            rebuild_together(Base)
        for bad in (Plain(1), "Plain"):
            with pytest.raises(ImplementationError, match=r"^rebuild_together\(.*\): a model"):
                rebuild_together(bad)
        with pytest.raises(ImplementationError, match=r"^repair\(\): the problems check\(\)"):
            integrity.repair([1, 2])
    assert rebuild_together(seats) == 4


def test_unique_together_combinations_checked_and_repaired(seats, db, capsys, monkeypatch):
    """Defect: the checker never looked at the combinations of `unique_together` groups."""
    Seat = seats
    assert integrity.check(Seat) == []
    db.client.srem(combination(Seat, "a", "1"), "1")  # missing
    db.client.sadd(combination(Seat, "z", "9"), "2")  # stale: 2 holds (a, 2)
    db.client.sadd(combination(Seat, "a", "2"), "9")  # stale: no instance 9
    db.client.sadd(combination(Seat, "é\udcff", "1"), "4")  # stale: 4 has no number
    problems = [str(p) for p in integrity.check(Seat)]
    assert sorted(p.split(":")[1].strip() for p in problems) == ["missing"] + ["stale"] * 3
    assert all(p.startswith("Seat: ") for p in problems)
    assert integrity.repair(integrity.check(Seat)) == [Seat]
    assert integrity.check(Seat) == []
    assert set(db.client.smembers(combination(Seat, "a", "1"))) == {"1"}

    db.client.hset(":{seat}:seat:obj:2:_hash", "number", "1")  # two instances hold (a, 1)
    db.client.srem(combination(Seat, "a", "2"), "2")
    db.client.sadd(combination(Seat, "a", "1"), "2")
    db.client.srem(":{seat}:seat:idx:number:equal:2", "2")
    db.client.sadd(":{seat}:seat:idx:number:equal:1", "2")
    assert [(p.kind, p.field) for p in integrity.check(Seat)] == [("unique", None)]

    module = types.ModuleType("limpyd_cli_seats")
    module.Seat = Seat
    monkeypatch.setitem(sys.modules, "limpyd_cli_seats", module)
    db.client.delete(combination(Seat, "é\udcff", "1"))
    assert main(["check", "limpyd_cli_seats:Seat", "--repair"]) == 1  # held twice stays
    output = capsys.readouterr().out
    assert "Seat: missing: combination of '3'" in output
    assert "rebuilt the unique_together combinations of Seat" in output
    assert [p.kind for p in integrity.check(Seat)] == ["unique"]
    # what the repair leaves is listed, not only counted
    assert f"left: {integrity.check(Seat)[0]}\n1 problem(s)" in output


def test_an_error_read_with_the_index_keys_is_raised_not_taken_for_a_page(models):
    """A cluster pipeline returns its connection errors among the replies (as it does with
    `raise_on_error=False`): the checker raises them, and skips only keys of another type."""
    import redis

    from limpyd.integrity import _Checker

    _, Item = models
    checker = _Checker(Item, None)
    key = Item.get(code="c0").color.key  # a hash: read as a set, then as a sorted set

    sent = []

    class Pipeline:
        """Records the scans asked for and answers `replies` to each execution."""

        def __init__(self, replies):
            self.replies = replies

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def sscan(self, key, cursor, count):
            sent.append(("sscan", key, cursor))

        def zscan(self, key, cursor, count):
            sent.append(("zscan", key, cursor))

        def execute(self, raise_on_error=True):
            assert raise_on_error is False
            return self.replies

    wrong = redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind")
    checker.client = types.SimpleNamespace(pipeline=lambda **_: Pipeline([wrong]))
    color = Item.get_field("color")
    assert list(checker._members([key], color)) == []
    assert sent == [("sscan", key, 0), ("zscan", key, 0)]
    assert [(p.kind, p.field) for p in checker.problems] == [("type", color)]
    down = redis.ConnectionError("node down")
    checker.client = types.SimpleNamespace(pipeline=lambda **_: Pipeline([down]))
    with pytest.raises(redis.ConnectionError, match="node down"):
        list(checker._members([key], color))


@pytest.mark.parametrize(
    ("field", "write"),
    [
        ("code", lambda client, key: client.sadd(key, "x")),
        ("color", lambda client, key: client.rpush(key, "x")),
        ("tags", lambda client, key: client.set(key, "x")),
    ],
)
def test_a_data_key_of_another_type_is_reported_not_a_crash(models, db, field, write):
    _, Item = models
    key = Item.get_field(field).state_location("2")[0]  # another client's write there
    db.client.delete(key)
    write(db.client, key)
    problems = integrity.check(Item)
    invalid = [p for p in problems if p.kind == "invalid"]
    sharing = [f.name for f in Item._meta.data_fields if f.state_location("2")[0] == key]
    assert sorted((p.field.name, key in p.detail) for p in invalid) == [
        (name, True)
        for name in sorted(sharing)  # the instance hash: each of its fields
    ]
    assert {p.kind for p in problems} <= {"invalid", "stale", "missing"}
    assert field not in [f.name for f in integrity.repair(problems)]
    assert [p.kind for p in integrity.check(Item) if p.field.name == field][:1] == ["invalid"]


def test_a_collection_of_another_type_is_reported_alone(models, db):
    _, Item = models
    db.client.delete(Item._meta.collection_key)
    db.client.set(Item._meta.collection_key, "x")
    problems = integrity.check(Item)
    assert [(p.kind, p.field) for p in problems] == [("type", None)]
    assert Item._meta.collection_key in problems[0].detail
    assert integrity.repair(problems) == []


def test_an_index_refusing_a_value_leaves_the_others_entries_expected(db):
    class Meter(model.RedisModel):
        database = db
        v = fields.StringField(indexable=True)

    Meter(v="abc"), Meter(v="7")

    class Meter(model.RedisModel):  # redefined: an index added later
        database = db
        v = fields.StringField(indexes=[EqualIndex, NumberRangeIndex])

    problems = integrity.check(Meter)
    assert sorted((p.kind, p.field.name) for p in problems) == [("invalid", "v"), ("missing", "v")]
    assert "number-range" in next(p.detail for p in problems if p.kind == "missing")  # '7's
    assert list(Meter.collection(v="abc")) == ["1"]  # its equal entry is not stale


def test_held_values_an_index_refuses_do_not_block_the_others(db):
    class Sheet(model.RedisModel):
        database = db
        cells = fields.HashField(indexes=[NumberRangeIndex])
        row = fields.ListField(indexes=[NumberRangeIndex])

    sheet = Sheet(cells={"a": 1, "b": 2}, row=[1, 2])
    db.client.hset(sheet.cells.key, "a", "junk")  # another client's writes
    db.client.rpush(sheet.row.key, "junk")
    assert sheet.cells.hset("b", 3) == 0
    assert sheet.row.rpush(5) == 4
    with pytest.raises(ValueError, match=r"Sheet\.cells: invalid value 'nan'"):
        sheet.cells.hset("c", "nan")
    assert sorted(Sheet.collection(cells__b__gte=3)) == ["1"]
    assert sorted(Sheet.collection(row__gte=5)) == ["1"]


def test_a_combination_key_of_another_type_is_reported_and_repaired(seats, db):
    Seat = seats
    key = combination(Seat, "a", "1")
    db.client.delete(key)
    db.client.set(key, "x")
    problems = integrity.check(Seat)
    assert ("type", None) in [(p.kind, p.field) for p in problems]
    integrity.repair(problems)
    assert integrity.check(Seat) == []


def test_malformed_and_foreign_index_entries_are_reported_stale(db):
    """Entries another client wrote: a range-index member without the value/pk separator
    (the checker stopped with a bare ValueError), a pk that does not exist. `repair` removes
    them."""

    class Named(model.RedisModel):
        database = db
        name = fields.StringField(indexes=[TextRangeIndex])
        city = fields.StringField(indexable=True)

    Named(name="ana", city="Paris")
    range_key = Named.get_field("name").indexes[0].base_key()
    equal_key = Named.get_field("city").indexes[0].value_key("Paris", None)
    db.client.zadd(range_key, {"garbage": 0, "ends-in-nul\x00": 0})
    db.client.sadd(equal_key, "99")
    problems = integrity.check(Named)
    assert sorted((p.kind, p.field.name) for p in problems) == [
        ("stale", "city"), ("stale", "name"), ("stale", "name")
    ]  # fmt: skip
    details = " ".join(p.detail for p in problems)
    assert "'garbage'" in details and "'ends-in-nul" in details and "'99'" in details
    integrity.repair(problems)
    assert integrity.check(Named) == []
    assert Named.collection(city="Paris") == ["1"] and Named.collection(name__gte="") == ["1"]


def test_a_counter_set_back_and_model_keys_of_another_type(db, unchanged):
    """Another client set the pk counter back: the checker reports it, and a creation is
    refused naming the counter (it got the pk of an existing instance and overwrote it). An
    expiry sorted set or a counter of another type is reported too (they were not)."""
    from limpyd.exceptions import RefusedValueError

    class Ticket(model.RedisModel):
        database = db
        name = fields.InstanceHashField(indexable=True)

    for name in ("a", "b", "c"):
        Ticket(name=name)
    meta = Ticket._meta
    db.client.set(meta.max_pk_key, "1")
    assert [(p.kind, str(p)) for p in integrity.check(Ticket)] == [
        ("counter", f"Ticket: counter: {meta.max_pk_key!r} holds 1, behind the instance 3: "
         "creations are refused until it holds 3")
    ]  # fmt: skip
    with unchanged(), pytest.raises(RefusedValueError, match=r"^Ticket: .*holds 1, behind the"):
        Ticket(name="d")
    assert Ticket(2).name.hget() == "b"
    db.client.set(meta.max_pk_key, "3")
    assert Ticket(name="d").pk.get() == "4" and integrity.check(Ticket) == []
    db.client.delete(meta.max_pk_key, meta.expiry_key)
    db.client.sadd(meta.max_pk_key, "9")
    db.client.set(meta.expiry_key, "x")
    assert sorted(str(p) for p in integrity.check(Ticket)) == [
        f"Ticket: type: key {meta.expiry_key!r} is not a sorted set",
        f"Ticket: type: key {meta.max_pk_key!r} is not a string",
    ]


@pytest.mark.parametrize(
    "text", ["abc", "", "01", "+1", "-0", "-3", " 1", "1.5", "9223372036854775807", "1" * 20]
)
def test_a_counter_incr_cannot_increment(db, unchanged, text):
    """A counter holding what INCR refuses (not an integer as Redis writes one, or its last
    value): reported, and a creation refused naming it, nothing written."""
    from limpyd.exceptions import RefusedValueError

    class Ticket(model.RedisModel):
        database = db
        name = fields.InstanceHashField(indexable=True)

    Ticket(name="a")
    db.client.set(Ticket._meta.max_pk_key, text)
    assert [(p.kind, p.detail) for p in integrity.check(Ticket)] == [
        ("counter", f"{Ticket._meta.max_pk_key!r} holds {text!r}, which no creation can take "
         "the next pk from (an integer from 0 to 9223372036854775806, as Redis writes one): "
         "creations are refused until it holds the largest pk")
    ]  # fmt: skip
    with unchanged(), pytest.raises(RefusedValueError, match=r"^Ticket: .*pk counter"):
        Ticket(name="b")
    db.client.set(Ticket._meta.max_pk_key, "9223372036854775806")  # the last it can go on from
    assert integrity.check(Ticket) == [] and Ticket(name="c").pk.get() == "9223372036854775807"


def test_rebuild_refuses_a_mistyped_link_record_hash_before_deleting(db):
    """A related field's rebuild writes the link records of the instances it points to:
    one another client made a string is refused before any index key is deleted (the
    rebuild stopped midway, leaving later batches unindexed)."""
    from limpyd import maintenance

    class Person(related.RelatedModel):
        cluster_group = "links"
        database = db
        name = fields.StringField()

    class Group(related.RelatedModel):
        cluster_group = "links"
        database = db
        owner = related.FKStringField(Person, related_name="groups")

    ann, bob = Person(name="a"), Person(name="b")
    for i in range(7):
        Group(owner=ann if i % 2 else bob)
    links = Person._meta.links_key(ann.pk.get())
    db.client.delete(links)
    db.client.set(links, "junk")
    before = {k: db.client.dump(k) for k in db.client.keys("*idx*")}
    original = maintenance.BATCH
    maintenance.BATCH = 2
    try:
        with pytest.raises(ValueError, match=rf"^Group.owner.rebuild_indexes\(\): the link "
                           rf"records {links!r} are a string, not a hash"):  # fmt: skip
            Group.get_field("owner").rebuild_indexes()
    finally:
        maintenance.BATCH = original
    assert {k: db.client.dump(k) for k in db.client.keys("*idx*")} == before
    assert (len(Group.collection(owner=ann)), len(Group.collection(owner=bob))) == (3, 4)
    db.client.delete(links)
    assert Group.get_field("owner").rebuild_indexes() == 7
    integrity.assert_consistent(Person, Group)


def test_maintenance_names_what_it_cannot_do(db, unchanged):
    """An index class the field lacks (a rebuild of nothing said it rebuilt every
    instance), a text for a class, a collection or expiry key of another type (a bare
    WRONGTYPE): each refused naming the field or the key, nothing changed."""
    from limpyd.exceptions import ImplementationError, RefusedValueError

    class Tag(model.RedisModel):
        database = db
        name = fields.StringField(indexable=True)

    Tag(name="a")
    field = Tag.get_field("name")
    with unchanged():
        for call in (field.rebuild_indexes, field.clean_indexes):
            with pytest.raises(ImplementationError, match=r"^Tag.name has no NumberRangeIndex "
                               r"\(its indexes: EqualIndex\)$"):  # fmt: skip
                call(NumberRangeIndex)
            with pytest.raises(ImplementationError, match=r"an index class is expected, not 'eq"):
                call("equal")
    assert field.rebuild_indexes(EqualIndex) == 1
    meta = Tag._meta
    db.client.set(meta.expiry_key, "x")
    with unchanged(), pytest.raises(RefusedValueError, match=r"expiry' is not a sorted set"):
        Tag.reap_expired()
    db.client.delete(meta.expiry_key, meta.collection_key)
    db.client.rpush(meta.collection_key, "1")
    with unchanged(), pytest.raises(RefusedValueError, match=r"collection' is not a set"):
        field.rebuild_indexes()
    db.client.zadd(meta.expiry_key, {"1": 0})  # an instance due, its reap refused by name
    with unchanged(), pytest.raises(RefusedValueError, match=r"^Tag: the key .*collection' is"):
        Tag.reap_expired()  # it was Redis's bare WRONGTYPE


def test_repair_leaves_the_combinations_of_a_field_holding_another_type(seats, db):
    """A unique_together field whose key another client made a list: repair skips the
    model's combinations (it stopped with a RefusedValueError reading that field), and the
    checker keeps reporting the key and the combination."""
    key = seats._meta.instance_key("1", "row")
    db.client.delete(key)
    db.client.rpush(key, "a")
    problems = integrity.check(seats)
    assert {p.kind for p in problems} == {"invalid", "stale"}
    assert integrity.repair(problems) == []
    assert sorted(map(str, integrity.check(seats))) == sorted(map(str, problems))
    db.client.delete(key)
    db.client.set(key, "a")
    assert integrity.check(seats) == []


def test_checking_combinations_costs_round_trips_per_batch_not_per_instance(
    seats, db, limpyd_commands
):
    """One SSCAN per combination key (one per instance) made the check of a unique_together
    model cost a round trip per instance: their first pages are read by batches."""

    def cost() -> int:
        with limpyd_commands() as counted:
            assert integrity.check(seats) == []
        return counted.round_trips

    few = cost()
    seats.create_many([{"row": "r", "number": str(n)} for n in range(10, 400)])
    assert cost() <= few + 6, (few, cost())


def test_link_records_are_checked_and_repaired(models, db):
    """A link record another client deleted (deleting the owner would then leave its items
    pointing to it) or a links hash of another type: neither was reported."""
    Owner, Item = models
    links = Owner._meta.links_key("1")
    db.client.delete(links)
    problems = integrity.check(Owner, Item)
    assert {(p.kind, p.field.name) for p in problems} == {("missing", "owner")}
    assert len(problems) == 3 and all(links in p.detail for p in problems)
    assert integrity.repair(problems) == [Item.get_field("owner")]
    assert integrity.check(Owner, Item) == []
    db.client.delete(links)
    db.client.set(links, "x")
    assert [str(p) for p in integrity.check(Owner, Item)] == [
        f"Item: type: key {links!r} is not a hash"
    ]
    db.client.delete(links)
    integrity.repair(integrity.check(Owner, Item))
    Owner(1).delete()
    assert Item(1).owner.get() is None and integrity.check(Owner, Item) == []


def test_the_stale_entry_check_forgets_owners_and_stays_right(db, monkeypatch):
    """The implied entries of the owners met are kept up to IMPLIED_KEPT (they were kept for
    the whole walk: memory grew with the data); forgotten, an owner met again is read
    again, with the same answers."""
    from limpyd import integrity as checker

    monkeypatch.setattr(checker, "IMPLIED_KEPT", 0)

    class Bag(model.RedisModel):
        database = db
        tags = fields.SetField(indexable=True)

    for n in range(3):
        Bag(tags=[f"t{n}-{i}" for i in range(400)] + ["shared"])
    assert integrity.check(Bag) == []
    index = Bag.get_field("tags").indexes[0]
    db.client.sadd(index.value_key("shared", None), "9")
    db.client.srem(index.value_key("t1-7", None), "2")
    assert sorted(str(p) for p in integrity.check(Bag)) == [
        f"Bag.tags: missing: index entry '2' in {index.value_key('t1-7', None)!r}",
        f"Bag.tags: stale: index entry '9' in {index.value_key('shared', None)!r}",
    ]
