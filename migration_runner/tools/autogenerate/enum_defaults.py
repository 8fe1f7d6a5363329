"""A server default that names an enum type the database does not have yet.

Alembic compares a column's server default on PostgreSQL by running both as SQL
(`SELECT 'draft'::text = 'draft'::status`), which fails with `type "status"
does not exist` when the models' default casts to a new enum type. This
comparator, an Alembic plugin that comparison.py's options name, runs before
that one for such a column: the database's default cannot be the models' (its
type is not there yet), so the default is marked changed and Alembic's own
comparison skipped. For every other column it steps aside.
"""

from alembic.runtime.plugins import Plugin
from alembic.util import PriorityDispatchResult
from sqlalchemy import Enum, text

from migration_runner.tools.autogenerate.identifiers import quoted

NAME = "migration_runner.enum_defaults"


def compare(autogen_context, alter_column_op, schema, table, column, conn_col, metadata_col):
    type_ = metadata_col.type
    default = metadata_col.server_default
    if default is None or not (isinstance(type_, Enum) and type_.native_enum and type_.name):
        return PriorityDispatchResult.CONTINUE
    exists = autogen_context.connection.execute(
        text("SELECT to_regtype(:name) IS NOT NULL"), {"name": quoted(type_.name)}
    ).scalar()
    if exists:
        return PriorityDispatchResult.CONTINUE
    alter_column_op.existing_server_default = conn_col.server_default
    alter_column_op.modify_server_default = default
    return PriorityDispatchResult.STOP


try:
    Plugin(NAME).add_autogenerate_comparator(compare, "column", "server_default")
except ValueError:  # registered already (the module imported under another name)
    pass
