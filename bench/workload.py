"""The standard workload: the data set and the operations, shared by every implementation.

Standard library only (it is imported in redis-limpyd's virtualenv too). The data set is the
same for the three implementations, each writing it through its own write path:

- 1,000 `Person` (pks 1..1000): `name` unique, `city` (10 values, 100 persons each),
  `country` (7 values), `status` (3 values), `age` (NumberRangeIndex, 18..77), all
  InstanceHashFields, and `tags`, an indexed SetField of 1 or 2 tags;
- 100 `Group`: `name`, `owner` (FK to the Person 10·g) and `members` (M2M: the 10 persons
  whose pk is g modulo 100).

Each operation runs on that data set; write operations restore it after each repetition,
outside the timed region (see `Op` in harness.py).
"""

from __future__ import annotations

SIZE = 1000
GROUPS = 100
STATUSES = ("active", "inactive", "pending")
#: Fields `values()` reads, in this order.
VALUE_FIELDS = ("pk", "name", "city", "country", "status", "age")


def person_values(i: int) -> dict[str, object]:
    """The fields of the i-th person of the data set (its pk is i)."""
    return {
        "name": f"person-{i:04d}",
        "city": f"city-{i % 10}",
        "country": f"country-{i % 7}",
        "status": STATUSES[i % 3],
        "age": str(18 + i % 60),
        "tags": sorted({f"tag-{i % 10}", f"tag-{i // 10 % 10}"}),
    }


def new_person_values(name: str) -> dict[str, object]:
    """The 6 fields (5 indexed, 1 unique) of a person created by an operation."""
    return {
        "name": name,
        "city": "city-1",
        "country": "country-1",
        "status": "pending",
        "age": "77",
        "tags": ["tag-1", "tag-2"],
    }


def group_values(g: int) -> dict[str, object]:
    """The name, owner pk and member pks of the g-th group (its pk is g)."""
    return {
        "name": f"group-{g:03d}",
        "owner": str(g * 10),
        "members": [str(pk) for pk in range(g, SIZE + 1, GROUPS)],
    }


# What each operation works on.
GET_PK = "123"
GET_ALL_PK = "124"
UNIQUE_NAME = "person-0125"
FILTER_CITY = "city-3"
FILTER_3 = {"city": "city-3", "country": "country-3", "status": "active"}
RANGE = (30, 40)  # age__gte=30, age__lt=40
INSTANCES_CITY = "city-4"
VALUES_CITY = "city-5"
VALUES_LIST_CITY = "city-6"
UPDATE_INDEXED_PK, UPDATE_INDEXED_TO = "501", "city-2"
UPDATE_UNIQUE_PK = "502"
HMSET_PK, HMSET_TO = "503", {"city": "city-0", "country": "country-0"}
SADD_PK, SADD_TAG = "504", "tag-extra"
FK_OWNER_PK = "505"
M2M_GROUP_PK, M2M_PERSON_PKS = "50", ("1", "2", "3")
RELATED_PK = "55"
DELETE_RELATED_GROUPS = ("1", "2", "3")

#: (key, title, kind, limpyd's round-trip budget: what it does since Part 10, guarded by the
#: smoke run; None: not budgeted). Order of the report.
OPS: list[tuple[str, str, str, int | None]] = [
    ("get_pk", "get by pk", "read", None),
    ("get_pk_all", "get by pk, all fields", "read", None),
    ("get_unique", "get by a unique field", "read", 1),
    ("filter_1", "filter on 1 field", "read", 1),
    ("filter_3", "filter on 3 fields", "read", 1),
    ("filter_range", "range filter (NumberRangeIndex)", "read", 1),
    ("sort_slice", "filter + sort(by, alpha) + [0:10]", "read", 1),
    ("instances_100", "instances() of 100", "read", 1),
    ("values_100", "values() of 100", "read", 1),
    ("values_list_100", "values_list(flat=True) of 100", "read", 1),
    ("create_6", "create, 6 fields (5 indexed, 1 unique)", "write", 1),
    ("update_indexed", "update an indexed field", "write", 1),
    ("update_unique", "update a unique field", "write", 1),
    ("hmset_2", "hmset of 2 indexed fields", "write", 1),
    ("sadd_set", "sadd to an indexed SetField", "write", 1),
    ("delete_indexed", "delete an instance with indexes", "write", 1),
    ("create_fk", "create with an FK", "write", 1),
    ("m2m_sadd_3", "M2M sadd of 3", "write", 1),
    ("related_collection", "related collection", "read", 1),
    ("delete_related", "delete: owns 1 group, member of 3", "write", 1),
]
OP_KEYS = [key for key, *_ in OPS]
