"""The key layout: every key limpyd writes for a model, built here and nowhere else.

All keys of a model start with its prefix, `<namespace>:{<cluster group>}:<model name>`. The
part in braces is the hash tag of Redis Cluster: every key of the models of one
`cluster_group` (by default a model is its own group, named as the model) lives in one hash
slot, so a call touching several of them can run in one script there. The same layout is used
on every backend.

- `<prefix>:collection` (set): the pks of its instances;
- `<prefix>:max_pk` (string): the last pk an AutoPK gave;
- `<prefix>:expiry` (sorted set): the pks of instances that expire, by the time they do;
- `<prefix>:scratch`, `<prefix>:probe`: keys the script uses and never leaves;
- `<prefix>:obj:<pk>:<field>`: a field of an instance; `<prefix>:obj:<pk>:_hash` holds
  its InstanceHashFields;
- `<prefix>:idx:<field>:<index identity>[:<len>:<hash key>]`: an index (more after it for
  the value of an `EqualIndex`), `<prefix>:idx:__together__:<names>:<values>` the
  `unique_together` combinations;
- `<prefix>:relations:<pk>` (hash): the link records of the instances pointing to `pk`,
  under `<prefix of the referencing model>:<field>`;
- `<prefix>:stored:<id>`: a collection `store()` wrote.

The scripts build instance keys from `instance_prefix` and a field's suffix (see
`protocol`): they never spell a format themselves.
"""

from __future__ import annotations

import re

__all__ = ["HASH_SUFFIX", "KeyLayout", "is_model_key"]

#: The suffix of an instance's InstanceHashFields hash, after its pk.
HASH_SUFFIX = ":_hash"


#: A key of some model's data or indexes, whatever its namespace, group and name (a stored
#: collection's is not one).
_MODEL_KEY = re.compile(
    r"[^{}]*:\{[^{}]*\}:[^:]+:(?:collection|max_pk|expiry|scratch|probe|(?:obj|idx|relations):.*)",
    re.DOTALL,
)


def is_model_key(key: str) -> bool:
    """Whether `key` has the layout of a model's key (of any database of any process)."""
    return _MODEL_KEY.fullmatch(key) is not None


class KeyLayout:
    """The keys of the model `name` of `namespace`, in the cluster group `group`."""

    def __init__(self, namespace: str, group: str, name: str) -> None:
        #: The hash tag of the group's keys: a key of the user's holding it is in their slot
        #: (what a cluster needs, e.g., for a set intersected with a collection).
        self.hash_tag = f"{{{group}}}"
        prefix = self.prefix = f"{namespace}:{self.hash_tag}:{name}"
        self.collection_key = f"{prefix}:collection"
        self.max_pk_key = f"{prefix}:max_pk"
        self.expiry_key = f"{prefix}:expiry"
        self.scratch_key = f"{prefix}:scratch"
        self.probe_key = f"{prefix}:probe"
        #: What an instance key starts with, before the pk.
        self.instance_prefix = f"{prefix}:obj:"

    @staticmethod
    def field_suffix(name: str) -> str:
        """What the key of the field `name` of an instance has after its pk."""
        return f":{name}"

    def instance_key(self, pk: str, name: str) -> str:
        """The key of the field `name` of the instance `pk`."""
        return f"{self.instance_prefix}{pk}{self.field_suffix(name)}"

    def hash_key(self, pk: str) -> str:
        """The hash holding the InstanceHashFields of the instance `pk`."""
        return f"{self.instance_prefix}{pk}{HASH_SUFFIX}"

    def index_key(self, field: str, identity: str, hkey: str | None = None) -> str:
        """The key of an index of `field` (of the hash key `hkey` of a HashField)."""
        key = f"{self.prefix}:idx:{field}:{identity}"
        return key if hkey is None else f"{key}:{len(hkey)}:{hkey}"

    def combination_key(self, names: tuple[str, ...], values: list[str]) -> str:
        """The set holding the pk of the instance whose fields `names` hold `values`."""
        encoded = "".join(f"{len(value)}:{value}" for value in values)
        return self.index_key("__together__", f"{'+'.join(names)}:{encoded}")

    def links_key(self, pk: str) -> str:
        """The hash of the link records of the instances pointing to the instance `pk`."""
        return f"{self.prefix}:relations:{pk}"

    def link_id(self, field: str) -> str:
        """The name, in link records, of this model's related field `field`."""
        return f"{self.prefix}:{field}"

    def stored_key(self, name: str) -> str:
        """A key `store()` writes a collection's result in."""
        return f"{self.prefix}:stored:{name}"
