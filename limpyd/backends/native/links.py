"""Link records: how apply's `unlink` finds and unlinks the instances pointing to a deleted
one (written by contrib.related's `link_record`), and checks before its first write that it
can (`unlink_refusal`). See limpyd/scripts/links.lua."""

from __future__ import annotations

import re
from typing import Any, cast

from limpyd import protocol
from limpyd.backends.native.keytypes import (
    KINDS,
    STATE_TYPES,
    TypeCheck,
    holds,
    is_index_command,
    state_kind,
)
from limpyd.backends.native.server import ScriptFailure, Server, pk_of

__all__ = ["Record", "unlink_refusal"]

_SET_KEY = protocol.SET_KEY.encode()
_MALFORMED_RECORD = "limpyd: a malformed link record"
_LENGTH = re.compile(rb"[0-9]+")


class _RecordReader:
    """A cursor over a record's strings, each `<byte length>:<bytes>`: `next()`, `num()`,
    failing the call at its end or on a count that is not digits (as apply.lua's)."""

    __slots__ = ("pos", "strings")

    def __init__(self, record: bytes) -> None:
        self.strings: list[bytes] = []
        self.pos = i = 0
        while i < len(record):
            colon = record.find(b":", i)
            if colon < 0 or not _LENGTH.fullmatch(record, i, colon):
                raise ScriptFailure(_MALFORMED_RECORD)
            end = colon + 1 + int(record[i:colon])
            if end > len(record):
                raise ScriptFailure(_MALFORMED_RECORD)
            self.strings.append(record[colon + 1 : end])
            i = end

    def next(self) -> bytes:
        if self.pos >= len(self.strings):
            raise ScriptFailure(_MALFORMED_RECORD)
        self.pos += 1
        return self.strings[self.pos - 1]

    def num(self) -> int:
        text = self.next()
        if not _LENGTH.fullmatch(text):
            raise ScriptFailure(_MALFORMED_RECORD)
        return int(text)


def _text_length(value: bytes) -> int:
    """The length Python gives the text of these bytes: utf-8 where valid, one character per
    other byte (surrogateescape), as in the keys of unique_together combinations."""
    return len(value.decode("utf-8", "surrogateescape"))


def _first(server: Server, kind: bytes, key: bytes, sub: bytes) -> bytes | None:
    """The first string of the state of a field (None when it has none, as for a kind no
    state has)."""
    if kind not in KINDS:
        return None
    state = server.read_state(kind, key, sub)
    return state[0] if state else None


def _unlink_value(server: Server, kind: bytes, key: bytes, sub: bytes, pk: bytes) -> bool:
    """Remove `pk` from the value of `kind` at key/sub; whether it held it."""
    call = server.call
    if kind in (b"string", b"hashfield"):
        if _first(server, kind, key, sub) != pk:
            return False
        if kind == b"string":
            call(b"DEL", key)
        else:
            call(b"HDEL", key, sub)
        return True
    if kind == b"set":
        return cast(int, call(b"SREM", key, pk)) == 1
    if kind == b"list":
        return cast(int, call(b"LREM", key, 0, pk)) > 0
    return cast(int, call(b"ZREM", key, pk)) == 1


#: The command `_unlink_value` runs on a field of each kind.
_UNLINKS = {
    b"string": b"DEL",
    b"hashfield": b"HDEL",
    b"set": b"SREM",
    b"list": b"LREM",
    b"zset": b"ZREM",
}


class Record:
    """A link record, read: where r's value is (kind, before, after, sub), the atom finding
    the holders (atom, key, a, b), the index entries (ops) and unique_together groups."""

    __slots__ = ("a", "after", "atom", "b", "before", "groups", "key", "kind", "ops", "sub")

    def __init__(self, record: bytes) -> None:
        d = _RecordReader(record)
        self.kind, self.before, self.after, self.sub = d.next(), d.next(), d.next(), d.next()
        if self.kind not in _UNLINKS:
            raise ScriptFailure(
                f"limpyd: a link record of kind {self.kind.decode(errors='replace')}"
            )
        self.atom, self.key = d.next(), d.next()
        self.a = self.b = None
        if self.atom != _SET_KEY:
            self.a, self.b = d.next(), d.next()
        self.ops: list[list[Any]] = []
        for _ in range(d.num()):
            op: list[Any] = []
            for _ in range(d.num()):
                op.append(d.next() if d.next() == b"=" else (d.next(), d.next()))
            if not op or type(op[0]) is not bytes or not is_index_command(op):
                raise ScriptFailure(_MALFORMED_RECORD)
            self.ops.append(op)
        self.groups: list[tuple[bytes, list[Any]]] = []
        for _ in range(d.num()):
            prefix = d.next()
            parts: list[Any] = []
            for _ in range(d.num()):
                if d.next() == b"V":
                    parts.append(d.next())
                else:
                    parts.append((state_kind(d.next()), d.next(), d.next(), d.next()))
            self.groups.append((prefix, parts))

    def holders(self, server: Server) -> list[bytes]:
        """The instances holding the deleted pk, as the atom finds them."""
        if self.atom == _SET_KEY:
            return cast("list[bytes]", server.call(b"SMEMBERS", self.key))
        return [pk_of(m) for m in server.call(b"ZRANGEBYLEX", self.key, self.a, self.b)]

    def holder_ops(self, holder: bytes) -> list[list[bytes]]:
        """The commands removing `holder`'s index entries."""
        return [[x[0] + holder + x[1] if type(x) is tuple else x for x in op] for op in self.ops]

    def unlink(self, server: Server, pk: bytes) -> None:
        """Unlink `pk` from the instances this record finds, with their index entries."""
        for holder in self.holders(server):
            if not _unlink_value(
                server, self.kind, self.before + holder + self.after, self.sub, pk
            ):
                continue
            for command in self.holder_ops(holder):
                server.run(command)
            for prefix, parts in self.groups:
                member, _ = _group_member(server, prefix, parts, holder)
                if member is not None:
                    server.call(b"SREM", member, holder)


def _group_member(
    server: Server,
    prefix: bytes,
    parts: list[Any],
    holder: bytes,
    checker: TypeCheck | None = None,
) -> tuple[bytes | None, bytes | None]:
    """The key of a unique_together group's combination for `holder` (None when one of its
    fields has no value: the fields after it are not read), and the refusal of a `checker`
    for a key read on the way (which stops there)."""
    texts = []
    for part in parts:
        if type(part) is tuple:
            key = part[1] + holder + part[2]
            refused = None if checker is None else checker.require(STATE_TYPES[part[0]], key)
            if refused is not None:
                return None, refused
            value = _first(server, part[0], key, part[3])
            if value is None:
                return None, None
            part = b"%d:%s" % (_text_length(value), value)
        texts.append(part)
    return prefix + b"".join(texts), None


def unlink_refusal(server: Server, w: tuple[Any, ...], checker: TypeCheck) -> bytes | None:
    """The refusal of an unlink for a key of another type, found by reading only (its
    records, their holders and values), as its commands would meet them after the writes
    checked before. Holders are found as the data is before the write (one whose key the
    write's own commands empty first is skipped; see apply.lua)."""
    _, links, pk, records = w
    refused = checker.require(b"hash", links)
    if refused:
        return refused
    for record in server.call(b"HVALS", links):
        rec = Record(record)
        records.append(rec)
        refused = checker.require(b"set" if rec.atom == _SET_KEY else b"zset", rec.key)
        if refused:
            return refused
        for holder in rec.holders(server):
            refused = _holder_refusal(server, rec, holder, pk, checker)
            if refused:
                return refused
    return None


def _holder_refusal(
    server: Server, rec: Record, holder: bytes, pk: bytes, checker: TypeCheck
) -> bytes | None:
    """The refusal of the commands unlinking `pk` from `holder`, or None."""
    key = rec.before + holder + rec.after
    refused = checker.require(STATE_TYPES[rec.kind], key)
    if refused or checker.held(key) == b"none" or not _holds_pk(server, rec, key, pk):
        return refused
    refused = checker.first_refusal([[_UNLINKS[rec.kind], key], *rec.holder_ops(holder)])
    for prefix, parts in rec.groups:
        if refused:
            break
        member, refused = _group_member(server, prefix, parts, holder, checker)
        if member is not None:
            refused = checker.check([b"SREM", member])
    return refused


def _holds_pk(server: Server, rec: Record, key: bytes, pk: bytes) -> bool:
    """Whether the field of a record's holder at `key` holds `pk` (what `_unlink_value`
    removes)."""
    if rec.kind == b"list":
        return server.call(b"LPOS", key, pk) is not None
    return holds(server, rec.kind, key, rec.sub, pk)
