"""The models of an application that ran on redis-limpyd and now runs on limpyd: this very
module is imported by both (by redis-limpyd in ../old_writer.py, in its own virtualenv), as
an application keeps its code when it changes library. The migration reads what
redis-limpyd wrote for them and writes limpyd's layout."""

from limpyd import model
from limpyd.contrib import related
from limpyd.database import RedisDatabase
from limpyd.indexes import NumberRangeIndex, TextRangeIndex

#: Pointed elsewhere by the command (--url, --target-url), the tests and the writer.
database = RedisDatabase()


class Base(related.RelatedModel):
    database = database
    namespace = "mig"
    abstract = True


class Group(Base):
    name = model.StringField(unique=True)
    rank = model.InstanceHashField(indexable=True, indexes=[NumberRangeIndex])
    leaders = related.M2MSortedSetField("Person", related_name="leads")


class Person(Base):
    #: limpyd only (redis-limpyd ignores it): the migration builds its combinations
    unique_together = [("name", "city")]
    name = model.StringField(indexable=True)
    bio = model.StringField()
    email = model.InstanceHashField(unique=True)
    city = model.InstanceHashField(indexable=True)
    age = model.StringField(indexable=True, indexes=[NumberRangeIndex])
    tags = model.SetField(indexable=True)
    history = model.ListField(indexable=True)
    scores = model.SortedSetField()
    props = model.HashField(indexable=True)
    group = related.FKInstanceHashField(Group, related_name="members")
    friends = related.M2MSetField("Person", related_name="friend_of")
    mentors = related.M2MListField("Person", related_name="mentees")
    favorite = related.FKStringField("Tag", related_name="fans")


class Tag(Base):
    slug = model.PKField()
    label = model.StringField(indexable=True, indexes=[TextRangeIndex])


class Note(model.RedisModel):
    """No namespace: redis-limpyd's keys start with ':note'."""

    database = database
    text = model.StringField()
