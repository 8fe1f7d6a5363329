"""What a revision shim calls: run its up or down SQL file verbatim.

    def upgrade() -> None:
        run_up(__file__)

The file is checked by the data-loss guard first. A transactional file is
sent whole, as written, inside the run's transaction; when it is all its
revision runs, in the same round trip as the revision's bookkeeping and commit
(steps/transaction.py). If it fails, the
run is rolled back and tried again one statement at a time (as psql runs a
file), so the error names the failing line. A file headed
`-- Transaction: none` runs statement by statement outside a transaction, each
statement recorded as it commits, so that a rerun after a failure continues
after the statements that committed (steps/partial_application.py).
"""

import re

from alembic import op
from sqlalchemy.exc import DBAPIError

from migration_runner.errors import FileFailed, LockTimeout, database_error
from migration_runner.steps import sql_files
from migration_runner.steps.data_loss_guard import refuse_data_loss
from migration_runner.steps.emit import emit, literal, run_of
from migration_runner.steps.lock_retry import one_attempt
from migration_runner.steps.progress import reported
from migration_runner.steps.run import Run
from migration_runner.steps.sql_files import SqlFile
from migration_runner.steps.transaction import hold_file, outside_transaction

# Nothing but whitespace and comments: PostgreSQL has nothing to run (a fresh scaffold).
ONLY_COMMENTS = re.compile(r"(\s+|--[^\n]*|/\*.*?\*/)*", re.DOTALL)
# Errors a second try would only repeat at the same cost: statement_timeout, a lost connection.
NOT_RETRIED = {"57014", None}


def run_up(shim_file: str, *, whole_revision: bool = False) -> None:
    """Run sql/up/<this shim's name>.sql.

    whole_revision: the file is all its revision runs (a shim as `alembic revision` wrote
    it, steps/shims.py), so nothing else can come between it and the revision's commit
    string, and it goes in that string. A shim with code of its own runs it alone, first.
    """
    _run(sql_files.for_revision(shim_file, "up"), whole_revision)


def run_down(shim_file: str, *, whole_revision: bool = False) -> None:
    """Run sql/down/<this shim's name>.sql (whole_revision: as for run_up)."""
    _run(sql_files.for_revision(shim_file, "down"), whole_revision)


def _run(sql_file: SqlFile, whole_revision: bool = False) -> None:
    ctx = op.get_context()
    run: Run = run_of(ctx)  # Alembic calls the shim with no argument of ours
    settings = run.attempt
    refuse_data_loss(ctx, sql_file, settings)
    if ctx.as_sql and sql_file.transactional:
        emit(ctx, sql_file.text)  # the reviewer reads the file as written, comments included
    elif sql_file.transactional and not run.one_statement_at_a_time:
        if not (whole_revision and hold_file(run, sql_file)):  # held: with its commit
            _run_whole(ctx, sql_file, settings.progress_interval)
    elif sql_file.transactional:
        _run_statements(ctx, sql_file, settings.progress_interval)
    else:
        _run_outside_transaction(ctx, run, sql_file)


def _run_outside_transaction(ctx, run: Run, sql_file: SqlFile) -> None:
    """A `-- Transaction: none` file, each statement recorded as it commits.

    Its steps' modules are imported here: a run of transactional files, the usual one, never
    compiles them (a deploy's checkout has no bytecode).
    """
    from migration_runner.steps.failed_builds import dropping_failed_builds
    from migration_runner.steps.invalid_indexes import drop_invalid, invalid_indexes
    from migration_runner.steps.partial_application import (
        committed_lines,
        mark_completed,
        run_recorded,
        still_to_run,
    )

    settings = run.attempt
    committed = committed_lines(ctx, sql_file)  # by an earlier run that failed part-way
    # Indexes left INVALID by an interrupted earlier run, among those still to build.
    leftovers = invalid_indexes(ctx, still_to_run(sql_file, committed))
    with outside_transaction(ctx, run):
        drop_invalid(ctx, leftovers, sql_file)
        set_batch_settings(ctx, settings)  # a batched backfill reads them
        if ctx.as_sql:
            _run_statements(ctx, sql_file, settings.progress_interval)
        else:
            with dropping_failed_builds(ctx, sql_file, still_to_run(sql_file, committed)):
                run_recorded(ctx, sql_file, committed, settings.progress_interval)
    mark_completed(ctx, sql_file)  # commits with the revision's alembic_version update


def set_batch_settings(ctx, settings) -> None:
    """Session settings a batched backfill's DO block reads (MIGRATIONS.md, "Batched backfills").

    Each batch sets its own transaction's timeouts from migration.lock_timeout and
    migration.statement_timeout: the runner's SET LOCAL ended with its transaction.
    """
    longest = one_attempt(settings).lock_timeout
    emit(
        ctx,
        f"SET migration.batch_size = {literal(str(settings.batch_size))};\n"
        f"SET migration.batch_pause = {literal(settings.batch_pause)};\n"
        f"SET migration.lock_timeout = {literal(longest)};\n"
        f"SET migration.statement_timeout = {literal(settings.statement_timeout)};",
    )


def _run_whole(ctx, sql_file: SqlFile, progress_interval: float) -> None:
    """The file as written, in one round trip (one per statement made a run of many small
    revisions pay a network round trip per statement)."""
    if ONLY_COMMENTS.fullmatch(sql_file.text):
        return
    try:
        with reported(ctx.connection, sql_file.shown, progress_interval):
            emit(ctx, sql_file.text)
    except DBAPIError as error:
        failure = database_error(error, sql_file.shown)
        if isinstance(failure, LockTimeout) or getattr(error.orig, "pgcode", None) in NOT_RETRIED:
            raise failure from None
        raise FileFailed(str(failure)) from None


def _run_statements(ctx, sql_file: SqlFile, progress_interval: float) -> None:
    """One statement at a time, as psql does, so an error names its line."""
    for statement in sql_file.statements:
        where = f"{sql_file.shown} line {statement.line}"
        try:
            if ctx.as_sql:
                emit(ctx, statement.text + ";")
                continue
            with reported(ctx.connection, where, progress_interval):
                emit(ctx, statement.text + ";")
        except DBAPIError as error:
            raise database_error(error, where) from None
