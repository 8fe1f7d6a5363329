"""Tables: a new one is created whole (nobody reads it yet); a dropped one waits for the
contract phase; a table comment is one statement either way."""

from alembic.operations import ops

from migration_runner.steps.phases import CONTRACT
from migration_runner.tools.autogenerate import table_drops
from migration_runner.tools.autogenerate.lock_facts import describe
from migration_runner.tools.autogenerate.plan import Statement
from migration_runner.tools.autogenerate.renderers import Context, renders
from migration_runner.tools.autogenerate.statements import ignoring


def drop_table_statements(op: ops.DropTableOp, context: Context) -> list[Statement]:
    hazard = f"Hazard: deletes {op.table_name} and every row in it."
    return ignoring(context.plain(op, hazard), "ban-drop-table")


@renders(ops.CreateTableOp)
def create_table(op: ops.CreateTableOp, context: Context) -> None:
    context.plan.pair(
        context.plain(op, f"New table {op.table_name}: nothing reads it yet."),
        drop_table_statements(op.reverse(), context),
    )


@renders(ops.DropTableOp)
def drop_table(op: ops.DropTableOp, context: Context) -> None:
    up, down = table_drops.with_extras(  # its triggers, their functions, its grants
        context.catalog.connection,
        op.table_name,
        drop_table_statements(op, context),
        context.plain(op.reverse(), f"Recreate {op.table_name} (empty)."),
        context.plan,
        context.metadata,
    )
    context.plan.pair(up, down, phase=CONTRACT)


@renders(ops.CreateTableCommentOp, ops.DropTableCommentOp)
def table_comment(op: ops.CreateTableCommentOp | ops.DropTableCommentOp, context: Context) -> None:
    context.plan.pair(
        context.plain(
            op, f"Comment on {op.table_name}: {describe('comment_on_table', op.table_name)}."
        ),
        context.plain(op.reverse(), "Undo it."),
    )
