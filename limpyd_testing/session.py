"""What one pytest session holds for limpyd: its options, and the real server and cluster it
started (`limpyd_testing.server`, `limpyd_testing.cluster`) or was given by URL."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import redis
from redis.exceptions import RedisClusterException

from limpyd.backends import RedisBackend, RedisClusterBackend
from limpyd.backends.base import redact_url
from limpyd.backends.cluster import CLUSTER_SCHEMES
from limpyd.backends.fake import fakeredis_module
from limpyd.backends.urls import redis_url_db
from limpyd_testing.cluster import RedisClusterExecutor
from limpyd_testing.guard import APPLICATION_DATABASES, ApplicationDatabases
from limpyd_testing.options import LimpydOptions
from limpyd_testing.server import RedisServerError, RedisServerExecutor, redis_server_version

__all__ = ["LimpydServer", "SessionState"]

_NAMED_URL = "the server named by --limpyd-redis-url, LIMPYD_REDIS_URL or ini limpyd_redis_url"
_NAMED_CLUSTER = (
    "the cluster named by --limpyd-cluster-url, LIMPYD_CLUSTER_URL or ini limpyd_cluster_url"
)
NAMED_SERVER = (
    "the executable named by --limpyd-redis-server, LIMPYD_REDIS_SERVER or ini limpyd_redis_server"
)
_HOW_TO_GET_REDIS = (
    "install Redis (e.g. `apt-get install redis-server`), or pass "
    "--limpyd-redis-server=PATH or --limpyd-redis-url=URL; --limpyd-require-redis makes "
    "this an error instead of a skip"
)


@dataclass(frozen=True)
class LimpydServer:
    """The real Redis server of the session: where it is and what it runs.

    `pid` is set only for a server the plugin started; `db` is the db the tests use.
    """

    host: str
    port: int | None
    url: str
    version: str
    db: int = 0
    pid: int | None = None


def _url_with_db(url: str, db: int) -> str:
    """`url` pointing at db `db` (in the path for redis://, in the query for unix://)."""
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query) if key != "db"]
    if parts.scheme == "unix":
        query.append(("db", str(db)))
        # urlunsplit would drop the empty host of unix:///path.
        return f"unix://{parts.netloc}{parts.path}?{urlencode(query)}"
    return urlunsplit(parts._replace(path=f"/{db}", query=urlencode(query)))


def _url_db(url: str) -> int:
    """The db number a Redis URL names (0 when it names none, and for a cluster's: checked
    by the options)."""
    return 0 if urlsplit(url).scheme in CLUSTER_SCHEMES else redis_url_db(url)


def _worker_index(config: pytest.Config) -> int:
    workerinput = getattr(config, "workerinput", None)
    if not workerinput:
        return 0
    digits = "".join(ch for ch in str(workerinput.get("workerid", "")) if ch.isdigit())
    return int(digits or 0)


def _checking_client(url: str) -> redis.Redis:
    """A client connecting as the tests' do (their backend's options: a URL they cannot use
    is refused here), and giving up at once: an unreachable server is reported, not waited
    for."""
    return RedisBackend(url=url, socket_timeout=5, socket_connect_timeout=5).client()


def _refusal(url: str, size: int) -> str:
    return (
        f"limpyd: refusing to run tests on {redact_url(url)} (db {_url_db(url)}): it holds "
        f"{size} key(s) "
        "that the tests did not create. Use an empty db, or pass --limpyd-flush-existing "
        "to flush it."
    )


def xdist_workers(config: pytest.Config) -> int:
    """How many workers the xdist controller starts (`tx` specs like `popen` or `2*popen`)."""
    count = 0
    for spec in config.getoption("tx", None) or []:
        head, star, _ = str(spec).partition("*")
        count += int(head) if star and head.isdigit() else 1
    return count


class SessionState:
    """What the plugin knows and holds for one pytest session (one per xdist worker)."""

    def __init__(self, config: pytest.Config, options: LimpydOptions) -> None:
        self.config = config
        self.options = options
        self.executable: str | None = None
        self.executor: RedisServerExecutor | None = None
        self.server: LimpydServer | None = None
        #: Why the tests of a kind ("redis", "cluster") are skipped.
        self.unavailable: dict[str, str] = {}
        self.controller = False
        self.worker = bool(getattr(config, "workerinput", None))
        self.own_server = False
        #: Set when a required server of a kind is missing in an xdist worker: its tests fail.
        self.errors: dict[str, str] = {}
        self.cluster_executor: RedisClusterExecutor | None = None
        #: The URL of the session's cluster, once it runs (or was checked).
        self.cluster_url: str | None = None
        self._cluster_admin: Any = None
        self._admin: dict[int, redis.Redis] = {}
        self._checked_dbs: set[int] = set()
        #: The `limpyd_databases`, guarded from their import on (see `limpyd_testing.guard`).
        self.databases: ApplicationDatabases = config.stash.get(APPLICATION_DATABASES, None) or (
            ApplicationDatabases(options.databases)
        )
        #: Why the `limpyd_databases` could not be guarded once the tests were collected, in
        #: an xdist worker (elsewhere the session stops): every test fails with it.
        self.databases_error: str | None = None

    @property
    def redis_selected(self) -> bool:
        return "redis" in self.options.backends

    @property
    def cluster_selected(self) -> bool:
        return "cluster" in self.options.backends

    @property
    def named_executable(self) -> str:
        """Which setting named the redis-server executable, if one did."""
        return NAMED_SERVER if self.options.redis_server else ""

    def needs_executable(self) -> bool:
        """Whether the session starts a redis-server: a real backend without a URL."""
        return (self.redis_selected and not self.options.redis_url) or (
            self.cluster_selected and not self.options.cluster_url
        )

    def fail_or_skip(
        self, reason: str, kinds: tuple[str, ...] = ("redis", "cluster"), named: str = ""
    ) -> None:
        """No real server (of `kinds`): an error if required or `named`, else those tests are
        skipped.

        `named` says which setting named the server that cannot be used (a URL, a
        redis-server path): a server the user asked for by name must work, so it is always
        an error. The error stops the session; in an xdist worker (where an error at start-up
        would only lose the worker) it fails every test of those kinds instead.
        """
        if named or self.options.require_redis:
            why = named or "--limpyd-require-redis is set"
            message = f"limpyd: {reason} ({why})"
            if self.worker:
                self.errors.update(dict.fromkeys(kinds, message))
                return
            raise pytest.UsageError(message)
        lines = [line.strip() for line in reason.splitlines() if line.strip()]
        self.unavailable.update(
            dict.fromkeys(kinds, f"limpyd: {' | '.join(lines)}; {_HOW_TO_GET_REDIS}")
        )

    def prepare(self) -> None:
        """Start (or check) the real servers the selected backends need, in this process
        (the fake server's modules: `prepare_fake`)."""
        if self.redis_selected and "redis" not in self.unavailable:
            self.prepare_real()
        if self.cluster_selected and "cluster" not in self.unavailable:
            self.prepare_cluster()

    def prepare_fake(self, items: list[pytest.Item]) -> None:
        """Load the fake server's modules before the tests, if one of `items` (the collected
        tests) runs on a limpyd backend: a session without any does not pay their import."""
        if "fake" in self.options.backends and any(
            "limpyd_backend" in getattr(item, "fixturenames", ()) for item in items
        ):
            with contextlib.suppress(ImportError):  # each fake test says what to install
                fakeredis_module()

    # Real server ----------------------------------------------------------------------------

    def prepare_real(self) -> None:
        """Start the throw-away server, or check the given URL, for this process."""
        if self.options.redis_url:
            self._use_url(self.options.redis_url)
            return
        if self.executable is None:
            return
        executor = RedisServerExecutor(self.executable)
        try:
            executor.start()
        except RedisServerError as exc:
            self.fail_or_skip(
                f"could not start {self.executable}: {exc}", ("redis",), self.named_executable
            )
            return
        self.executor = executor
        self.server = LimpydServer(
            host=executor.host,
            port=executor.port,
            url=executor.url,
            version=executor.version,
            db=0,
            pid=executor.pid,
        )
        self.own_server = True  # every db of it is ours

    def check_url_for_workers(self, workers: int) -> None:
        """On the xdist controller: refuse now the dbs the workers would refuse."""
        given = self.options.redis_url
        assert given is not None
        for index in range(workers):
            url = _url_with_db(given, _url_db(given) + index)
            client = _checking_client(url)
            try:
                size = client.dbsize()
            except redis.RedisError as exc:
                self.fail_or_skip(
                    f"cannot use Redis at {redact_url(url)}: {exc}", ("redis",), _NAMED_URL
                )
                return
            finally:
                client.close()
            if size and not self.options.flush_existing:
                raise pytest.UsageError(_refusal(url, size))

    def _use_url(self, given: str) -> None:
        db = _url_db(given) + _worker_index(self.config)
        url = _url_with_db(given, db)
        client = _checking_client(url)
        try:
            info = client.info("server")
        except redis.RedisError as exc:
            client.close()
            self.fail_or_skip(
                f"cannot use Redis at {redact_url(url)}: {exc}", ("redis",), _NAMED_URL
            )
            return
        if info.get("redis_mode") == "cluster":  # keys of other nodes: MOVED errors
            client.close()
            self.fail_or_skip(
                f"{redact_url(url)} is a node of a Redis Cluster: give it to "
                "--limpyd-cluster-url (the cluster backend), not --limpyd-redis-url",
                ("redis",),
                _NAMED_URL,
            )
            return
        self._admin[db] = client
        parts = urlsplit(url)
        self.server = LimpydServer(
            host=parts.hostname or (parts.path if parts.scheme == "unix" else "localhost"),
            port=parts.port if parts.scheme != "unix" else None,
            url=url,
            version=str(info.get("redis_version", "")),
            db=db,
        )
        self.check_empty(db)

    def url_for(self, db: int) -> str:
        assert self.server is not None
        return _url_with_db(self.server.url, db)

    def admin(self, db: int) -> redis.Redis:
        """A plain client on db `db` of the real server, for flushing and checks."""
        client = self._admin.get(db)
        if client is None:
            client = self._admin[db] = redis.Redis.from_url(self.url_for(db))
        return client

    def check_empty(self, db: int) -> None:
        """Refuse a db of a server we did not start if it holds keys (or flush it if allowed)."""
        if self.own_server or db in self._checked_dbs:
            return
        client = self.admin(db)
        size = client.dbsize()
        if size and not self.options.flush_existing:
            raise pytest.UsageError(_refusal(self.url_for(db), size))
        if size:
            client.flushdb()
        self._checked_dbs.add(db)

    # Cluster ------------------------------------------------------------------------------

    def prepare_cluster(self) -> None:
        """Start the throw-away cluster of this process, or check the given one."""
        given = self.options.cluster_url
        if given:
            self.cluster_url = given
            self.check_cluster_empty()
            return
        if self.executable is None:
            return
        executor = RedisClusterExecutor(self.executable)
        try:
            executor.start()
        except RedisServerError as exc:
            self.fail_or_skip(
                f"could not start a cluster of {self.executable}: {exc}",
                ("cluster",),
                self.named_executable,
            )
            return
        self.cluster_executor = executor
        self.cluster_url = executor.url

    def check_cluster_for_workers(self, workers: int) -> None:
        """On the xdist controller: a given cluster has one db, so it serves one worker."""
        if workers > 1:
            raise pytest.UsageError(
                f"limpyd: --limpyd-cluster-url serves one test process, not {workers} xdist "
                "workers (a cluster has only db 0): run without -n, or let each worker start "
                "its own cluster (no --limpyd-cluster-url)"
            )

    def cluster_admin(self) -> Any:
        """A cluster client of the session's cluster, for flushing and checks."""
        if self._cluster_admin is None:
            assert self.cluster_url is not None
            self._cluster_admin = RedisClusterBackend(url=self.cluster_url).client()
        return self._cluster_admin

    def check_cluster_empty(self) -> None:
        """Refuse a given cluster that holds keys (or flush it if allowed)."""
        try:
            size = int(self.cluster_admin().dbsize(target_nodes="primaries"))  # summed
        except (redis.RedisError, RedisClusterException, OSError) as exc:
            url = redact_url(self.cluster_url or "")
            self.fail_or_skip(
                f"cannot use the cluster at {url}: {exc}", ("cluster",), _NAMED_CLUSTER
            )
            return
        if size and not self.options.flush_existing:
            raise pytest.UsageError(_refusal(self.cluster_url or "", size))
        if size:
            self.flush_cluster()

    def flush_cluster(self) -> None:
        """Empty every primary of the session's cluster."""
        self.cluster_admin().flushdb(target_nodes="primaries")

    def close(self) -> None:
        self.databases.restore()
        for client in self._admin.values():
            client.close()
        self._admin.clear()
        if self._cluster_admin is not None:
            self._cluster_admin.close()
            self._cluster_admin = None
        if self.executor is not None:
            self.executor.stop()
            self.executor = None
        if self.cluster_executor is not None:
            self.cluster_executor.stop()
            self.cluster_executor = None

    # Report ---------------------------------------------------------------------------------

    def header(self) -> str:
        parts = [f"limpyd: backends {', '.join(self.options.backends)}"]
        if self.redis_selected:
            parts.append(self._redis_header())
        if self.cluster_selected:
            parts.append(self._cluster_header())
        return "; ".join(parts)

    def _redis_header(self) -> str:
        if self.server is not None:
            origin = "throw-away server" if self.server.pid else "given server"
            return f"redis {self.server.version} at {redact_url(self.server.url)} ({origin})"
        if "redis" in self.unavailable:
            return f"redis tests skipped: {self.unavailable['redis']}"
        if self.options.redis_url:
            given = redact_url(self.options.redis_url)
            return f"redis at {given} (db + worker number per worker)"
        version = redis_server_version(self.executable) if self.executable else None
        return (
            f"redis-server {version or '?'} ({self.executable}), one throw-away server per worker"
        )

    def _cluster_header(self) -> str:
        if "cluster" in self.unavailable:
            return f"cluster tests skipped: {self.unavailable['cluster']}"
        if self.options.cluster_url:
            return f"cluster at {redact_url(self.options.cluster_url)} (given)"
        if self.cluster_url is not None:
            return f"cluster at {self.cluster_url} (throw-away, 3 primaries)"
        return "one throw-away 3-primary cluster per worker"
