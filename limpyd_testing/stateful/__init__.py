"""`ModelStateMachine`: property-test your own models against a pure-Python model of them.

```python
from limpyd_testing.stateful import ModelStateMachine

class PeopleMachine(ModelStateMachine):
    models = [Person, Group]

def test_people(limpyd_database_factory):           # on the plugin's backend(s)
    PeopleMachine.run(database_factory=limpyd_database_factory)
```

Its rules, invariants and limits: the chapter "State machines" of the documentation.
Modules: `values` (states and the texts Redis stores), `oracle` (what Redis should hold),
`commands` (the model of the Redis commands, by type), `core`/`checks`/`expiry`/`machine`
(the machine and its rules), `config` (databases).
"""

from limpyd_testing.stateful.config import (
    MIN_DEFAULT_TTL,
    DatabaseFactory,
    StatefulConfig,
    config,
    configure,
)
from limpyd_testing.stateful.machine import ModelStateMachine, run_state_machine
from limpyd_testing.stateful.oracle import Oracle, order_pks
from limpyd_testing.stateful.values import field_kind

__all__ = [
    "MIN_DEFAULT_TTL",
    "DatabaseFactory",
    "ModelStateMachine",
    "Oracle",
    "StatefulConfig",
    "config",
    "configure",
    "field_kind",
    "order_pks",
    "run_state_machine",
]
