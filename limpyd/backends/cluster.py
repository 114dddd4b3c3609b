"""`RedisClusterBackend`: a Redis Cluster, through redis-py's `RedisCluster`.

A cluster spreads keys over 16384 hash slots; a script or a transaction may only touch keys
of one slot. limpyd's keys carry their model's `cluster_group` as hash tag (see `keys`), so
every call limpyd makes for one group stays in one slot. The client made here differs from
redis-py's in these places:

- FCALL, FCALL_RO, EVAL_RO and EVALSHA_RO are routed from the keys they declare (`numkeys`
  then the keys), as redis-py routes EVAL: redis-py would otherwise ask a node for the keys
  of each such call (COMMAND GETKEYS, one more round trip). Keys of several slots are refused
  before anything is sent, with an error naming them (`CrossSlotError`).
- FUNCTION LOAD queued in a pipeline (what the first call on a server lacking the library
  sends, see `lua`) is run at once on every primary, where redis-py refuses a pipelined
  command for several nodes; its reply takes its place among the pipeline's replies.
- `pipeline()` is a MULTI/EXEC transaction by default, as `Redis.pipeline()`, and a
  transaction's replies are parsed (redis-py's cluster transactions return them raw).
- TIME in a pipeline (a transaction too) goes to the node of the pipeline's first command
  (redis-py refuses it).
- Its pipelines encode keys as the client does (redis-py's would refuse the non-UTF-8 bytes
  that `encoding_errors="surrogateescape"` lets through).
- `response_callbacks`, as on `redis.Redis`: how replies of commands a script ran are parsed.

Commands are never sent again after a lost reply (`CLIENT_DEFAULTS`); MOVED and ASK
redirections are followed, as redis-py does.
"""

from __future__ import annotations

import random
import threading
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.cluster import (
    ClusterNode,
    ClusterPipeline,
    RedisCluster,
    TransactionStrategy,
)
from redis.crc import REDIS_CLUSTER_HASH_SLOTS
from redis.exceptions import CrossSlotTransactionError, RedisClusterException, RedisError

from limpyd.backends.base import Backend, client_options, redact_url, with_defaults

__all__ = ["CrossSlotError", "LimpydRedisCluster", "RedisClusterBackend", "parse_cluster_url"]

#: Commands whose keys follow their third argument, `numkeys`.
_SCRIPT_CALLS = frozenset({"FCALL", "FCALL_RO", "EVAL_RO", "EVALSHA_RO", "EVAL", "EVALSHA"})

#: URL schemes of a cluster, and whether they use TLS.
CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}


class CrossSlotError(RedisClusterException):
    """One call would touch keys of several hash slots of a cluster."""


class _ScriptRouting:
    """Routes limpyd's calls by the keys they declare (mixed into the client and its
    pipelines)."""

    def determine_slot(self, *args: Any) -> Any:
        if str(args[0]).upper() not in _SCRIPT_CALLS:
            # type-ignored: a mixin: the client or pipeline class it is mixed in has determine_slot
            return super().determine_slot(*args)  # type: ignore[misc]
        keys = args[3 : 3 + int(args[2])]
        if not keys:
            return random.randrange(REDIS_CLUSTER_HASH_SLOTS)
        # type-ignored: a mixin: the client or pipeline class it is mixed in has keyslot
        keyslot = self.keyslot  # type: ignore[attr-defined]
        slots = {keyslot(key) for key in keys}
        if len(slots) > 1:
            raise CrossSlotError(_cross_slot_message(keys, keyslot))
        return slots.pop()


def _cross_slot_message(keys: tuple[Any, ...], keyslot: Any) -> str:
    by_slot: dict[int, Any] = {}
    for key in keys:
        by_slot.setdefault(keyslot(key), key)
    examples = ", ".join(repr(key) for key in list(by_slot.values())[:4])
    return (
        f"one call would touch keys of {len(by_slot)} hash slots of the cluster (e.g. "
        f"{examples}): the models a call involves must share a cluster_group, and a key of "
        "your own a call names (intersect, store, from_stored, sort by_score) must carry "
        "their hash tag, as in f'{Model._meta.hash_tag}:my-key'"
    )


class LimpydClusterPipeline(_ScriptRouting, ClusterPipeline):
    """A cluster pipeline routing limpyd's calls, and running FUNCTION LOAD on every
    primary at once (see the module's docstring)."""

    _limpyd_client: LimpydRedisCluster
    _limpyd_loads: list[tuple[int, Any]]

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if str(args[0]).upper() != "FUNCTION LOAD":
            # type-ignored: redis-py leaves this method unannotated
            return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        try:
            reply: Any = self._limpyd_client.execute_command(*args, **options)
        except RedisError as error:  # a reply, as the pipeline would give it
            reply = error
        self._limpyd_loads.append((len(self) + len(self._limpyd_loads), reply))
        return self

    def watch(self, *names: Any) -> Any:
        """WATCH these keys; refused (CrossSlotError, nothing sent) if they are in several
        hash slots: a cluster transaction runs on one."""
        slots = {self.keyslot(name) for name in names}
        if len(slots) > 1:
            raise CrossSlotError(_cross_slot_message(names, self.keyslot))
        # type-ignored: redis-py leaves this method unannotated
        return super().watch(*names)  # type: ignore[no-untyped-call]

    def determine_slot(self, *args: Any) -> Any:
        if str(args[0]).upper() != "TIME":
            return super().determine_slot(*args)
        # TIME has no key: the slot of the first command queued that has one (in a
        # transaction, None: the transaction's slot, whatever comes later)
        for queued in self._execution_strategy.command_queue:
            if str(queued.args[0]).upper() != "TIME":
                return self.determine_slot(*queued.args)
        return None

    def time(self, **options: Any) -> Any:
        """TIME, on the node of the first command queued (whose scripts read that clock):
        redis-py refuses TIME in a cluster pipeline, having no node to send it to."""
        slot = self.determine_slot("TIME")
        node = (
            self.nodes_manager.get_node_from_slot(slot)
            if slot is not None
            else self.get_random_node()
        )
        return self.execute_command("TIME", target_nodes=node, **options)

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        loads, self._limpyd_loads = self._limpyd_loads, []
        strategy = self._execution_strategy
        # redis-py parses no reply of a cluster transaction ('OK' for SET, lists for HGETALL):
        # they are parsed here, as every other pipeline's are
        unparsed = (
            [(c.args, c.options) for c in strategy.command_queue]
            if isinstance(strategy, TransactionStrategy)
            else None
        )
        try:
            replies = list(super().execute(raise_on_error)) if len(self) else []
        except CrossSlotTransactionError as error:
            raise CrossSlotError(
                "a transaction on a cluster runs on one hash slot, and this one's keys are in "
                "several: keep a transaction to the models of one cluster_group"
            ) from error
        if unparsed and len(replies) == len(unparsed):
            callbacks = self._limpyd_client.response_callbacks
            replies = [
                _parsed(callbacks, args, options, reply)
                for (args, options), reply in zip(unparsed, replies, strict=True)
            ]
        for position, reply in loads:
            if raise_on_error and isinstance(reply, Exception):
                raise reply
            replies.insert(position, _one_reply(reply))
        return replies

    def reset(self) -> None:  # type: ignore[override]  # (redis-py types RESET the command)
        # type-ignored: redis-py leaves this method unannotated
        super().reset()  # type: ignore[no-untyped-call]
        self._limpyd_loads = []


#: Options of a command that say where it goes, not how to read its reply.
_ROUTING = frozenset({"keys", "target_nodes"})


def _parsed(callbacks: Any, args: tuple[Any, ...], options: dict[str, Any], reply: Any) -> Any:
    """`reply` to the command `args` as redis-py's callback for it makes it."""
    callback = callbacks.get(str(args[0]).upper())
    if callback is None or isinstance(reply, Exception):
        return reply
    return callback(reply, **{k: v for k, v in options.items() if k not in _ROUTING})


def _one_reply(reply: Any) -> Any:
    """FUNCTION LOAD's reply from every primary: the library's name (the same everywhere)."""
    if isinstance(reply, dict):
        return next(iter(reply.values()), None)
    return reply


#: Whether this thread runs redis-py's split of a command by hash slot (see
#: `LimpydRedisCluster._execute_pipeline_by_slot`).
_splitting = threading.local()


class LimpydRedisCluster(_ScriptRouting, RedisCluster):
    """redis-py's cluster client, with limpyd's routing (see the module's docstring)."""

    #: COMMAND's reply by cluster (its seed nodes): redis-py asks it of every new client, a
    #: reply of some 200 kB that takes most of the 60 ms a client costs to make.
    _command_tables: ClassVar[dict[tuple[str, ...], dict[str, Any]]] = {}

    def command(self, **options: Any) -> Any:
        """COMMAND, asked once per cluster in this process (a copy each time: redis-py
        renames its entries)."""
        if options:
            return super().command(**options)
        seeds = tuple(sorted(node.name for node in self.nodes_manager.startup_nodes.values()))
        table = self._command_tables.get(seeds)
        if table is None:
            table = self._command_tables[seeds] = super().command()
        return dict(table)

    @property
    def response_callbacks(self) -> Any:
        """How redis-py turns a node's replies into values, as `Redis.response_callbacks`
        (what limpyd applies to the replies of commands its scripts run)."""
        return self.get_default_node().redis_connection.response_callbacks

    def _execute_pipeline_by_slot(self, *args: Any) -> Any:
        """redis-py's run of a multi-key command split by hash slot (EXISTS, DELETE, UNLINK,
        TOUCH, the nonatomic MGET and MSET), in the pipeline its `pipeline()` gives: a plain
        one there, its own default (a transaction of commands of several slots fails)."""
        _splitting.active = True
        try:
            return super()._execute_pipeline_by_slot(*args)
        finally:
            _splitting.active = False

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> LimpydClusterPipeline:
        """A pipeline; a MULTI/EXEC transaction unless `transaction=False`, as
        `Redis.pipeline()` (redis-py's cluster client defaults to none)."""
        if transaction is None:
            transaction = not getattr(_splitting, "active", False)
        # type-ignored: redis-py leaves this method unannotated
        pipeline = super().pipeline(transaction=transaction, shard_hint=shard_hint)  # type: ignore[no-untyped-call]
        pipeline.__class__ = LimpydClusterPipeline
        assert isinstance(pipeline, LimpydClusterPipeline)
        # redis-py's cluster pipeline encodes keys strictly, whatever the client's options
        pipeline.encoder = self.encoder
        pipeline._limpyd_client = self
        pipeline._limpyd_loads = []
        return pipeline


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The seed nodes and client options of `redis+cluster://[user:password@]HOST:PORT[,HOST:
    PORT...][/0][?option=value...]` (`rediss+cluster://` for TLS). A db other than 0 is
    refused: a cluster has only db 0."""
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    shown = redact_url(url)
    if parts.scheme not in CLUSTER_SCHEMES:
        raise ValueError(
            f"Invalid cluster URL {shown!r}: use redis+cluster:// or rediss+cluster://"
        )
    options: dict[str, Any] = {}
    if credentials:
        username, has_password, password = credentials.partition(":")
        if username:
            options["username"] = unquote(username)
        if has_password:
            options["password"] = unquote(password)
    if CLUSTER_SCHEMES[parts.scheme]:
        options["ssl"] = True
    db = parts.path.strip("/")
    if db not in ("", "0"):
        raise ValueError(f"Invalid cluster URL {shown!r}: a cluster has only db 0, not {db!r}")
    for name, value in parse_qsl(parts.query):
        if name == "db":  # not a cluster client's option (redis-py refuses it at first use)
            if value != "0":
                raise ValueError(
                    f"Invalid cluster URL {shown!r}: a cluster has only db 0, not ?db={value!r}"
                )
            continue
        options[name] = _option_value(value)
    nodes = []
    for node in hosts.split(","):
        host, _, port = node.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"Invalid cluster URL {shown!r}: {node!r} is not HOST:PORT")
        nodes.append((host.strip("[]"), int(port)))
    return nodes, options


def _option_value(text: str) -> Any:
    """A URL option's value as redis-py expects it (numbers, booleans, text)."""
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


class RedisClusterBackend(Backend):
    """A Redis Cluster: `RedisClusterBackend(url="redis+cluster://HOST:PORT,...")` or
    `RedisClusterBackend(startup_nodes=[(host, port), ...], **redis_cluster_kwargs)`."""

    kind = "cluster"
    spreads_keys = True

    def __init__(
        self,
        url: str | None = None,
        *,
        startup_nodes: list[tuple[str, int]] | None = None,
        **cluster_kwargs: Any,
    ) -> None:
        if (url is None) == (startup_nodes is None):
            raise ValueError("RedisClusterBackend takes either a url or startup_nodes")
        if cluster_kwargs.get("db", 0) not in (0, "0"):
            raise ValueError(f"A cluster has only db 0, not {cluster_kwargs['db']!r}")
        cluster_kwargs.pop("db", None)
        if url is not None:
            startup_nodes, options = parse_cluster_url(url)
            cluster_kwargs = {**options, **cluster_kwargs}
        assert startup_nodes is not None
        if not startup_nodes:
            raise ValueError("RedisClusterBackend needs at least one startup node")
        self.url = url
        self.startup_nodes = [(str(host), int(port)) for host, port in startup_nodes]
        self.cluster_kwargs = with_defaults(cluster_kwargs)

    def client(self) -> Any:
        return LimpydRedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in self.startup_nodes],
            **client_options(self.cluster_kwargs),
        )

    def describe(self) -> str:
        scheme = "rediss+cluster" if self.cluster_kwargs.get("ssl") else "redis+cluster"
        return f"{scheme}://" + ",".join(f"{host}:{port}" for host, port in self.startup_nodes)

    def server_info(self, client: Any) -> dict[str, str]:
        info = client.info("server", target_nodes=client.get_default_node())
        return {key: str(value) for key, value in info.items()}
