"""An index left INVALID by an interrupted CREATE INDEX CONCURRENTLY is built again.

When a concurrent build loses its connection (a terminated backend, a
failover, a killed runner), PostgreSQL leaves the index behind, marked
INVALID: it is maintained on every write but never used, and a rerun's
`CREATE INDEX CONCURRENTLY IF NOT EXISTS` would skip it silently. Before a
`-- Transaction: none` file runs, every index its statements still to run
build that exists INVALID is dropped (concurrently), with a warning, so the
file builds it again.
"""

import logging
import re

from alembic.runtime.migration import MigrationContext

from migration_runner.steps.emit import emit, fetch, literal
from migration_runner.steps.names import qualified
from migration_runner.steps.sql_files import SqlFile, Statement

log = logging.getLogger("migration_runner")
# Only these statements are parsed (pglast) for the index's name, which may be quoted.
BUILDS = re.compile(r"^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\b", re.IGNORECASE)


def _built(statement: Statement) -> str | None:
    """The index a CREATE INDEX CONCURRENTLY builds, as SQL (quoted, in its table's schema)."""
    from pglast import ast

    node = statement.node
    if not isinstance(node, ast.IndexStmt) or not node.idxname:
        return None  # an unnamed index: no name to look up
    return qualified(node.relation.schemaname, node.idxname)


def invalid_indexes(ctx: MigrationContext, statements: list[Statement]) -> list[str]:
    """The indexes these statements build that exist already, INVALID (online runs: an offline
    script cannot look before it runs).

    Only the statements still to run: an index whose build committed in an earlier run
    (migration_statements) is not built again, so it is not dropped either.
    """
    if ctx.as_sql:
        return []
    names = [name for s in statements if BUILDS.match(s.text) and (name := _built(s))]
    found = []
    for name in names:
        rows = fetch(
            ctx,
            f"SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass({literal(name)})",
        )
        if rows and rows[0][0]:
            found.append(name)
    return found


def drop_invalid(ctx: MigrationContext, names: list[str], sql_file: SqlFile) -> None:
    """Outside a transaction: drop the leftovers so the file builds them again."""
    for name in names:
        log.warning(
            "index %s was left INVALID by an interrupted build; dropping it so %s builds it again",
            name,
            sql_file.shown,
        )
        emit(ctx, f"DROP INDEX CONCURRENTLY IF EXISTS {name};")
