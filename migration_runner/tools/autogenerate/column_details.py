"""Two parts of a column's type Alembic does not compare: a collation, and the precision of a
temporal type.

Alembic compares a type's modifiers only when both sides spell them, so `timestamptz` against
`timestamptz(3)` is no change to it; and SQLAlchemy's PostgreSQL reflection reads no
collation, so `text` against `text COLLATE "C"` is none either. This comparator, an Alembic
plugin that comparison.py's options name, runs before Alembic's own type comparison: when the
database's collation (pg_attribute.attcollation, None for the type's default) or precision
differs from the models', the column's type is marked changed and Alembic's comparison
skipped. For every other column it steps aside, the database's type given its collation.
"""

from alembic.runtime.plugins import Plugin
from alembic.util import PriorityDispatchResult
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TIMESTAMP, DateTime, Interval, Time

from migration_runner.tools.autogenerate.identifiers import quoted

NAME = "migration_runner.column_details"

# The column's collation when it is not its type's default one.
COLLATION = """
SELECT c.collname
FROM pg_attribute AS a
INNER JOIN pg_type AS t ON t.oid = a.atttypid
INNER JOIN pg_collation AS c ON c.oid = a.attcollation
WHERE a.attrelid = to_regclass(:table) AND a.attname = :column
  AND a.attcollation <> t.typcollation
"""
TEMPORAL = (DateTime, TIMESTAMP, Time, Interval, postgresql.INTERVAL)


def _precision(type_) -> int | None:
    """Fractional seconds' digits (SQLAlchemy's Interval calls them second_precision)."""
    if not isinstance(type_, TEMPORAL):
        return None
    precision = getattr(type_, "precision", None)
    return precision if precision is not None else getattr(type_, "second_precision", None)


def database_collation(connection, schema, table: str, column: str) -> str | None:
    """The column's collation in the database, None when it is its type's default."""
    qualified = f"{quoted(schema)}.{quoted(table)}" if schema else quoted(table)
    return connection.execute(text(COLLATION), {"table": qualified, "column": column}).scalar()


def compare(autogen_context, alter_column_op, schema, table, column, conn_col, metadata_col):
    model_type, database_type = metadata_col.type, conn_col.type
    changed = False
    if hasattr(model_type, "collation") and hasattr(database_type, "collation"):
        # reflection reads none: the database's type gets its own, for Alembic's comparison
        # after this one and for the existing_type a down file restores
        database_type.collation = database_collation(
            autogen_context.connection, schema, table, column
        )
        changed = database_type.collation != model_type.collation
    if isinstance(model_type, TEMPORAL) and isinstance(database_type, TEMPORAL):
        changed = changed or _precision(model_type) != _precision(database_type)
    if not changed:
        return PriorityDispatchResult.CONTINUE
    alter_column_op.existing_type = database_type
    alter_column_op.modify_type = model_type
    return PriorityDispatchResult.STOP


try:
    Plugin(NAME).add_autogenerate_comparator(compare, "column", "types")
except ValueError:  # registered already (the module imported under another name)
    pass
