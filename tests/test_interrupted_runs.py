"""An interrupted run ends in one FAILED line, and a plain rerun finishes the job.

Faults are real: the runner's backend is terminated (as a failover or an
operator's pg_terminate_backend would), or the runner process is killed,
while it runs a given statement of a three-revision run (transactional,
then a concurrent index build, then transactional again). Whatever the
moment, the rerun reaches head with the schema of an uninterrupted run and
every row intact; an index left INVALID by the interrupted build is rebuilt.
"""

import os
import signal
import time

import psycopg2
import pytest

from conftest import (
    add_revision,
    current_version,
    engine_for,
    fresh_database,
    query,
    run_alembic,
    seed_organizations,
    start_alembic,
)
from migration_runner.tools.schema_snapshot import snapshot

ROWS = 2000
ADD_SCORE_UP = """-- test-only: a column and a backfill, in one transaction.
ALTER TABLE organizations ADD COLUMN score integer;
UPDATE organizations SET score = length(slug);
SELECT pg_sleep(1);  -- fault window: the runner is inside this file
"""
ADD_SCORE_DOWN = "ALTER TABLE organizations DROP COLUMN score;\n"
INDEX_UP = """-- test-only: an index built without blocking writes.
-- Transaction: none
CREATE INDEX CONCURRENTLY IF NOT EXISTS organizations_score_idx ON organizations (score);
"""
INDEX_DOWN = "-- Transaction: none\nDROP INDEX CONCURRENTLY IF EXISTS organizations_score_idx;\n"
NOTE_UP = """-- test-only: one more transactional revision after the index.
ALTER TABLE organizations ADD COLUMN note text;
SELECT pg_sleep(1);  -- fault window
"""
NOTE_DOWN = "ALTER TABLE organizations DROP COLUMN note;\n"
INVALID = "SELECT count(*) FROM pg_index WHERE NOT indisvalid"


def _dsn(url):
    return engine_for(url).url.render_as_string(hide_password=False).replace("+psycopg2", "")


@pytest.fixture
def pending_run(database_url, tree_copy):
    """A database at 001 with rows, and 002 (transactional), 003 (index), 004 (transactional)."""
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    seed_organizations(database_url, ROWS)
    add_revision(tree_copy, "002", "add_score", ADD_SCORE_UP, ADD_SCORE_DOWN, "001")
    add_revision(tree_copy, "003", "index_score", INDEX_UP, INDEX_DOWN, "002")
    add_revision(tree_copy, "004", "add_note", NOTE_UP, NOTE_DOWN, "003")
    return database_url, tree_copy


_clean: dict[str, str] = {}


@pytest.fixture
def clean_schema(postgres_server, tree_copy, pending_run):
    """The schema an uninterrupted run gives, from a database of its own (once per server)."""
    if postgres_server.admin_url not in _clean:
        with fresh_database(postgres_server) as url:
            assert run_alembic("upgrade", "head", url=url, tree=tree_copy).returncode == 0
            _clean[postgres_server.admin_url] = snapshot(url)
    return _clean[postgres_server.admin_url]


def _runner_pid(url, fragment: str, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = query(
            url,
            "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid()"
            " AND query LIKE :fragment",
            fragment=f"%{fragment}%",
        )
        if rows:
            return rows[0][0]
        time.sleep(0.02)
    raise AssertionError(f"the runner never ran {fragment!r}")


def _old_snapshot(url):
    """A transaction holding a snapshot but no table lock: CREATE INDEX CONCURRENTLY waits
    for it to end, which keeps the build in progress while the fault strikes."""
    connection = psycopg2.connect(_dsn(url))
    connection.set_session(isolation_level="REPEATABLE READ")
    connection.cursor().execute("SELECT 1")
    return connection


@pytest.mark.parametrize(
    ("statement", "fault"),
    [
        ("pg_sleep(1);  -- fault window: the runner is inside this file", "terminate backend"),
        ("CREATE INDEX CONCURRENTLY", "terminate backend"),
        ("CREATE INDEX CONCURRENTLY", "kill runner"),
        ("ALTER TABLE organizations ADD COLUMN note", "terminate backend"),
    ],
)
def test_interrupted_run_ends_in_one_line_and_a_rerun_reaches_head(
    pending_run, clean_schema, statement, fault
):
    url, tree = pending_run
    holder = _old_snapshot(url) if "INDEX" in statement else None
    migration = start_alembic("upgrade", "head", url=url, tree=tree)
    pid = _runner_pid(url, statement)
    if fault == "kill runner":
        os.kill(migration.pid, signal.SIGKILL)
        query(url, "SELECT pg_terminate_backend(:pid)", pid=pid)  # what the server does on failover
    else:
        query(url, "SELECT pg_terminate_backend(:pid)", pid=pid)
    if holder is not None:
        holder.rollback()
        holder.close()
    output, _ = migration.communicate(timeout=60)
    assert migration.returncode != 0
    if fault != "kill runner":
        failed = [line for line in output.splitlines() if line.startswith("FAILED:")]
        assert len(failed) == 1, output
        assert "Traceback" not in output, output

    rerun = run_alembic("upgrade", "head", url=url, tree=tree)
    assert rerun.returncode == 0, rerun.stdout
    assert current_version(url) == "004"
    assert query(url, INVALID) == [(0,)]
    assert snapshot(url) == clean_schema
    assert query(url, "SELECT count(*), count(score) FROM organizations") == [(ROWS, ROWS)]
