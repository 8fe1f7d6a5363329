"""Indexes: on a table that has rows, built and dropped CONCURRENTLY in a revision of their
own (`-- Transaction: none`); on a new table, plainly. The index definitions Alembic does not
compare (expressions, predicates) come from model_parity's differences."""

from alembic.operations import ops

from migration_runner.tools.autogenerate.plan import Statement
from migration_runner.tools.autogenerate.renderers import (
    ADDED,
    DROPPED,
    Context,
    mismatch,
    renders,
)
from migration_runner.tools.autogenerate.statements import concurrently, drop_index_concurrently


def _concurrently(statements: list[Statement]) -> list[Statement]:
    for statement in statements:
        if statement.sql.startswith("DROP INDEX "):
            statement.sql = f"DROP INDEX CONCURRENTLY IF EXISTS {statement.sql[11:]}"
        else:
            statement.sql = concurrently(statement.sql)
    return statements


@renders(ops.CreateIndexOp)
def create_index(op: ops.CreateIndexOp, context: Context) -> None:
    name = op.index_name
    if not context.existing(op.table_name):
        context.plan.pair(
            context.plain(op, f"Index {name} on the new table."),
            context.plain(op.reverse(), f"Drop {name}."),
        )
        return
    up = _concurrently(context.plain(op, f"Build {name} without blocking writes (CONCURRENTLY); "
                                         "if it is interrupted, drop the INVALID index and rerun."))  # fmt: skip
    down = _concurrently(
        context.plain(op.reverse(), f"Drop {name} without blocking (CONCURRENTLY).")
    )
    context.plan.pair(up, down, online=True)


@renders(ops.DropIndexOp)
def drop_index(op: ops.DropIndexOp, context: Context) -> None:
    name = op.index_name
    context.plan.pair(
        _concurrently(context.plain(op, f"Drop index {name}.")),
        _concurrently(context.plain(op.reverse(), f"Rebuild index {name}.")),
        online=context.existing(op.table_name),
    )


@renders(mismatch("index", DROPPED))
def drop_index_definition(difference, context: Context) -> None:
    """An index whose definition the models no longer declare (pg_get_indexdef's text)."""
    name = difference.name
    context.plan.pair(
        [drop_index_concurrently(name, f"Drop index {name} without blocking.")],
        [Statement(concurrently(difference.database), f"Rebuild index {name}.")],
        online=True,
    )


@renders(mismatch("index", ADDED))
def add_index_definition(difference, context: Context) -> None:
    name = difference.name
    context.plan.pair(
        [
            Statement(
                concurrently(difference.models), f"Build index {name} without blocking writes."
            )
        ],
        [drop_index_concurrently(name, f"Drop index {name}.")],
        online=True,
    )
