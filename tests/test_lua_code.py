"""limpyd's Lua code on the server: a library of Redis Functions, loaded once per server and
named after its code; the same code run as an EVAL script where the library cannot be
loaded. Both ways answer alike, on both backends."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from limpyd import fields, lua, model
from limpyd.contrib.collection import ExtendedCollectionManager
from limpyd.database import RedisDatabase
from limpyd.exceptions import UniquenessError
from limpyd.indexes import TextRangeIndex


def make_person(db: RedisDatabase, where: str = "lua") -> type[model.RedisModel]:
    class Person(model.RedisModel):
        database = db
        namespace = where
        collection_manager = ExtendedCollectionManager
        name = fields.InstanceHashField(indexes=[TextRangeIndex], unique=True)
        city = fields.InstanceHashField(indexable=True)
        tags = fields.SetField(indexable=True)

    return Person


def exercise(Person: type[model.RedisModel]) -> dict[str, object]:
    """Writes and queries of every mode (apply, read, query), and what they answer."""
    ann = Person(name="ann", city="Paris", tags=["a"])
    bob = Person(name="bob", city="Paris", tags=["x"])
    Person(name="cid", city="Rome", tags=["a", "b"])
    ann.tags.sadd("c")
    assert bob.tags.spop() == "x"  # a modifier whose effect only the server knows
    with pytest.raises(UniquenessError, match="already held"):
        Person(name="bob")
    c = Person.collection
    return {
        "paris": sorted(c(city="Paris")),
        "two fields": sorted(c(city="Paris", tags="b")),
        "sorted": list(c().sort(by="name", alpha=True, desc=True)[:2]),
        "values": list(c(city="Rome").values("name", "city")),
        "len": len(c(tags="a")),
        "get": Person.get(name="cid").city.hget(),
    }


def libraries(client: redis.Redis) -> dict[str, dict[str, list[str]]]:
    """FUNCTION LIST (flat RESP2 pairs) as {library: {function: flags}}."""

    def pairs(flat: list) -> dict:
        return dict(zip(flat[::2], flat[1::2], strict=True))

    return {
        pairs(library)["library_name"]: {
            pairs(f)["name"]: sorted(pairs(f)["flags"]) for f in pairs(library)["functions"]
        }
        for library in client.function_list()
    }


def library_names(client: redis.Redis) -> list[str]:
    """The libraries of the server, the same on every primary of a cluster."""
    names = {str(sorted(libraries(server))) for server in servers(client)}
    assert len(names) == 1, names
    return sorted(libraries(servers(client)[0]))


def servers(client: Any) -> list[redis.Redis]:
    """A plain client of each server behind `client`: itself, or each primary of a cluster."""
    if hasattr(client, "get_primaries"):
        return [node.redis_connection for node in client.get_primaries()]
    return [client]


def test_the_library_is_loaded_once_per_server(
    db, forget_code, limpyd_commands, loading_round_trips
):
    forget_code()
    Person = make_person(db)
    with limpyd_commands() as counted:
        Person(name="ann", city="Paris")
    # the call, then FUNCTION LOAD and the call again in one round trip (every primary of a
    # cluster is loaded at once)
    assert counted.round_trips == 1 + loading_round_trips
    assert counted.names.count("FUNCTION LOAD") == 1, counted.names
    assert library_names(db.connection) == [lua.SCRIPT.name]
    assert libraries(servers(db.connection)[0])[lua.SCRIPT.name] == {
        lua.SCRIPT.function("read"): [],
        lua.SCRIPT.function("apply"): [],
        lua.SCRIPT.function("query"): ["no-writes"],
        lua.SCRIPT.function("store"): [],
    }
    with limpyd_commands() as counted:
        Person(name="bob", city="Paris")
        assert sorted(Person.collection(city="Paris")) == ["1", "2"]
    assert counted.names == ["FCALL", "FCALL_RO"]


def test_a_library_flushed_meanwhile_is_loaded_again(
    db, forget_code, limpyd_commands, loading_round_trips
):
    Person = make_person(db)
    Person(name="ann", city="Paris")
    forget_code()
    with limpyd_commands() as counted:
        assert sorted(Person.collection(city="Paris")) == ["1"]
    assert counted.round_trips == 1 + loading_round_trips
    assert library_names(db.connection) == [lua.SCRIPT.name]


def test_a_library_flushed_between_its_load_and_the_call_runs_the_call_as_a_script(
    db, forget_code, monkeypatch, limpyd_commands
):
    """Another client's FUNCTION FLUSH landing between the load and the call it carries: the
    call runs as a script (a TypeError came out, the load's reply raised); the next call
    loads the library again."""
    Person = make_person(db)
    Person(name="ann", city="Paris")
    forget_code()
    load = lua.LuaScript.load
    # a success reply for the load, and still no library when the call comes (forgotten
    # above): what the other client's flush leaves
    monkeypatch.setattr(lua.LuaScript, "load", lambda self, client: client.exists(self.name))
    with limpyd_commands() as counted:
        Person(name="bob", city="Paris")
    assert "EVALSHA" in counted.names or "EVAL" in counted.names, counted.names
    assert db.client not in lua.SCRIPT.evaluating  # the library loads: it stays the way
    monkeypatch.setattr(lua.LuaScript, "load", load)
    assert sorted(Person.collection(city="Paris")) == ["1", "2"]
    assert Person.get(name="bob").city.hget() == "Paris"
    assert library_names(db.connection) == [lua.SCRIPT.name]


def test_libraries_of_other_code_are_left_alone(db, forget_code):
    """Another version of limpyd's code is another library, with functions of other names:
    neither calls the other's."""
    forget_code()
    other = lua.LuaScript(lua._build_source().replace("-- Shared helpers", "-- v2 helpers"))
    assert other.name != lua.SCRIPT.name
    Person = make_person(db)
    other(db.client, "apply", [], "{t}:probe")  # loads the other library: an empty write
    Person(name="ann", city="Paris")
    assert library_names(db.connection) == sorted([other.name, lua.SCRIPT.name])
    assert sorted(Person.collection(city="Paris")) == ["1"]


def test_a_library_that_does_not_load_is_an_error(db):
    """A library the server cannot load is a bug: its error is raised, not hidden by the
    fallback to EVAL."""
    broken = lua.LuaScript("local function build() return {} end this is not lua")
    with pytest.raises(redis.ResponseError, match=r"(?i)compil"):
        broken(db.client, "query", [], "{t}:probe")
    assert db.client not in broken.evaluating


def test_the_code_evaluated_as_a_script_answers_alike(
    limpyd_database_factory, forget_code, limpyd_commands
):
    """The EVAL fallback runs the same code: writes and queries answer as the library's,
    and the server is left without the library."""
    answers = {}
    for how in ("library", "script"):
        database = limpyd_database_factory()
        if how == "script":
            forget_code()
            lua.SCRIPT.evaluating.add(database.client)
        with limpyd_commands(database) as counted:
            answers[how] = exercise(make_person(database, how))
        sent = set(counted.names)
        if how == "script":
            assert sent & {"FCALL", "FCALL_RO", "FUNCTION LOAD"} == set(), sent
            assert {"EVALSHA", "EVALSHA_RO"} <= sent
            assert library_names(database.connection) == []
        else:
            assert {"FCALL", "FCALL_RO"} <= sent
            assert not any(name.startswith("EVAL") for name in sent), sent
    assert answers["script"] == answers["library"]
    assert answers["library"]["paris"] == ["1", "2"] and answers["library"]["get"] == "Rome"


@pytest.mark.limpyd_backends("redis")
def test_a_user_who_may_not_load_functions_evaluates(db, forget_code, limpyd_commands):
    """An ACL user without FUNCTION: the first call finds the library missing and cannot load
    it, and from then on the client runs the code as a script."""
    forget_code()
    admin = db.connection
    admin.acl_setuser(
        "limpyd-no-functions",
        enabled=True,
        passwords=["+pw"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-function"],
    )
    try:
        limited = RedisDatabase.from_url(
            db.backend.describe(), username="limpyd-no-functions", password="pw"
        )
        with pytest.raises(redis.exceptions.NoPermissionError):
            limited.connection.function_load(lua.SCRIPT.library)
        Person = make_person(limited)
        with limpyd_commands(limited) as counted:
            answered = exercise(Person)
        assert answered["paris"] == ["1", "2"] and answered["values"] == [
            {"name": "cid", "city": "Rome"}
        ]
        assert limited.client in lua.SCRIPT.evaluating
        assert counted.names.count("FUNCTION LOAD") == 1, counted.names
        assert library_names(admin) == []
        # batches too (create_many, reaping): they raised NoPermissionError
        lua.SCRIPT.evaluating.discard(limited.client)
        rows = Person.create_many([{"name": f"n{i}", "city": "Oslo"} for i in range(3)])
        assert len(rows) == 3 and len(Person.collection(city="Oslo")) == 3
        assert limited.client in lua.SCRIPT.evaluating
        assert len(Person.create_many([{"name": "last", "city": "Oslo"}])) == 1
    finally:
        admin.acl_deluser("limpyd-no-functions")


class _ScriptedPipeline:
    """A pipeline answering each FCALL from a script of replies, and recording what it
    was sent (`call_many`'s rule, without a race to win)."""

    def __init__(self, client: _ScriptedClient) -> None:
        self.client = client
        self.queued: list[str] = []

    def __enter__(self) -> _ScriptedPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.rounds.append(self.queued)

    def function_load(self, code: str, replace: bool = False) -> None:
        self.queued.append("LOAD")

    def fcall(self, name: str, numkeys: int, *keys_and_args: Any) -> None:
        self.queued.append(str(keys_and_args[numkeys]))  # the first argument: the row

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        return [self.client.answer(queued) for queued in self.queued]


class _ScriptedClient:
    def __init__(self, unknown_at_first: set[str]) -> None:
        self.unknown = set(unknown_at_first)
        self.rounds: list[list[str]] = []
        self.ran: list[str] = []

    def pipeline(self, transaction: bool = True) -> _ScriptedPipeline:
        return _ScriptedPipeline(self)

    def answer(self, queued: str) -> Any:
        if queued == "LOAD":
            self.unknown.clear()
            return "OK"
        if queued in self.unknown:  # another client had not loaded the code yet
            self.unknown.discard(queued)
            return redis.ResponseError("Function not found")
        self.ran.append(queued)
        return ["OK", None, None]


def test_a_batch_sends_again_only_the_calls_that_did_not_run():
    """The library loaded by another client while a batch runs: the first calls find it
    missing, the others run. Only the first are sent again (all were: rows of create_many
    were created twice)."""
    client = _ScriptedClient(unknown_at_first={"row0", "row1"})
    calls = [([f"row{i}"], "{t}:probe") for i in range(4)]
    replies = lua.SCRIPT.call_many(client, "apply", calls)  # type: ignore[arg-type]
    assert replies == [["OK", None, None]] * 4
    assert client.rounds == [["row0", "row1", "row2", "row3"], ["LOAD", "row0", "row1"]]
    assert sorted(client.ran) == ["row0", "row1", "row2", "row3"]  # each once


@pytest.mark.limpyd_backends("redis", "cluster")  # (the in-memory server has no timeout)
def test_a_call_that_loads_the_library_is_not_sent_again_after_a_lost_reply(db, forget_code):
    """The load and the call went in one pipeline, which a cluster client sends again when
    its reply is lost (a timeout): the write ran twice (two instances of one creation)."""
    impatient = RedisDatabase(backend=type(db.backend)(url=db.backend.url, socket_timeout=0.2))

    class Bulk(model.RedisModel):
        database = impatient
        namespace = "resend"
        tags = fields.SetField(indexable=True)

    def count() -> int:
        return int(db.connection.scard(Bulk._meta.collection_key))

    for created, size in enumerate((25_000, 40_000), 1):  # a bit longer than the client waits
        forget_code()
        try:
            Bulk(tags=[f"m{i}" for i in range(size)])
        except redis.TimeoutError:
            pass  # its reply lost: it runs (once)
        deadline = time.monotonic() + 30
        while count() < created and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1)  # a copy sent again would have run by now
        assert count() == created
