"""The fake server's native run of limpyd's functions (limpyd/backends/native): its reads
straight from the server's data answer as the server's command table does, and a call runs
the native code only for a function the server has loaded."""

from __future__ import annotations

import itertools
import time

import pytest
import redis

from limpyd import lua
from limpyd.backends import FakeBackend
from limpyd.backends.native import NATIVE
from limpyd.backends.native.server import Server

pytestmark = pytest.mark.limpyd_backends("fake")  # the fake server's own machinery

#: Each fast read, with argument lists covering hits and misses.
READS = [
    (b"GET", [[b"s"], [b"h"], [b"missing"], [b"gone"]]),
    (b"HGET", [[b"h", b"f"], [b"h", b"nope"], [b"s", b"f"], [b"missing", b"f"]]),
    (b"HEXISTS", [[b"h", b"f"], [b"h", b"nope"], [b"set", b"f"], [b"missing", b"f"]]),
    (b"HGETALL", [[b"h"], [b"set"], [b"missing"]]),
    (b"SISMEMBER", [[b"set", b"a"], [b"set", b"z"], [b"h", b"a"], [b"missing", b"a"]]),
    (b"SMEMBERS", [[b"set"], [b"z"], [b"missing"], [b"gone"]]),
    (b"SCARD", [[b"set"], [b"s"], [b"missing"]]),
    (b"ZSCORE", [[b"z", b"m"], [b"z", b"x"], [b"z", b"inf"], [b"set", b"m"], [b"missing", b"m"]]),
    (
        b"ZMSCORE",
        [
            [b"z", b"m"],
            [b"z", b"x", b"inf", b"n", b"m", b"x"],
            [b"missing", b"m", b"n"],
            [b"set", b"m"],
            [b"gone", b"m"],
        ],
    ),
    (b"EXISTS", [[b"s"], [b"set"], [b"missing"], [b"gone"]]),
    (
        b"SMISMEMBER",
        [
            [b"set", b"a"],
            [b"set", b"z", b"a", b"\xc3\xa9"],
            [b"missing", b"a", b"b"],
            [b"h", b"a"],
            [b"gone", b"a"],
        ],
    ),
    (
        b"HMGET",
        [
            [b"h", b"f"],
            [b"h", b"f", b"nope", b"g", b"f"],
            [b"missing", b"f", b"g"],
            [b"s", b"f"],
            [b"gone", b"f"],
        ],
    ),
    (b"MGET", [[b"s"], [b"s", b"h", b"missing", b"gone", b"set", b"s"], [b"missing"]]),
    (b"TYPE", [[b"s"], [b"h"], [b"set"], [b"z"], [b"missing"], [b"gone"], [b"list"]]),
    (
        b"SINTER",
        [
            [b"set", b"set2"],
            [b"set2", b"set"],
            [b"set", b"missing"],
            [b"missing", b"h"],
            [b"h", b"set"],
            [b"set", b"h"],
            [b"set", b"gone"],
        ],
    ),
    (
        b"ZRANGE",
        [
            [b"missing", b"0", b"0", b"WITHSCORES"],
            [b"z", b"0", b"0", b"WITHSCORES"],
            [b"set", b"0", b"0", b"WITHSCORES"],
            [b"missing", b"x", b"0", b"WITHSCORES"],
            [b"z", b"0", b"-1", b"WITHSCORES"],
            [b"missing", b"0", b"0", b"BYLEX"],
        ],
    ),
    (
        b"SSCAN",
        [
            [b"set", b"0", b"COUNT", b"10"],
            [b"set", b"0", b"count", b"3"],
            [b"set", b"0", b"COUNT", b"2"],
            [b"set", b"2", b"COUNT", b"10"],
            [b"set", b"0", b"MATCH", b"a"],
            [b"set", b"0", b"COUNT", b"0"],
            [b"set", b"0", b"COUNT", b"-1"],
            [b"set", b"0", b"COUNT", b"010"],
            [b"set", b"0", b"COUNT", b"99999999999999999999"],
            [b"set", b"00", b"COUNT", b"10"],
            [b"h", b"0", b"COUNT", b"10"],
            [b"missing", b"0", b"COUNT", b"10"],
            [b"missing", b"0", b"COUNT", b"0"],
            [b"gone", b"0", b"COUNT", b"10"],
            [b"z", b"abc", b"COUNT", b"10"],
        ],
    ),
    (
        b"SCAN",
        [
            [b"0", b"MATCH", b"*", b"COUNT", b"100"],
            [b"0", b"match", b"s*", b"count", b"6"],
            [b"0", b"MATCH", b"*", b"COUNT", b"3"],
            [b"0", b"MATCH", b"[a-", b"COUNT", b"100"],
            [b"0", b"MATCH", b"\\*", b"COUNT", b"100"],
            [b"0", b"MATCH", b"*", b"COUNT", b"0"],
            [b"0", b"MATCH", b"*", b"COUNT", b"0100"],
            [b"4", b"MATCH", b"*", b"COUNT", b"100"],
            [b"0", b"TYPE", b"set", b"COUNT", b"100"],
            [b"0", b"COUNT", b"100", b"MATCH", b"*"],
        ],
    ),
]


@pytest.fixture
def fake():
    backend = FakeBackend(name=f"native-{time.monotonic_ns()}")
    raw = backend.client()
    raw.set("s", "text")
    raw.set("gone", "soon", px=1)
    raw.hset("h", mapping={"f": "v", "g": ""})
    raw.sadd("set", "a", "b", "\xe9")
    raw.sadd("set2", "b", "\xe9", "c", "d")
    raw.rpush("list", "a", "b")
    raw.zadd("z", {"m": 1.5, "inf": float("inf"), "n": -0.0})
    time.sleep(0.01)
    yield backend
    raw.close()
    FakeBackend.drop_server(backend.name)


def _socket(client):
    """The fake server's socket behind a connection of `client` (kept alive by the caller)."""
    connection = client.connection_pool.get_connection()
    connection.connect()
    return connection._sock


@pytest.mark.parametrize("name,calls", READS, ids=[name.decode() for name, _ in READS])
def test_each_fast_read_answers_as_the_command_table(fake, name, calls):
    client = fake.client()
    socket = _socket(client)
    bytes_client = fake.client()
    bytes_client.connection_pool.connection_kwargs["decode_responses"] = False
    for args in calls:
        with socket._server.lock:
            socket._db.time = time.time()
            native = Server(socket, read_only=True).pcall(name, *args)
        try:
            expected = _through_the_table(bytes_client, name.decode(), *args)
        except redis.ResponseError as error:  # redis-py drops the ERR of an error's text
            assert type(native).__name__ == "SimpleError"
            assert native.value.removeprefix("ERR ") == str(error)
            continue
        if name in (b"SMEMBERS", b"SINTER"):  # in no order (redis-py gives SMEMBERS as a set)
            native, expected = sorted(native), sorted(expected)
        elif isinstance(expected, dict):  # and HGETALL as a dict
            native = dict(zip(native[::2], native[1::2], strict=True))
        elif name == b"ZSCORE" and expected is not None:  # redis-py parses the score
            native = float(native)
        elif name == b"ZMSCORE":  # and the scores
            native = [None if score is None else float(score) for score in native]
        elif name in (b"SSCAN", b"SCAN"):  # and the cursor
            native = (int(native[0]), native[1])
        assert native == expected, (name, args)


def _through_the_table(client, *command):
    """`command`'s reply from the fake server's command table: in a transaction, whose
    commands are run by the table itself (a plain command may be a fast read too)."""
    with client.pipeline(transaction=True) as pipe:
        pipe.execute_command(*command)
        (reply,) = pipe.execute(raise_on_error=False)
    if isinstance(reply, Exception):
        raise reply
    return reply


#: Each fast write, with argument lists covering new, existing, emptied and wrong keys.
WRITES = [
    (b"SADD", [[b"set", b"a"], [b"set", b"z", b"y", b"z"], [b"new", b"x"], [b"h", b"a"]]),
    (b"SREM", [[b"set", b"a"], [b"set", b"zz"], [b"set", b"a", b"b", b"\xc3\xa9"], [b"h", b"a"]]),
    (b"SREM", [[b"missing", b"a"]]),
    (
        b"HSET",
        [
            [b"h", b"f", b"w"],
            [b"h", b"n", b"1", b"f", b"2"],
            [b"new", b"f", b""],
            [b"set", b"f", b"v"],
        ],
    ),
    (b"DEL", [[b"s"], [b"set", b"set", b"missing", b"h"], [b"gone"], [b"z"]]),
    (b"ZREM", [[b"z", b"m"], [b"z", b"x"], [b"missing", b"m"], [b"set", b"a"], [b"z", b"m", b"x"]]),
    (b"ZREM", [[b"z2", b"a", b"x", b"b"], [b"z2", b"c"]]),
    (b"ZADD", [[b"z", b"1.5", b"m"], [b"z", b"2", b"m", b"-0", b"n"], [b"new", b"inf", b"x"]]),
    (b"ZADD", [[b"z2", b"1", b"a", b"1", b"a"], [b"z2", b"-inf", b"b", b"+1e3", b"c"]]),
    (b"ZADD", [[b"z", b"nan", b"m"], [b"z", b"1", b"m", b"x", b"n"], [b"s", b"1", b"m"]]),
    (b"ZADD", [[b"z", b"NX", b"5", b"m"], [b"z", b"CH", b"XX", b"5", b"m"], [b"z", b" 1", b"m"]]),
    (b"SET", [[b"s", b"new"], [b"h", b"x"], [b"missing", b""], [b"ttl", b"v"], [b"gone", b"1"]]),
    (b"INCR", [[b"n"], [b"n"], [b"missing"], [b"ttl2"], [b"s"], [b"h"], [b"max"], [b"gone"]]),
    (b"INCR", [[b"spaced"], [b"plus"], [b"-0"], [b"neg"]]),
]


def _dump(client):
    """Every key of the server's db 0 with its type and value."""
    out = {}
    for key in client.keys("*"):
        kind = client.type(key)
        read = {
            b"string": client.get,
            b"hash": client.hgetall,
            b"set": lambda k: sorted(client.smembers(k)),
            b"zset": lambda k: client.zrange(k, 0, -1, withscores=True),
        }[kind]
        out[key] = (kind, read(key), client.ttl(key) > 0)
    return out


@pytest.mark.parametrize(
    "name,calls", WRITES, ids=[f"{n.decode()}-{i}" for i, (n, _) in enumerate(WRITES)]
)
def test_each_fast_write_does_what_the_command_table_does(name, calls):
    """On two servers holding the same data: the same replies, the same data after, and the
    same fate for a transaction WATCHing the written key."""
    fast, table = (FakeBackend(name=f"native-{kind}-{time.monotonic_ns()}") for kind in "ft")
    clients = []
    for backend in (fast, table):
        client = backend.client()
        client.connection_pool.connection_kwargs["decode_responses"] = False
        client.set("s", "text")
        client.hset("h", mapping={"f": "v", "g": ""})
        client.sadd("set", "a", "b", "\xe9")
        client.zadd("z", {"m": 1.5})
        client.set("gone", "soon", px=1)
        client.zadd("z2", {"a": 1, "b": 2, "c": 3})
        client.set("ttl", "7", ex=100)
        client.set("ttl2", "7", ex=100)
        client.mset({"n": "41", "max": "9223372036854775807", "spaced": " 1", "plus": "+1"})
        client.mset({"-0": "-0", "neg": "-5"})
        clients.append(client)
    time.sleep(0.01)
    try:
        for args in calls:
            watchers = []
            for client in clients:
                pipe = client.pipeline()
                pipe.watch(args[0])
                watchers.append(pipe)
            socket = _socket(clients[0])
            with socket._server.lock:
                socket._db.time = time.time()
                got = Server(socket, read_only=False).pcall(name, *args)
            try:
                expected = clients[1].execute_command(name.decode(), *args)
            except redis.ResponseError as error:
                # redis-py drops the ERR of an error's text
                assert type(got).__name__ == "SimpleError"
                assert got.value.removeprefix("ERR ") == str(error)
            else:
                if expected is True:  # redis-py's reading of OK
                    expected = b"OK"
                assert got == expected, (name, args)
            assert _dump(clients[0]) == _dump(clients[1]), (name, args)
            fates = []
            for pipe in watchers:
                pipe.multi()
                pipe.ping()
                try:
                    fates.append(pipe.execute())
                except redis.WatchError:
                    fates.append("aborted")
            assert fates[0] == fates[1], (name, args)
    finally:
        for client in clients:
            client.close()
        for backend in (fast, table):
            FakeBackend.drop_server(backend.name)


def test_every_limpyd_function_runs_natively_and_only_once_loaded(db):
    assert set(NATIVE) >= {lua.SCRIPT.function("read").encode()}
    client = db.connection
    client.function_flush()
    name = lua.SCRIPT.function("read")
    with pytest.raises(redis.ResponseError, match=r"(?i)function not found"):
        client.fcall(name, 1, "{t}:probe")
    lua.SCRIPT.load(client)
    assert client.fcall(name, 1, "{t}:probe") == []


def test_native_and_lua_reads_agree(db):
    """The same `read` call, run natively (FCALL) and by the Lua code (EVAL), on every kind."""
    client = db.connection
    client.sadd("{t}:set", "b", "a")
    client.hset("{t}:hash", mapping={"y": "1", "x": "2"})
    client.rpush("{t}:list", "z", "y")
    client.zadd("{t}:zset", {"m": 2, "n": 1})
    client.set("{t}:string", "v")
    keys = ["{t}:probe", "{t}:set", "{t}:hash", "{t}:list", "{t}:zset", "{t}:string", "{t}:tmp"]
    argv = list(
        itertools.chain(
            ["state", "set", 2, ""],
            ["state", "hash", 3, ""],
            ["state", "hashfield", 3, "x"],
            ["state", "list", 4, ""],
            ["state", "zset", 5, ""],
            ["state", "string", 6, ""],
            ["simulate", "set", 2, "", 7, 2, "SADD", "c"],
            ["simulate", "string", 6, "", 7, 1, "INCR"],
        )
    )
    lua.SCRIPT.load(client)
    native = client.fcall(lua.SCRIPT.function("read"), len(keys), *keys, *argv)
    scripted = client.eval(lua.SCRIPT.text, len(keys), *keys, "read", *argv)
    assert native == scripted
    assert native[-1][1][0] == "E"  # INCR of a text: the error, reported
    assert client.exists("{t}:tmp") == 0


def _outcome(call, *args):
    """A call's reply, or its error's text."""
    try:
        return call(*args)
    except redis.ResponseError as error:
        return f"error: {error}"


def test_native_and_lua_apply_read_malformed_arguments_alike(db):
    """An apply call cut short anywhere, or with a text where a number belongs, fails (or
    not) natively as in Lua, and a failed one writes nothing. (The messages may differ: Lua
    reads a missing or malformed number as nil and fails where it uses it.)"""
    from limpyd import protocol
    from limpyd_testing.snapshot import snapshot

    client = db.connection
    token = "\x00tok\x00"
    instructions = [
        *(protocol.PROBE, protocol.Key("{t}:probe"), protocol.NEW_PK, protocol.Key("{t}:max")),
        protocol.Key("{t}:coll"),
        *(protocol.FREE, protocol.Key("{t}:coll"), "9", protocol.Key("{t}:exp")),
        *(protocol.CALL, *protocol.encode_command(("HSET", f"{{t}}:obj:{token}", "f", "v"), token)),
        *(protocol.CALL, *protocol.encode_command(("SADD", "{t}:coll", token), token)),
    ]
    keys, argv = protocol.split(instructions, "{t}:probe")
    variants = [argv[:cut] for cut in range(1, len(argv) + 1)]
    variants += [[*argv[:at], "x", *argv[at + 1 :]] for at in range(len(argv))]
    lua.SCRIPT.load(client)
    function = lua.SCRIPT.function("apply")
    failures = set()
    for args in variants:
        native = _outcome(client.fcall, function, len(keys), *keys, *args)
        native_data = snapshot(db)
        client.flushdb()
        scripted = _outcome(client.eval, lua.SCRIPT.text, len(keys), *keys, "apply", *args)
        assert snapshot(db) == native_data, args
        client.flushdb()
        if isinstance(native, str):
            assert isinstance(scripted, str), (args, scripted)
            if native.startswith("error: limpyd:"):  # read before any write
                assert native_data == {}, args
            failures.add(native)
        else:
            assert native == scripted, args
    assert "error: limpyd: arguments end too soon" in failures
    assert "error: limpyd: b'x' is not a number" in failures


def _read_call(name, *keys_and_args):
    """The arguments of an FCALL of the `read` function: a state per key given."""
    keys = ["{t}:probe", *keys_and_args]
    argv = [item for i in range(2, len(keys) + 1) for item in ("state", "string", i, "")]
    return [name, len(keys), *keys, *argv]


def test_a_direct_call_answers_as_one_sent_through_the_server(db):
    """A client's FCALL runs on the fake server at once; a pipeline's goes through the
    server's command table: the same replies, values and errors."""
    client = db.connection
    lua.SCRIPT.load(client)
    client.set("{t}:a", "\xe9t\xe9")
    client.set("{t}:b", "2")
    read = lua.SCRIPT.function("read")
    calls = [
        _read_call(read, "{t}:a", "{t}:b", "{t}:missing"),
        [read, 1, "{t}:probe", "state", "kind-of-nothing", 1, ""],  # a refusal of the function
        [read, 1, "{t}:probe", "state"],  # malformed: the arguments end too soon
        ["limpyd_no_such_function", 0],
    ]
    for call in calls:
        with client.pipeline(transaction=False) as pipe:
            pipe.fcall(*call)
            (through_server,) = pipe.execute(raise_on_error=False)
        try:
            direct = client.fcall(*call)
        except redis.ResponseError as error:
            assert type(error) is type(through_server) and str(error) == str(through_server)
        else:
            assert direct == through_server
    assert client.fcall(*calls[0]) == [["\xe9t\xe9"], ["2"], []]


def test_a_direct_call_sees_the_server_clock_and_its_state(db):
    """Keys expired since the last command are gone for a direct call too, and a server
    that was disconnected refuses it as any command."""
    client = db.connection
    lua.SCRIPT.load(client)
    read = lua.SCRIPT.function("read")
    client.set("{t}:a", "soon", px=1)
    time.sleep(0.01)
    assert client.fcall(*_read_call(read, "{t}:a")) == [[]]
    server = client.connection_pool.get_connection()._server
    server.connected = False
    try:
        with pytest.raises(redis.ConnectionError):
            client.fcall(*_read_call(read, "{t}:a"))
    finally:
        server.connected = True


def test_a_direct_call_is_checked_against_the_users_acl(db):
    client = db.connection
    lua.SCRIPT.load(client)
    client.acl_setuser("reader", enabled=True, passwords=["+pw"], commands=["+get"], keys=["*"])
    backend = db.backend
    other = FakeBackend(name=backend.name, db=backend.db, username="reader", password="pw").client()
    try:
        assert other.get("{t}:a") is None
        with pytest.raises(redis.exceptions.NoPermissionError):
            other.fcall(*_read_call(lua.SCRIPT.function("read"), "{t}:a"))
    finally:
        other.close()
        client.acl_deluser("reader")


def test_a_direct_calls_connection_is_one_per_thread_and_closes_with_the_client(db):
    import threading

    client = db.backend.client()
    lua.SCRIPT.load(client)
    client.set("{t}:a", "1")
    call = _read_call(lua.SCRIPT.function("read"), "{t}:a")
    replies = []

    def run():
        replies.append(client.fcall(*call))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.fcall(*call) == [["1"]]
    assert replies == [[["1"]]] * 3
    before = len(db.connection.client_list())
    client.close()
    assert len(db.connection.client_list()) < before


def test_a_killed_direct_connection_fails_once_then_connects_again(db):
    client = db.connection
    lua.SCRIPT.load(client)
    call = _read_call(lua.SCRIPT.function("read"), "{t}:a")
    assert client.fcall(*call) == [[]]
    killer = db.backend.client()
    try:
        assert killer.client_kill_filter(skipme=True) >= 1
    finally:
        killer.close()
    with pytest.raises(redis.ConnectionError):
        client.fcall(*call)
    assert client.fcall(*call) == [[]]


@pytest.mark.parametrize("protocol", [2, 3])
def test_a_plain_clients_commands_answer_as_redis_pys_own_way(protocol):
    """The fake client sends a plain client's commands straight to the server; a pipeline's go
    redis-py's way: the same parsed replies (callbacks, undecoded DUMP) and errors, in both
    protocols (fast reads answer RESP2 only: RESP3 has maps, sets and doubles)."""
    backend = FakeBackend(name=f"plain-{time.monotonic_ns()}", protocol=protocol)
    client = backend.client()
    client.set("s", "t\xe9xt")
    client.hset("h", mapping={"f": "1", "g": "2"})
    client.zadd("z", {"m": 1.5, "n": -2})
    client.sadd("set", "b", "a", "\xe9", "c")
    calls = [
        ("get", ("s",), {}),
        ("get", ("missing",), {}),
        ("hgetall", ("h",), {}),
        ("zrange", ("z", 0, -1), {"withscores": True}),
        ("dump", ("s",), {}),
        ("incr", ("s",), {}),  # not an integer
        ("lpush", ("h", "x"), {}),  # WRONGTYPE
        ("execute_command", ("NOSUCHCOMMAND",), {}),
        ("set", ("k", "v"), {"nx": True, "get": True}),
        ("exists", ("s", "h", "missing"), {}),
        ("exists", ("h",), {}),
        ("type", ("z",), {}),
        ("type", ("missing",), {}),
        ("sscan", ("set", 0), {"count": 10}),
        ("sscan", ("set", 0), {"count": 4}),
        ("sscan", ("set", 0), {"count": 3}),
        ("sscan", ("set", 0), {"count": 10, "match": "?"}),
        ("sscan", ("h", 0), {"count": 10}),
        ("sscan", ("missing", 0), {"count": 10}),
        ("smembers", ("set",), {}),
        ("scan", (0,), {"match": "s*", "count": 100}),
        ("scan", (0,), {"match": "*", "count": 2}),
        ("zscore", ("z", "m"), {}),
        ("zscore", ("z", "n"), {}),
        ("zscore", ("z", "x"), {}),
        ("zscore", ("h", "x"), {}),
        ("zmscore", ("z", ["m", "x", "n"]), {}),
        ("zmscore", ("missing", ["m"]), {}),
        ("smismember", ("set", ["a", "x"]), {}),
    ]
    fast = ("get", "hgetall", "exists", "type", "sscan", "scan", "smembers", "smismember")
    fast += ("zscore", "zmscore")  # the fast reads' reference is the table's, in a transaction
    for name, args, kwargs in calls:
        with client.pipeline(transaction=name in fast) as pipe:
            getattr(pipe, name)(*args, **kwargs)
            (expected,) = pipe.execute(raise_on_error=False)
        client.delete("k")
        try:
            got = getattr(client, name)(*args, **kwargs)
        except redis.ResponseError as error:
            assert type(error) is type(expected) and str(error) == str(expected), name
        else:
            assert got == expected, name
        client.delete("k")
    client.close()
    FakeBackend.drop_server(backend.name)


@pytest.mark.parametrize(
    "name,calls",
    [(name, calls) for name, calls in READS if name in (b"GET", b"HGET", b"ZSCORE", b"ZRANGE")],
    ids=lambda value: value.decode() if isinstance(value, bytes) else "",
)
def test_a_reader_answers_as_call(fake, name, calls):
    client = fake.client()
    socket = _socket(client)
    server = Server(socket, read_only=True)
    read = server.reader(name)
    for args in calls:
        with socket._server.lock:
            socket._db.time = time.time()
            expected = server.pcall(name, *args)
            try:
                got = read(*args)
            except Exception as error:  # compared with pcall's error
                got = error
        assert type(got) is type(expected), (name, args)
        assert (str(got) if type(got).__name__ == "SimpleError" else got) == (
            str(expected) if type(expected).__name__ == "SimpleError" else expected
        ), (name, args)


#: ZADD argument lists (after the key) whose scores the native apply checks without a probe
#: when the table's parser accepts them all.
ZADD_ARGS = [
    [b"1", b"m"],
    [b"1.5", b"m", b"-inf", b"n", b"+inf", b"o", b"inf", b"p", b"-0", b"q", b"1e-400", b"r"],
    [b"NX", b"CH", b"2", b"m"],
    [b"nan", b"m"],
    [b"", b"m"],
    [b" 1", b"m"],
    [b"1 ", b"m"],
    [b"1e999", b"m"],
    [b"0x10", b"m"],
    [b"abc", b"m"],
    [b"1\x00", b"m"],
    [b"1", b"m", b"nan", b"n"],
    [b"1", b"m", b"2"],
    [b"1"],
    [b"XX"],
    [],
]


@pytest.mark.parametrize("args", ZADD_ARGS, ids=repr)
@pytest.mark.parametrize("probe", [b"probe", b"s"])
def test_zadd_scores_are_checked_as_the_probe_does(fake, args, probe):
    """`_zadd_error` answers as the ZADD XX on the probe key it skips when the scores parse."""
    from limpyd.backends.native.apply import _zadd_error

    client = fake.client()
    socket = _socket(client)
    server = Server(socket, read_only=False)
    command = [b"ZADD", b"z", *args]
    flags = [arg for arg in args if arg in (b"NX", b"XX", b"CH")]
    with socket._server.lock:
        socket._db.time = time.time()
        error = _zadd_error(server, probe, command)
        probed = server.pcall(b"ZADD", probe, b"XX", *args[len(flags) :])
    assert error == (probed.value.encode() if type(probed).__name__ == "SimpleError" else None)
    assert client.exists("probe") == 0
