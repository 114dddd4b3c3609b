"""What every backend is: a maker of redis-py-compatible clients, and the options they share."""

from __future__ import annotations

from importlib import metadata
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from limpyd.exceptions import ImplementationError

__all__ = ["CLIENT_DEFAULTS", "Backend", "client_options", "redact_url", "with_defaults"]

#: Options every client gets unless the caller overrides them (`decode_responses` cannot be
#: turned off: see `with_defaults`): values come back as `str`
#: (as in redis-limpyd), bytes that are not UTF-8 survive the round trip, replies use
#: RESP2, whose shapes the ORM parses (redis-py 8 would otherwise negotiate RESP3), and
#: commands are never sent twice.
CLIENT_DEFAULTS: dict[str, Any] = {
    "decode_responses": True,
    "encoding_errors": "surrogateescape",
    "protocol": 2,
    # redis-py would send a command again after a connection error, and a write whose reply
    # was lost would then run twice: the error reaches the caller instead.
    "retry": Retry(NoBackoff(), 0),
}


def with_defaults(options: dict[str, Any]) -> dict[str, Any]:
    """`options` over `CLIENT_DEFAULTS`; an ImplementationError for a false `decode_responses`:
    the ORM reads replies as text (with bytes, a write was done, then reported as
    a DoesNotExist naming an internal marker)."""
    if not options.get("decode_responses", True):
        raise ImplementationError(
            "limpyd's clients need decode_responses=True (values come back as text, see "
            f"CLIENT_DEFAULTS), not decode_responses={options['decode_responses']!r}"
        )
    return {**CLIENT_DEFAULTS, **options}


#: What a connection tells the server it is (CLIENT SETINFO), given by the caller.
_IDENTITY_OPTIONS = ("driver_info", "lib_name", "lib_version")


def client_options(options: dict[str, Any], url: str | None = None) -> dict[str, Any]:
    """`options` for a new real-server client (of `url`), with redis-py's name and version
    looked up once per process: redis-py looks its version up in the installed packages'
    metadata for every connection it makes otherwise (about half a millisecond, as much as a
    command), and four times for a cluster's client. Options (or URL options) that say it
    themselves are kept."""
    given = {*options, *(name for name, _ in parse_qsl(urlsplit(url).query))} if url else options
    if any(name in given for name in _IDENTITY_OPTIONS):
        return options
    return {**options, **_identity()}


def _identity() -> dict[str, Any]:
    try:
        from redis.driver_info import DriverInfo
    except ImportError:  # redis-py < 7 takes the version alone
        return {"lib_version": _redis_version()}
    # a new one each time: a DriverInfo can be changed (add_upstream_driver)
    return {"driver_info": DriverInfo(name="redis-py", lib_version=_redis_version())}


_version: list[str] = []


def _redis_version() -> str:
    if not _version:
        try:
            _version.append(metadata.version("redis"))
        except metadata.PackageNotFoundError:  # as redis-py does
            _version.append("99.99.99")
    return _version[0]


class Backend:
    """Makes the clients of a database. Subclasses say where they connect to."""

    #: "redis", "fake" or "cluster": what the test tooling reports, never what the ORM
    #: branches on.
    kind: str = ""
    #: Whether keys are spread over hash slots that one script or transaction cannot cross
    #: (a cluster): models a script ties together must then share a `cluster_group`.
    spreads_keys: bool = False
    #: Whether the server lives in this process (no other process can see its data).
    in_process: bool = False

    def client(self) -> redis.Redis:
        """A new redis-py-compatible client for this backend."""
        raise NotImplementedError

    def describe(self) -> str:
        """A short human-readable location, for error messages and reports."""
        raise NotImplementedError

    def server_info(self, client: redis.Redis) -> dict[str, str]:
        """`redis_version` and friends, as INFO SERVER gives them."""
        return {key: str(value) for key, value in client.info("server").items()}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


def redact_url(url: str) -> str:
    """`url` with its passwords, if any (`user:password@` and `?password=`, any case),
    replaced by `***` (for headers and messages; see `limpyd.backends.urls.scrubbed` for a
    malformed URL)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(name.lower() == "password" for name, _ in query):
        shown = "&".join(
            f"{name}=***" if name.lower() == "password" else f"{name}={value}"
            for name, value in query
        )
        parts = parts._replace(query=shown)
    if parts.password is not None:
        user = f"{parts.username}:" if parts.username else ":"
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{user}***@{host}")
    return urlunsplit(parts)
