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

A revision's SQL takes a millisecond or two on a fast server, so the commit
between two revisions is one round trip: the history rows, the bridge, COMMIT,
BEGIN and the next transaction's lock and timeouts go as one simple-query
string, which PostgreSQL runs statement by statement. It ends inside a
transaction, which is what psycopg2 and SQLAlchemy believe, so the run's last
COMMIT (or a ROLLBACK after a failure) is theirs as before.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from alembic.runtime.migration import MigrationContext

from migration_runner.steps.emit import emit, fetch, literal
from migration_runner.steps.history import pending_history
from migration_runner.steps.settings import RunSettings

# One key for this schema's migrations; visible in pg_locks as classid/objid.
MIGRATION_LOCK_KEY = -2891140788239183812
FIRST_POLL = 0.05
LONGEST_POLL = 1.0
# Held by the session across a commit, then handed back to the new transaction.
BRIDGE = f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY});\n"
TAKE_BACK = (
    f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY});\n"
    f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY});\n"
)
log = logging.getLogger(__name__)


def _timeouts(settings: RunSettings) -> str:
    """This transaction's timeouts, and the settings revisions read (migration.app_role)."""
    return (
        f"SET LOCAL lock_timeout = {literal(settings.lock_timeout)};\n"
        f"SET LOCAL statement_timeout = {literal(settings.statement_timeout)};\n"
        f"SET LOCAL migration.app_role = {literal(settings.app_role)};\n"
    )


def take_migration_lock(ctx: MigrationContext, settings: RunSettings) -> None:
    """Wait for any other run to finish, then set this transaction's timeouts.

    A waiting runner polls instead of blocking in pg_advisory_xact_lock: a
    blocked statement holds a snapshot, and CREATE INDEX CONCURRENTLY in the
    running migration waits for every older snapshot, which would deadlock.
    Between polls a READ COMMITTED transaction holds no snapshot. The timeouts
    go in the same round trip as each try: a try never waits, so lock_timeout
    cannot end it.
    """
    if ctx.as_sql:
        emit(ctx, f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY});\n{_timeouts(settings)}")
        return
    try_lock = f"{_timeouts(settings)}SELECT pg_try_advisory_xact_lock({MIGRATION_LOCK_KEY})"
    delay = FIRST_POLL
    while not fetch(ctx, try_lock)[0][0]:  # the last statement's row
        if delay == FIRST_POLL:
            log.info("another migration run holds the lock; waiting for it to finish")
        time.sleep(delay)
        delay = min(delay * 2, LONGEST_POLL)


@contextmanager
def outside_transaction(ctx: MigrationContext, settings: RunSettings) -> Iterator[None]:
    """Commit, run the block in autocommit mode, then resume a locked transaction.

    The commit would release the transaction-scoped lock, so a session-level
    lock bridges the gap. That needs one server connection for the whole
    block: run non-transactional revisions over a direct URL, not a pooler.
    """
    emit(ctx, pending_history(ctx) + BRIDGE)  # earlier steps' rows commit with them
    with ctx.autocommit_block():
        yield
    emit(ctx, TAKE_BACK + _timeouts(settings))


def commit_revision(ctx: MigrationContext, step, heads, run_args) -> None:
    """on_version_apply hook: commit the revision just applied, keeping the run's lock.

    One round trip (see the module's docstring); the transaction it opens is the next
    revision's, or, after the last one, an empty one that the run's own COMMIT ends.
    """
    if ctx.as_sql or ctx.opts.get("pooled_target"):
        return
    settings = ctx.opts["run_settings"]
    emit(ctx, f"{pending_history(ctx)}{BRIDGE}COMMIT;\nBEGIN;\n{TAKE_BACK}{_timeouts(settings)}")


BLOCKERS = """
SELECT a.pid, coalesce(nullif(a.application_name, ''), a.usename) AS who, a.state,
       round(extract(epoch FROM now() - a.xact_start)) AS seconds, left(a.query, 80) AS query
FROM pg_stat_activity AS a
WHERE a.pid <> pg_backend_pid() AND a.datname = current_database() AND a.xact_start IS NOT NULL
  AND EXISTS (SELECT FROM pg_locks AS l WHERE l.pid = a.pid AND l.locktype = 'relation' AND l.granted)
ORDER BY a.xact_start
LIMIT 3
"""


def describe_blockers(connection) -> str:
    """The oldest open transactions that hold table locks, for a lock-timeout failure."""
    try:
        rows = connection.exec_driver_sql(BLOCKERS).fetchall()
    except Exception:  # noqa: BLE001  (only an aid to the message; the failure stands)
        return ""
    return "; ".join(
        f"pid {pid} ({who}, {state}, transaction open {seconds:.0f} s): {query}"
        for pid, who, state, seconds, query in rows
    )
