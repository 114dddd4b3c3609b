"""The limpyd models of an application that ran on redis-limpyd (see ../old_writer.py for the
same models as redis-limpyd declared them): same namespaces, model and field names."""

from limpyd import model
from limpyd.contrib import related
from limpyd.database import RedisDatabase
from limpyd.indexes import NumberRangeIndex, TextRangeIndex

#: Pointed elsewhere by the migration command (--url, --target-url) and by the tests.
database = RedisDatabase()


class Base(related.RelatedModel):
    database = database
    namespace = "mig"
    abstract = True


class Group(Base):
    name = model.StringField(unique=True)
    rank = model.InstanceHashField(indexes=[NumberRangeIndex])


class Person(Base):
    #: not in redis-limpyd: built by the migration
    unique_together = [("name", "city")]
    name = model.StringField(indexable=True)
    bio = model.StringField()
    email = model.InstanceHashField(unique=True)
    city = model.InstanceHashField(indexable=True)
    age = model.StringField(indexes=[NumberRangeIndex])
    tags = model.SetField(indexable=True)
    history = model.ListField(indexable=True)
    scores = model.SortedSetField()
    props = model.HashField(indexable=True)
    group = related.FKInstanceHashField(Group, related_name="members")
    friends = related.M2MSetField("Person", related_name="friend_of")
    favorite = related.FKStringField("Tag", related_name="fans")


class Tag(Base):
    slug = model.PKField()
    label = model.StringField(indexes=[TextRangeIndex])


class Note(model.RedisModel):
    """No namespace."""

    database = database
    text = model.StringField()


MODELS = ["oldapp.models:Group", "oldapp.models:Person", "oldapp.models:Tag", "oldapp.models:Note"]
