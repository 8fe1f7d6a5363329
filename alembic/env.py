"""Alembic environment: Alembic's own template plus the named steps of a safe run.

A run reads as: resolve the URL, connect (retrying while the server wakes up),
then inside Alembic's transaction take the migration lock and set timeouts,
verify the checksums of applied files, refuse up front what any pending
revision would be refused for, back up what an allowed data loss will
destroy, migrate, and record each step in migration_history. Each revision
commits with its history row, so no lock outlives it and a failure leaves the
database at the last revision fully applied. A lock timeout rolls back only the
revision that hit it, and the attempt is retried with a longer timeout.

The run's state is one Run (migration_runner/steps/run.py), built here and passed to
the steps that need it: its settings, history recorder, lock hand-over and backups taken.
Alembic calls run.after_revision after each revision: record it, note its locks, commit it.

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
from migration_runner.steps.database_url import DatabaseTarget, resolve_target
from migration_runner.steps.history import verify_checksums
from migration_runner.steps.lock_report import write_lock_report
from migration_runner.steps.lock_retry import describe_blockers, one_attempt, run_with_lock_retries
from migration_runner.steps.offline_start import check_starting_revision
from migration_runner.steps.phases import limit_to_phase
from migration_runner.steps.quick_exit import skip_exit_collections
from migration_runner.steps.revision_map import read_from_listing
from migration_runner.steps.run import Run
from migration_runner.steps.settings import RunSettings, read_settings
from migration_runner.steps.shims import shims_read_as_data
from migration_runner.steps.transaction import one_round_trip_per_revision, take_migration_lock
from migration_runner.tools.model_compare import (
    compares_models,
    comparison_options,
    comparison_target,
)
from migration_runner.tools.scaffold import number_revision, runs_without_database

config = context.config

if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

log = logging.getLogger("migration_runner")

# The models, for `alembic check` and `revision --autogenerate` only (tools/model_compare.py).
model_comparison = comparison_options(config)

settings = read_settings(context.get_x_argument(as_dictionary=True))


def new_run(pooled: bool | None = None) -> Run:
    """This run's state, passed to every step (steps/run.py); env.py's module holds none."""
    return Run(settings=settings, tree=Path(config.config_file_name).parent, pooled=pooled)


def run_one_attempt(run: Run, attempt: RunSettings) -> None:
    """Lock, set this attempt's timeouts, verify checksums and migrate (a commit per revision)."""
    run.attempt = attempt  # a retry waits longer for locks
    with context.begin_transaction():
        migration_context = context.get_context()
        take_migration_lock(migration_context, attempt)
        if migration_context.as_sql:
            check_starting_revision(migration_context)  # the script is applied where it starts
        at_head = nothing_to_apply(migration_context)  # the usual deploy: read ids, import no shim
        if at_head is not None:
            verify_checksums(migration_context, migration_context.script, at_head.shims)
            log.info("database is at head %s: nothing to apply", at_head.head)
            return
        # Steps only a run with something to apply needs: a deploy at head never loads them.
        from migration_runner.steps.preflight import refuse_before_any_change
        from migration_runner.steps.progress import progress_reports

        verify_checksums(migration_context, migration_context.script)
        refuse_before_any_change(migration_context, run)  # a refusal never comes midway
        if run.settings.allow_data_loss:  # else the guard refuses any loss: nothing to back up
            from migration_runner.steps.backup import back_up_before_data_loss

            back_up_before_data_loss(migration_context, run)  # once per run, not per attempt
        run.recorder.start()
        with (
            progress_reports(migration_context, run.pooled),  # one thread for long statements
            one_round_trip_per_revision(migration_context, run),  # file and commit together
        ):
            context.run_migrations()  # run.after_revision records, reports locks, commits
        write_lock_report(migration_context, settings.lock_report)  # make rehearse asks for it
        run.recorder.flush(migration_context)  # rows still waiting (a pooled rerun's), one INSERT


def run_one_attempt_naming_lines(run: Run, attempt: RunSettings) -> None:
    """One attempt; if a SQL file sent whole failed, again one statement at a time.

    The first try is rolled back entirely; the second names the failing line
    (or succeeds, if the failure was transient).
    """
    try:
        run_one_attempt(run, attempt)
    except FileFailed as failure:
        log.info("%s; running again one statement at a time to name the line", failure)
        run.one_statement_at_a_time = True  # each on a round trip of its own, this run only
        run_one_attempt(run, attempt)


def run_migrations_offline() -> None:
    """Write the run as a SQL script, for review and for `psql -v ON_ERROR_STOP=1 -f`."""
    read_from_listing(context.script)  # the revision map without resolving every shim's path
    run = new_run()
    context.configure(
        dialect_name="postgresql",
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        on_version_apply=run.after_revision,  # the script records each revision's row
        run=run,  # the one channel to what Alembic calls: a shim's run_up (steps/emit.run_of)
    )
    limit_to_phase(context.get_context(), settings.phase)  # -x phase=expand: before the deploy
    run_one_attempt(run, one_attempt(settings))  # psql cannot retry: the longest wait


def run_migrations_with(connection: Connection, pooled: bool | None = None) -> None:
    """Migrate over an open connection, retrying after lock timeouts.

    pooled: the URL goes through a pooler (one transaction, non-transactional revisions
    refused); None when only the server can tell.
    """
    run = new_run(pooled)
    context.configure(
        connection=connection,
        **model_comparison,
        on_version_apply=run.after_revision,  # record the revision, note its locks, commit it
        run=run,  # the one channel to what Alembic calls: a shim's run_up (steps/emit.run_of)
    )
    limit_to_phase(context.get_context(), settings.phase)  # -x phase=expand: before the deploy
    run_with_lock_retries(
        lambda attempt: run_one_attempt_naming_lines(run, attempt),
        settings,
        describe_blockers=lambda: describe_blockers(connection),
    )


def run_migrations_online() -> None:
    """Run against the database named by the environment (or a connection passed in)."""
    read_from_listing(context.script)  # the revision map without resolving every shim's path
    given = config.attributes.get("connection")  # as pytest-alembic passes it
    if isinstance(given, Engine):
        with given.connect() as connection:
            run_migrations_with(connection)
        return
    if given is not None:
        run_migrations_with(given)
        return
    if compares_models(config):  # `check`, `revision --autogenerate`: maybe a scratch head
        with comparison_target(config) as target:
            run_migrations_on(target)
        return
    run_migrations_on(resolve_target())  # the URL the environment names


def run_migrations_on(target: DatabaseTarget) -> None:
    """Connect to target (retrying while the server wakes up) and migrate it."""
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


try:
    with shims_read_as_data():  # a shim as `alembic revision` wrote it is built, not compiled
        if runs_without_database(config):
            run_without_database()
        elif context.is_offline_mode():
            run_migrations_offline()
        else:
            run_migrations_online()
finally:
    skip_exit_collections(config.cmd_opts is not None)  # the `alembic` command, not Python's API
