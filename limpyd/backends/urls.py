"""Database URLs, checked when they are given: a URL that cannot mean what it says is refused
by `from_url`, not at first use, and no message or repr ever shows its password."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.connection import ConnectionPool
from redis.exceptions import RedisError

from limpyd.backends.base import redact_url

__all__ = ["FAKE_DATABASES", "fake_url", "redis_url_db", "scrubbed"]

#: Databases of an in-memory server: those of a redis-server with its default `databases 16`,
#: so a db refused by a default real server is refused by the fake too.
FAKE_DATABASES = 16


def _db(url: str, path: str, query: str) -> int:
    """The db a URL names by its path (`/N`) and/or its query (`?db=N`): one number."""
    shown = redact_url(url)
    in_query = [value for name, value in parse_qsl(query) if name == "db"]
    if len(in_query) > 1:  # redis-py reads the first, a dict the last: refused
        raise ValueError(f"Invalid database URL {shown!r}: ?db= given {len(in_query)} times")
    given = [text for text in (path.strip("/"), *in_query) if text]
    for text in given:
        if not (text.isascii() and text.isdigit()):
            raise ValueError(
                f"Invalid database URL {shown!r}: the db must be a number, not {text!r}"
            )
    if len({int(text) for text in given}) > 1:
        raise ValueError(f"Invalid database URL {shown!r}: its path and ?db= name two dbs")
    return int(given[0]) if given else 0


def redis_url_db(url: str) -> int:
    """Check a `redis://`, `rediss://` or `unix://` URL as redis-py will read it; its db.

    redis-py reads a db path that is not a number as db 0, and takes options its
    connections refuse at their first use: here both are errors."""
    try:  # redis-py's own reading of the URL (parse_url), then its options
        ConnectionPool.from_url(url).make_connection()  # no socket yet
    except (ValueError, TypeError, RedisError) as exc:  # `?protocol=4`: a ConnectionError
        raise ValueError(f"Invalid database URL {redact_url(url)!r}: {exc}") from None
    parts = urlsplit(url)
    if parts.scheme != "unix" and parts.port == 0:
        raise ValueError(
            f"Invalid database URL {redact_url(url)!r}: port 0 (redis-py would connect to the "
            "default port, 6379, instead)"
        )
    return _db(url, "" if parts.scheme == "unix" else parts.path, parts.query)


def fake_url(url: str) -> tuple[str | None, int]:
    """The server name and db of `fakeredis://[user:password@]NAME[/DB][?db=DB]`.

    Credentials are accepted (the same URL may serve a real server elsewhere) and ignored;
    no other query option means anything to an in-memory server."""
    parts = urlsplit(url)
    shown = redact_url(url)
    unknown = sorted({name for name, _ in parse_qsl(parts.query)} - {"db"})
    if unknown:
        raise ValueError(f"Invalid fakeredis URL {shown!r}: only ?db= is understood, not {unknown}")
    db = _db(url, parts.path, parts.query)
    if db >= FAKE_DATABASES:
        raise ValueError(
            f"Invalid fakeredis URL {shown!r}: db {db} is out of range (0 to "
            f"{FAKE_DATABASES - 1}, as on a redis-server with its default 16 databases)"
        )
    name = unquote(parts.netloc.rpartition("@")[2])
    return name or None, db


def scrubbed(url: str, message: str) -> str:
    """`message` (about `url`) without what may be its password: a password holding `#`, `/`
    or `?` (not percent-encoded) ends a parser's host part early, and the parsers' messages
    then show pieces of it (`redact_url` finds no password there)."""
    credentials = url.partition("://")[2].rpartition("@")[0]
    password = credentials.partition(":")[2]
    for piece in sorted(re.split(r"[#/?]", password), key=len, reverse=True):
        if len(piece) >= 3:
            message = message.replace(piece, "***")
    return message
