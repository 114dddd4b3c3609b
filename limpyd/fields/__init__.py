"""The six field types of limpyd, by Redis type, and the primary-key fields."""

from limpyd.fields.base import RedisField
from limpyd.fields.hashes import HashField
from limpyd.fields.lists import ListField
from limpyd.fields.pk import AutoPKField, PKField
from limpyd.fields.sets import SetField
from limpyd.fields.sortedsets import SortedSetField
from limpyd.fields.strings import InstanceHashField, StringField

__all__ = [
    "AutoPKField",
    "HashField",
    "InstanceHashField",
    "ListField",
    "PKField",
    "RedisField",
    "SetField",
    "SortedSetField",
    "StringField",
]
