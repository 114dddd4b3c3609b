"""A model of the Redis commands the machine sends, by type of value (as fakeredis splits
its commands): each function draws one modifier call with its arguments, and predicts its
reply and the field's state after it (an `Op`)."""

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from limpyd_testing.stateful.commands.base import ANY, SAME, Op
from limpyd_testing.stateful.commands.hashes import hash_op
from limpyd_testing.stateful.commands.lists import list_op
from limpyd_testing.stateful.commands.sets import set_op
from limpyd_testing.stateful.commands.sortedsets import zset_op
from limpyd_testing.stateful.commands.strings import string_op

__all__ = [
    "ANY",
    "COLLECTION_OPS",
    "SAME",
    "Op",
    "hash_op",
    "list_op",
    "set_op",
    "string_op",
    "zset_op",
]

#: A modifier of a collection field: `make(data, kind, old, texts)`.
CollectionOp = Callable[[st.DataObject, str, Any, st.SearchStrategy[str] | None], Op]
#: The modifier of a set, list or sorted set, by kind.
COLLECTION_OPS: dict[str, CollectionOp] = {
    "set": set_op,
    "list": list_op,
    "zset": zset_op,
}
