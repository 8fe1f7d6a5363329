"""A `-- Transaction: none` file that fails part-way: what committed is recorded, named, resumed.

Such a file runs statement by statement in autocommit mode, so when one fails
the statements before it stay applied, and a plain rerun would fail on them
(`column ... already exists`). Each statement is therefore recorded in
migration_statements as it commits:
- sent with its record in one query, which PostgreSQL runs as one implicit
  transaction: both commit, or neither does;
- except what PostgreSQL runs only outside a transaction (CREATE INDEX
  CONCURRENTLY, VACUUM, ...) and DO or CALL, which may commit inside
  themselves: those run alone and are recorded right after.
A failure names the statements that committed. A rerun skips them if the file
is the one that committed them (same checksum), and refuses, naming the
repair, if it changed. The records stop counting (file_completed) in the
transaction that records the revision in alembic_version, so a later run of
the same file, after a downgrade, runs all of it.

Offline scripts record nothing: psql stops at the failing statement and names it.
"""

import logging

from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import DBAPIError

from migration_runner.errors import MigrationError, PartlyApplied, database_error, reason_of
from migration_runner.steps.emit import emit, fetch, literal
from migration_runner.steps.progress import reported
from migration_runner.steps.sql_files import SqlFile, Statement

log = logging.getLogger("migration_runner")
# SQLSTATE of "... cannot run inside a transaction block": nothing of the statement ran.
ACTIVE_SQL_TRANSACTION = "25001"


def committed_lines(ctx: MigrationContext, sql_file: SqlFile) -> list[int]:
    """Lines of the statements of sql_file that an earlier run committed (online runs).

    Refuses when the file changed since: its lines may no longer hold those statements.
    """
    if ctx.as_sql:
        return []
    rows = fetch(
        ctx,
        "SELECT statement_line, checksum FROM migration_statements"
        f" WHERE sql_file = {literal(sql_file.shown)} AND NOT file_completed"
        " ORDER BY statement_line",
    )
    lines = [line for line, _ in rows]
    if any(checksum != sql_file.checksum for _, checksum in rows):
        raise MigrationError(_edited_message(sql_file, lines))
    return lines


def _edited_message(sql_file: SqlFile, lines: list[int]) -> str:
    accept = (
        f"UPDATE migration_statements SET checksum = '{sql_file.checksum}'"
        f" WHERE sql_file = '{sql_file.shown}' AND NOT file_completed"
    )
    return (
        f"{sql_file.shown} changed after an earlier run committed its {_lines(lines)} (recorded "
        "in migration_statements): the rerun cannot tell which statements of the edited file are "
        f"applied, so the run stops before it. Restore the file as it ran (git log -p "
        f"{sql_file.shown}); or, if the statements that committed are unchanged and at the same "
        f'lines, accept the edit: psql "$DATABASE_URL" -c "{accept}", then run again.'
    )


def still_to_run(sql_file: SqlFile, committed: list[int]) -> list[Statement]:
    """The file's statements that did not commit in an earlier run."""
    return [statement for statement in sql_file.statements if statement.line not in committed]


def run_recorded(
    ctx: MigrationContext, sql_file: SqlFile, committed: list[int], progress_interval: float
) -> None:
    """In autocommit mode: each statement not committed yet, recorded as it commits."""
    pending = still_to_run(sql_file, committed)
    if committed:
        log.info(
            "%s: %s committed in an earlier run (migration_statements); %s",
            sql_file.shown,
            _lines(committed),
            f"continuing at line {pending[0].line}" if pending else "nothing is left to run",
        )
    done = list(committed)
    for statement in pending:
        where = f"{sql_file.shown} line {statement.line}"
        record = _record(sql_file, statement)
        try:
            with reported(ctx.connection, where, progress_interval):
                recorded = _run_with_record(ctx, statement, record)
        except DBAPIError as error:
            if not done:  # nothing of the file committed: as any failed statement
                raise database_error(error, where) from None
            raise PartlyApplied(
                f"{where} failed: {reason_of(error)}. The file runs outside a transaction "
                "(`-- Transaction: none`): what committed before stays applied and is recorded in "
                f"migration_statements: its {_lines(done)}. Fix the cause and run the same "
                f"command again: it continues at line {statement.line}."
            ) from None
        if not recorded:
            _record_after(ctx, sql_file, statement, record, done)
        done.append(statement.line)


def _run_with_record(ctx: MigrationContext, statement: Statement, record: str) -> bool:
    """Run the statement, with its record when PostgreSQL allows; True if recorded with it.

    The separator starts on a line of its own: a statement may end in a `--` comment.
    """
    if _runs_alone(statement):
        emit(ctx, statement.text + "\n;")
        return False
    try:
        emit(ctx, f"{statement.text}\n;\n{record}")
        return True
    except DBAPIError as error:
        if getattr(error.orig, "pgcode", None) != ACTIVE_SQL_TRANSACTION:
            raise
    emit(ctx, statement.text + "\n;")  # one PostgreSQL runs only alone (CREATE DATABASE, ...)
    return False


def _runs_alone(statement: Statement) -> bool:
    """A statement PostgreSQL refuses inside a transaction, or one that may commit inside itself."""
    from pglast import ast

    node = statement.node
    return isinstance(node, (ast.VacuumStmt, ast.ReindexStmt, ast.DoStmt, ast.CallStmt)) or bool(
        getattr(node, "concurrent", False)  # CREATE INDEX / DROP INDEX CONCURRENTLY
    )


def _record_after(
    ctx: MigrationContext, sql_file: SqlFile, statement: Statement, record: str, done: list[int]
) -> None:
    """Record a statement that ran alone; if that fails, it committed all the same."""
    try:
        emit(ctx, record)
    except DBAPIError as error:
        raise PartlyApplied(
            f"{sql_file.shown} line {statement.line} committed, but recording it failed: "
            f"{reason_of(error)}. The file runs outside a transaction (`-- Transaction: none`): "
            f"what committed stays applied: its {_lines([*done, statement.line])}. Line "
            f"{statement.line} is not in migration_statements, so the rerun runs it again (an "
            "index it built is skipped by CREATE INDEX CONCURRENTLY IF NOT EXISTS). Run the same "
            "command again."
        ) from None


def _record(sql_file: SqlFile, statement: Statement) -> str:
    return (
        "INSERT INTO migration_statements (sql_file, checksum, statement_line) VALUES "
        f"({literal(sql_file.shown)}, {literal(sql_file.checksum)}, {statement.line});"
    )


def mark_completed(ctx: MigrationContext, sql_file: SqlFile) -> None:
    """In the transaction that records the revision: its records no longer count for a rerun."""
    if not ctx.as_sql:
        emit(
            ctx,
            "UPDATE migration_statements SET file_completed = TRUE"
            f" WHERE sql_file = {literal(sql_file.shown)} AND NOT file_completed;",
        )


def _lines(lines: list[int]) -> str:
    """[4] -> line 4; [4, 6, 9] -> lines 4, 6 and 9."""
    if len(lines) == 1:
        return f"line {lines[0]}"
    return f"lines {', '.join(map(str, lines[:-1]))} and {lines[-1]}"
