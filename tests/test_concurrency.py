"""Concurrent writers racing on unique values: no duplicate, indexes equal to the data.

Each thread has its own connection (its own RedisDatabase on the same server), as separate
processes would.
"""

from __future__ import annotations

import random
import threading

import pytest

from limpyd import fields, model
from limpyd.exceptions import UniquenessError

pytestmark = pytest.mark.slow

THREADS = 8
ROUNDS = 40
VALUES = [f"v{i}" for i in range(6)]


def _models(database):
    class Racer(model.RedisModel):
        database = None
        namespace = "race"
        code = fields.StringField(unique=True)
        label = fields.InstanceHashField(unique=True)
        group = fields.InstanceHashField(indexable=True)
        tags = fields.SetField(indexable=True)

    Racer.use_database(database)
    return Racer


@pytest.mark.parametrize("round_", range(2))
def test_racing_unique_values(limpyd_database_factory, consistent, round_):
    main = limpyd_database_factory()
    Racer = _models(main)
    errors: list[BaseException] = []
    refused = 0
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def worker(seed: int) -> None:
        nonlocal refused
        rng = random.Random(seed)
        Local = _models(limpyd_database_factory())
        barrier.wait()
        mine = []
        for _ in range(ROUNDS):
            try:
                action = rng.random()
                if action < 0.4 or not mine:
                    mine.append(
                        Local(
                            code=rng.choice(VALUES),
                            group=rng.choice("ab"),
                            tags=[rng.choice(VALUES)],
                        )
                    )
                elif action < 0.6:
                    rng.choice(mine).code.set(rng.choice(VALUES))
                elif action < 0.75:
                    rng.choice(mine).hmset(label=rng.choice(VALUES), group=rng.choice("abc"))
                elif action < 0.85:
                    rng.choice(mine).tags.sadd(rng.choice(VALUES))
                else:
                    victim = mine.pop(rng.randrange(len(mine)))
                    victim.delete()
            except UniquenessError:
                with lock:
                    refused += 1
            except BaseException as error:
                errors.append(error)
                return

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert refused > 0  # the race really happened
    consistent(Racer)
    codes = [Racer(pk).code.get() for pk in Racer.collection()]
    present = [code for code in codes if code is not None]
    assert len(present) == len(set(present))
    for value in VALUES:
        holders = list(Racer.collection(code=value))
        assert len(holders) <= 1
