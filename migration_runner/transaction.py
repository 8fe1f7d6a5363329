"""What every migration transaction starts with: the run's lock and its timeouts.

Alembic has no lock of its own. We hold a PostgreSQL advisory lock for the
whole run, taken inside Alembic's transaction (a lock taken on the connection
before `context.configure()` would autobegin a transaction that Alembic then
treats as external) and before Alembic reads `alembic_version`, so a runner
that waited sees the version its predecessor committed.

Both the lock and the settings are transaction-scoped (pg_advisory_xact_lock,
SET LOCAL): nothing outlives the transaction, so the run is safe through
PgBouncer in transaction mode and leaves nothing behind on a pooled server
connection.
"""

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from alembic.runtime.migration import MigrationContext

from migration_runner.emit import emit, fetch, literal
from migration_runner.settings import RunSettings

# One key for this schema's migrations; visible in pg_locks as objid/classid.
MIGRATION_LOCK_KEY = -2891140788239183812


def _set_timeouts(ctx: MigrationContext, settings: RunSettings) -> None:
    emit(
        ctx,
        f"SET LOCAL lock_timeout = {literal(settings.lock_timeout)};\n"
        f"SET LOCAL statement_timeout = {literal(settings.statement_timeout)};",
    )


def take_migration_lock(ctx: MigrationContext, settings: RunSettings) -> None:
    """Wait for any other run to finish, then set this transaction's timeouts.

    The lock is taken before lock_timeout is set: a second runner waits for
    the first one as long as it takes instead of timing out.
    """
    if ctx.as_sql:
        emit(ctx, f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY});")
    elif not fetch(ctx, f"SELECT pg_try_advisory_xact_lock({MIGRATION_LOCK_KEY})")[0][0]:
        print("another migration run holds the lock; waiting for it to finish", file=sys.stderr)
        emit(ctx, f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
    _set_timeouts(ctx, settings)


@contextmanager
def outside_transaction(ctx: MigrationContext, settings: RunSettings) -> Iterator[None]:
    """Commit, run the block in autocommit mode, then resume a locked transaction.

    The commit would release the transaction-scoped lock, so a session-level
    lock bridges the gap. That needs one server connection for the whole
    block: run non-transactional revisions over a direct URL, not a pooler.
    """
    emit(ctx, f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY});")
    with ctx.autocommit_block():
        yield
    emit(
        ctx,
        f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY});\n"
        f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY});",
    )
    _set_timeouts(ctx, settings)
