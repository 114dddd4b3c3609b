"""Databases and backends: URLs, switching, scanning, the model registry, and the places
where fakeredis and Redis differ (absorbed in limpyd.backends)."""

from __future__ import annotations

import re
import uuid
from importlib import metadata

import pytest
import redis

from limpyd import fields, model
from limpyd.backends import FakeBackend, RedisBackend, backend_from_url
from limpyd.database import RedisDatabase
from limpyd.exceptions import ImplementationError


def test_fakeredis_urls_name_servers_and_dbs():
    name = f"url-{uuid.uuid4().hex}"
    try:
        a = RedisDatabase.from_url(f"fakeredis://{name}")
        b = RedisDatabase.from_url(f"fakeredis://{name}/0")
        other_db = RedisDatabase.from_url(f"fakeredis://{name}/1")
        a.connection.set("k", "v")
        assert b.connection.get("k") == "v"
        assert other_db.connection.get("k") is None
        assert RedisDatabase.from_url("fakeredis://").backend.describe() == "fakeredis://default/0"
    finally:
        FakeBackend.drop_server(name)


def test_url_schemes():
    assert isinstance(backend_from_url("redis://127.0.0.1:1/2"), RedisBackend)
    assert isinstance(backend_from_url("rediss://127.0.0.1:1/2"), RedisBackend)
    assert isinstance(backend_from_url("unix:///tmp/x.sock"), RedisBackend)
    with pytest.raises(ValueError, match="Unsupported"):
        backend_from_url("http://example.org")
    with pytest.raises(ValueError, match="the db must be a number, not 'abc'"):
        backend_from_url("fakeredis://x/abc")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://127.0.0.1:1/abc", "the db must be a number, not 'abc'"),
        ("redis://127.0.0.1:1/-1", "the db must be a number, not '-1'"),
        ("redis://127.0.0.1:1/\N{SUPERSCRIPT TWO}", "the db must be a number"),
        ("redis://127.0.0.1:1/2?db=3", "its path and ?db= name two dbs"),
        ("rediss://127.0.0.1:1/?db=x", "Invalid value for 'db'"),
        ("unix:///tmp/x.sock?db=abc", "Invalid value for 'db'"),
        ("redis://127.0.0.1:1/0?socket_timeout=soon", "Invalid value for 'socket_timeout'"),
        ("fakeredis://x/2?db=3", "its path and ?db= name two dbs"),
        ("fakeredis://x?db=16", "db 16 is out of range"),
        ("fakeredis://x/99", "db 99 is out of range"),
        ("fakeredis://x?socket_timeout=1", "only ?db= is understood"),
    ],
)
def test_urls_are_checked_by_from_url(url, message):
    """A URL that cannot mean what it says is refused at once, not at first use (redis-py
    alone reads `/abc` as db 0)."""
    with pytest.raises(ValueError, match=re.escape(message)):
        RedisDatabase.from_url(url)


def test_urls_name_their_db_by_path_or_query():
    assert backend_from_url("fakeredis://x?db=3").describe() == "fakeredis://x/3"
    assert backend_from_url("fakeredis://x/3?db=3").describe() == "fakeredis://x/3"
    assert backend_from_url("unix:///tmp/x.sock?db=2").client().get_connection_kwargs()["db"] == 2
    with pytest.raises(ValueError, match="out of range"):
        FakeBackend(db=16)


def test_passwords_never_show():
    for url in ("redis://user:s3cret@127.0.0.1:1/2", "fakeredis://user:s3cret@x/2"):
        database = RedisDatabase.from_url(url)
        assert "s3cret" not in repr(database) and "s3cret" not in database.backend.describe()
        with pytest.raises(ValueError) as raised:
            RedisDatabase.from_url(url.replace("/2", "/bad"))
        assert "s3cret" not in str(raised.value)
    assert repr(backend_from_url("fakeredis://user:s3cret@x/2")) == "<FakeBackend fakeredis://x/2>"
    with pytest.raises(ValueError) as raised:
        backend_from_url("http://user:s3cret@example.org")
    assert "s3cret" not in str(raised.value)
    for url in ("redis://127.0.0.1:1/2?password=s3cret", "unix:///tmp/x.sock?db=1&password=s3cret"):
        database = RedisDatabase.from_url(url)
        assert "s3cret" not in database.backend.describe() and "password=***" in repr(database)
        with pytest.raises(ValueError) as raised:
            RedisDatabase.from_url(f"{url}&nosuch=1")
        assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize(
    ("query", "why"),
    [("nosuch=1", "unexpected keyword argument 'nosuch'"), ("protocol=4", "protocol must be"),
     ("socket_timeout=abc", "Invalid value for 'socket_timeout'")],
)  # fmt: skip
def test_url_options_a_connection_refuses_are_refused_at_once(query, why):
    with pytest.raises(ValueError, match=rf"Invalid database URL .*{why}"):
        RedisDatabase.from_url(f"redis://127.0.0.1:1/0?{query}")
    assert RedisDatabase.from_url("redis://127.0.0.1:1/0?socket_timeout=2&protocol=3")


@pytest.mark.parametrize(
    "make",
    [
        lambda: RedisDatabase(host="127.0.0.1", port=1, decode_responses=False),
        lambda: RedisDatabase.from_url("redis://127.0.0.1:1/0", decode_responses=0),
        lambda: RedisDatabase(backend=FakeBackend(decode_responses=False)),
        lambda: RedisDatabase.from_url("fakeredis://off", decode_responses=False),
        lambda: RedisDatabase.from_url("redis+cluster://127.0.0.1:1", decode_responses=None),
    ],
)
def test_replies_as_bytes_are_refused_by_name(make):
    """redis-py's `decode_responses=False` (a connection option the manual lets through):
    refused when the database is made; it was taken, then a creation was written and
    reported as a DoesNotExist naming limpyd's internal marker."""
    with pytest.raises(ImplementationError, match=r"need decode_responses=True.*not decode_"):
        make()


def test_default_settings_are_the_manuals():
    database = RedisDatabase()
    assert database.backend.describe() == "redis://localhost:6379/0"
    database.connect(host="127.0.0.1", port=6370, db=3)
    assert database.backend.describe() == "redis://127.0.0.1:6370/3"
    with pytest.raises(ImplementationError):
        database.connect(backend=FakeBackend(), db=1)


def test_values_come_back_as_text(db):
    db.connection.set("k", 1)
    assert db.connection.get("k") == "1"
    db.connection.set("b", b"\xff\x00")
    assert db.connection.get("b").encode("utf-8", "surrogateescape") == b"\xff\x00"


@pytest.mark.limpyd_backends("fake", "redis")  # several dbs: a cluster has only db 0
def test_connect_keeps_models_working(limpyd_database_factory):
    first = limpyd_database_factory()
    second = limpyd_database_factory(db=1)

    class Thing(model.RedisModel):
        database = first
        name = fields.StringField(indexable=True)

    Thing(name="in-first")
    first.connect(backend=second.backend)
    assert list(Thing.collection()) == []
    Thing(name="in-second")
    assert [Thing(pk).name.get() for pk in Thing.collection()] == ["in-second"]


def test_incrbyfloat_prints_like_redis(db):
    class Number(model.RedisModel):
        database = db
        value = fields.StringField()
        inner = fields.InstanceHashField()
        hashed = fields.HashField()

    number = Number(value="0.1", inner="0.1", hashed={"x": "0.1"})
    assert number.value.incrbyfloat("0.2") == 0.3
    assert number.value.get() == "0.3"
    number.inner.hincrbyfloat("0.2")
    assert number.inner.hget() == "0.3"
    number.hashed.hincrbyfloat("x", "0.2")
    assert number.hashed.hget("x") == "0.3"
    number.value.set("10.5")
    number.value.incrbyfloat("-0.5")
    assert number.value.get() == "10"
    number.value.set("5.0e3")
    number.value.incrbyfloat(1)
    assert number.value.get() == "5001"


def test_server_info_on_both(db):
    info = db.backend.server_info(db.connection)
    assert int(info["redis_version"].split(".")[0]) >= 6


def test_read_only_scripts_on_both(db):
    """Queries are sent as EVALSHA_RO (EVAL_RO when the server does not know the script)."""
    client = db.client
    client.set("k", "v")
    script = "return {redis.call('GET', KEYS[1]), ARGV[1]}"
    assert client.eval_ro(script, 1, "k", "a") == ["v", "a"]
    sha = client.script_load(script)
    assert client.evalsha_ro(sha, 1, "k", "b") == ["v", "b"]
    with pytest.raises(redis.exceptions.NoScriptError):
        client.evalsha_ro("0" * 40, 0)


def test_scripts_run_alike_each_call_on_both(db):
    """The fake server compiles a script text once (fakeredis would compile it on every
    call): each call still sees its own KEYS and ARGV, and errors are Redis's."""
    client = db.client
    script = "return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}"
    sha = client.script_load(script)
    assert client.evalsha(sha, 1, "n", "a") == ["n", "a", 1]
    assert client.evalsha(sha, 1, "n", "b") == ["n", "b", 2]
    assert client.eval(script, 1, "m", "c") == ["m", "c", 1]
    with pytest.raises(redis.exceptions.ResponseError):
        client.eval("return (", 0)  # a syntax error, every time
    with pytest.raises(redis.exceptions.ResponseError):
        client.eval("return (", 0)
    with pytest.raises(redis.exceptions.ResponseError):
        client.eval("leaked_global = 1", 0)  # no state carried from one call to the next
    assert client.eval("return {KEYS[1], ARGV[1]}", 0) == []
    if db.backend.kind == "fake":  # the second call of a text runs what the first compiled
        runtime = db.backend.server._limpyd_compiling_runtime
        compiles: list[bytes] = []
        compile_text = runtime._compile
        runtime._compile = lambda text: compiles.append(text) or compile_text(text)
        assert client.evalsha(sha, 1, "n", "d") == ["n", "d", 3]
        assert compiles == []


@pytest.mark.limpyd_backends("fake", "redis")  # raw multi-key commands of one server
def test_commands_reach_the_server_intact_on_both(db):
    """The fake connection hands commands to its server as byte strings, not RESP text:
    arguments of every type, multi-word command names, huge commands, pipelines and
    transactions arrive as they do on Redis."""
    client = db.client
    odd = b"\x00\xff\r\n*3\r\n$3"  # looks like RESP, is a value
    assert client.set("bytes", odd) and client.get("bytes") == odd.decode(errors="surrogateescape")
    client.hset("h", mapping={"i": 7, "f": 1.5, "m": memoryview(b"mv"), "a": bytearray(b"ba")})
    assert client.hgetall("h") == {"i": "7", "f": "1.5", "m": "mv", "a": "ba"}
    sha = client.script_load("return 1")
    assert client.execute_command("SCRIPT EXISTS", sha, "0" * 40) == [1, 0]
    many = [str(i) for i in range(20_000)]
    assert client.sadd("many", *many) == 20_000
    with client.pipeline(transaction=True) as pipe:
        pipe.incr("n").sadd("s", "a", "b").scard("s")
        assert pipe.execute() == [1, 2, 2]
    with client.pipeline(transaction=False) as pipe:
        pipe.get("n").smembers("many").type("h")
        n, members, kind = pipe.execute()
    assert (n, kind) == ("1", "hash") and members == set(many)
    with pytest.raises(redis.exceptions.DataError):
        client.set("k", True)  # refused before anything is sent, as redis-py does
    with pytest.raises(redis.exceptions.ResponseError, match=r"(?i)unknown command"):
        client.execute_command("NOSUCHCOMMAND", "x")
    assert client.ping()


def test_registry_refuses_same_name_in_same_namespace(db):
    class Taken(model.RedisModel):
        database = db

    def define_again():
        class Taken(model.RedisModel):
            database = db

        return Taken

    # a different definition (another qualname) with the same name is refused
    with pytest.raises(ImplementationError, match="Taken"):
        define_again()

    class Elsewhere(model.RedisModel):
        database = db
        namespace = "other"

    assert db.get_model("taken") is Taken
    assert db.get_model("elsewhere", "other") is Elsewhere


def test_concrete_model_needs_a_database():
    class Orphan(model.RedisModel):
        name = fields.StringField()

    with pytest.raises(ImplementationError, match="Orphan has no database"):
        Orphan(name="x")
    with pytest.raises(ImplementationError, match="RedisDatabase"):

        class Wrong(model.RedisModel):
            database = "not a database"


@pytest.mark.limpyd_backends("fake", "redis")  # several dbs: a cluster has only db 0
def test_use_database_moves_registration(limpyd_database_factory):
    first = limpyd_database_factory()
    second = limpyd_database_factory(db=2)

    class Base(model.RedisModel):
        abstract = True
        database = first

    class Child(Base):
        name = fields.StringField()

    class Own(Base):
        """Naming the same database: not "another database defined" (manual), it moves."""

        database = first

    class OwnChild(Own):
        tag = fields.StringField()

    third = limpyd_database_factory(db=3)

    class Elsewhere(Base):
        database = third

    assert first.get_model("child") is Child
    Base.use_database(second)
    assert Child.database is second and first.get_model("child") is None
    assert second.get_model("child") is Child
    assert Own.database is OwnChild.database is second
    assert second.get_model("ownchild") is OwnChild and first.get_model("ownchild") is None
    assert Elsewhere.database is third and third.get_model("elsewhere") is Elsewhere
    # a refused move puts every attribute back, an own one included
    clash = limpyd_database_factory(db=4)

    type("OwnChild", (model.RedisModel,), {"database": clash})  # another model of that name
    with pytest.raises(ImplementationError, match=r"OwnChild"):
        Base.use_database(clash)
    assert Own.__dict__["database"] is second and Child.database is second


@pytest.mark.limpyd_backends("redis", "cluster")
def test_a_client_looks_redis_py_up_once(db, monkeypatch):
    # redis-py would read its version from the packages' metadata for every connection
    backend, versions = db.backend, []
    backend.client().ping()  # the one lookup of the process, if not done yet
    original = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: versions.append(name) or original(name))
    clients = [backend.client() for _ in range(3)]
    for client in clients:
        client.ping()
    assert versions == []
    pytest.importorskip("redis.driver_info")  # redis-py < 7: a lib_version option
    identities = [_identity_of(client) for client in clients]
    assert {(info.name, info.lib_version) for info in identities} == {
        ("redis-py", original("redis"))
    }
    assert len({id(info) for info in identities}) == 3  # each client its own, changeable one


@pytest.mark.limpyd_backends("redis", "cluster")
def test_a_given_client_identity_is_kept(db):
    backend = db.backend
    options = "cluster_kwargs" if backend.kind == "cluster" else "redis_kwargs"
    mine = pytest.importorskip("redis.driver_info").DriverInfo(name="my-app", lib_version="1")
    setattr(backend, options, {**getattr(backend, options), "driver_info": mine})
    client = backend.client()
    client.ping()
    assert _identity_of(client) is mine
    setattr(backend, options, {**getattr(backend, options), "driver_info": None})
    assert _identity_of(backend.client()) is None  # None: no CLIENT SETINFO, as redis-py
    if backend.kind == "redis":  # the URL's own options too
        named = RedisBackend(url=f"{backend.url}?lib_name=my-app").client()
        assert named.connection_pool.make_connection().driver_info.name == "my-app"


def _identity_of(client):
    """The DriverInfo a client's connections send (a cluster's: its first node's)."""
    if hasattr(client, "get_nodes"):
        client = client.get_nodes()[0].redis_connection
    return client.connection_pool.connection_kwargs["driver_info"]


def test_connect_leaves_the_commands_under_way_to_finish(db):
    """connect() closed the previous client under the threads using it: their commands failed
    with raw errors (a closed file, a bad file descriptor, a None socket)."""
    import threading

    class Thing(model.RedisModel):
        database = db
        name = fields.InstanceHashField(indexable=True)

    errors: list[BaseException] = []
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            try:
                Thing(name="x")
                len(Thing.collection(name="x"))
            except BaseException as error:  # any of them fails the test
                errors.append(error)
                return

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(200):
            db.connect(backend=db.backend)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    assert len(Thing.collection(name="x")) > 0


@pytest.mark.parametrize(
    "url",
    [
        "redis://user:top#secret@127.0.0.1:6450/0",
        "redis+cluster://user:top?secret@127.0.0.1:6450",
        "fakeredis://user:top/secret@x/0",
        "redis://127.0.0.1:6450/0?PASSWORD=topsecret",
    ],
)
def test_a_malformed_url_never_shows_its_password(url):
    """A password holding '#', '/' or '?' (not percent-encoded) ended the parser's host part
    early: no password was found to hide, and the message showed it, whole or in pieces."""
    with pytest.raises(ValueError, match=r"^Invalid (database|cluster) URL") as refused:
        RedisDatabase.from_url(url)
    assert "top" not in str(refused.value) and "secret" not in str(refused.value)


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6450/1?db=2&db=1", "redis://h?db=5&db=1", "fakeredis://a?db=1&db=2"]
)
def test_a_db_given_twice_in_the_query_is_refused(url):
    """redis-py reads the first `db=`, the check read the last: the data went to another db
    than the one checked."""
    with pytest.raises(ValueError, match=r"\?db= given 2 times"):
        RedisDatabase.from_url(url)


def test_a_cluster_url_db_in_its_query_is_checked():
    """`?db=3` in a cluster URL passed (the path's db was checked, not the query's), and
    redis-py refused it at first use, naming no URL; `?db=0` is no cluster option either."""
    with pytest.raises(ValueError, match=r"a cluster has only db 0, not \?db='3'"):
        RedisDatabase.from_url("redis+cluster://127.0.0.1:6450?db=3")
    database = RedisDatabase.from_url("redis+cluster://127.0.0.1:6450?db=0&socket_timeout=2")
    assert "db" not in database.backend.cluster_kwargs
    assert database.backend.cluster_kwargs["socket_timeout"] == 2
