"""Which tables a run locked, and how, read just before it commits (for `make rehearse`).

Table locks last until the transaction ends, so pg_locks for our own backend
at the end of the run lists every lock its statements took. The runner's own
tables and the advisory lock are left out: every run takes those.
"""

import json
from pathlib import Path

from alembic.runtime.migration import MigrationContext

from migration_runner.steps.emit import fetch

OWN_LOCKS = """
SELECT DISTINCT format('%I.%I', n.nspname, c.relname), l.mode
FROM pg_locks AS l
INNER JOIN pg_class AS c ON c.oid = l.relation
INNER JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
  AND c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND c.relname NOT IN ('alembic_version', 'migration_history')
ORDER BY 1, 2
"""


def write_lock_report(ctx: MigrationContext, path: str) -> None:
    """Add the locks held now to [[table, mode], ...] in path; nothing when none was asked for.

    Called before each revision's commit, so a run of several commits reports them all.
    """
    if not path or ctx.as_sql:
        return
    report = Path(path)
    known = json.loads(report.read_text()) if report.exists() and report.read_text() else []
    held = {tuple(lock) for lock in known} | {tuple(row) for row in fetch(ctx, OWN_LOCKS)}
    report.write_text(json.dumps(sorted(held)))


def lock_report_hook(ctx: MigrationContext, step, heads, run_args) -> None:
    """on_version_apply hook: note the revision's locks before commit_revision releases them."""
    write_lock_report(ctx, ctx.opts["run_settings"].lock_report)
