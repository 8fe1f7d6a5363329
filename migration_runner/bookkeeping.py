"""The runner's own tables: bookkeeping, not schema.

No revision creates them and no model declares them, so every comparison (the
schema snapshot, drift, `alembic check`, model parity), every lock or row
report and every "what did the migrations make" check leaves them out.
"""

RUNNER_TABLES = ("alembic_version", "migration_history", "migration_statements")
# The same, as a SQL list: WHERE relname NOT IN (...).
RUNNER_TABLES_SQL = ", ".join(f"'{table}'" for table in RUNNER_TABLES)
