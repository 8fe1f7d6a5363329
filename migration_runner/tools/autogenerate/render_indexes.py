"""Indexes: on a table that has rows, built and dropped CONCURRENTLY in a revision of their
own (`-- Transaction: none`); on a new table, plainly. The index definitions Alembic does not
compare (expressions, predicates) come from model_parity's differences."""

from alembic.operations import ops

from migration_runner.tools.autogenerate.lock_facts import describe
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
    name, table = op.index_name, op.table_name
    if not context.existing(table):
        context.plan.pair(
            context.plain(op, f"Index {name} on the new table: {describe('create_index', table)}."),
            context.plain(op.reverse(), f"Drop {name}."),
        )
        return
    kind = "create_unique_index_concurrently" if op.unique else "create_index_concurrently"
    up = _concurrently(
        context.plain(
            op,
            f"Build {name} without blocking writes: "
            f"{describe(kind, table)}; if it is interrupted, drop "
            "the INVALID index and rerun.",
        )
    )
    down = _concurrently(
        context.plain(op.reverse(), f"Drop {name}: {describe('drop_index_concurrently', table)}.")
    )
    context.plan.pair(up, down, online=True)


@renders(ops.DropIndexOp)
def drop_index(op: ops.DropIndexOp, context: Context) -> None:
    name, table = op.index_name, op.table_name
    context.plan.pair(
        _concurrently(
            context.plain(op, f"Drop index {name}: {describe('drop_index_concurrently', table)}.")
        ),
        _concurrently(context.plain(op.reverse(), f"Rebuild index {name}.")),
        online=context.existing(op.table_name),
    )


@renders(mismatch("index", DROPPED))
def drop_index_definition(difference, context: Context) -> None:
    """An index whose definition the models no longer declare (pg_get_indexdef's text)."""
    name = difference.name
    context.plan.pair(
        [
            drop_index_concurrently(
                name, f"Drop index {name}: {describe('drop_index_concurrently', difference.table)}."
            )
        ],
        [Statement(concurrently(difference.database), f"Rebuild index {name}.")],
        online=True,
    )


@renders(mismatch("index", ADDED))
def add_index_definition(difference, context: Context) -> None:
    name, table = difference.name, difference.table
    unique = difference.models.startswith("CREATE UNIQUE ")
    kind = "create_unique_index_concurrently" if unique else "create_index_concurrently"
    context.plan.pair(
        [
            Statement(
                concurrently(difference.models),
                f"Build index {name} without blocking writes: {describe(kind, table)}.",
            )
        ],
        [drop_index_concurrently(name, f"Drop index {name}.")],
        online=True,
    )
