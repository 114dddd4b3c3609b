"""Code written for redis-limpyd runs on limpyd: models, their pk and declarations, and the
exceptions redis-limpyd raised (issue 18, part 13)."""

from __future__ import annotations

import pytest

from limpyd import fields, model
from limpyd.backends import FakeBackend
from limpyd.contrib import related
from limpyd.contrib.collection import ExtendedCollectionManager
from limpyd.database import RedisDatabase
from limpyd.exceptions import CreateManyError, ImplementationError, UniquenessError
from limpyd.indexes import TextRangeIndex

# Item 1: a subclass inherits its parent's pk field -------------------------------------


@pytest.mark.parametrize("pk_class", [fields.PKField, fields.AutoPKField])
def test_subclass_inherits_the_declared_pk(db, pk_class):
    class Person(model.RedisModel):
        database = db
        name = pk_class()
        city = fields.StringField(indexable=True)

    class Employee(Person):
        pass

    class Manager(Employee):
        team = fields.StringField()

    for cls in (Employee, Manager):
        assert cls._meta.pk_field.name == "name" and isinstance(cls._meta.pk_field, pk_class)
        assert cls.pk is cls.get_field("name") and "pk" not in cls._meta.fields
        assert cls._meta.pk_field.model is cls  # its own copy, attached to the subclass
    values = (
        {"city": "Paris"} if pk_class is fields.AutoPKField else {"name": "ann", "city": "Paris"}
    )
    ann = Manager(**values, team="a")
    assert Manager.collection(city="Paris") == [ann.pk.get()]
    assert Person.collection() == [] and Employee.collection() == []


def test_concrete_models_under_an_abstract_parent_with_a_pk(db):
    class Content(model.RedisModel):
        """The manual's abstract parent, with a pk field of its own."""

        database = db
        abstract = True
        id = fields.AutoPKField()
        title = fields.InstanceHashField()

    class Article(Content):
        body = fields.StringField()

    assert list(Article._meta.fields) == ["id", "title", "body"]

    class Image(Content):
        path = fields.InstanceHashField()

    assert list(Image._meta.fields) == ["id", "title", "path"]
    article = Article(title="t", body="b")
    assert article.id.get() == article.pk.get() == "1"
    assert Image(path="p").id.get() == "1"


def test_the_pk_comes_first_among_the_fields(db):
    class Late(model.RedisModel):
        database = db
        name = fields.StringField()
        code = fields.PKField()

    assert list(Late._meta.fields) == ["code", "name"]


def test_a_subclass_may_name_the_automatic_pk(db):
    """redis-limpyd's own tests: a model with the automatic pk may get a pk field in a
    subclass."""

    class Boat(model.RedisModel):
        database = db
        name = fields.StringField()

    class NamedBoat(Boat):
        id = fields.AutoPKField()

    class CodedBoat(Boat):
        code = fields.PKField()

    assert list(NamedBoat._meta.fields) == ["id", "name"]
    assert list(CodedBoat._meta.fields) == ["code", "name"]


# Item 7: declarations redis-limpyd refused ---------------------------------------------


@pytest.mark.parametrize("second", [fields.PKField, fields.AutoPKField])
def test_a_second_pk_field_in_a_subclass_is_refused(db, second):
    class Person(model.RedisModel):
        database = db
        name = fields.PKField()

    with pytest.raises(ImplementationError, match=r"Employee\.code.*Person\.name"):

        class Employee(Person):
            code = second()

    with pytest.raises(ImplementationError, match=r"Chief\.name.*Person\.name"):

        class Chief(Person):
            name = second()

    assert "employee" not in {m._meta.name for m in db.models.values()}


def test_a_unique_hash_field_is_kept(db, unchanged):
    """redis-limpyd refused a unique HashField; limpyd keeps it (a decision): the value
    under each hash key is unique among the instances."""

    class Account(model.RedisModel):
        database = db
        logins = fields.HashField(unique=True)

    ann = Account(logins={"github": "ann", "gitlab": "a"})
    Account(logins={"github": "bob", "gitlab": "ann"})  # the same value under another key
    with unchanged(), pytest.raises(UniquenessError, match=r"Account\.logins"):
        Account(logins={"github": "ann"})
    assert Account.collection(logins__github="ann") == [ann.pk.get()]


def test_indexes_on_a_field_declared_not_indexable_are_refused(db):
    with pytest.raises(ImplementationError, match=r"Doc\.title: indexes given to a field "):

        class Doc(model.RedisModel):
            database = db
            title = fields.StringField(indexable=False, indexes=[TextRangeIndex])

    class Page(model.RedisModel):  # `indexes` alone makes a field indexable
        database = db
        title = fields.StringField(indexes=[TextRangeIndex])

    assert Page._meta.fields["title"].indexable and list(db.models.values()) == [Page]


@pytest.fixture
def Member(db):
    class Member(related.RelatedModel):
        cluster_group = "related"
        database = db
        nick = fields.PKField()

    return Member


@pytest.mark.parametrize(
    "related_name", ["my-groups", "1st", "class", "__hidden", "%(nothing)s", "50%"]
)
def test_a_related_name_that_is_not_an_identifier_is_refused(db, Member, related_name):
    with pytest.raises(ImplementationError, match=r"Group\.members: invalid related_name"):

        class Group(related.RelatedModel):
            database = db
            members = related.M2MSetField(Member, related_name=related_name)

    with pytest.raises(ImplementationError, match=r"Team\.members: invalid related_name"):

        class Team(related.RelatedModel):  # not even used yet
            abstract = True
            members = related.M2MSetField("Member", related_name=related_name)

    assert list(db.models.values()) == [Member]


def test_the_manuals_related_name_template_in_an_empty_namespace(db, Member):
    """`%(namespace)s_%(model)s_set` in the namespace "" gives `_group_set`, which
    redis-limpyd accepted: it is an identifier, reachable on the instances."""

    class Group(related.RelatedModel):
        cluster_group = "related"
        database = db
        owner = related.FKStringField(Member, related_name="%(namespace)s_%(model)s_set")

    ann = Member(nick="ann")
    group = Group(owner=ann)
    assert ann._group_set() == [group.pk.get()]
    with pytest.raises(AttributeError):
        ann._other_set  # noqa: B018


def test_a_field_hiding_the_inherited_pk_is_refused(db):
    class Person(model.RedisModel):
        database = db
        id = fields.AutoPKField()

    with pytest.raises(ImplementationError, match=r"Employee\.id.*pk field of Person"):

        class Employee(Person):
            id = fields.StringField()


def test_pk_fields_of_two_parents_are_refused(db):
    class Named(model.RedisModel):
        database = db
        abstract = True
        name = fields.PKField()

    class Numbered(model.RedisModel):
        database = db
        abstract = True
        number = fields.AutoPKField()

    with pytest.raises(ImplementationError, match="several pk fields"):

        class Both(Named, Numbered):
            pass


# Item 10: where redis-limpyd raised ValueError, `except ValueError` still catches -------


@pytest.fixture
def Auto(db):
    class Auto(model.RedisModel):
        database = db
        name = fields.StringField(indexable=True)

    return Auto


@pytest.fixture
def Named(db):
    class Named(model.RedisModel):
        database = db
        code = fields.PKField()
        name = fields.StringField()

    return Named


def test_misuses_redis_limpyd_reported_with_value_error_are_value_errors(unchanged, Auto, Named):
    auto, named = Auto(name="a"), Named(code="c")
    with unchanged():
        with pytest.raises(ValueError, match=r"Auto\.pk: an AutoPKField is set by limpyd"):
            Auto(pk=5, name="b")
        with pytest.raises(ValueError, match=r"Auto\.pk: an AutoPKField is set by limpyd"):
            auto.pk.set(5)
        with pytest.raises(ValueError, match=r"Named\.code: .*cannot be changed"):
            named.pk.set("d")
        with pytest.raises(ValueError, match=r"Named\.code: a value for the PKField"):
            Named(name="x")
        with pytest.raises(ValueError, match=r"Auto\.get\(\) needs a pk or filters"):
            Auto.get()
        with pytest.raises(
            ValueError, match=r"Auto\.get\(\) takes one pk, or filters: got \(1, 2\)"
        ):
            Auto.get(1, 2)
    assert issubclass(ImplementationError, ValueError)


# Item 9: exists() takes the arguments of get() ----------------------------------------


def test_exists_without_arguments_is_refused_as_get(Auto):
    Auto(name="Pen Duick")
    with pytest.raises(ValueError, match=r"Auto\.exists\(\) needs a pk or filters"):
        Auto.exists()
    with pytest.raises(ValueError, match=r"Auto\.exists\(\) takes one pk, or filters"):
        Auto.exists(1, name="x")
    assert Auto.exists(1) and Auto.exists(pk=1) and Auto.exists(name="Pen Duick")
    assert not Auto.exists(2) and not Auto.exists(name="Pen Duick II")


# Item 5: one value for the pk ---------------------------------------------------------


@pytest.mark.parametrize("pk_class", [fields.PKField, fields.AutoPKField])
def test_two_values_for_the_pk_are_refused(db, unchanged, pk_class):
    class Named(model.RedisModel):
        database = db
        id = pk_class()
        name = fields.StringField()

    with unchanged():
        with pytest.raises(ValueError, match=r"Named: two values for the pk field id: pk=1, id=2"):
            Named(pk=1, id=2, name="x")
        # the same value twice is refused too, as redis-limpyd did: one name is enough
        with pytest.raises(ValueError, match=r"Named: two values for the pk field id: id=1, pk=1"):
            Named(id=1, pk=1)
        with pytest.raises(CreateManyError) as refused:
            Named.create_many([{"pk": 1, "id": 1}])
    assert isinstance(refused.value.errors[0], ValueError)
    assert "two values for the pk" in str(refused.value.errors[0])


# Item 3: values() and values_list() name the pk as asked -------------------------------


def test_values_name_the_pk_as_asked(db):
    class Boat(model.RedisModel):
        database = db
        name = fields.StringField()
        id = fields.AutoPKField()
        collection_manager = ExtendedCollectionManager

    Boat(name="Pen Duick")
    boats = Boat.collection()
    assert boats.values("id") == [{"id": "1"}]
    assert boats.values("pk") == [{"pk": "1"}]
    assert boats.values("pk", "name", "id") == [{"pk": "1", "name": "Pen Duick", "id": "1"}]
    # without names: every single-value field by its name, the pk first (as redis-limpyd)
    assert boats.values() == [{"id": "1", "name": "Pen Duick"}]
    assert boats.values_list() == [("1", "Pen Duick")]
    assert boats.values_list("id", "name") == [("1", "Pen Duick")]
    assert boats.values_list("id", flat=True) == ["1"]
    assert boats.values("id").store().values("id", "pk") == [{"id": "1", "pk": "1"}]


# Item 12: redis-limpyd API that code uses though the manual does not list it -------------


def test_model_instances_is_the_collections_instances(Auto):
    one, two = Auto(name="one"), Auto(name="two")
    Auto(name="two")
    assert Auto.instances(name="two")[0:1] == [two] and len(Auto.instances(name="two")) == 2
    assert len(Auto.instances()) == 3
    assert Auto.instances(lazy=True, name="one") == [one]
    assert Auto.instances(name="none") == []


def test_instance_connection_is_its_databases_client(db, Auto):
    auto = Auto(name="one")
    assert auto.connection is db.connection
    assert auto.connection.exists(Auto.get_field("name").key_for(auto.pk.get())) == 1


def test_hashable_fields_list_the_instance_hash_fields(db):
    """What the manual's `hmget_dict` example reads (tests/test_manual_examples.py runs it)."""

    class Post(model.RedisModel):
        database = db
        title = fields.InstanceHashField()
        body = fields.StringField()
        author = fields.InstanceHashField()

    class Poll(Post):
        question = fields.InstanceHashField()

    assert Post._hashable_fields == ["title", "author"]
    assert Poll._hashable_fields == ["title", "author", "question"]
    post = Post(title="t", author="a")
    assert post.hmget(*post._hashable_fields) == ["t", "a"]


class PickledCard(model.RedisModel):
    """At module level: pickle finds a class by its name."""

    database = RedisDatabase(backend=FakeBackend(name="pickled-cards"))
    name = fields.InstanceHashField()
    tags = fields.SetField()


def test_instances_equality_hash_and_pickling(db):
    """An unsaved instance equals itself only and has no hash (it changed at its first write:
    a set holding it lost it); an instance whose fields were read pickles (NO_DEFAULT, held by
    its bound fields, did not)."""
    import pickle

    from limpyd.fields.base import NO_DEFAULT

    PickledCard.use_database(db)
    unsaved = PickledCard()
    assert unsaved == unsaved and unsaved != PickledCard()
    with pytest.raises(TypeError, match="unsaved PickledCard instance is unhashable"):
        hash(unsaved)
    unsaved.name.hset("x")  # created by its first write
    card = PickledCard(name="a")
    assert card.tags.smembers() == set() and card.name.hget() == "a"
    again = pickle.loads(pickle.dumps(card))
    assert again == card and hash(again) == hash(card) and again.name.hget() == "a"
    assert {card, PickledCard(card.pk.get()), unsaved} == {card, unsaved}
    assert pickle.loads(pickle.dumps(NO_DEFAULT)) is NO_DEFAULT


def test_a_refused_declaration_leaves_no_trace(db, limpyd_database_factory):
    """A class the metaclass refused lives on among its parent's subclasses until it is
    garbage-collected: use_database() moved it too (registering it in the new database)."""
    import gc

    gc.disable()  # the refused class stays among Base.__subclasses__() meanwhile
    try:

        class Base(model.RedisModel):
            database = db
            name = fields.StringField()

        with pytest.raises(ImplementationError, match="ttl"):

            class Thing(Base):
                ttl = -1

        other = limpyd_database_factory()
        Base.use_database(other)
        assert list(other.models.values()) == [Base]
    finally:
        gc.enable()


def test_fields_of_a_mixin_are_refused(db):
    """A mixin is not a model: its fields were silently left out (an AttributeError later)."""

    class Stamped:
        created = fields.InstanceHashField()

    with pytest.raises(ImplementationError, match=r"^Doc\.created: declared on Stamped, which"):

        class Doc(Stamped, model.RedisModel):
            database = db
            title = fields.InstanceHashField()


def test_inherited_fields_follow_pythons_lookup_order(db):
    """In a diamond, the field of the first class in the MRO that declares it wins (A only
    inherits Base.x, B overrides it: C(A, B) has B's), as Python finds attributes; the
    order of the fields stays the root's first."""

    class Base(model.RedisModel):
        abstract = True
        x = fields.StringField()
        y = fields.StringField()

    class A(Base):
        abstract = True

    class B(Base):
        abstract = True
        x = fields.SetField()

    class C(A, B):
        database = db

    assert isinstance(C.get_field("x"), fields.SetField)
    assert list(C._meta.fields) == ["pk", "x", "y"]
    assert C(x=["a", "b"]).x.smembers() == {"a", "b"}


@pytest.mark.parametrize("attribute", [None, 5, lambda self: None])
def test_an_attribute_hiding_an_inherited_field_is_refused(db, attribute):
    """It was silently replaced by the field."""

    class Base(model.RedisModel):
        abstract = True
        x = fields.StringField()

    with pytest.raises(ImplementationError, match=r"^Article\.x: hides the field 'x' of Base"):
        type("Article", (Base,), {"database": db, "x": attribute})


def test_get_or_connect_gives_the_creations_uniqueness_error(db, unchanged):
    """A creation refused for a unique value held by an instance the filters do not match
    was reported as "no instance matches" (the get's DoesNotExist), hiding the cause."""

    class User(model.RedisModel):
        database = db
        login = fields.InstanceHashField(unique=True)
        city = fields.InstanceHashField(indexable=True)
        plan = fields.InstanceHashField(unique=True, default="none")

    User(login="ana", city="Paris")
    with unchanged():
        with pytest.raises(UniquenessError, match=r"^User\.login: value 'ana' is already held"):
            User.get_or_connect(login="ana", city="Rome")
        with pytest.raises(UniquenessError, match=r"^User\.plan: value 'none' is already held"):
            User.get_or_connect(login="bob")  # its default is held
    assert User.get_or_connect(login="ana", city="Paris") == (User(1), False)


def test_a_default_of_none_is_refused_at_declaration(db):
    """`default=None` was taken, then every creation without the field refused."""
    with pytest.raises(ImplementationError, match=r"^Doc\.note: default=None is no value"):

        class Doc(model.RedisModel):
            database = db
            title = fields.StringField()
            note = fields.StringField(default=None)
