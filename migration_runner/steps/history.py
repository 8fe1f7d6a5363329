"""migration_history: what was applied, when, by whom, and the checksum of each file.

Flyway's validate, for Alembic: before a run changes anything, every applied
revision's up file is compared with the checksum recorded when it ran. An
applied migration is never edited; a fix is a new revision.

History rows are written from the run's after-revision callback (steps/run.py), inside
the migration's own transaction: a failed run records nothing.
"""

import time
from importlib.resources import files

from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import ScriptDirectory

from migration_runner.errors import MigrationError
from migration_runner.steps import sql_files
from migration_runner.steps.emit import Held, emit, fetch, literal

TABLE_DDL = files("migration_runner.steps").joinpath("sql/migration_history.sql").read_text()
# The statements of partly applied `-- Transaction: none` files (steps/partial_application.py).
STATEMENTS_DDL = (
    files("migration_runner.steps").joinpath("sql/migration_statements.sql").read_text()
)
LATEST_STEPS = (
    "SELECT DISTINCT ON (revision) revision, direction, checksum"
    " FROM migration_history ORDER BY revision, id DESC"
)
# A held file's time, from the server: its string arrived at statement_timestamp(), and when
# the revision before it ran in the same string (steps/revision_sender.py), the commit string
# marked where this one's began (REVISION_STARTS; epochs, whatever the session's DateStyle).
REVISION_START = "migration_runner.revision_started"
_NOW = "extract(epoch FROM clock_timestamp())"
REVISION_STARTS = f"set_config('{REVISION_START}', {_NOW}::text, false)"
_STARTED = (
    "greatest(extract(epoch FROM statement_timestamp()),"
    f" nullif(current_setting('{REVISION_START}', true), '')::numeric)"
)
SERVER_DURATION = f"(1000 * ({_NOW} - {_STARTED}))::integer"
BOTH_EXIST = (
    "SELECT to_regclass('migration_history') IS NOT NULL,"
    " to_regclass('migration_statements') IS NOT NULL"
)


def ensure_table(ctx: MigrationContext) -> bool:
    """Create migration_history and migration_statements where missing; True when
    migration_history already existed (online).

    A database migrated before migration_statements existed gets it on its next run, in the
    same round trip that looks for both.
    """
    if ctx.as_sql:
        emit(ctx, TABLE_DDL + STATEMENTS_DDL)
        return False
    history_exists, statements_exist = fetch(ctx, BOTH_EXIST)[0]
    missing = ("" if history_exists else TABLE_DDL) + ("" if statements_exist else STATEMENTS_DDL)
    if missing:
        emit(ctx, missing)
    return history_exists


def _up_files(script: ScriptDirectory, shims: dict[str, str] | None = None) -> dict:
    """Each revision's up file; shims (id -> shim path) spares Alembic importing every shim."""
    if shims is None:
        shims = {rev.revision: rev.path for rev in script.walk_revisions()}
    return {revision: sql_files.for_revision(path, "up") for revision, path in shims.items()}


def _up_checksums(script: ScriptDirectory) -> dict[str, str]:
    return {revision: up.checksum for revision, up in _up_files(script).items()}


def _edited_message(revisions: list[str]) -> str:
    return (
        f"Applied migration(s) {', '.join(revisions)} were edited after they ran: the up file no "
        "longer matches the checksum in migration_history. Restore the file as it was applied "
        "(git log -p sql/up/) and fix forward with a new revision (alembic revision -m ...)."
    )


def verify_checksums(
    ctx: MigrationContext, script: ScriptDirectory, shims: dict[str, str] | None = None
) -> None:
    """Refuse the run if an applied revision's up file changed since it ran.

    shims maps revision ids to shim paths when the caller read them without
    Alembic's revision map (migration_runner.steps.at_head); every up file is still
    read, and every applied one hashed and compared.
    """
    existed = ensure_table(ctx)
    if ctx.as_sql:
        _emit_verification(ctx, _up_checksums(script))
        return
    if not existed:
        return
    expected = _up_files(script, shims)
    edited = sorted(
        f"{revision} ({expected[revision].shown})"
        for revision, direction, checksum in fetch(ctx, LATEST_STEPS)
        if direction == "up" and revision in expected and expected[revision].checksum != checksum
    )
    if edited:
        raise MigrationError(_edited_message(edited))


def _emit_verification(ctx: MigrationContext, expected: dict[str, str]) -> None:
    """The same check inside an offline script, so psql refuses an edited history too."""
    rows = ",\n        ".join(
        f"({literal(rev)}, {literal(sha)})" for rev, sha in sorted(expected.items())
    )
    emit(
        ctx,
        f"""DO $verify$
DECLARE
    edited text;
BEGIN
    SELECT string_agg(applied.revision, ', ' ORDER BY applied.revision) INTO edited
    FROM ({LATEST_STEPS}) AS applied
    INNER JOIN (VALUES
        {rows}
    ) AS current_files (revision, checksum) ON applied.revision = current_files.revision
    WHERE applied.direction = 'up' AND applied.checksum <> current_files.checksum;
    IF edited IS NOT NULL THEN
        RAISE EXCEPTION 'Applied migration(s) % were edited after they ran; fix forward with a new revision', edited;
    END IF;
END
$verify$;""",
    )


class HistoryRecorder:
    """One migration_history row per applied step (record, from Run.after_revision).

    Online, rows wait in memory until the commit that makes their steps real
    and go with it: each revision's string sends its row after its file, before
    its commit (steps/transaction.py), also through a pooler, where the run is one
    transaction. A run that sends each statement alone (after a failed try) sends
    a pooled run's rows in one INSERT at its end (flush). applied_at is the time
    of the INSERT.
    """

    def __init__(self) -> None:
        self.step_started = time.monotonic()
        # Each row's SQL values: revision, direction, stamped, checksum, duration_ms.
        self.pending: list[tuple[str, ...]] = []

    def start(self) -> None:
        """A new attempt: rows of a rolled-back attempt are forgotten."""
        self.step_started = time.monotonic()
        self.pending = []

    def pending_insert(self) -> str:
        """The INSERT of the rows waiting ("" when none), for a caller that sends it with its
        commit; they stop waiting."""
        rows, self.pending = self.pending, []
        return _insert(rows) + "\n" if rows else ""

    def pending_row(self) -> tuple[str, ...] | None:
        """The one row waiting, which stops waiting; None (and it waits on) when there are
        none or several."""
        if len(self.pending) != 1:
            return None
        (row,), self.pending = self.pending, []
        return row

    def flush(self, ctx: MigrationContext) -> None:
        """Write the rows waiting for the transaction, in one INSERT."""
        if self.pending:
            emit(ctx, self.pending_insert())

    def record(self, ctx: MigrationContext, step: MigrationInfo, waiting: Held | None) -> None:
        """The step's rows; waiting is what its revision sends with its commit, if anything."""
        direction = "up" if step.is_upgrade else "down"
        if ctx.as_sql:
            duration = "NULL"
        elif waiting is not None and waiting.file is not None:
            duration = SERVER_DURATION  # the file runs in the same string, just before the row
        else:
            duration = str(round((time.monotonic() - self.step_started) * 1000))
        rows = []
        for revision in step.up_revision_ids:
            script = ctx.script.get_revision(revision) if ctx.script else None
            checksum = sql_files.for_revision(script.path, direction).checksum
            stamped = str(step.is_stamp).lower()
            rows.append(
                (literal(revision), literal(direction), stamped, literal(checksum), duration)
            )
        if ctx.as_sql:
            emit(ctx, _insert(rows))  # the script records each step where it runs
        else:
            self.pending += rows
        self.step_started = time.monotonic()


def _insert(rows: list[tuple[str, ...]]) -> str:
    values = ", ".join(f"({', '.join(row)})" for row in rows)
    return (
        "INSERT INTO migration_history (revision, direction, stamped, checksum, duration_ms)\n"
        f"VALUES {values};"
    )
