"""No lock outlives its revision: each revision commits before the next one starts.

In one transaction for the whole run, the first revision's ACCESS EXCLUSIVE lock
on a table would be held until the last revision ended, queueing the
application for as long as the slowest revision takes.
"""

import time

from conftest import REVISIONS, add_revision, current_version, query, run_alembic, start_alembic

SLOW_UP = "-- test-only: a long second revision on another table.\nSELECT pg_sleep(3);\n"


def _runner_sleeping(url) -> int | None:
    """The pid of the migration's backend once it runs the slow revision."""
    rows = query(
        url,
        "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep(3)%'"
        " AND pid <> pg_backend_pid() AND state = 'active'",
    )
    return rows[0][0] if rows else None


def test_first_revisions_lock_is_released_before_the_next_revision_works(database_url, tree_copy):
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    noted = add_revision(
        tree_copy, "add_test_only_note",
        "ALTER TABLE organizations ADD COLUMN test_only_note text;\n",
        "ALTER TABLE organizations DROP COLUMN test_only_note;\n",
    )  # fmt: skip
    slow = add_revision(tree_copy, "slow", SLOW_UP, "SELECT 1;\n")
    migration = start_alembic("upgrade", "head", url=database_url, tree=tree_copy)
    deadline, pid = time.monotonic() + 30, None
    while pid is None and time.monotonic() < deadline:
        pid = _runner_sleeping(database_url)
        time.sleep(0.05)
    assert pid is not None, "the slow revision never started"

    held = query(
        database_url,
        "SELECT mode FROM pg_locks WHERE pid = :pid AND relation = to_regclass('organizations')",
        pid=pid,
    )
    started = time.monotonic()
    assert query(database_url, "SELECT count(*) FROM organizations") == [(0,)]
    waited = time.monotonic() - started
    assert query(database_url, "SELECT version_num FROM alembic_version") == [(noted,)]

    output, _ = migration.communicate(timeout=60)
    assert migration.returncode == 0, output
    assert held == [], f"the runner still held {held} on organizations"
    assert waited < 0.5, f"a read of organizations waited {waited:.2f}s"
    assert current_version(database_url) == slow
    assert query(database_url, "SELECT revision FROM migration_history ORDER BY id") == [
        (revision,) for revision in (*REVISIONS, noted, slow)
    ]
