"""The targets of the related-deletion machine's relations, alone in their module: a fresh
process importing only this module (not `relmodels_sources`) knows none of the models
pointing to them, yet its deletions and reapings must unlink them everywhere.

`target_models(database)` builds new classes on `database` (each example, and each
process, gets its own).
"""

from __future__ import annotations

from types import SimpleNamespace

from limpyd import fields
from limpyd.contrib import related
from limpyd.database import RedisDatabase

NAMESPACE = "props-related"


def target_models(database: RedisDatabase) -> SimpleNamespace:
    """`Person` (AutoPK; a self FK in the hash, a self M2M set), and two pk-only models:
    `Label` (a PKField and nothing else) and `Stamp` (an AutoPK and nothing else)."""

    class Person(related.RelatedModel):
        cluster_group = "relmodels"
        namespace = NAMESPACE
        name = fields.InstanceHashField(indexable=True)
        boss = related.FKInstanceHashField("self", related_name="subordinates")
        friends = related.M2MSetField("self", related_name="friend_of")

    class Label(related.RelatedModel):
        cluster_group = "relmodels"
        namespace = NAMESPACE
        id = fields.PKField()

    class Stamp(related.RelatedModel):
        cluster_group = "relmodels"
        namespace = NAMESPACE

    for model in (Person, Label, Stamp):
        model.use_database(database)
    return SimpleNamespace(Person=Person, Label=Label, Stamp=Stamp, all=[Person, Label, Stamp])
