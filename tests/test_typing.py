"""The types a user's code sees: every command a field class generates at runtime is declared
for type checkers, with redis-py's parameters, and a user module type-checks with
`mypy --strict`, its `reveal_type`s giving the expected types."""

from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path

import pytest
import redis

import limpyd.contrib.related  # noqa: F401  (its field classes are checked too)
from limpyd.fields import InstanceHashField, RedisField


def _field_classes() -> list[type[RedisField]]:
    """RedisField and every subclass limpyd defines."""
    found: list[type[RedisField]] = []
    todo = [RedisField]
    while todo:
        cls = todo.pop()
        if cls not in found and cls.__module__.startswith("limpyd."):
            found.append(cls)
            todo.extend(cls.__subclasses__())
    return found


@cache
def _module_tree(module: str) -> ast.Module:
    return ast.parse(inspect.getsource(sys.modules[module]))


def _checking_blocks(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements of the `if TYPE_CHECKING:` blocks of `body`."""
    return [
        item
        for block in body
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for item in block.body
    ]


def _shared(cls: type, name: str) -> ast.FunctionDef | None:
    """A declaration several field classes share (`sort = declared_sort`): a function of an
    `if TYPE_CHECKING:` block at the top of the module of a class of `cls`'s MRO."""
    for klass in cls.__mro__:
        if klass.__module__.startswith("limpyd."):
            for item in _checking_blocks(_module_tree(klass.__module__).body):
                if isinstance(item, ast.FunctionDef) and item.name == name:
                    return item
    return None


def _declared(cls: type) -> dict[str, list[ast.FunctionDef]]:
    """The methods `cls` declares in its `if TYPE_CHECKING:` blocks, by name (overloads and
    their implementation together)."""
    declared: dict[str, list[ast.FunctionDef]] = {}
    for node in _module_tree(cls.__module__).body:
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            for item in _checking_blocks(node.body):
                if isinstance(item, ast.FunctionDef):
                    declared.setdefault(item.name, []).append(item)
                elif isinstance(item, ast.Assign) and isinstance(item.value, ast.Name):
                    shared = _shared(cls, item.value.id)
                    assert shared is not None, f"{cls.__name__}: {item.value.id} not found"
                    for target in item.targets:
                        declared.setdefault(ast.unparse(target), []).append(shared)
    return declared


def _declaration_of(cls: type[RedisField], name: str) -> list[ast.FunctionDef] | None:
    """The declaration the type checker uses for the generated method `name` of `cls`: the
    first class of its MRO declaring it (None if none does)."""
    for klass in cls.__mro__:
        if not klass.__module__.startswith("limpyd."):
            continue
        declared = _declared(klass).get(name)
        if declared:
            return declared
    return None


def _names(function: ast.FunctionDef) -> list[str]:
    args = function.args
    names = [a.arg for a in [*args.posonlyargs, *args.args]]
    names += [args.vararg.arg] if args.vararg else []
    names += [a.arg for a in args.kwonlyargs]
    names += [args.kwarg.arg] if args.kwarg else []
    return names[1:]  # without self


def _redis_names(cls: type[RedisField], name: str) -> list[str]:
    """The parameters of redis-py's `name`, without self and the key arguments."""
    keys = 2 if issubclass(cls, InstanceHashField) else 1
    return list(inspect.signature(getattr(redis.Redis, name)).parameters)[1 + keys :]


def test_field_classes_are_found() -> None:
    names = {cls.__name__ for cls in _field_classes()}
    assert {"StringField", "SortedSetField", "PKField", "M2MSetField"} <= names


@pytest.mark.parametrize("cls", _field_classes(), ids=lambda cls: cls.__name__)
def test_every_generated_command_is_declared(cls: type[RedisField]) -> None:
    """A command added to `getters` or `modifiers` without its declaration fails here."""
    for name in (*cls.getters, *cls.modifiers):
        if not getattr(getattr(cls, name), "generated", False):
            continue  # an explicit method: typed where it is written
        declaration = _declaration_of(cls, name)
        assert declaration is not None, f"{cls.__name__}.{name} is generated but not declared"
        expected = _redis_names(cls, name)
        for function in declaration:
            if _names(function) == ["args", "kwargs"]:
                continue  # the implementation of overloads
            assert _names(function) == expected, (
                f"{cls.__name__}.{name}: declared with {_names(function)}, redis-py takes "
                f"{expected}"
            )


@pytest.mark.parametrize("cls", _field_classes(), ids=lambda cls: cls.__name__)
def test_every_declaration_is_a_command(cls: type[RedisField]) -> None:
    """What a TYPE_CHECKING block declares exists at runtime (generated, or written), on the
    class or, for a mixin, on each field class using it."""
    users = [cls] if cls.getters or cls.modifiers else cls.__subclasses__()
    assert users, f"{cls.__name__} declares commands but has none"
    for name in _declared(cls):
        for user in users:
            assert callable(getattr(user, name, None)), f"{user.__name__}.{name} does not exist"


def test_an_undeclared_command_is_caught() -> None:
    """The check above sees a command added without its declaration."""

    class Broken(InstanceHashField):
        modifiers = (*InstanceHashField.modifiers, "hstrlen")

    Broken.__module__ = InstanceHashField.__module__  # looked up in strings.py: absent
    assert _declaration_of(Broken, "hstrlen") is None
    assert getattr(Broken.hstrlen, "generated", False)


#: A user's module: each `reveal_type` line ends with the type mypy must reveal (without
#: "builtins."), a line mypy must refuse with `# error: [its code]`.
USER_MODULE = """
from __future__ import annotations

from limpyd import model
from limpyd.collection import CollectionManager
from limpyd.contrib.collection import ExtendedCollectionManager
from limpyd.contrib.database import PipelineDatabase
from limpyd.contrib.related import FKInstanceHashField, M2MSetField, RelatedModel

db = PipelineDatabase.from_url("fakeredis://typing")


class Group(RelatedModel):
    database = db
    name = model.InstanceHashField(unique=True)


class Person(RelatedModel):
    database = db
    name = model.InstanceHashField(indexable=True)
    code = model.StringField()
    tags = model.SetField()
    log = model.ListField()
    attrs = model.HashField()
    scores = model.SortedSetField()
    group = FKInstanceHashField(Group, related_name="members")
    friends = M2MSetField("Person", related_name="friend_of")


def names(collection: CollectionManager) -> list[str]:
    return [str(pk) for pk in collection]


p = Person(name="x")
reveal_type(db)  # limpyd.contrib.database.PipelineDatabase
reveal_type(Person.name)  # limpyd.fields.strings.InstanceHashField
reveal_type(p.name)  # limpyd.fields.strings.InstanceHashField
reveal_type(p.pk)  # limpyd.fields.pk.PKField
reveal_type(p.pk.get())  # str | None
reveal_type(p.name.hget())  # str | None
reveal_type(p.name.hset("y"))  # int
reveal_type(p.code.set("c"))  # bool | None
reveal_type(p.code.set("c", get=True))  # str | None
reveal_type(p.code.incrbyfloat(1.5))  # float
reveal_type(p.tags.sadd("a", "b"))  # int
reveal_type(p.tags.smembers())  # set[str]
reveal_type(p.tags.spop())  # str | None
reveal_type(p.log.lrange(0, -1))  # list[str]
reveal_type(p.log.lpop(2))  # list[str] | None
reveal_type(p.attrs.hgetall())  # dict[str, str]
reveal_type(p.attrs.hmget(["a", "b"]))  # list[str | None]
reveal_type(p.scores.zadd({"a": 1.5}))  # int
reveal_type(p.scores.zrange(0, -1))  # list[str]
reveal_type(p.scores.zrange(0, -1, withscores=True))  # list[tuple[str, float]]
reveal_type(p.scores.zscore("a"))  # float | None
reveal_type(p.group.instance())  # limpyd.contrib.related.RelatedModel | None
reveal_type(p.friends())  # limpyd.contrib.collection.ExtendedCollectionManager
g = Group(name="g")
reveal_type(g.members())  # limpyd.contrib.collection.ExtendedCollectionManager
reveal_type(Person.get(name="x"))  # user.Person
reveal_type(Person.get_or_connect(name="x"))  # tuple[user.Person, bool]
reveal_type(Person.lazy_connect(1))  # user.Person
reveal_type(Person.collection(name="x"))  # limpyd.collection.CollectionManager
ext = ExtendedCollectionManager
reveal_type(Person.collection(manager=ext))  # limpyd.contrib.collection.ExtendedCollectionManager
chained = Person.collection(manager=ext).filter(name="x").instances().sort(by="name")
reveal_type(chained)  # limpyd.contrib.collection.ExtendedCollectionManager
union = Person.collection().exclude(name="y") | Person.collection()
reveal_type(union)  # limpyd.collection.CollectionManager
p.name = "y"  # error: [assignment]
with db.pipeline() as pipeline:
    p.tags.sadd("c")
    results = pipeline.execute()
print(names(Person.collection(name="x")), results)
"""


@pytest.mark.slow
def test_a_user_module_type_checks_strictly(tmp_path: Path) -> None:
    """`mypy --strict` accepts a user's module and reveals the types its comments say."""
    (tmp_path / "user.py").write_text(textwrap.dedent(USER_MODULE))
    root = Path(__file__).resolve().parents[1]  # this checkout's limpyd, not an installed one
    process = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"),
         "--no-error-summary", "user.py"],
        capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(root)}, check=False,
    )  # fmt: skip
    lines = [line for line in process.stdout.splitlines() if line.startswith("user.py:")]
    source = textwrap.dedent(USER_MODULE).splitlines()
    errors = {
        int(m[1]): m[2]
        for m in (re.match(r"user.py:(\d+): error: .*?(\[[a-z-]+\])?$", line) for line in lines)
        if m
    }
    expected_errors = {
        number: line.split("  # error: ")[1]
        for number, line in enumerate(source, 1)
        if "  # error: " in line
    }
    assert errors == expected_errors, "\n".join(lines)
    revealed = {
        int(m[1]): m[2].replace("builtins.", "")
        for m in (re.match(r".*?:(\d+): note: Revealed type is \"(.*)\"$", line) for line in lines)
        if m
    }
    expected = {
        number: line.split("  # ")[1]
        for number, line in enumerate(source, 1)
        if line.startswith("reveal_type(")
    }
    assert revealed == expected


def test_every_type_ignore_says_why() -> None:
    """Each `type: ignore` of the packages names its error code (mypy checks that, and that
    it is still needed) and gives its reason: after it on its line, or in the comment line
    above it."""
    root = Path(__file__).resolve().parents[1]
    unexplained = []
    for path in sorted([*root.glob("limpyd/**/*.py"), *root.glob("limpyd_testing/**/*.py")]):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            match = re.search(r"# type: ignore(\[[^\]]+\])?(.*)$", line)
            if match is None:
                continue
            above = lines[number - 2].strip() if number > 1 else ""
            explained = match[2].strip().startswith("#") or above.startswith("#")
            if match[1] is None or not explained:
                unexplained.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert not unexplained, "\n".join(unexplained)
