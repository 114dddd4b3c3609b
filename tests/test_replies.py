"""Replies reach the connection waiting for them, in order, whoever sends them: on the fake
backend a socket's replies are held without a lock (`_Responses` in
limpyd/backends/fake_connection.py), so these run on every backend and must agree."""

from __future__ import annotations

import threading
import time

import pytest
import redis


@pytest.fixture
def client(db):
    return db.connection


def _subscribed(client, channel: str):
    pubsub = client.pubsub()
    pubsub.subscribe(channel)
    confirmation = pubsub.get_message(timeout=5)
    assert confirmation is not None and confirmation["type"] == "subscribe"
    return pubsub


def test_a_waiting_subscriber_gets_what_another_thread_publishes(client):
    pubsub = _subscribed(client, "news")
    received: list[object] = []

    def listen() -> None:
        for message in pubsub.listen():  # blocks until a message comes
            received.append(message["data"])
            if len(received) == 3:
                return

    listener = threading.Thread(target=listen)
    listener.start()
    time.sleep(0.05)  # the listener is waiting before the first message is sent
    for text in ("one", "two", "three"):
        client.publish("news", text)
    listener.join(timeout=10)
    pubsub.close()
    assert not listener.is_alive()
    assert received == ["one", "two", "three"]


def test_get_message_waits_for_its_timeout_then_for_a_message(client):
    pubsub = _subscribed(client, "news")
    started = time.monotonic()
    assert pubsub.get_message(timeout=0.2) is None
    assert time.monotonic() - started >= 0.15
    timer = threading.Timer(0.1, client.publish, ("news", "late"))
    timer.start()
    message = pubsub.get_message(timeout=5)
    timer.join()
    pubsub.close()
    assert message is not None and message["data"] == "late"


def test_pipelines_of_many_threads_get_their_own_replies(client):
    for n in range(50):
        client.set(f"key:{n}", str(n))
    failures: list[str] = []

    def read(offset: int) -> None:
        for _ in range(20):
            with client.pipeline(transaction=False) as pipe:
                for n in range(offset, offset + 10):
                    pipe.get(f"key:{n}")
                    pipe.exists(f"key:{n}")
                replies = pipe.execute()
            expected = [value for n in range(offset, offset + 10) for value in (str(n), 1)]
            if replies != expected:
                failures.append(f"{offset}: {replies!r}")

    threads = [threading.Thread(target=read, args=(offset,)) for offset in range(0, 40, 10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []


def test_a_sadd_adding_nothing_wakes_no_watcher(db):
    """fakeredis woke a set's WATCHers at every SADD, adding a member or not: a transaction
    watching the set was tried again for nothing, where Redis runs it once."""
    from limpyd import fields, model
    from limpyd.database import RedisDatabase

    class Box(model.RedisModel):
        database = db
        tags = fields.SetField(indexable=True)

    box = Box(tags=["a"])
    other = RedisDatabase(backend=db.backend).client  # another client of the same server
    elsewhere = f"{Box._meta.hash_tag}:x"  # in the set's slot, for a cluster
    writes = [
        (lambda: other.sadd(box.tags.key, "a"), 0),  # a client's SADD adding nothing
        (lambda: box.tags.sadd("a"), 0),  # limpyd's, run on the server
        (lambda: other.sadd(box.tags.key, "b"), 1),  # adding: the transaction is refused
    ]
    for write, added in writes:
        with db.client.pipeline() as pipeline:
            pipeline.watch(box.tags.key)
            assert write() == added
            pipeline.multi()
            pipeline.set(elsewhere, "1")
            if added:
                with pytest.raises(redis.WatchError):
                    pipeline.execute()
            else:
                assert pipeline.execute() == [True]


@pytest.mark.parametrize("transaction", [False, True], ids=["pipeline", "transaction"])
def test_time_in_a_pipeline_goes_with_its_keys(db, transaction):
    """redis-py refuses TIME in a cluster pipeline (no key, no node); limpyd's cluster
    pipelines send it to the node of their keys. Queued first in a transaction it took a
    random slot (the keys after it then refused as another slot's), a second one recursed."""
    key = "{t}:k"
    with db.client.pipeline(transaction=transaction) as pipeline:
        pipeline.time()
        pipeline.set(key, "1")
        pipeline.time()
        pipeline.get(key)
        first, done, second, value = pipeline.execute()
    assert done is True and value == "1"
    assert all(isinstance(t, tuple) and len(t) == 2 for t in (first, second))
    assert first <= second
