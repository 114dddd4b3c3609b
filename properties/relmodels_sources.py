"""The models of the related-deletion machine that point to those of `relmodels_targets`
(which never imports this module): `source_models(database, targets)`."""

from __future__ import annotations

from types import SimpleNamespace

from limpyd import fields
from limpyd.contrib import related
from limpyd.database import RedisDatabase
from limpyd.indexes import EqualIndex
from properties.relmodels_targets import NAMESPACE

#: Equality on the lowercased pk, under the prefix `low`, next to the plain EqualIndex.
LowIndex = EqualIndex.configure(prefix="low", transform=str.lower)
#: Equality on the lowercased pk as the field's only index: the one finding references.
LowerOnly = EqualIndex.configure(transform=str.lower)


def source_models(database: RedisDatabase, targets: SimpleNamespace) -> SimpleNamespace:
    """`Group` (PKField; FK, M2M set, list and sorted set to Person, a self FK), `Tag`
    (an FK to Person by name, an M2M list to Group), `Badge` (an FK to Group in a
    `unique_together` with a text, two FKs to Label whose indexes lowercase, an M2M set
    to Stamp)."""
    Person, Label, Stamp = targets.Person, targets.Label, targets.Stamp

    class Group(related.RelatedModel):
        cluster_group = "relmodels"
        namespace = NAMESPACE
        id = fields.PKField()
        owner = related.FKStringField(Person, related_name="owned_groups")
        members = related.M2MSetField(Person, related_name="memberships")
        queue = related.M2MListField(Person, related_name="queued_in")
        ranking = related.M2MSortedSetField(Person, related_name="ranked_in")
        parent = related.FKStringField("self", related_name="children")

    class Tag(related.RelatedModel):
        cluster_group = "relmodels"
        namespace = NAMESPACE
        label = fields.StringField()
        person = related.FKStringField("Person", related_name="tags")
        groups = related.M2MListField(Group, related_name="tagged")

    class Badge(related.RelatedModel):
        cluster_group = "relmodels"
        namespace = NAMESPACE
        unique_together = [("group", "kind")]
        group = related.FKInstanceHashField(Group, related_name="badges")
        kind = fields.InstanceHashField()
        label = related.FKStringField(Label, related_name="badges", indexes=[EqualIndex, LowIndex])
        alias = related.FKInstanceHashField(Label, related_name="aliased", indexes=[LowerOnly])
        stamps = related.M2MSetField(Stamp, related_name="badges")

    for model in (Group, Tag, Badge):
        model.use_database(database)
    return SimpleNamespace(Group=Group, Tag=Tag, Badge=Badge, all=[Group, Tag, Badge])
