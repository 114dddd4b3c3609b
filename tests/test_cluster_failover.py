"""A cluster changing under a writer: a slot moved to another primary, a primary killed.

Each test starts its own cluster (`limpyd_testing.cluster`), so the session's is left alone.
Writes either succeed or raise (redis-py follows MOVED and ASK; a command whose reply was lost
is not sent again), and the data and indexes are consistent afterwards. A killed primary may
take with it what it acknowledged just before but had not yet sent to its replica (Redis
replicates asynchronously): those writes alone may be missing after its failover.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from redis.crc import key_slot

from limpyd import fields, model
from limpyd.contrib.collection import ExtendedCollectionManager
from limpyd.database import RedisDatabase
from limpyd.exceptions import DoesNotExist
from limpyd_testing import integrity
from limpyd_testing.cluster import RedisClusterExecutor
from limpyd_testing.server import find_redis_server
from limpyd_testing.snapshot import snapshot

pytestmark = [pytest.mark.slow, pytest.mark.limpyd_backends("cluster")]


def _models(database: RedisDatabase) -> type[model.RedisModel]:
    class Account(model.RedisModel):
        namespace = "moving"
        name = fields.StringField(indexable=True, unique=True)
        balance = fields.StringField(indexable=True)
        tags = fields.SetField(indexable=True)

    Account.use_database(database)
    return Account


class _Writer(threading.Thread):
    """Creates, updates and deletes accounts until stopped; records what succeeded."""

    def __init__(self, Account: Any) -> None:
        super().__init__(daemon=True)
        self.Account = Account
        self.stop = threading.Event()
        self.created: set[str] = set()
        self.deleted: set[str] = set()
        #: When each creation or deletion was acknowledged (time.monotonic()), by name.
        self.acknowledged: dict[tuple[str, str], float] = {}
        self.successes = 0
        self.change_started = self.change_ended = 0.0
        self.errors: list[str] = []
        self.random = random.Random(7)

    def run(self) -> None:
        number = 0
        while not self.stop.is_set():
            number += 1
            try:
                self._step(number)
                self.successes += 1
            except DoesNotExist:
                self.successes += 1  # deleted before: a consistent answer
            except Exception as error:
                self.errors.append(type(error).__name__)
                time.sleep(0.01)

    def _step(self, number: int) -> None:
        action = self.random.random()
        live = sorted(self.created - self.deleted)
        if action < 0.5 or not live:
            name = f"w{number}"
            self.Account(name=name, balance="0", tags=["new", name])
            self.created.add(name)
            self.acknowledged["created", name] = time.monotonic()
        elif action < 0.85:
            account = self.Account.get(name=self.random.choice(live))
            account.balance.set(str(number))
            account.tags.sadd(f"n{number}")
        else:
            name = self.random.choice(live)
            self.Account.get(name=name).delete()
            self.deleted.add(name)
            self.acknowledged["deleted", name] = time.monotonic()


@pytest.fixture
def cluster_with_replicas(limpyd_backend: str) -> Iterator[RedisClusterExecutor]:
    executable = find_redis_server()
    if executable is None:
        pytest.skip("no redis-server to start a cluster with")
    with RedisClusterExecutor(executable, primaries=3, replicas_per_primary=1) as cluster:
        yield cluster


def _check_after(url: str, writer: _Writer, lossy: tuple[float, float] | None = None) -> None:
    """Consistent data holding every acknowledged write, but those acknowledged within the
    time span `lossy` (by a primary killed then, which may not have replicated them)."""
    fresh = RedisDatabase.from_url(url)
    Account = _models(fresh)
    assert integrity.check(Account) == []

    def sure(kind: str, names: set[str]) -> set[str]:
        if lossy is None:
            return names
        return {n for n in names if not lossy[0] <= writer.acknowledged[kind, n] <= lossy[1]}

    alive = sure("created", writer.created - writer.deleted)
    rows = Account.collection(manager=ExtendedCollectionManager).values_list("name", flat=True)
    found = set(rows)
    assert alive <= found  # every acknowledged creation is there (unacknowledged ones may be)
    assert not (sure("deleted", writer.deleted) & found)


def _run_writer_around(Account: Any, change: Any) -> _Writer:
    for number in range(30):
        Account(name=f"a{number}", balance="0", tags=["seed"])
    writer = _Writer(Account)
    writer.created |= {f"a{number}" for number in range(30)}
    writer.acknowledged |= {("created", f"a{number}"): 0.0 for number in range(30)}
    writer.start()
    time.sleep(0.3)
    before = writer.successes
    writer.change_started = time.monotonic()
    change()
    writer.change_ended = time.monotonic()
    time.sleep(0.5)
    writer.stop.set()
    writer.join(10)
    assert not writer.is_alive()
    assert before > 0 and writer.successes > before, writer.errors  # it wrote, and went on
    return writer


def _accounts_slot(cluster: RedisClusterExecutor) -> tuple[Any, int, Any]:
    """The Account model on `cluster`, the slot of its keys, and a primary not serving it."""
    Account = _models(RedisDatabase.from_url(cluster.url))
    slot = key_slot(Account._meta.collection_key.encode())
    source = cluster.primary_of_slot(slot)
    return Account, slot, next(node for node in cluster.primary_nodes if node is not source)


def test_a_slot_moved_to_another_primary_while_a_writer_runs(cluster_with_replicas):
    cluster = cluster_with_replicas
    Account, slot, target = _accounts_slot(cluster)

    writer = _run_writer_around(Account, lambda: cluster.migrate_slot(slot, target, batch=5))

    assert cluster.primary_of_slot(slot) is target
    _check_after(cluster.url, writer)


def test_a_primary_killed_while_a_writer_runs(cluster_with_replicas):
    cluster = cluster_with_replicas
    Account, slot, _ = _accounts_slot(cluster)
    primary = cluster.primary_of_slot(slot)

    writer = _run_writer_around(Account, lambda: cluster.kill_primary(primary))

    assert cluster.primary_of_slot(slot) is not primary
    running = ",".join(f"{node.host}:{node.port}" for node in cluster.nodes if node.running)
    # what the killed primary acknowledged in its last second may not have reached its replica
    lossy = (writer.change_started - 1.0, writer.change_ended)
    _check_after(f"redis+cluster://{running}", writer, lossy)


@pytest.fixture
def small_cluster(limpyd_backend: str) -> Iterator[RedisClusterExecutor]:
    executable = find_redis_server()
    if executable is None:
        pytest.skip("no redis-server to start a cluster with")
    with RedisClusterExecutor(executable, primaries=2) as cluster:
        yield cluster


def _move(source_admin: Any, target: Any, keys: list[str]) -> None:
    source_admin.execute_command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys)


def _refused(call: Any) -> bool:
    """Whether `call` raised the cluster's refusal (TRYAGAIN, retried until redis-py's TTL)."""
    try:
        call()
    except Exception as error:  # redis-py's TryAgainError or ClusterError("TTL exhausted")
        assert "TRYAGAIN" in str(error) or "TTL" in str(error), repr(error)
        return True
    return False


def test_calls_while_a_slot_is_half_moved_are_refused_and_change_nothing(small_cluster):
    # A call that ran with some of its keys on each node would read the keys it builds at
    # run time (an old index entry, the fields of the instances a query found) as missing:
    # every call declares the model's never-existing probe key, so Redis refuses them all
    # while the slot migrates.
    cluster = small_cluster
    Account, slot, target = _accounts_slot(cluster)
    account = Account(name="ann", balance="1", tags=["a"])
    Account(name="bob", balance="1", tags=["b"]).expire(1000)  # the expiry zset exists
    before = snapshot(Account._meta.database)
    source_admin = cluster.admin(cluster.open_migration(slot, target))
    pk = account.pk.get()

    _move(source_admin, target, [account.balance.key])  # the value moved, not its index
    assert _refused(lambda: account.balance.set("2"))
    rest = [k for k in source_admin.keys("*") if ":obj:" not in k]
    _move(source_admin, target, rest)  # every key a query declares moved, not the instances
    values = ExtendedCollectionManager
    assert _refused(lambda: list(Account.collection(manager=values, balance="1").values("name")))
    assert _refused(lambda: Account.get(name="ann"))
    assert _refused(lambda: Account(name="cid", balance="1"))

    cluster.migrate_slot(slot, target)
    fresh = _models(RedisDatabase.from_url(cluster.url))
    assert snapshot(fresh._meta.database) == before  # every key as it was, byte for byte
    assert integrity.check(fresh) == []
    assert fresh.get(name="ann").balance.get() == "1"
    assert not fresh.collection(name="cid")
    rows = fresh.collection(manager=values, balance="1").values_list("name", flat=True)
    assert sorted(rows) == ["ann", "bob"]
    fresh.get(name="ann").balance.set("2")  # once moved, it writes
    assert list(fresh.collection(balance="2")) == [pk]
    assert integrity.check(fresh) == []
