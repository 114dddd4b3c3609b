"""The throw-away Redis Cluster: assembly, clean stop, slot migration and failover."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from redis.cluster import ClusterNode, RedisCluster

from limpyd_testing.cluster import CLUSTER_SLOTS, RedisClusterExecutor
from limpyd_testing.server import RedisServerError, RedisServerExecutor

from ._helpers import process_alive, wait_gone

pytestmark = pytest.mark.slow

# `redis_server_path` (tests/plugin/conftest.py) skips these tests when there is no
# redis-server; a low node timeout keeps the failover short.
NODE_TIMEOUT_MS = 1000


def cluster_client(nodes: list[RedisServerExecutor]) -> RedisCluster:
    return RedisCluster(
        startup_nodes=[ClusterNode(node.host, node.port) for node in nodes if node.running],
        decode_responses=True,
    )


def served_slots(cluster: RedisClusterExecutor, node: RedisServerExecutor) -> set[int]:
    """The slots `node` serves, as it sees it."""
    slots: set[int] = set()
    for first, last, primary, *_ in cluster.admin(node).cluster("slots"):
        if int(primary[1]) == node.port:
            slots.update(range(first, last + 1))
    return slots


def key_in(client: RedisCluster, slots: set[int], prefix: str) -> str:
    """A key (with a hash tag) whose slot is one of `slots`."""
    keys = (f"{prefix}:{{{n}}}" for n in itertools.count())
    return next(key for key in keys if client.keyslot(key) in slots)


def recording_wrapper(tmp_path: Path, redis_server_path: str, fail_from: int | None = None):
    """A redis-server wrapper writing each server's pid to a file; the `fail_from`th start
    (0-based) and the next ones fail instead."""
    script = tmp_path / "redis-server"
    count, pids = tmp_path / "count", tmp_path / "pids"
    fail = (
        f'[ "$n" -ge {fail_from} ] && {{ echo "broken on purpose"; exit 3; }}'
        if fail_from is not None
        else ""
    )
    script.write_text(
        "#!/bin/sh\n"
        f"n=$(cat {count} 2>/dev/null || echo 0); echo $((n + 1)) > {count}\n"
        f"{fail}\n"
        f"echo $$ >> {pids}\n"
        f'exec {redis_server_path} "$@"\n'
    )
    script.chmod(0o755)
    return script, lambda: [int(pid) for pid in pids.read_text().split()]


def test_cluster_serves_every_primary_and_stops_cleanly(redis_server_path):
    cluster = RedisClusterExecutor(redis_server_path, node_timeout_ms=NODE_TIMEOUT_MS)
    with cluster as started:
        assert started is cluster
        nodes = cluster.nodes
        assert len(nodes) == 3 and cluster.primary_nodes == nodes
        assert cluster.startup_nodes == [("127.0.0.1", node.port) for node in nodes]
        assert cluster.url == "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in nodes)
        assert cluster.version == nodes[0].version and cluster.version.startswith(("7.", "8."))
        assert len({cluster.node_id(node) for node in nodes}) == 3
        for node in nodes:
            info = cluster.admin(node).cluster("info")
            assert info["cluster_state"] == "ok"
            assert info["cluster_known_nodes"] == "3"
            assert info["cluster_slots_assigned"] == str(CLUSTER_SLOTS)
        assert sum(len(served_slots(cluster, node)) for node in nodes) == CLUSTER_SLOTS

        client = cluster_client(nodes)
        for node in nodes:
            key = key_in(client, served_slots(cluster, node), "landing")
            client.set(key, node.port)
            assert cluster.admin(node).get(key) == str(node.port)  # on that primary
            assert client.get(key) == str(node.port)
            assert cluster.primary_of_slot(client.keyslot(key)) is node
        client.close()

        with pytest.raises(RedisServerError, match="has no replica to promote"):
            cluster.kill_primary(nodes[0])
        assert nodes[0].running

        pids = [node.pid for node in nodes]
        directories = [node.directory for node in nodes]
        assert all(directory is not None and directory.is_dir() for directory in directories)
    assert cluster.nodes == []
    assert not any(node.running for node in nodes)
    assert all(wait_gone(pid) for pid in pids)
    assert not any(directory.exists() for directory in directories)
    cluster.stop()  # again: nothing to do


def test_a_node_failing_to_start_stops_the_others(tmp_path, redis_server_path):
    script, started_pids = recording_wrapper(tmp_path, redis_server_path, fail_from=2)
    cluster = RedisClusterExecutor(script, startup_timeout=10)
    with pytest.raises(RedisServerError, match=r"(?s)exited with code 3.*broken on purpose"):
        cluster.start()
    assert cluster.nodes == []
    pids = started_pids()
    assert len(pids) == 2
    assert all(wait_gone(pid) for pid in pids)


def test_a_cluster_not_formed_in_time_names_its_nodes_and_stops_them(tmp_path, redis_server_path):
    script, started_pids = recording_wrapper(tmp_path, redis_server_path)
    # A primary says cluster_state:ok 2 s after it started at the earliest (Redis's own delay).
    cluster = RedisClusterExecutor(script, startup_timeout=1.5)
    with pytest.raises(
        RedisServerError,
        match=r"Redis Cluster of nodes (127\.0\.0\.1:\d+(, )?){3}: not reached in time: ",
    ):
        cluster.start()
    assert cluster.nodes == []
    pids = started_pids()
    assert len(pids) == 3
    assert all(wait_gone(pid) for pid in pids)


def test_migrate_slot_moves_the_keys_and_clients_follow(redis_server_path):
    with RedisClusterExecutor(redis_server_path, node_timeout_ms=NODE_TIMEOUT_MS) as cluster:
        client = cluster_client(cluster.nodes)
        source, target = cluster.primary_nodes[0], cluster.primary_nodes[2]
        tag = key_in(client, served_slots(cluster, source), "moving")
        slot = client.keyslot(tag)
        keys = [f"{tag}:{n}" for n in range(250)]  # three batches of 100
        client.mset({key: key.upper() for key in keys})  # one slot: allowed
        other = key_in(client, served_slots(cluster, source) - {slot}, "staying")
        client.set(other, "stays")

        cluster.migrate_slot(slot, target, batch=100)

        assert cluster.primary_of_slot(slot) is target
        assert cluster.admin(target).cluster("countkeysinslot", slot) == 250
        assert cluster.admin(source).cluster("countkeysinslot", slot) == 0
        for node in cluster.nodes:
            assert cluster.admin(node).cluster("info")["cluster_state"] == "ok"
        assert client.mget(keys) == [key.upper() for key in keys]  # a stale client: MOVED
        fresh = cluster_client(cluster.nodes)
        assert fresh.mget(keys) == [key.upper() for key in keys]
        assert fresh.get(other) == "stays"
        assert cluster.primary_of_slot(client.keyslot(other)) is source
        fresh.close()
        client.close()


def test_kill_primary_promotes_its_replica_and_keeps_the_data(redis_server_path):
    with RedisClusterExecutor(
        redis_server_path, replicas_per_primary=1, node_timeout_ms=NODE_TIMEOUT_MS
    ) as cluster:
        primaries = cluster.primary_nodes
        replicas = [node for node in cluster.nodes if node not in primaries]
        assert len(primaries) == 3 and len(replicas) == 3
        assert cluster.startup_nodes == [("127.0.0.1", node.port) for node in primaries]
        followed = set()
        for replica in replicas:
            info = cluster.admin(replica).info("replication")
            assert info["role"] == "slave" and info["master_link_status"] == "up"
            followed.add(info["master_port"])
        assert followed == {node.port for node in primaries}

        victim = primaries[1]
        client = cluster_client(primaries)
        slots = served_slots(cluster, victim)
        keys = [key_in(client, slots, f"kept-{n}") for n in range(20)]
        victim_admin = cluster.admin(victim)
        for key in keys:
            victim_admin.set(key, key)  # on the primary itself: WAIT covers these writes
        assert victim_admin.execute_command("WAIT", 1, 5000) == 1
        elsewhere = key_in(client, served_slots(cluster, primaries[0]), "elsewhere")
        client.set(elsewhere, "here")
        client.close()
        victim_pid, victim_directory = victim.pid, victim.directory

        promoted = cluster.kill_primary(victim)

        assert not victim.running and wait_gone(victim_pid) and not process_alive(victim_pid)
        assert victim_directory is not None and not victim_directory.exists()
        assert promoted in replicas and promoted.running
        assert cluster.admin(promoted).info("replication")["role"] == "master"
        assert served_slots(cluster, promoted) == slots
        assert cluster.primary_of_slot(min(slots)) is promoted
        running = [node for node in cluster.nodes if node.running]
        assert len(running) == 5
        for node in running:
            assert cluster.admin(node).cluster("info")["cluster_state"] == "ok"
        after = cluster_client(running)
        assert [after.get(key) for key in keys] == keys
        assert after.get(elsewhere) == "here"
        after.set(keys[0], "written after the failover")
        assert cluster.admin(promoted).get(keys[0]) == "written after the failover"
        after.close()
