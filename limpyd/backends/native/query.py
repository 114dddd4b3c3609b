"""The `query` function, natively (see limpyd/scripts/query.lua): a set expression over a
model's instances, those expired removed, sorted, sliced, and given as pks, a count, rows
of values, a stored list (the `store` function) or any few pks.

The sets are computed with the commands query.lua runs (SUNION, SINTER, SDIFF of unread
keys, SMISMEMBER filters of members read), in the same steps, so that a key of the wrong
type fails a query as it does there. A set is a node: an unread set key (bytes), or members
read (a dict, in their order, each once).
"""

from __future__ import annotations

import re
from typing import Any, cast

from limpyd import protocol
from limpyd.backends.native.order import (
    Number,
    Slice,
    canonical_integers,
    count_of,
    integer_order,
    is_decimal,
    is_number,
    pick,
    sort_by_keys,
    to_number,
)
from limpyd.backends.native.server import Arguments, ScriptFailure, Server, pk_of, refusal

__all__ = ["query"]

Node = bytes | dict[bytes, None]

#: A stored collection's ttl, as query.lua checks it.
_STORE_TTL = re.compile(rb"[1-9][0-9]{0,%d}" % (protocol.STORE_TTL_DIGITS - 1))
_COLLECTION = protocol.COLLECTION.encode()
_ATOMS = protocol.ATOMS.encode()
_INTERSECTION = protocol.INTERSECTION.encode()
_UNION = protocol.UNION.encode()
_DIFFERENCE = protocol.DIFFERENCE.encode()
_SYMMETRIC_DIFFERENCE = protocol.SYMMETRIC_DIFFERENCE.encode()
_SET_KEY = protocol.SET_KEY.encode()
_LEX_RANGE = protocol.LEX_RANGE.encode()
_SCORE_RANGE = protocol.SCORE_RANGE.encode()
_PK_LIST = protocol.PK_LIST.encode()
_KEY_MEMBERS = protocol.KEY_MEMBERS.encode()
_STORED_LIST = protocol.STORED_LIST.encode()
_FIELD_EXISTS = protocol.FIELD_EXISTS.encode()
_UNSORTED = protocol.UNSORTED.encode()
_BY_DEFAULT = protocol.BY_DEFAULT.encode()
_BY_AUTO_PK = protocol.BY_AUTO_PK.encode()
_BY_PK = protocol.BY_PK.encode()
_BY_STRING = protocol.BY_STRING.encode()
_BY_HASH = protocol.BY_HASH.encode()
_BY_SCORE = protocol.BY_SCORE.encode()
_BY_LIST = protocol.BY_LIST.encode()
_BY_KEYS = protocol.BY_KEYS.encode()
_BY_INDEXED = protocol.BY_INDEXED.encode()

#: Most keys query.lua gives one command (common.lua's CHUNK).
_CHUNK = 1000
#: A row's value no spec gives: Redis's reply of a Lua array ends before it.
_HOLE = object()


def _text(value: bytes) -> str:
    return value.decode(errors="replace")


class _Sort:
    """A query's sort, as read from its arguments: `keys` are (kind, by, alpha, desc)."""

    __slots__ = ("by", "desc", "keys", "kind", "pk_order")

    def __init__(self, r: Arguments) -> None:
        kind = r.next()
        text_index = kind == _BY_INDEXED
        if text_index:
            kind = r.next()
        alpha = desc = False
        #: by pk, numeric if every pk is a decimal number (the default order)
        self.pk_order = False
        self.keys: list[tuple[bytes, bytes | None, bool, bool]] = []
        if kind == _BY_KEYS:
            for _ in range(r.num()):
                key_kind, field = r.next(), r.next()
                key_alpha = r.next() == b"1"
                self.keys.append((key_kind, field, key_alpha, r.next() == b"1"))
        elif kind == _BY_DEFAULT or kind == _BY_AUTO_PK:
            desc, self.pk_order, kind = r.next() == b"1", True, _BY_PK
        elif kind != _UNSORTED:
            alpha = r.next() == b"1"
            desc = r.next() == b"1"
        self.by: bytes | None = None
        if kind == _BY_STRING or kind == _BY_HASH:
            self.by = r.next()
        elif kind == _BY_SCORE or kind == _BY_LIST:
            self.by = r.key()
        if text_index:
            r.key()  # the index only makes query.lua's windows cheaper
        if kind != _BY_KEYS:
            self.keys = [(kind, self.by, alpha, desc)]
        self.kind = kind
        self.desc = desc


class _Query:
    """One call: its arguments, the server, the model's keys."""

    def __init__(self, server: Server, keys: list[bytes], args: list[bytes]) -> None:
        self.call = server.call
        self.server = server
        # the reads of a sort, one for each result: looked up once
        self.get, self.hget, self.zscore = (server.reader(name) for name in _SORT_READS)
        self.r = Arguments(keys, args)
        self.collection = b""
        self.prefix = b""
        self.hash_suffix = b""

    # sets

    def members(self, node: Node) -> list[bytes]:
        if isinstance(node, bytes):
            return cast("list[bytes]", self.call(b"SMEMBERS", node))
        return list(node)

    def size(self, node: Node) -> int:
        if isinstance(node, bytes):
            return cast(int, self.call(b"SCARD", node))
        return len(node)

    def filter(self, items: list[bytes], node: Node, keep: bool) -> list[bytes]:
        """The members of `items` that `node` holds (with `keep` false: does not hold)."""
        if not items:
            return []
        if isinstance(node, bytes):
            held = self.call(b"SMISMEMBER", node, *items)
            return [m for m, h in zip(items, held, strict=True) if (h == 1) == keep]
        return [m for m in items if (m in node) == keep]

    def union(self, nodes: list[Node]) -> Node:
        keys = _plain_keys(nodes)
        if keys is not None:
            return dict.fromkeys(self.call(b"SUNION", *keys))
        out: dict[bytes, None] = {}
        for node in nodes:
            out.update(dict.fromkeys(self.members(node)))
        return out

    def intersection(self, nodes: list[Node]) -> Node:
        """The smallest set, filtered by each other one."""
        keys = _plain_keys(nodes)
        if keys is not None:
            return dict.fromkeys(self.call(b"SINTER", *keys))
        sizes = [self.size(node) for node in nodes]
        smallest = sizes.index(min(sizes))
        items = self.members(nodes[smallest])
        for i, node in enumerate(nodes):
            if i != smallest and items:
                items = self.filter(items, node, True)
        return dict.fromkeys(items)

    def difference(self, first: Node, others: list[Node]) -> Node:
        keys = _plain_keys([first, *others])
        if keys is not None:
            return dict.fromkeys(self.call(b"SDIFF", *keys))
        items = self.members(first)
        for node in others:
            if items:
                items = self.filter(items, node, False)
        return dict.fromkeys(items)

    def members_of(self, key: bytes) -> list[bytes]:
        """The members of any set, sorted set or list."""
        kind = self.call(b"TYPE", key)
        if kind == b"set":
            return cast("list[bytes]", self.call(b"SMEMBERS", key))
        if kind == b"zset":
            return cast("list[bytes]", self.call(b"ZRANGE", key, 0, -1))
        if kind == b"list":
            return cast("list[bytes]", self.call(b"LRANGE", key, 0, -1))
        if kind == b"none":
            return []
        raise refusal("key_type", key, kind)

    def read_source(self) -> Node:
        """An `atoms` expression: the union of its atoms."""
        r, call = self.r, self.call
        nodes: list[Node] = []
        pks: list[bytes] = []
        for _ in range(r.num()):
            kind = r.next()
            if kind == _SET_KEY:
                nodes.append(r.key())
            elif kind == _LEX_RANGE or kind == _SCORE_RANGE:
                key, low, high = r.key(), r.next(), r.next()
                command = b"ZRANGEBYLEX" if kind == _LEX_RANGE else b"ZRANGEBYSCORE"
                pks += [pk_of(member) for member in call(command, key, low, high)]
            elif kind == _PK_LIST:
                pks += r.list(r.num())
            elif kind == _FIELD_EXISTS:
                prefix, suffix, sub = r.next(), r.next(), r.next()
                want = r.next() == b"1"
                for pk in call(b"SMEMBERS", self.collection):
                    key = prefix + pk + suffix
                    found = call(b"EXISTS", key) if sub == b"" else call(b"HEXISTS", key, sub)
                    if (found == 1) == want:
                        pks.append(pk)
            elif kind == _KEY_MEMBERS or kind == _STORED_LIST:
                key = r.key()
                if kind == _STORED_LIST and call(b"EXISTS", key) == 0:
                    raise refusal("stored_missing", key)
                pks += self.members_of(key)
        if len(nodes) == 1 and not pks:
            return nodes[0]
        nodes.append(dict.fromkeys(pks))
        return self.union(nodes)

    def read_set(self) -> Node:
        r = self.r
        tag = r.next()
        if tag == _COLLECTION:
            return self.collection
        if tag == _ATOMS:
            return self.read_source()
        nodes = [self.read_set() for _ in range(r.num())]
        if tag == _INTERSECTION:
            return self.intersection(nodes)
        if tag == _UNION:
            return self.union(nodes)
        if tag == _DIFFERENCE:
            if not nodes:
                raise ScriptFailure("limpyd: a difference of no set")
            return self.difference(nodes[0], nodes[1:])
        if tag != _SYMMETRIC_DIFFERENCE:
            raise ScriptFailure(f"limpyd: unknown set {_text(tag)}")
        if len(nodes) < 2:
            raise ScriptFailure("limpyd: a symmetric difference of fewer than 2 sets")
        a, b = nodes[0], nodes[1]
        return dict.fromkeys(
            self.filter(self.members(a), b, False) + self.filter(self.members(b), a, False)
        )

    def expired_members(self, key: bytes) -> list[bytes]:
        """The members of the expiry zset `key` whose time has passed."""
        first = self.call(b"ZRANGE", key, 0, 0, b"WITHSCORES")
        if not first:
            return []
        at = self.server.now()
        earliest = to_number(first[1])
        if earliest is not None and earliest > at:
            return []
        return cast("list[bytes]", self.call(b"ZRANGEBYSCORE", key, b"-inf", at))

    # order

    def ordered(self, items: list[bytes], sort: _Sort) -> list[bytes] | None:
        """`items` in the order of `sort` (ties by pk, byte-wise); None for no order."""
        sort_keys = sort.keys
        alpha = bool(sort_keys) and sort_keys[0][2]  # by_keys may have none: ties alone
        numeric_pks: dict[bytes, float] = {}
        if (sort.pk_order or (sort.kind == _BY_PK and not alpha)) and canonical_integers(items):
            return integer_order(items, sort.desc)
        if sort.pk_order:
            alpha = not all(is_decimal(pk) for pk in items)
            if not alpha:
                numeric_pks = {pk: float(pk) for pk in items}
            kind, by, _, desc = sort_keys[0]
            sort_keys = [(kind, by, alpha, desc)]
        if sort.kind == _UNSORTED:
            return None
        positions: dict[bytes, int] = {}
        if sort.kind == _BY_LIST:
            for i, member in enumerate(self.call(b"LRANGE", sort.by, 0, -1), 1):
                positions.setdefault(member, i)
        keys = {}
        for pk in items:
            try:
                keys[pk] = [
                    self.sort_key(key_kind, key_by, key_alpha, pk, positions, numeric_pks)
                    for key_kind, key_by, key_alpha, _ in sort_keys
                ]
            except ScriptFailure:  # a value no number: the one of the smallest pk is named
                for first in sorted(items):
                    for key_kind, key_by, key_alpha, _ in sort_keys:
                        self.sort_key(key_kind, key_by, key_alpha, first, positions, numeric_pks)
                raise
        descs = [key_desc for *_, key_desc in sort_keys]
        return sort_by_keys(items, keys, descs, sort.kind != _BY_KEYS and sort.desc)

    def sort_key(
        self,
        kind: bytes,
        by: bytes | None,
        alpha: bool,
        pk: bytes,
        positions: dict[bytes, int],
        numeric_pks: dict[bytes, float],
    ) -> bytes | Number:
        """What `pk` sorts by, for one sort key: its value's text (`alpha`, '' for none) or
        number (0 for none or '')."""
        value: bytes | None
        if kind == _BY_PK:
            value = pk
        elif kind == _BY_LIST:
            value = b"%d" % positions.get(pk, 0)
        elif by is None:
            raise ScriptFailure("Lua redis lib command arguments must be strings or integers")
        elif kind == _BY_STRING:
            value = self.get(self.prefix + pk + by)
        elif kind == _BY_HASH:
            value = self.hget(self.prefix + pk + self.hash_suffix, by)
        else:
            value = self.zscore(by, pk)
        if alpha:
            return b"" if value is None else value
        if not value:
            return 0
        if kind == _BY_SCORE or kind == _BY_LIST:
            number = to_number(value)
            if number is None:
                raise ScriptFailure("attempt to compare nil with number")
            return number
        if kind == _BY_PK and pk in numeric_pks:
            return numeric_pks[pk]
        if not is_number(value):
            raise refusal("not_numeric", kind, by or b"", pk, value)
        return float(value)

    # the call

    def run(self) -> Any:
        r, call = self.r, self.call
        self.collection = r.key()
        self.prefix, self.hash_suffix, expiry = r.next(), r.next(), r.key()
        base = self.read_set()
        # instances whose time has passed are gone for every read, reaped or not
        gone = self.expired_members(expiry)
        if gone:
            base = self.difference(base, [dict.fromkeys(gone)])
        sort = _Sort(r)
        if sort.kind == _BY_SCORE or sort.kind == _BY_LIST:
            assert sort.by is not None
            want = b"zset" if sort.kind == _BY_SCORE else b"list"
            held = call(b"TYPE", sort.by)
            if held != want and held != b"none":
                raise refusal("sort_key_type", sort.by, held, want)
        slices: list[Slice] = []
        for _ in range(r.num()):
            start, stop, step = (_integral(to_number(text)) for text in r.list(3))
            slices.append((start, stop, 1 if step is None else step))
        output = r.next()
        specs: list[bytes] = []
        if output == b"values":
            specs = r.list(r.num())
        if output == b"store":
            store_key, store_ttl = r.key(), r.next()
            if store_ttl != b"" and not _STORE_TTL.fullmatch(store_ttl):
                raise ScriptFailure(
                    "limpyd: a stored collection's ttl is a whole number of seconds of at most "
                    f"{protocol.STORE_TTL_DIGITS} digits, not {store_ttl.decode(errors='replace')}"
                )
        if output == b"any":
            wanted = r.num()

        if output == b"count":
            n: Number = self.size(base)
            for piece in slices:
                n = count_of(n, piece)
            return int(n)
        if output == b"any":
            if isinstance(base, bytes):
                return call(b"SRANDMEMBER", base, wanted)
            return list(base)[: max(wanted, 0)]

        items = self.members(base)
        ordered = self.ordered(items, sort)
        if ordered is not None:
            items = ordered
        for piece in slices:
            items = pick(items, piece)

        if output == b"pks":
            return items
        if output == b"store":
            call(b"DEL", store_key)
            if items:
                call(b"RPUSH", store_key, *items)
                if store_ttl != b"":
                    call(b"EXPIRE", store_key, store_ttl)
            return len(items)
        return self.rows(items, specs, sort)

    def rows(self, items: list[bytes], specs: list[bytes], sort: _Sort) -> list[Any]:
        """The values of `specs` for each pk, row after row, flat: 'pk', 'score' (in the
        sorted set of a `by_score` sort), 'S<suffix>' (a StringField), 'H:<field>'."""
        call, prefix, hash_suffix = self.call, self.prefix, self.hash_suffix
        hashed = [(i, spec[2:]) for i, spec in enumerate(specs) if spec[:1] == b"H"]
        strings = [(i, spec[1:]) for i, spec in enumerate(specs) if spec[:1] == b"S"]
        fields = [field for _, field in hashed]
        by_score = sort.kind == _BY_SCORE
        flat: list[Any] = []
        for pk in items:
            row: list[Any] = [_HOLE] * len(specs)
            for i, spec in enumerate(specs):
                if spec == b"pk":
                    row[i] = pk
                elif spec == b"score":
                    row[i] = call(b"ZSCORE", sort.by, pk) if by_score else None
            if hashed:
                values = call(b"HMGET", prefix + pk + hash_suffix, *fields)
                for (i, _), value in zip(hashed, values, strict=True):
                    row[i] = value
            if strings:
                values = call(b"MGET", *(prefix + pk + suffix for _, suffix in strings))
                for (i, _), value in zip(strings, values, strict=True):
                    row[i] = value
            flat += row
        if _HOLE in flat:
            del flat[flat.index(_HOLE) :]
        return flat


#: The reads of a sort's values (see `_Query.sort_key`).
_SORT_READS = (b"GET", b"HGET", b"ZSCORE")


def _plain_keys(nodes: list[Node]) -> list[bytes] | None:
    """The keys of `nodes` when they are all unread keys few enough for one command."""
    if len(nodes) > _CHUNK or any(type(node) is not bytes for node in nodes):
        return None
    return cast("list[bytes]", nodes)  # all bytes, checked above


def _integral(number: float | None) -> Number | None:
    """A Lua number as Python's int when it is one (slices index lists)."""
    if number is not None and number.is_integer():
        return int(number)
    return number


def query(server: Server, keys: list[bytes], args: list[bytes]) -> Any:
    """Evaluate a collection (see query.lua for the arguments)."""
    return _Query(server, keys, args).run()
