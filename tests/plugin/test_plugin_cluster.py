"""The plugin's cluster backend: the throw-away cluster's life, a given cluster URL's checks."""

from __future__ import annotations

import pytest
import redis

from limpyd_testing.cluster import RedisClusterExecutor

from ._helpers import process_alive, wait_gone

pytestmark = pytest.mark.slow

#: A test module writing the pid and port of each node of the session's cluster to nodes.txt.
_RECORD_NODES = """
    import os, signal

    import redis


    def record(client):
        with open("nodes.txt", "w") as out:
            for node in client.get_nodes():
                pid = redis.Redis(node.host, node.port).info("server")["process_id"]
                out.write(f"{pid} {node.port}\\n")
"""


def _nodes(pytester: pytest.Pytester) -> list[tuple[int, int]]:
    lines = (pytester.path / "nodes.txt").read_text().split("\n")
    return [(int(pid), int(port)) for pid, port in (line.split() for line in lines if line)]


@pytest.fixture
def scratch_cluster(redis_server_path):
    """A cluster of this test's own, to give the inner run as a URL."""
    with RedisClusterExecutor(redis_server_path) as cluster:
        yield cluster


def test_the_session_cluster_serves_the_fixtures_then_stops(pytester, redis_server_path):
    pytester.makepyfile(
        _RECORD_NODES
        + """

    from limpyd import fields, model


    def test_fixtures(limpyd_database, limpyd_redis, limpyd_commands):
        record(limpyd_redis)

        class Box(model.RedisModel):
            database = limpyd_database
            color = fields.StringField(indexable=True)

        Box(color="blue")  # the first call loads limpyd's library on the primaries
        with limpyd_commands() as counted:
            Box(color="red")
        assert counted.names == ["FCALL"]
        assert list(Box.collection(color="red")) == ["2"]
        assert limpyd_redis.exists(Box._meta.collection_key) == 1


    def test_each_test_starts_empty(limpyd_redis):
        assert limpyd_redis.dbsize() == 0  # summed over the primaries
    """
    )
    result = pytester.runpytest_subprocess(
        "--limpyd-backend=cluster", f"--limpyd-redis-server={redis_server_path}", timeout=120
    )
    result.assert_outcomes(passed=2)
    header = "limpyd: backends cluster; cluster at redis+cluster://* (throw-away, 3 primaries)"
    result.stdout.fnmatch_lines([header])
    nodes = _nodes(pytester)
    assert len(nodes) == 3
    for pid, port in nodes:
        assert wait_gone(pid), f"cluster node {pid} (port {port}) outlived the session"


def test_no_orphan_cluster_node_when_pytest_is_killed(pytester, redis_server_path):
    pytester.makepyfile(
        _RECORD_NODES
        + """

    def test_crash(limpyd_redis):
        record(limpyd_redis)
        os.kill(os.getpid(), signal.SIGKILL)
    """
    )
    result = pytester.runpytest_subprocess(
        "--limpyd-backend=cluster", f"--limpyd-redis-server={redis_server_path}", timeout=120
    )
    assert result.ret == -9  # killed: no teardown, no atexit ran
    nodes = _nodes(pytester)
    assert len(nodes) == 3
    for pid, port in nodes:
        assert wait_gone(pid), f"cluster node {pid} (port {port}) outlived the killed pytest"


def test_a_given_cluster_holding_keys_is_refused(pytester, scratch_cluster):
    client = redis.RedisCluster(*scratch_cluster.startup_nodes[0])
    client.set("precious", "data")
    pytester.makepyfile("def test_x(limpyd_database): pass")
    result = pytester.runpytest(
        "--limpyd-backend=cluster", f"--limpyd-cluster-url={scratch_cluster.url}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: limpyd: refusing to run tests on redis+cluster://*"])
    assert client.get("precious") == b"data"

    result = pytester.runpytest(
        "--limpyd-backend=cluster",
        f"--limpyd-cluster-url={scratch_cluster.url}",
        "--limpyd-flush-existing",
    )
    result.assert_outcomes(passed=1)
    assert client.get("precious") is None
    assert all(node.running for node in scratch_cluster.nodes)  # a given cluster is not stopped
    client.close()


def test_a_given_cluster_with_several_workers_is_refused(pytester, scratch_cluster):
    pytester.makepyfile("def test_x(limpyd_database): pass")
    args = ["-p", "xdist", "-n", "2", "--limpyd-backend=cluster"]
    result = pytester.runpytest_subprocess(
        *args, f"--limpyd-cluster-url={scratch_cluster.url}", timeout=120
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--limpyd-cluster-url serves one test process, not 2 xdist*"])


def test_a_cluster_url_naming_a_db_is_refused(pytester, scratch_cluster):
    pytester.makepyfile("def test_x(limpyd_database): pass")
    result = pytester.runpytest(
        "--limpyd-backend=cluster", f"--limpyd-cluster-url={scratch_cluster.url}/3"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*a cluster has only db 0, not '3'*"])


def test_a_test_asking_the_factory_for_another_db_fails_clearly(pytester, scratch_cluster):
    pytester.makepyfile(
        """
        def test_db(limpyd_database_factory):
            limpyd_database_factory(db=2)
        """
    )
    result = pytester.runpytest(
        "--limpyd-backend=cluster", f"--limpyd-cluster-url={scratch_cluster.url}"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*a database on db 2 was asked for on the cluster backend*"])
    assert process_alive(scratch_cluster.nodes[0].pid)


def test_a_cluster_node_given_as_the_real_server_is_refused(pytester, scratch_cluster):
    """It was taken: each test touching a key of another node failed with MovedError, and
    the empty-db check saw one node only."""
    host, port = scratch_cluster.startup_nodes[0]
    pytester.makepyfile("def test_x(limpyd_database): pass")
    result = pytester.runpytest(
        "--limpyd-backend=redis", f"--limpyd-redis-url=redis://{host}:{port}/0"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: limpyd: redis://{host}:{port}/0 is a node of a Redis Cluster: give it to "
         "--limpyd-cluster-url*"]
    )  # fmt: skip
