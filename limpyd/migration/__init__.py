"""Migrate a database written by redis-limpyd (1.3.x or 2.x) to limpyd's key layout.

`python -m limpyd migrate-from-redis-limpyd app.models:Person ... --url URL` (see
the chapter "Coming from redis-limpyd"). redis-limpyd keeps a model's keys under
`<namespace>:<model>` (`ns:person:collection`, `ns:person:max_pk`, `ns:person:<pk>:<field>`,
`ns:person:<pk>:hash` for the InstanceHashFields, and its index keys
`ns:person:<field>:...`); limpyd's layout is in `limpyd.keys`. Given the limpyd models
declaring the same names, the migration:

1. surveys the old data: its keys, every instance's values (read, never written), the
   values limpyd's indexes would refuse and the unique values two instances hold; any of
   these stops it before anything is written;
2. copies every instance's values with the commands limpyd's own creations send (each
   instance's keys deleted first, so a run again overwrites), then the pk counter;
3. rebuilds every index, `unique_together` combination and related link record with
   `limpyd.maintenance` (old index keys are not read: they are derived data);
4. checks the result with the integrity checker (`limpyd.integrity`);
5. deletes the old keys, only with `delete_source` and a clean check.

Old keys and new keys never share a name (limpyd's keys have the `{group}` hash tag after
the namespace), so a migration in place, interrupted or run again, is safe.
"""

from limpyd.migration.run import Migration, migrate
from limpyd.migration.source import MigrationError, old_prefix

__all__ = ["Migration", "MigrationError", "migrate", "old_prefix"]
