"""Alembic environment: Alembic's own template plus the named steps of a safe run.

A run reads as: resolve the URL, connect (retrying while the server wakes up),
then inside Alembic's transaction take the migration lock and set timeouts,
verify the checksums of applied files, refuse up front what any pending
revision would be refused for, back up what an allowed data loss will
destroy, migrate, and record each step in migration_history. Each revision
commits with its history row, so no lock outlives it and a failure leaves the
database at the last revision fully applied. A lock timeout rolls back only the
revision that hit it, and the attempt is retried with a longer timeout.

`alembic revision` (and `merge`, and `history` without -i) never connects:
it numbers the new revision and scaffolds its SQL pair (migration_runner.tools.scaffold).
"""

import io
import logging
from logging.config import fileConfig
from pathlib import Path

from alembic import context
from sqlalchemy.engine import Connection, Engine

from migration_runner.errors import FileFailed, one_failed_line
from migration_runner.steps.at_head import nothing_to_apply
from migration_runner.steps.connect import connect
from migration_runner.steps.history import HistoryRecorder, verify_checksums
from migration_runner.steps.lock_report import lock_report_hook, write_lock_report
from migration_runner.steps.lock_retry import one_attempt, run_with_lock_retries
from migration_runner.steps.offline_start import check_starting_revision
from migration_runner.steps.phases import limit_to_phase
from migration_runner.steps.settings import RunSettings, read_settings
from migration_runner.steps.shims import shims_read_as_data
from migration_runner.steps.transaction import (
    commit_revision,
    describe_blockers,
    one_round_trip_per_revision,
    take_migration_lock,
)
from migration_runner.tools.model_compare import comparison_options, comparison_target
from migration_runner.tools.scaffold import number_revision, runs_without_database

config = context.config

if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

log = logging.getLogger("migration_runner")

# The models, for `alembic check` and `revision --autogenerate` only (tools/model_compare.py).
model_comparison = comparison_options(config)

settings = read_settings(context.get_x_argument(as_dictionary=True))


def run_one_attempt(recorder: HistoryRecorder, attempt: RunSettings) -> None:
    """Lock, set this attempt's timeouts, verify checksums and migrate (a commit per revision)."""
    with context.begin_transaction():
        migration_context = context.get_context()
        migration_context.opts["run_settings"] = attempt  # a retry waits longer for locks
        take_migration_lock(migration_context, attempt)
        if migration_context.as_sql:
            check_starting_revision(migration_context)  # the script is applied where it starts
        at_head = nothing_to_apply(migration_context)  # the usual deploy: read ids, import no shim
        if at_head is not None:
            verify_checksums(migration_context, migration_context.script, at_head.shims)
            log.info("database is at head %s: nothing to apply", at_head.head)
            return
        # Steps only a run with something to apply needs: a deploy at head never loads them.
        from migration_runner.steps.backup import back_up_before_data_loss
        from migration_runner.steps.preflight import refuse_before_any_change
        from migration_runner.steps.progress import progress_reports

        verify_checksums(migration_context, migration_context.script)
        refuse_before_any_change(migration_context, settings)  # a refusal never comes midway
        back_up_before_data_loss(
            migration_context, settings, tree=Path(config.config_file_name).parent
        )
        recorder.start()
        with (
            progress_reports(migration_context),  # one thread for the run's long statements
            one_round_trip_per_revision(migration_context, attempt),  # file and commit together
        ):
            context.run_migrations()
        write_lock_report(migration_context, settings.lock_report)  # make rehearse asks for it
        recorder.flush(migration_context)  # rows still waiting (a pooled rerun's), one INSERT


def run_one_attempt_naming_lines(recorder: HistoryRecorder, attempt: RunSettings) -> None:
    """One attempt; if a SQL file sent whole failed, again one statement at a time.

    The first try is rolled back entirely; the second names the failing line
    (or succeeds, if the failure was transient).
    """
    try:
        run_one_attempt(recorder, attempt)
    except FileFailed as failure:
        from migration_runner.steps.revision import (
            one_statement_at_a_time,  # only now: a no-op skips it
        )

        log.info("%s; running again one statement at a time to name the line", failure)
        one_statement_at_a_time()
        run_one_attempt(recorder, attempt)


def run_migrations_offline() -> None:
    """Write the run as a SQL script, for review and for `psql -v ON_ERROR_STOP=1 -f`."""
    recorder = HistoryRecorder()
    context.configure(
        dialect_name="postgresql",
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        on_version_apply=recorder,
        run_settings=settings,
    )
    limit_to_phase(context.get_context(), settings.phase)  # -x phase=expand: before the deploy
    run_one_attempt(recorder, one_attempt(settings))  # psql cannot retry: the longest wait


def run_migrations_with(connection: Connection, pooled: bool | None = None) -> None:
    """Migrate over an open connection, retrying after lock timeouts."""
    recorder = HistoryRecorder()
    context.configure(
        connection=connection,
        **model_comparison,
        # Record each revision's history row, note its locks, then commit it.
        on_version_apply=[recorder, lock_report_hook, commit_revision],
        run_settings=settings,
        pooled_target=pooled,  # one transaction, and non-transactional revisions refused
    )
    limit_to_phase(context.get_context(), settings.phase)  # -x phase=expand: before the deploy
    run_with_lock_retries(
        lambda attempt: run_one_attempt_naming_lines(recorder, attempt),
        settings,
        describe_blockers=lambda: describe_blockers(connection),
    )


def run_migrations_online() -> None:
    """Run against the database named by the environment (or a connection passed in)."""
    given = config.attributes.get("connection")  # as pytest-alembic passes it
    if isinstance(given, Engine):
        with given.connect() as connection:
            run_migrations_with(connection)
        return
    if given is not None:
        run_migrations_with(given)
        return
    with comparison_target(config) as target:  # resolve_target(), or a scratch head
        log.info("target %s (from %s)", target.shown, target.variable)
        for note in target.notes:
            log.warning(note)
        project = Path(config.config_file_name).parent  # its make migrate server, if stopped
        with one_failed_line(), connect(target, settings.connect_timeout, project) as connection:
            run_migrations_with(connection, pooled=target.pooled)


def run_without_database() -> None:
    """Alembic's run for commands that only write files: number the revision, no connection."""
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)  # no SQL is made
    context.configure(
        dialect_name="postgresql",
        as_sql=True,
        output_buffer=io.StringIO(),  # swallows the version-table DDL of this mode
        process_revision_directives=number_revision,
    )
    with context.begin_transaction():
        context.run_migrations()


with shims_read_as_data():  # a shim as `alembic revision` wrote it is built, not compiled
    if runs_without_database(config):
        run_without_database()
    elif context.is_offline_mode():
        run_migrations_offline()
    else:
        run_migrations_online()
