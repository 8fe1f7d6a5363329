"""What every migration transaction starts with, and how one revision's commit hands over.

Alembic has no lock of its own. We hold a PostgreSQL advisory lock for the
whole run, taken inside Alembic's transaction (a lock taken on the connection
before `context.configure()` would autobegin a transaction that Alembic then
treats as external) and before Alembic reads `alembic_version`, so a runner
that waited sees the version its predecessor committed.

Both the lock and the settings are transaction-scoped (pg_advisory_xact_lock,
SET LOCAL): nothing outlives the transaction, so the run is safe through
PgBouncer in transaction mode and leaves nothing behind on a pooled server
connection.

Each revision commits on its own (commit_revision), so no table lock it took
outlives it: a session-level lock bridges the commit, as for a revision that
runs outside a transaction, and the next revision starts a fresh transaction
with the run's lock and timeouts. Through a pooler that bridge is not safe (the
commit may move us to another server connection), so there, and in offline
scripts, the whole run stays one transaction.

A revision's SQL takes a millisecond or two on a fast server, so a revision is
one round trip (one_round_trip_per_revision): its transactional SQL file, its
history row, Alembic's alembic_version statement, the bridge, COMMIT, BEGIN and
the next transaction's lock and timeouts go as one simple-query string, which
PostgreSQL parses whole (a syntax error anywhere runs nothing) and then runs
statement by statement, skipping the rest after an error. It ends inside a
transaction, which is what psycopg2 and SQLAlchemy believe, so the run's last
COMMIT (or a ROLLBACK after a failure) is theirs as before. On a direct connection
the bookkeeping after the file is two prepared statements around COMMIT and BEGIN, which
the server does not parse and plan again for every revision (steps/prepared_handover.py).
Through a pooler the revision's string ends before the bridge, as text: the run stays one
transaction. The string goes from the run's sender thread (steps/revision_sender.py), so
Alembic prepares the next revision while the server runs it; the strings waiting for the
server share a round trip, each revision still committing on its own.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

from alembic.runtime import migration
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import DBAPIError

from migration_runner.errors import FileFailed, LockTimeout, MigrationError, database_error
from migration_runner.steps import history, prepared_handover
from migration_runner.steps.emit import Held, emit, fetch, literal, run_of
from migration_runner.steps.settings import RunSettings
from migration_runner.steps.sql_files import SqlFile

if TYPE_CHECKING:
    from migration_runner.steps.run import Run

# Errors a rerun would only repeat at the same cost: statement_timeout, a lost connection.
NOT_RETRIED = {"57014", None}
# One key for this schema's migrations; visible in pg_locks as classid/objid.
MIGRATION_LOCK_KEY = -2891140788239183812
FIRST_POLL = 0.05
LONGEST_POLL = 1.0
# Held by the session across a commit, then handed back to the new transaction.
BRIDGE = f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY});\n"
# Then the next revision starts: where its duration starts when it runs in the same string.
TAKE_BACK = (
    f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY});\n"
    f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY}), {history.REVISION_STARTS};\n"
)
log = logging.getLogger(__name__)


# What each transaction sets locally: its timeouts, and the setting revisions read.
TRANSACTION_SETTINGS = ("lock_timeout", "statement_timeout", "migration.app_role")


def _setting_values(settings: RunSettings) -> tuple[str, str, str]:
    """The values of TRANSACTION_SETTINGS for settings' attempt."""
    return settings.lock_timeout, settings.statement_timeout, settings.app_role


def _timeouts(settings: RunSettings) -> str:
    """This transaction's timeouts, and the settings revisions read (migration.app_role)."""
    return "".join(
        f"SET LOCAL {name} = {literal(value)};\n"
        for name, value in zip(TRANSACTION_SETTINGS, _setting_values(settings), strict=True)
    )


def take_migration_lock(ctx: MigrationContext, settings: RunSettings) -> None:
    """Wait for any other run to finish, then set this transaction's timeouts.

    A waiting runner waits outside any transaction. CREATE INDEX CONCURRENTLY in the
    running migration waits for every transaction that held a snapshot when it looked,
    to its end: a runner blocked in pg_advisory_xact_lock holds one, and so does a runner
    whose transaction polls, if the build looks during a poll. Either waits for the lock
    the build's run holds, while the build waits for it. So the runner tries once in its
    transaction (the usual, uncontended case: one round trip with the timeouts); when
    another run holds the lock it commits that empty transaction and polls in autocommit
    mode, each poll a statement of its own that takes the lock and lets it go at once,
    then tries again in a new transaction. A poll never waits, so lock_timeout cannot
    end it.
    """
    if ctx.as_sql:
        emit(ctx, f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY});\n{_timeouts(settings)}")
        return
    try_lock = f"{_timeouts(settings)}SELECT pg_try_advisory_xact_lock({MIGRATION_LOCK_KEY})"
    while not fetch(ctx, try_lock)[0][0]:  # the last statement's row
        _wait_until_free(ctx)


def _wait_until_free(ctx: MigrationContext) -> None:
    """Poll until no run holds the migration lock, with no transaction open meanwhile (a
    caller's own transaction, as pytest-alembic passes one, is kept: polled inside it)."""
    log.info("another migration run holds the lock; waiting for it to finish")
    free = f"SELECT pg_try_advisory_xact_lock({MIGRATION_LOCK_KEY})"  # alone: let go at once
    outside = nullcontext() if ctx._in_external_transaction else ctx.autocommit_block()
    delay = FIRST_POLL
    with outside:
        while not fetch(ctx, free)[0][0]:
            time.sleep(delay)
            delay = min(delay * 2, LONGEST_POLL)


@contextmanager
def outside_transaction(ctx: MigrationContext, run: "Run") -> Iterator[None]:
    """Commit, run the block in autocommit mode, then resume a locked transaction.

    The commit would release the transaction-scoped lock, so a session-level
    lock bridges the gap. That needs one server connection for the whole
    block: run non-transactional revisions over a direct URL, not a pooler.
    """
    emit(ctx, run.recorder.pending_insert() + BRIDGE)  # earlier steps' rows commit with them
    with ctx.autocommit_block():
        yield
    emit(ctx, TAKE_BACK + _timeouts(run.attempt))


def commit_revision(ctx: MigrationContext, run: "Run") -> None:
    """Commit the revision just applied, keeping the run's lock (the last of Run.after_revision).

    One round trip (see the module's docstring) with what the revision held back; the
    transaction it opens is the next revision's, or, after the last one, an empty one that
    the run's own COMMIT ends. Through a pooler it sends what was held, without a commit.
    """
    if ctx.as_sql:
        return
    waiting = run.held
    if run.pooled and waiting is None:
        return  # the recorder's rows go in one INSERT at the end of the run
    sql_file, changes = None, []
    if waiting is not None:
        sql_file, changes = waiting.file, waiting.versions
        waiting.file, waiting.versions = None, []
    bookkeeping = _bookkeeping(ctx, run, changes)
    if sql_file is None:
        if bookkeeping:
            emit(ctx, bookkeeping)
        return

    def failure(error: DBAPIError, where: str) -> MigrationError:
        found = database_error(error, where)
        if isinstance(found, LockTimeout) or getattr(error.orig, "pgcode", None) in NOT_RETRIED:
            return found
        # An error does not say which statement of the string failed: the rerun, one
        # statement at a time and each round trip on its own, names the line.
        return FileFailed(str(found))

    # A newline ends a last comment line, a semicolon a last statement written without one.
    # The sender runs it while Alembic goes on to the next revision (steps/revision_sender.py).
    sql = f"{sql_file.text}\n;\n{bookkeeping}"
    # What alembic_version holds once the string has committed, until a later one's replaces
    # it: how the sender tells which strings of a failed round trip committed.
    added = [change.versions[1] for change in changes if change.versions[1] is not None]
    adds = added[-1] if added and not run.pooled else None
    run.sender.send(sql, sql_file.shown, failure, adds)


def _bookkeeping(ctx: MigrationContext, run: "Run", changes: list["VersionChange"]) -> str:
    """What follows a revision's file in its string: its history row, its version change,
    and (not through a pooler) the commit with the lock's hand-over and the next timeouts.
    Two EXECUTEs on a direct connection (steps/prepared_handover.py; through a pooler the
    next transaction may be on another server connection) when the revision has the usual
    one row and one UPDATE."""
    held = run.held
    if held and not run.pooled and len(changes) == 1 and None not in changes[0].versions:
        row = run.recorder.pending_row()
        if row is not None:
            removed, added = changes[0].versions
            moved = (added, removed, changes[0].unheld_message(ctx))
            # Prepared after the first file that needs it: Alembic creates alembic_version
            # when the run starts, and a PREPARE needs the tables it names.
            preparation = (
                ""
                if held.prepared
                else prepared_handover.preparation(
                    version_table(ctx), MIGRATION_LOCK_KEY, TRANSACTION_SETTINGS
                )
            )
            held.prepared = True
            return preparation + prepared_handover.commit_and_resume(
                row, moved, _setting_values(run.attempt)
            )
    handover = "" if run.pooled else f"{BRIDGE}COMMIT;\nBEGIN;\n{TAKE_BACK}{_timeouts(run.attempt)}"
    versions = "".join(change.sql(ctx) for change in changes)
    return run.recorder.pending_insert() + versions + handover


def hold_file(run: "Run", sql_file: SqlFile) -> bool:
    """Keep the transactional file that is all its revision runs for the revision's commit
    string; False when this run sends files on their own (offline, after a failure, with a
    lock report to write)."""
    waiting = run.held
    if waiting is None:
        return False
    assert waiting.file is None, "a revision holds one file: its whole revision"
    waiting.file = sql_file
    return True


def version_table(ctx: MigrationContext) -> str:
    """alembic_version's name, schema-qualified when configured, quoted for SQL."""
    table = '"' + ctx.version_table.replace('"', '""') + '"'
    if ctx.version_table_schema:
        table = '"' + ctx.version_table_schema.replace('"', '""') + '".' + table
    return table


def _unheld_message(ctx: MigrationContext, version: str, change: str) -> str:
    return (
        f"{ctx.version_table} does not hold {version} {change}: something else changed it "
        "during the run"
    )


def _holds(ctx: MigrationContext, version: str, message: str) -> str:
    """A statement that fails with message (_unheld_message) unless alembic_version holds
    version.

    With Alembic's primary key on version_num, alembic_version holding the new revision
    after its UPDATE, or the revision to remove before its DELETE, is Alembic's own check
    that the statement matched one row, without a round trip to read the count.
    """
    return (
        f"SELECT coalesce((SELECT 0 FROM {version_table(ctx)} WHERE version_num = {literal(version)}),"
        f" (SELECT {literal(message)}::text)::integer);\n"
    )


@dataclass(frozen=True)
class VersionChange:
    """One of Alembic's alembic_version changes, held for its revision's commit string:
    versions is (the version removed, the version added), the first None for an INSERT,
    the second for a DELETE."""

    versions: tuple[str | None, str | None]

    def sql(self, ctx: MigrationContext) -> str:
        """The change as text, with Alembic's check that it matched one row (_holds)."""
        removed, added = self.versions
        table = version_table(ctx)
        if removed is None:
            return f"INSERT INTO {table} (version_num) VALUES ({literal(added)});\n"
        if added is None:
            return (
                _holds(ctx, removed, _unheld_message(ctx, removed, "to delete"))
                + f"DELETE FROM {table} WHERE version_num = {literal(removed)};\n"
            )
        return (
            f"UPDATE {table} SET version_num = {literal(added)}"
            f" WHERE version_num = {literal(removed)};\n"
            + _holds(ctx, added, self.unheld_message(ctx))
        )

    def unheld_message(self, ctx: MigrationContext) -> str:
        """What an UPDATE's check says when alembic_version does not hold the version added."""
        removed, added = self.versions
        return _unheld_message(ctx, added, f"after updating {removed} to it")


class _HeldHeads(migration.HeadMaintainer):
    """Alembic's HeadMaintainer, holding its alembic_version changes for the commit string.

    Alembic builds and compiles a SQLAlchemy statement per revision and sends it on its own;
    these hold the same change, sent as text or as a prepared statement's arguments. Alembic's
    assertions stay, and its check that the statement matched one row (VersionChange.sql).
    """

    def _insert_version(self, version: str) -> None:
        assert version not in self.heads
        self.heads.add(version)
        run_of(self.context).held.versions.append(VersionChange((None, version)))

    def _delete_version(self, version: str) -> None:
        self.heads.remove(version)
        run_of(self.context).held.versions.append(VersionChange((version, None)))

    def _update_version(self, from_: str, to_: str) -> None:
        assert to_ not in self.heads
        self.heads.remove(from_)
        self.heads.add(to_)
        run_of(self.context).held.versions.append(VersionChange((from_, to_)))


@contextmanager
def one_round_trip_per_revision(ctx: MigrationContext, run: "Run") -> Iterator[None]:
    """For Alembic's run_migrations: each revision's file and bookkeeping in one round trip.

    Not offline (the script is written as it comes), not when a lock report is asked for (it
    reads pg_locks between the file and the commit), and not after a failed try, whose rerun
    sends each statement alone to name the failing line.
    """
    if ctx.as_sql or run.settings.lock_report or run.one_statement_at_a_time:
        yield
        return
    from migration_runner.steps.revision_sender import RevisionSender  # not at head

    run.held = Held()
    run.sender = RevisionSender(
        ctx, run.attempt.progress_interval, f"SELECT version_num FROM {version_table(ctx)}"
    )
    original, migration.HeadMaintainer = migration.HeadMaintainer, _HeldHeads
    try:
        yield
        run.sender.finish()  # the last revision's failure is the run's
        if run.held.prepared:  # a failed run's go with the session, or with the next run
            emit(ctx, prepared_handover.DEALLOCATION)
    finally:
        migration.HeadMaintainer = original
        run.sender.close()
        run.held = run.sender = None
