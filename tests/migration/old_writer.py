"""Writes a database with the REAL redis-limpyd (1.3.x or 2.x), in its own virtualenv.

`python old_writer.py URL [conflict]` (redis:// or unix://, with the db), with `oldapp` on
the path: the models of `oldapp/models.py`, imported by redis-limpyd, get every field type,
indexes, unique and related fields. With `conflict`, two instances end up holding one
unique value (written behind redis-limpyd's back, as a field made unique later would have
it). Prints a JSON summary.
"""

import json
import sys
from urllib.parse import parse_qs, urlsplit

from oldapp.models import Group, Note, Person, Tag, database

url = urlsplit(sys.argv[1])
if url.scheme == "unix":
    where = {"unix_socket_path": url.path, "db": int(parse_qs(url.query).get("db", ["0"])[0])}
else:
    where = {"host": url.hostname, "port": url.port or 6379, "db": int(url.path.strip("/") or 0)}
database.reset(**where)

admins = Group(name="admins", rank=1)
staff = Group(name="staff", rank=2)
empty = Group(name="empty")
Tag(slug="py", label="Python")
Tag(slug="redis", label="Redis")
alice = Person(
    name="Alice",
    bio="likes: colons",
    email="alice@example.com",
    city="Paris",
    age=31,
    group=admins.pk.get(),
    favorite="py",
)
alice.tags.sadd("a", "b")
alice.history.rpush("x", "y", "x")
alice.scores.zadd(math=12.5, art=3)
alice.props.hset("color", "red")
alice.props.hset("size", "M")
bob = Person(name="Bob", email="bob@example.com", city="Lyon", age=45, group=staff.pk.get())
bob.tags.sadd("b")
bob.friends.sadd(alice.pk.get())
alice.friends.sadd(bob.pk.get())
bob.mentors.rpush(alice.pk.get(), alice.pk.get())
admins.leaders.zadd(**{alice.pk.get(): 1.5})
carol = Person(name="Carol", email="carol@example.com", city="Paris", age=7)
carol.props.hset("color", "blue")
gone = Person(name="Gone", email="gone@example.com")
gone.delete()  # max_pk is past the highest pk left
for text in ("first", "second"):
    Note(text=text)
if sys.argv[2:] == ["conflict"]:
    database.connection.hset(
        Person.make_key(Person._name, bob.pk.get(), "hash"), "email", "alice@example.com"
    )
print(
    json.dumps(
        {
            "groups": [g.pk.get() for g in (admins, staff, empty)],
            "persons": [p.pk.get() for p in (alice, bob, carol)],
            "person_max_pk": database.connection.get("mig:person:max_pk"),
            "keys": sorted(database.connection.keys("*")),
        }
    )
)
