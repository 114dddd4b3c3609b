"""A throw-away local Redis Cluster for test sessions.

`RedisClusterExecutor` starts `RedisServerExecutor` nodes in cluster mode and assembles them
with plain commands (`CLUSTER ADDSLOTSRANGE`, `MEET`, `REPLICATE`), not `redis-cli --cluster`:
only `redis-server` is needed, and the test knows which node serves which slots. `start()`
returns once every node sees all 16384 slots served, the replicas are synced and a cluster
client writes on every primary. `migrate_slot` and `kill_primary` help testing resharding
and failover.

    with RedisClusterExecutor(primaries=3, replicas_per_primary=1) as cluster:
        client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in cluster.startup_nodes])

Every node has an explicit cluster bus port (`--cluster-port`): the default, the node's port
+ 10000, does not exist for the free ports above 55535 the OS often hands out.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from .server import DEFAULT_HOST, PortInUse, RedisServerError, RedisServerExecutor, free_port

__all__ = ["CLUSTER_SLOTS", "RedisClusterExecutor"]

#: The number of hash slots of a Redis Cluster.
CLUSTER_SLOTS = 16384


class RedisClusterExecutor:
    """Starts and stops a throw-away Redis Cluster of `primaries * (1 + replicas_per_primary)`
    local nodes; the slots are split evenly among the primaries.

    `startup_timeout` bounds each node's start, then the assembly of the cluster (and each
    wait of the helpers). `node_timeout_ms` is `cluster-node-timeout`: lower means faster
    failovers. Raises `RedisServerError` (after stopping every node) when the cluster does not
    form. Usable as a context manager.
    """

    def __init__(
        self,
        executable: str | os.PathLike[str] | None = None,
        *,
        primaries: int = 3,
        replicas_per_primary: int = 0,
        host: str = DEFAULT_HOST,
        startup_timeout: float = 20.0,
        node_timeout_ms: int = 2000,
    ) -> None:
        if primaries < 1 or replicas_per_primary < 0:
            raise ValueError("a cluster needs at least one primary and no negative replicas")
        self.executable = executable
        self.primaries = primaries
        self.replicas_per_primary = replicas_per_primary
        self.host = host
        self.startup_timeout = startup_timeout
        self.node_timeout_ms = node_timeout_ms
        self._nodes: list[RedisServerExecutor] = []
        self._bus_ports: dict[int, int] = {}
        self._ids: dict[int, str] = {}
        self._admins: dict[int, redis.Redis] = {}

    # Information --------------------------------------------------------------------------

    @property
    def nodes(self) -> list[RedisServerExecutor]:
        """Every node started: the primaries first, then the replicas."""
        return list(self._nodes)

    @property
    def primary_nodes(self) -> list[RedisServerExecutor]:
        """The nodes started as primaries (a failover does not change this list)."""
        return self._nodes[: self.primaries]

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """`(host, port)` of the primaries, for a cluster client to start from."""
        return [(node.host, node.port) for node in self.primary_nodes]

    @property
    def url(self) -> str:
        """`redis+cluster://host:port,host:port,...`: the primaries as a seed list."""
        return "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in self.startup_nodes)

    @property
    def version(self) -> str:
        """The redis-server version of the first node ("" before start)."""
        return self._nodes[0].version if self._nodes else ""

    def node_id(self, node: RedisServerExecutor) -> str:
        """The cluster node id of `node` (`CLUSTER MYID`, remembered after it stops)."""
        if node.port not in self._ids:
            self._ids[node.port] = self.admin(node).cluster("myid")
        return self._ids[node.port]

    def admin(self, node: RedisServerExecutor) -> redis.Redis:
        """A plain client (decode_responses=True) on `node`; closed by `stop()`."""
        if node.port not in self._admins:
            self._admins[node.port] = redis.Redis(
                node.host, node.port, decode_responses=True, socket_timeout=5.0,
                socket_connect_timeout=2.0, retry=Retry(NoBackoff(), 0),
            )  # fmt: skip
        return self._admins[node.port]

    def primary_of_slot(self, slot: int) -> RedisServerExecutor:
        """The running node that serves `slot`, by its own account (`CLUSTER NODES`)."""
        for node in self._running():
            me = next(
                v for v in self.admin(node).cluster("nodes").values() if "myself" in v["flags"]
            )
            if "master" in me["flags"] and any(
                int(b[0]) <= slot <= int(b[-1]) for b in me["slots"]
            ):
                return node
        raise RedisServerError(f"no running node of {self._names()} serves slot {slot}")

    # Life cycle ---------------------------------------------------------------------------

    def start(self) -> RedisClusterExecutor:
        """Start the nodes, assemble the cluster and wait until it serves every slot."""
        if self._nodes:
            return self
        try:
            for _ in range(self.primaries * (1 + self.replicas_per_primary)):
                self._nodes.append(self._start_node())
            self._assemble(time.monotonic() + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_node(self) -> RedisServerExecutor:
        for attempt in range(3):  # a bus port free when picked may be taken meanwhile
            bus_port = free_port(self.host)
            args = [
                *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                *("--cluster-node-timeout", str(self.node_timeout_ms)),
                *("--cluster-port", str(bus_port)),
                # A replica's first sync starts at once, not after the default 5 s.
                *("--repl-diskless-sync-delay", "0"),
            ]
            node = RedisServerExecutor(
                self.executable, host=self.host, startup_timeout=self.startup_timeout,
                extra_args=args,
            )  # fmt: skip
            try:
                node.start()
            except PortInUse:
                if attempt == 2:
                    raise
            else:
                self._bus_ports[node.port] = bus_port
                return node
        raise AssertionError("unreachable")

    def _assemble(self, deadline: float) -> None:
        for index, node in enumerate(self.primary_nodes):
            self.admin(node).cluster("addslotsrange", *self._slot_range(index))
        seed = self.admin(self._nodes[0])
        # The bus port is given: the default one, port + 10000, may not exist.
        for node in self._nodes[1:]:
            seed.cluster("meet", node.host, node.port, self._bus_ports[node.port])
        roles = {self.node_id(node): "-" for node in self._nodes}  # node id -> its primary's
        self._wait("every node knows every other", self._views_differ(roles), deadline)
        for index, replica in enumerate(self._nodes[self.primaries :]):
            primary_id = self.node_id(self.primary_nodes[index // self.replicas_per_primary])
            self.admin(replica).cluster("replicate", primary_id)
            roles[self.node_id(replica)] = primary_id
        self._wait("every node sees every replica", self._views_differ(roles), deadline)
        self._wait("every replica in sync", self._unsynced_replicas, deadline)
        self._wait("cluster_state:ok and every slot served", self._not_ok, deadline)
        self._wait("a cluster client writes on every primary", self._client_fails, deadline)

    def stop(self) -> None:
        """Stop every node and remove their directories (again: nothing happens)."""
        for client in self._admins.values():
            client.close()
        self._admins.clear()
        nodes, self._nodes = self._nodes, []
        for node in nodes:
            node.stop()
        self._bus_ports.clear()
        self._ids.clear()

    def __enter__(self) -> RedisClusterExecutor:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Helpers for tests --------------------------------------------------------------------

    def wait_until_ok(self, timeout: float | None = None) -> None:
        """Wait until every running node says `cluster_state:ok` and sees every slot served
        by a running node."""
        deadline = time.monotonic() + (self.startup_timeout if timeout is None else timeout)
        self._wait("cluster_state:ok and every slot served", self._not_ok, deadline)

    def open_migration(self, slot: int, target: RedisServerExecutor) -> RedisServerExecutor:
        """Mark `slot` IMPORTING on the primary `target` and MIGRATING on the one serving it,
        moving no key (`MIGRATE` moves them, `migrate_slot` all the way); that primary."""
        source = self.primary_of_slot(slot)
        self.admin(target).cluster("setslot", slot, "IMPORTING", self.node_id(source))
        self.admin(source).cluster("setslot", slot, "MIGRATING", self.node_id(target))
        return source

    def migrate_slot(self, slot: int, target: RedisServerExecutor, batch: int = 100) -> None:
        """Move `slot` and its keys to the primary `target` (IMPORTING/MIGRATING, `MIGRATE`,
        `SETSLOT NODE`), and wait until every running node sees it there."""
        source = self.primary_of_slot(slot)
        if source is target:
            return
        self.open_migration(slot, target)
        source_admin, target_id = self.admin(source), self.node_id(target)
        while keys := source_admin.cluster("getkeysinslot", slot, batch):
            source_admin.execute_command(
                "MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys
            )
        others = [n for n in self._running() if n is not source and n is not target]
        for node in [target, source, *others]:
            if self._primary_port(node) is None:
                self.admin(node).cluster("setslot", slot, "NODE", target_id)

        def elsewhere() -> str | None:
            for node in self._running():
                owner = self._slot_owners(node).get(slot)
                if owner != (target.host, target.port):
                    return f"{self._name(node)} sees slot {slot} on {owner}"
            return None

        self._wait(f"slot {slot} moved", elsewhere, time.monotonic() + self.startup_timeout)

    def kill_primary(
        self, primary: RedisServerExecutor, timeout: float | None = None
    ) -> RedisServerExecutor:
        """SIGKILL `primary`, wait until one of its replicas replaces it and the cluster is
        ok again; return that replica. A failover needs a majority of the primaries alive."""
        replicas = [node for node in self._running() if self._primary_port(node) == primary.port]
        if not replicas:
            raise RedisServerError(f"{self._name(primary)} has no replica to promote")
        masters = [n for n in self._running() if self._primary_port(n) is None]
        if len(masters) < 3:
            raise RedisServerError("a failover needs at least 3 running primaries")
        assert primary.pid is not None
        os.kill(primary.pid, signal.SIGKILL)
        primary.stop()  # reaps the process, removes its directory
        admin = self._admins.pop(primary.port, None)
        if admin is not None:
            admin.close()
        deadline = time.monotonic() + (self.startup_timeout if timeout is None else timeout)

        def not_promoted() -> str | None:
            if any(self._primary_port(node) is None for node in replicas):
                return None
            return f"no replica of {self._name(primary)} promoted yet"

        self._wait("a replica promoted", not_promoted, deadline)
        self._wait("cluster_state:ok and every slot served", self._not_ok, deadline)
        self._wait("every replica in sync", self._unsynced_replicas, deadline)
        return next(node for node in replicas if self._primary_port(node) is None)

    # Internals ----------------------------------------------------------------------------

    def _running(self) -> list[RedisServerExecutor]:
        return [node for node in self._nodes if node.running]

    def _name(self, node: RedisServerExecutor) -> str:
        return f"{node.host}:{node.port}"

    def _names(self) -> str:
        return ", ".join(self._name(node) for node in self._nodes)

    def _primary_port(self, node: RedisServerExecutor) -> int | None:
        """The port of the primary `node` replicates, None when it is a primary itself."""
        info = self.admin(node).info("replication")
        return int(info["master_port"]) if info["role"] == "slave" else None

    def _slot_owners(self, node: RedisServerExecutor) -> dict[int, tuple[str, int]]:
        """Slot -> (host, port) of its primary, as `node` sees it (`CLUSTER SLOTS`)."""
        owners: dict[int, tuple[str, int]] = {}
        for first, last, primary, *_ in self.admin(node).cluster("slots"):
            owners.update(dict.fromkeys(range(first, last + 1), (primary[0], int(primary[1]))))
        return owners

    def _wait(self, what: str, problem: Callable[[], str | None], deadline: float) -> None:
        """Poll `problem` (None: done; else what is missing) until done or `deadline`."""
        while True:
            died = [n for n in self._nodes if n.pid is not None and not n.running]
            if died:
                raise RedisServerError(
                    f"Redis Cluster node {self._name(died[0])} exited while waiting for "
                    f"{what}; its output:\n{died[0].output().strip()}"
                )
            try:
                found = problem()
            except (redis.RedisError, RedisClusterException) as exc:
                found = f"{type(exc).__name__}: {exc}"
            if found is None:
                return
            if time.monotonic() > deadline:
                raise RedisServerError(
                    f"Redis Cluster of nodes {self._names()}: not reached in time: {what} "
                    f"(last seen: {found})"
                )
            time.sleep(0.05)

    def _slot_range(self, index: int) -> tuple[int, int]:
        """The first and last slots given to the `index`th primary."""
        count = self.primaries
        return index * CLUSTER_SLOTS // count, (index + 1) * CLUSTER_SLOTS // count - 1

    def _views_differ(self, roles: dict[str, str]) -> Callable[[], str | None]:
        """A check that every node knows exactly the nodes of `roles`, each node id with its
        primary's (`-`: a primary), nodes still in handshake (another id) excepted."""

        def problem() -> str | None:
            for node in self._nodes:
                view = self.admin(node).cluster("nodes").values()
                if {v["node_id"]: v["master_id"] for v in view} != roles:
                    return f"{self._name(node)} knows {len(view)} nodes, not yet as they are"
            return None

        return problem

    def _unsynced_replicas(self) -> str | None:
        for node in self._running():
            info = self.admin(node).info("replication")
            if info["role"] == "slave" and info.get("master_link_status") != "up":
                return f"replica {self._name(node)} not in sync with its primary yet"
        return None

    def _not_ok(self) -> str | None:
        running = {(node.host, node.port) for node in self._running()}
        for node in self._running():
            state = self.admin(node).cluster("info").get("cluster_state")
            if state != "ok":
                return f"{self._name(node)} says cluster_state:{state}"
            owners = self._slot_owners(node)
            served = sum(1 for owner in owners.values() if owner in running)
            if served != CLUSTER_SLOTS:
                return f"{self._name(node)} sees {served} of {CLUSTER_SLOTS} slots served"
        return None

    def _client_fails(self) -> str | None:
        client = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in self.startup_nodes],
            decode_responses=True,
            socket_timeout=5.0,
        )
        try:
            for index, primary in enumerate(self.primary_nodes):
                first, last = self._slot_range(index)
                keys = (f"limpyd-cluster-probe:{{{n}}}" for n in range(CLUSTER_SLOTS * 100))
                key = next(k for k in keys if first <= key_slot(k.encode()) <= last)
                client.set(key, "1")
                landed = client.get(key) == "1" and self.admin(primary).get(key) == "1"
                client.delete(key)
                if not landed:
                    return f"a key for slots {first}-{last} did not land on {self._name(primary)}"
        finally:
            client.close()
        return None
