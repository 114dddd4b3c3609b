"""limpyd's testing toolkit: test limpyd code in memory or on a real Redis.

- `limpyd_testing.plugin`: the pytest plugin (installed with limpyd, entry point `limpyd`):
  options `--limpyd-backend=fake|redis|both` and friends, fixtures `limpyd_database`,
  `limpyd_database_factory`, `limpyd_redis`, `limpyd_server`, `limpyd_commands`...
- `limpyd_testing.server`: `RedisServerExecutor`, a throw-away `redis-server`.
- `limpyd_testing.counting`: `count_commands(database)`, round trips and commands sent.
"""

from limpyd_testing.counting import CommandCount, count_client_commands, count_commands
from limpyd_testing.server import RedisServerError, RedisServerExecutor, RedisServerNotFound

__all__ = [
    "CommandCount",
    "RedisServerError",
    "RedisServerExecutor",
    "RedisServerNotFound",
    "count_client_commands",
    "count_commands",
]
