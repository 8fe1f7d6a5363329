"""Foreign keys and CHECKs: on a table that has rows, added NOT VALID then VALIDATEd
(constraints.validated); dropped in expand (the old code works without them). The CHECK
expressions Alembic does not compare come from model_parity's differences: a CHECK the models
add is written here; one the database has (dropped or changed) is constraints.find's, which
takes it over before any renderer runs, so no renderer is registered for that direction."""

from alembic.operations import ops

from migration_runner.tools.autogenerate.constraints import validated
from migration_runner.tools.autogenerate.identifiers import quoted
from migration_runner.tools.autogenerate.lock_facts import describe
from migration_runner.tools.autogenerate.renderers import (
    ADDED,
    Context,
    alembic_sql,
    mismatch,
    renders,
)
from migration_runner.tools.autogenerate.statements import brief, drop_constraint

# DropConstraintOp's constraint_type -> the lock_facts kind of its DROP CONSTRAINT.
DROP_KINDS = {
    "foreignkey": "drop_foreign_key",
    "check": "drop_check",
    "unique": "drop_unique_constraint",
    "primary": "drop_primary_key",
}


@renders(ops.CreateForeignKeyOp)
def create_foreign_key(op: ops.CreateForeignKeyOp, context: Context) -> None:
    table, name = op.source_table, op.constraint_name
    if not context.existing(table):
        context.plan.pair(
            context.plain(op, f"Foreign key {name} on the new table."),
            context.plain(op.reverse(), "Undo it."),
        )
        return
    what = f"foreign key {name}"
    add = []
    for sql in alembic_sql(op, context.metadata):
        add += validated(table, name, sql, what)
    context.plan.pair(add, context.plain(op.reverse(), f"Drop {what}."), online=True)


@renders(ops.DropConstraintOp)
def drop_constraint_op(op: ops.DropConstraintOp, context: Context) -> None:
    table, name = op.table_name, op.constraint_name
    kind = DROP_KINDS.get(op.constraint_type or "")
    referenced = getattr(op.reverse(), "referent_table", None)
    locks = describe(kind, table, referenced) if kind else brief(table)
    context.plan.pair(
        [
            drop_constraint(
                table, name, f"Drop {name}, which the models no longer declare: {locks}."
            )
        ],
        context.plain(op.reverse(), f"Restore {name}."),
    )


def _add_check(table: str, name: str, definition: str) -> str:
    return f"ALTER TABLE {quoted(table)} ADD CONSTRAINT {quoted(name)} {definition}"


@renders(mismatch("CHECK", ADDED))
def add_check(difference, context: Context) -> None:
    table, name = difference.table, difference.name
    context.plan.pair(
        validated(table, name, _add_check(table, name, difference.models), f"CHECK {name}"),
        [drop_constraint(table, name, f"Drop CHECK {name}.")],
        online=True,
    )
