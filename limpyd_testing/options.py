"""The plugin's settings: each a command-line option, an environment variable and an ini key,
read in that order of precedence (see `limpyd_testing.plugin` for the table)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from limpyd.backends.base import redact_url
from limpyd.backends.cluster import parse_cluster_url
from limpyd.backends.urls import redis_url_db

__all__ = ["BACKENDS", "SETTINGS", "LimpydOptions", "database_entries"]

#: The backend kinds, in the order parametrized tests run.
BACKENDS: tuple[str, ...] = ("fake", "redis", "cluster")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class _Setting:
    name: str  # the option's dest and the ini key
    flag: str
    env: str
    help: str
    boolean: bool = False
    #: A file path: in the ini file, relative to its folder (as pytest reads its own paths),
    #: `~` its user's home.
    path: bool = False

    def value(self, config: pytest.Config) -> str | bool | None:
        """The setting from the command line, else the environment, else the ini file."""
        cli: str | bool | None = config.getoption(self.name)
        if isinstance(cli, str):
            cli = cli.strip() or None  # an empty value is no value, as in the environment
        if cli is not None:
            return cli
        env = os.environ.get(self.env, "").strip()
        if env:
            return self._parse(env, f"environment variable {self.env}")
        try:
            ini = config.getini(self.name)
        except (ValueError, TypeError, pytest.UsageError) as exc:  # pytest's reading of a
            # boolean's text, or of a `[tool.pytest]` TOML value of another type (pytest >= 9.2
            # refuses them itself, naming no key)
            raise pytest.UsageError(f"limpyd: ini key {self.name}: {exc}") from None
        if isinstance(ini, bool):  # a boolean setting: a TOML boolean, or its text read
            return ini
        text = str(ini or "").strip()
        if self.path and config.inipath is not None and os.sep in text:
            text = os.path.expanduser(text)  # `~/...`, as on the command line
            text = os.path.join(config.inipath.parent, text)  # kept if absolute
        return self._parse(text, f"ini key {self.name}") if text else None

    def _parse(self, text: str, where: str) -> str | bool:
        if not self.boolean:
            return text
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise pytest.UsageError(f"limpyd: {where}={text!r} is not a boolean (use 1 or 0)")


SETTINGS = {
    setting.name: setting
    for setting in (
        _Setting(
            "limpyd_backend",
            "--limpyd-backend",
            "LIMPYD_BACKEND",
            "limpyd backends to run the tests on: fake (in memory, the default), redis, cluster, "
            "both (fake and redis) or all (the three)",
        ),
        _Setting(
            "limpyd_redis_url",
            "--limpyd-redis-url",
            "LIMPYD_REDIS_URL",
            "use this Redis server (redis://, rediss://, unix://) instead of starting one; "
            "its db must be empty",
        ),
        _Setting(
            "limpyd_cluster_url",
            "--limpyd-cluster-url",
            "LIMPYD_CLUSTER_URL",
            "use this Redis Cluster (redis+cluster://HOST:PORT[,HOST:PORT...]) instead of "
            "starting one; it must be empty",
        ),
        _Setting(
            "limpyd_redis_server",
            "--limpyd-redis-server",
            "LIMPYD_REDIS_SERVER",
            "the redis-server executable to start for the real backend (default: from PATH; "
            "in the ini file, a path is relative to its folder)",
            path=True,
        ),
        _Setting(
            "limpyd_require_redis",
            "--limpyd-require-redis",
            "LIMPYD_REQUIRE_REDIS",
            "no usable real Redis is an error, not a skip of the redis tests",
            boolean=True,
        ),
        _Setting(
            "limpyd_flush_existing",
            "--limpyd-flush-existing",
            "LIMPYD_FLUSH_EXISTING",
            "allow --limpyd-redis-url on a db that holds keys: they are flushed",
            boolean=True,
        ),
    )
}


def _redis_url(url: str) -> bool:
    """Whether redis-py reads `url` (its scheme, its port a number, options its connections
    take) and its db is a number."""
    try:
        redis_url_db(url)  # as RedisBackend requires
    except ValueError:
        return False
    return True


def _shown(url: str) -> str:
    """`url` for a message: its passwords hidden."""
    try:
        return repr(redact_url(url))
    except ValueError:  # not even a URL urllib splits: nothing of it is shown
        return "given"


@dataclass(frozen=True)
class LimpydOptions:
    """The plugin's settings for this session, resolved from CLI, environment and ini."""

    backends: tuple[str, ...] = ("fake",)
    redis_url: str | None = None
    cluster_url: str | None = None
    redis_server: str | None = None
    require_redis: bool = False
    flush_existing: bool = False
    databases: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: pytest.Config) -> LimpydOptions:
        """Read and check the settings; a bad value is a `pytest.UsageError`."""
        values = {name: setting.value(config) for name, setting in SETTINGS.items()}
        backend = str(values["limpyd_backend"] or "fake").lower()
        choices: dict[str, tuple[str, ...]] = {kind: (kind,) for kind in BACKENDS}
        choices.update(both=("fake", "redis"), all=BACKENDS)
        if backend not in choices:
            raise pytest.UsageError(
                f"limpyd: unknown backend {backend!r}: use fake, redis, cluster, both or all "
                "(--limpyd-backend, LIMPYD_BACKEND, ini limpyd_backend)"
            )
        url = values["limpyd_redis_url"]
        if url and not _redis_url(str(url)):
            raise pytest.UsageError(
                f"limpyd: the Redis URL {_shown(str(url))} is not a redis://, rediss:// or unix:// "
                "URL redis-py reads (its port a number but 0, options its connections take, a db "
                "number; --limpyd-redis-url, LIMPYD_REDIS_URL, ini limpyd_redis_url)"
            )
        cluster_url = values["limpyd_cluster_url"]
        if cluster_url:
            try:
                parse_cluster_url(str(cluster_url))
            except ValueError as exc:
                raise pytest.UsageError(
                    f"limpyd: {exc} (--limpyd-cluster-url, LIMPYD_CLUSTER_URL, ini "
                    "limpyd_cluster_url)"
                ) from None
        return cls(
            backends=choices[backend],
            redis_url=str(url) if url else None,
            cluster_url=str(cluster_url) if cluster_url else None,
            redis_server=str(values["limpyd_redis_server"] or "") or None,
            require_redis=bool(values["limpyd_require_redis"]),
            flush_existing=bool(values["limpyd_flush_existing"]),
            databases=database_entries(config),
        )


def database_entries(config: pytest.Config) -> tuple[str, ...]:
    """The `limpyd_databases` ini key: `module:attribute` lines."""
    try:
        lines = config.getini("limpyd_databases")
    except (ValueError, TypeError, pytest.UsageError) as exc:  # a `[tool.pytest]` TOML value
        # of another type
        raise pytest.UsageError(f"limpyd: ini key limpyd_databases: {exc}") from None
    return tuple(line.strip() for line in lines if line)
