"""Which tables a run locked, and how, read just before it commits (for `make rehearse`).

Table locks last until the transaction ends, so pg_locks for our own backend
at the end of the run lists every lock its statements took. The runner's own
tables and the advisory lock are left out: every run takes those.
"""

import json
from pathlib import Path

from alembic.runtime.migration import MigrationContext

from migration_runner.bookkeeping import RUNNER_TABLES_SQL
from migration_runner.errors import MigrationError
from migration_runner.steps.emit import fetch

OWN_LOCKS = f"""
SELECT DISTINCT format('%I.%I', n.nspname, c.relname), l.mode
FROM pg_locks AS l
INNER JOIN pg_class AS c ON c.oid = l.relation
INNER JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
  AND c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND c.relname NOT IN ({RUNNER_TABLES_SQL})
ORDER BY 1, 2
"""


def write_lock_report(ctx: MigrationContext, path: str) -> None:
    """Add the locks held now to [[table, mode], ...] in path; nothing when none was asked for.

    Called before each revision's commit, so a run of several commits reports them all.
    """
    if not path or ctx.as_sql:
        return
    held = read_lock_report(path) | {tuple(row) for row in fetch(ctx, OWN_LOCKS)}
    try:
        Path(path).write_text(json.dumps(sorted(held)))
    except OSError as error:
        raise MigrationError(
            f"Cannot write the lock report {path} (-x lock-report, MIGRATION_LOCK_REPORT): "
            f"{error.strerror}."
        ) from None


def read_lock_report(path: str) -> set[tuple[str, str]]:
    """The locks already in the report at path: none for a new or empty file.

    Read when the settings are (read_settings), so a file that cannot be a report fails the
    run before it connects rather than before its first commit.
    """
    report = Path(path)
    refused = f"The lock report {path} (-x lock-report, MIGRATION_LOCK_REPORT)"
    if report.is_dir():
        raise MigrationError(f"{refused} is a folder: name a file.")
    if not report.parent.is_dir():
        raise MigrationError(f"{refused} is in a folder that does not exist: create it first.")
    try:
        content = report.read_text(encoding="utf-8") if report.exists() else ""
        known = json.loads(content) if content.strip() else []
    except (OSError, ValueError) as error:  # ValueError: not UTF-8, or not JSON
        raise MigrationError(
            f"{refused} is not a report this runner wrote ({error}); "
            "name a new or empty file, or delete that one."
        ) from None
    if not isinstance(known, list) or not all(_is_lock(lock) for lock in known):
        raise MigrationError(
            f"{refused} is JSON but not a list of [table, lock mode] pairs; "
            "name a new or empty file, or delete that one."
        )
    return {tuple(lock) for lock in known}


def _is_lock(entry) -> bool:
    return (
        isinstance(entry, list) and len(entry) == 2 and all(isinstance(part, str) for part in entry)
    )
