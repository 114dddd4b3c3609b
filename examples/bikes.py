"""The manual's Bike example, runnable as is.

python examples/bikes.py                      # in memory (fakeredis), no server needed
python examples/bikes.py redis://127.0.0.1:6379/0   # a real Redis server (db must be empty)
"""

from __future__ import annotations

import sys

from limpyd import model
from limpyd.exceptions import UniquenessError

url = sys.argv[1] if len(sys.argv) > 1 else "fakeredis://bikes"
main_database = model.RedisDatabase.from_url(url)


class Bike(model.RedisModel):
    database = main_database
    name = model.InstanceHashField(indexable=True, unique=True)
    color = model.InstanceHashField()
    wheels = model.StringField(default=2)


def main() -> None:
    mountainbike = Bike(name="mountainbike")
    print("wheels:", mountainbike.wheels.get())
    mountainbike.wheels.incr()
    print("wheels after incr:", mountainbike.wheels.get())
    mountainbike.name.set("tricycle")
    tricycle = Bike.collection(name="tricycle").instances()[0]
    tricycle.hmset(color="blue")
    print("tricycle:", tricycle.hmget("color", "name"), "wheels:", tricycle.wheels.get())
    try:
        Bike(name="tricycle")
    except UniquenessError as error:
        print("refused:", error)
    print("bikes:", list(Bike.collection()))
    for key in sorted(Bike.scan_model_keys()):
        print("  key", key)


if __name__ == "__main__":
    main()
