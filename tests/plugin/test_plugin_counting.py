"""`count_commands` / `limpyd_commands` count the same way on every backend."""

from __future__ import annotations

import hashlib
import threading

import pytest
from redis.exceptions import NoScriptError

from limpyd_testing.counting import count_commands

#: redis-py's cluster client sends the scripts of a pipeline its own way (no script in a
#: pipeline): what these count is a single server's protocol.
_SINGLE_SERVER = pytest.mark.limpyd_backends("fake", "redis")


def test_single_command_is_one_round_trip(limpyd_redis, limpyd_commands):
    with limpyd_commands() as counted:
        limpyd_redis.set("{t}a", "1")
    assert (counted.round_trips, counted.commands, counted.names) == (1, 1, ["SET"])


def test_pipeline_of_three_is_one_round_trip(limpyd_redis, limpyd_commands):
    with limpyd_commands() as counted:
        pipe = limpyd_redis.pipeline()
        pipe.set("{t}a", "1")
        pipe.get("{t}a")
        pipe.delete("{t}a")
        assert pipe.execute() == [True, "1", 1]
    assert counted.round_trips == 1
    assert counted.commands == 3
    assert counted.names == ["SET", "GET", "DEL"]


def test_plain_pipeline_and_empty_pipeline(limpyd_redis, limpyd_commands):
    with limpyd_commands() as counted:
        pipe = limpyd_redis.pipeline(transaction=False)
        assert pipe.execute() == []  # nothing is sent
        pipe.set("{t}a", "1")
        pipe.set("{t}b", "2")
        pipe.execute()
    assert (counted.round_trips, counted.commands) == (1, 2)


def test_watch_multi_exec(limpyd_redis, limpyd_commands):
    limpyd_redis.set("{t}a", "1")
    with limpyd_commands() as counted:
        with limpyd_redis.pipeline() as pipe:
            pipe.watch("{t}a")
            value = pipe.get("{t}a")
            pipe.multi()
            pipe.set("{t}a", int(value) + 1)
            pipe.set("{t}b", "x")
            pipe.execute()
    assert counted.names == ["WATCH", "GET", "SET", "SET"]
    assert (counted.round_trips, counted.commands) == (3, 4)
    assert limpyd_redis.get("{t}a") == "2"


def test_transaction_helper(limpyd_redis, limpyd_commands):
    def change(pipe):
        current = pipe.get("{t}a")
        pipe.multi()
        pipe.set("{t}a", f"{current}!")

    limpyd_redis.set("{t}a", "x")
    with limpyd_commands() as counted:
        limpyd_redis.transaction(change, "{t}a")
    assert counted.names == ["WATCH", "GET", "SET"]
    assert counted.round_trips == 3
    assert limpyd_redis.get("{t}a") == "x!"


def test_pipeline_dropped_while_watching_sends_unwatch(limpyd_redis, limpyd_commands):
    with limpyd_commands() as counted:
        with limpyd_redis.pipeline() as pipe:
            pipe.watch("{t}a")
    assert counted.names == ["WATCH", "UNWATCH"]
    assert counted.round_trips == 2


def test_evalsha_falling_back_to_eval_is_two_round_trips(limpyd_redis, limpyd_commands):
    script = "return 'limpyd-counting-test'"
    sha = hashlib.sha1(script.encode()).hexdigest()
    limpyd_redis.script_flush()
    with limpyd_commands() as counted:
        try:
            result = limpyd_redis.evalsha(sha, 0)
        except NoScriptError:
            result = limpyd_redis.eval(script, 0)
    assert result == "limpyd-counting-test"
    assert counted.names == ["EVALSHA", "EVAL"]
    assert counted.round_trips == 2


@_SINGLE_SERVER
def test_registered_script_in_a_pipeline(limpyd_redis, limpyd_commands):
    script = limpyd_redis.register_script("return ARGV[1]")
    limpyd_redis.script_flush()
    with limpyd_commands() as counted:
        pipe = limpyd_redis.pipeline()
        script(args=["x"], client=pipe)
        pipe.get("{t}a")
        assert pipe.execute() == ["x", None]
    # The pipeline checks (and loads) its scripts before it is sent.
    assert counted.names == ["SCRIPT EXISTS", "SCRIPT LOAD", "EVALSHA", "GET"]
    assert counted.round_trips == 3


def test_nested_counters(limpyd_redis, limpyd_commands):
    with limpyd_commands() as outer:
        limpyd_redis.set("{t}a", "1")
        with limpyd_commands() as inner:
            limpyd_redis.get("{t}a")
            limpyd_redis.pipeline().set("{t}b", "1").set("{t}c", "1").execute()
        limpyd_redis.get("{t}b")
    assert inner.names == ["GET", "SET", "SET"]
    assert inner.round_trips == 2
    assert outer.names == ["SET", "GET", "SET", "SET", "GET"]
    assert outer.round_trips == 4


def test_counting_stops_and_unpatches_at_exit(limpyd_redis, limpyd_commands):
    with limpyd_commands() as counted:
        limpyd_redis.set("{t}a", "1")
    limpyd_redis.set("{t}a", "2")
    assert counted.round_trips == 1
    assert "execute_command" not in vars(limpyd_redis)
    assert "pipeline" not in vars(limpyd_redis)


def test_reset(limpyd_redis, limpyd_commands):
    with limpyd_commands() as counted:
        limpyd_redis.set("{t}a", "1")
        counted.reset()
        limpyd_redis.get("{t}a")
    assert (counted.round_trips, counted.names) == (1, ["GET"])


def test_counters_of_two_databases_are_separate(
    limpyd_database, limpyd_database_factory, limpyd_commands
):
    other = limpyd_database_factory()
    with limpyd_commands() as first, limpyd_commands(other) as second:
        limpyd_database.connection.set("{t}a", "1")
        other.connection.get("{t}a")
        other.connection.get("{t}a")
    assert (first.round_trips, second.round_trips) == (1, 2)


def test_one_count_of_several_databases(limpyd_database, limpyd_database_factory):
    other = limpyd_database_factory()
    with count_commands(limpyd_database, other, limpyd_database) as counted:  # each once
        limpyd_database.connection.set("{t}a", "1")
        other.connection.get("{t}a")
        with other.connection.pipeline() as pipe:
            pipe.get("{t}a").get("{t}a").execute()
    assert (counted.round_trips, counted.commands) == (3, 4)
    assert counted.names == ["SET", "GET", "GET", "GET"]
    other.connection.get("{t}a")  # the counter stopped, on both clients
    assert counted.round_trips == 3


def test_count_commands_from_threads(limpyd_database):
    with count_commands(limpyd_database) as counted:
        threads = [
            threading.Thread(target=lambda i=i: limpyd_database.connection.incr(f"n{i % 3}"))
            for i in range(12)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert counted.round_trips == 12
    assert counted.names == ["INCRBY"] * 12


@pytest.mark.parametrize("raising", [True, False])
def test_counted_when_the_server_answers_an_error(limpyd_redis, limpyd_commands, raising):
    limpyd_redis.set("s", "text")
    with limpyd_commands() as counted:
        if raising:
            with pytest.raises(Exception, match="WRONGTYPE"):
                limpyd_redis.lpush("s", "x")
        else:
            limpyd_redis.get("s")
    assert counted.round_trips == 1


def test_pipeline_database_pipeline_opened_before_counting(limpyd_database_factory):
    from limpyd.contrib.database import PipelineDatabase

    database = limpyd_database_factory(PipelineDatabase)
    with database.pipeline() as pipe:
        with count_commands(database) as counted:
            database.connection.set("{t}a", "1")
            database.connection.get("{t}a")
            assert pipe.execute() == [True, "1"]
    assert (counted.round_trips, counted.commands, counted.names) == (1, 2, ["SET", "GET"])


def test_pipeline_database_pipeline_opened_while_counting(limpyd_database_factory):
    from limpyd.contrib.database import PipelineDatabase

    database = limpyd_database_factory(PipelineDatabase)
    with count_commands(database) as counted:
        with database.pipeline() as pipe:
            database.connection.set("{t}a", "1")
            pipe.execute()
        database.client.get("{t}a")
    assert (counted.round_trips, counted.names) == (2, ["SET", "GET"])


def test_what_the_client_refuses_before_sending_is_not_counted(
    limpyd_redis, limpyd_commands, limpyd_backend
):
    from redis.exceptions import DataError

    with limpyd_commands() as counted:
        with pytest.raises(DataError):  # redis-py refuses to encode None
            limpyd_redis.set("{t}a", None)
        pipe = limpyd_redis.pipeline(transaction=False)
        pipe.set("{t}a", None)
        with pytest.raises(DataError):
            pipe.execute()
        limpyd_redis.get("{t}a")
    assert (counted.round_trips, counted.names) == (1, ["GET"])


def test_a_counter_puts_back_a_patch_it_found(limpyd_redis, limpyd_commands, monkeypatch):
    seen = []
    original = limpyd_redis.execute_command

    def spy(*args, **options):
        seen.append(args[0])
        return original(*args, **options)

    monkeypatch.setattr(limpyd_redis, "execute_command", spy)
    with limpyd_commands() as counted:
        limpyd_redis.set("{t}a", 1)
    limpyd_redis.get("{t}a")
    assert seen == ["SET", "GET"] and counted.names == ["SET"]


def test_count_commands_takes_databases_only(limpyd_redis, limpyd_commands):
    with pytest.raises(TypeError, match=r"RedisDatabase objects.*count_client_commands"):
        limpyd_commands(limpyd_redis).__enter__()  # refused on entering
    limpyd_redis.set("{t}a", 1)
    assert "execute_command" not in limpyd_redis.__dict__  # nothing left installed
