"""Every refusal of a run is decided before its first change.

Each revision commits on its own, so a refusal raised when revision k starts
would leave revisions before k applied. The preflight reads every file the run
will execute, in order, and refuses the whole run up front:
- a file that would destroy rows present now (unless `-x allow-data-loss=true`);
- a `-- Transaction: none` file when the run goes through PgBouncer (steps/pooler.py);
- a file with a transaction control statement (BEGIN, COMMIT, ...), offline scripts included;
- a partly applied `-- Transaction: none` file edited since (steps/partial_application.py).
"""

import re

from alembic.runtime.migration import MigrationContext

from migration_runner.errors import MigrationError
from migration_runner.steps import sql_files
from migration_runner.steps.data_loss_guard import find_destruction, losses, refusal
from migration_runner.steps.pooler import behind_pgbouncer
from migration_runner.steps.run import Run

# A statement whose parse tree can be a TransactionStmt starts with one of these words;
# a file without any of them, even in a comment, needs no parsing here.
TRANSACTION_CONTROL_WORDS = {
    "BEGIN",
    "START",
    "COMMIT",
    "END",
    "ROLLBACK",
    "ABORT",
    "SAVEPOINT",
    "RELEASE",
    "PREPARE",
}
ANY_TRANSACTION_CONTROL_WORD = re.compile(
    rf"\b({'|'.join(TRANSACTION_CONTROL_WORDS)})\b", re.IGNORECASE
)


def pending_files(ctx: MigrationContext) -> list[tuple[str, sql_files.SqlFile]]:
    """(revision, SQL file) for every step this run will take, in order.

    None for `alembic check` and `revision --autogenerate`: they apply nothing, and
    asking their migration function for its steps would run the comparison itself.
    """
    if ctx.opts.get("target_metadata") is not None:
        return []
    steps = ctx.opts["fn"](ctx.get_current_heads(), ctx)  # the steps Alembic is about to run
    found = []
    for step in steps:
        revision = getattr(step, "revision", None)
        if revision is None or revision.path is None:
            continue  # a stamp: nothing runs
        direction = "up" if step.is_upgrade else "down"
        found.append((revision.revision, sql_files.for_revision(revision.path, direction)))
    return found


def transaction_control(sql_file: sql_files.SqlFile) -> str | None:
    """Why the file's BEGIN, COMMIT, SAVEPOINT... statements break its run, naming their lines;
    None when it has none (`make lint` says the same)."""
    if not ANY_TRANSACTION_CONTROL_WORD.search(sql_file.text):
        return None
    from pglast import ast

    found = [
        f"line {statement.line} (`{statement.text.splitlines()[0]}`)"
        for statement in sql_file.statements
        if statement.keyword in TRANSACTION_CONTROL_WORDS
        and isinstance(statement.node, ast.TransactionStmt)
    ]
    if not found:
        return None
    if sql_file.transactional:
        why = (
            "the runner applies this file in its revision's transaction and commits it with its "
            "version, so a transaction control statement here commits part of the revision, "
            "and a rerun fails on that part. Remove it (a statement that cannot run in a "
            "transaction goes in a `-- Transaction: none` revision)"
        )
    else:
        why = (
            "each statement of a `-- Transaction: none` file commits on its own and is recorded "
            "as it commits, which a transaction block would make untrue. Remove it (statements "
            "that must commit together go in a transactional revision)"
        )
    return f"{sql_file.shown} {', '.join(found)}: {why}."


def refuse_before_any_change(ctx: MigrationContext, run: Run) -> None:
    """Raise the first refusal any pending file would meet, before anything runs.

    Offline scripts are checked for transaction control only: the rest needs the database,
    and each file carries its own data-loss guard (data_loss_guard). The partial application
    check is imported only for a `-- Transaction: none` file, as revision.py imports its steps.
    """
    pending = pending_files(ctx)
    for _, sql_file in pending:
        problem = transaction_control(sql_file)
        if problem:
            raise MigrationError(f"{problem} Nothing was applied: the run stops before it starts.")
    if ctx.as_sql:
        return
    if run.pooled is None:  # the URL does not say: the server tells
        run.pooled = behind_pgbouncer(ctx)  # one transaction if it pools
    for _, sql_file in pending:
        if not sql_file.transactional and run.pooled:
            raise MigrationError(
                f"{sql_file.shown} is headed `-- Transaction: none`: it holds the migration lock "
                "across commits, which needs one server connection, and this run goes through a "
                "pooler (PgBouncer). Nothing was applied. Run it with the direct URL: set "
                "POSTGRES_URL_NON_POOLING or DATABASE_URL_UNPOOLED."
            )
        if not sql_file.transactional:
            from migration_runner.steps.partial_application import committed_lines

            committed_lines(ctx, sql_file)  # refuses a partly applied file edited since
        destructions = [] if run.settings.allow_data_loss else find_destruction(sql_file)
        lost = losses(ctx, destructions) if destructions else []
        if lost:
            raise refusal(
                sql_file, lost, "Nothing was changed: the run stops before its first revision."
            )
