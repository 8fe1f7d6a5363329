"""Whether a column's values can be cast to its new type, asked of PostgreSQL before anything
is written.

A type change that rewrites the table is a column swap (expand_contract.py) whose trigger and
backfill write the cast out, `column::newtype`, as ALTER COLUMN ... TYPE ... USING would.
When PostgreSQL has no cast between the two types, that expression cannot even be planned:
the change is refused in one line, before a draft is made, and the conversion is for a person
to write.
"""

from alembic.operations import ops
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from migration_runner.errors import MigrationError
from migration_runner.tools.autogenerate.identifiers import quoted
from migration_runner.tools.autogenerate.type_changes import cast_type, spelled

CANNOT_COERCE = "42846"  # PostgreSQL's cannot_coerce: no cast between the two types
UNDEFINED_OBJECT = "42704"  # a type this change creates (an enum): nothing to ask yet


def require_cast(connection: Connection, op: ops.AlterColumnOp) -> None:
    """Refuse op's type change when PostgreSQL cannot cast the old type to the new one."""
    old, new = spelled(op.existing_type), cast_type(op.modify_type)
    probe = f"SELECT CAST(CAST(NULL AS {old}) AS {new})"
    savepoint = connection.begin_nested()
    try:
        connection.exec_driver_sql(probe)
    except DBAPIError as error:
        code = getattr(error.orig, "pgcode", None)
        if code == CANNOT_COERCE:
            column = f"{op.table_name}.{op.column_name}"
            raise MigrationError(
                f"{column} changes from {old} to {spelled(op.modify_type)}, but PostgreSQL has "
                f"no cast from {old} to {new} (USING {quoted(op.column_name)}::{new} cannot "
                "work): write the conversion by hand (alembic revision -m ...)."
            ) from None
        if code != UNDEFINED_OBJECT:
            raise
    finally:
        savepoint.rollback()
