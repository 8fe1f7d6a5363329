"""An interrupted run ends in one FAILED line, and a plain rerun finishes the job.

Faults are real and strike at each statement of a three-revision run
(transactional, then a concurrent index build, then transactional again): the
runner's backend is terminated (as a failover or an operator's
pg_terminate_backend would), the runner process is killed, or the server
restarts. To strike at a given statement, the test holds the advisory lock of
the barrier after it (the runner waits there, its earlier statements done), or
an old snapshot that keeps the index build waiting. Whatever the moment, the
rerun reaches head with the schema of an uninterrupted run and every row
intact; an index left INVALID by the interrupted build is rebuilt.
"""

import os
import signal
import time

import psycopg2
import pytest

from migration_runner.servers import local_postgres
from migration_runner.tools.schema_snapshot import snapshot
from support.database import (
    VERSION,
    Server,
    current_version,
    fresh_database,
    libpq_dsn,
    query,
    seed_organizations,
)
from support.processes import run_alembic, start_alembic
from support.project import HEAD, add_revision

ROWS = 2000
BARRIER = 4242  # advisory lock class of the test's barriers: (4242, n)
ADD_SCORE_UP = """-- test-only: a column and a backfill, in one transaction.
ALTER TABLE organizations ADD COLUMN test_only_score integer;
SELECT pg_advisory_xact_lock(4242, 1);  -- barrier 1: after ADD COLUMN test_only_score
UPDATE organizations SET test_only_score = length(slug);
SELECT pg_advisory_xact_lock(4242, 2);  -- barrier 2: after the UPDATE
"""
ADD_SCORE_DOWN = "ALTER TABLE organizations DROP COLUMN test_only_score;\n"
INDEX_UP = """-- test-only: an index built without blocking writes.
-- Transaction: none
SELECT pg_advisory_xact_lock(4242, 3);  -- barrier 3: add_score committed, the build not begun
CREATE INDEX CONCURRENTLY IF NOT EXISTS organizations_test_only_score_idx ON organizations (test_only_score);
"""
INDEX_DOWN = (
    "-- Transaction: none\nDROP INDEX CONCURRENTLY IF EXISTS organizations_test_only_score_idx;\n"
)
NOTE_UP = """-- test-only: one more transactional revision after the index.
ALTER TABLE organizations ADD COLUMN test_only_note text;
SELECT pg_advisory_xact_lock(4242, 4);  -- barrier 4: after ADD COLUMN test_only_note
"""
NOTE_DOWN = "ALTER TABLE organizations DROP COLUMN test_only_note;\n"
INVALID = "SELECT count(*) FROM pg_index WHERE NOT indisvalid"
DURING_INDEX_BUILD = 0  # not a barrier: the build itself, kept waiting by an old snapshot
# Where a run interrupted at each point leaves the database: the last revision fully applied,
# as how many of the three test revisions are (0: still at the tree's head).
APPLIED_WHEN_LEFT = {1: 0, 2: 0, 3: 1, DURING_INDEX_BUILD: 1, 4: 2}


@pytest.fixture
def pending(tree_copy):
    """The project's tree plus add_score (transactional), index_score (index) and add_note
    (transactional) on top of its head; the tree and the three ids."""
    added = [
        add_revision(tree_copy, "add_score", ADD_SCORE_UP, ADD_SCORE_DOWN),
        add_revision(tree_copy, "index_score", INDEX_UP, INDEX_DOWN),
        add_revision(tree_copy, "add_note", NOTE_UP, NOTE_DOWN),
    ]
    return tree_copy, added


def _pending_run(url, tree):
    """A database at the tree's head with rows, the three test revisions pending."""
    assert run_alembic("upgrade", HEAD, url=url, tree=tree).returncode == 0
    seed_organizations(url, ROWS)


_clean: dict[str, str] = {}


@pytest.fixture
def clean_schema(postgres_server, pending):
    """The schema an uninterrupted run gives, from a database of its own (once per server)."""
    tree, _added = pending
    if postgres_server.admin_url not in _clean:
        with fresh_database(postgres_server) as url:
            _pending_run(url, tree)
            assert run_alembic("upgrade", "head", url=url, tree=tree).returncode == 0
            _clean[postgres_server.admin_url] = snapshot(url)
    return _clean[postgres_server.admin_url]


@pytest.fixture(scope="module")
def restartable_server():
    """A server of the suite's version that a test may restart (the session's is shared)."""
    server = local_postgres.start_throwaway(VERSION)
    try:
        yield server
    finally:
        local_postgres.remove_throwaway(server)


def _hold_barrier(url, barrier: int):
    """A session holding barrier (4242, n), or, for the index build, an old snapshot:
    CREATE INDEX CONCURRENTLY waits for it to end, keeping the build in progress."""
    connection = psycopg2.connect(libpq_dsn(url))
    if barrier == DURING_INDEX_BUILD:
        connection.set_session(isolation_level="REPEATABLE READ")
        connection.cursor().execute("SELECT 1")
    else:
        connection.autocommit = True
        connection.cursor().execute("SELECT pg_advisory_lock(%s, %s)", (BARRIER, barrier))
    return connection


def _runner_waiting_at(url, barrier: int, timeout: float = 30) -> int:
    """The pid of the runner's backend once it waits at barrier (or in the index build)."""
    if barrier == DURING_INDEX_BUILD:
        sql = (
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE '%CREATE INDEX CONCURRENTLY%' AND pid <> pg_backend_pid()"
        )
    else:
        sql = (
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            f" AND classid = {BARRIER} AND objid = {barrier}"
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = query(url, sql)
        if rows:
            return rows[0][0]
        time.sleep(0.02)
    raise AssertionError(f"the runner never reached barrier {barrier}")


@pytest.mark.parametrize(
    ("barrier", "fault"),
    [
        (1, "terminate backend"),
        (2, "terminate backend"),
        (2, "kill runner"),
        (2, "restart server"),
        (3, "terminate backend"),
        (DURING_INDEX_BUILD, "terminate backend"),
        (DURING_INDEX_BUILD, "kill runner"),
        (DURING_INDEX_BUILD, "restart server"),
        (4, "terminate backend"),
    ],
    ids=lambda value: {0: "index build"}.get(value, str(value)).replace(" ", "-"),
)
def test_interrupted_run_ends_in_one_line_and_a_rerun_reaches_head(
    request, postgres_server, pending, clean_schema, barrier, fault
):
    tree, added = pending
    if fault == "restart server":
        restartable = request.getfixturevalue("restartable_server")
        server = Server(restartable.url(), VERSION)
    else:
        server = postgres_server
    with fresh_database(server) as url:
        _pending_run(url, tree)
        holder = _hold_barrier(url, barrier)
        migration = start_alembic("upgrade", "head", url=url, tree=tree)
        pid = _runner_waiting_at(url, barrier)
        if fault == "restart server":
            restartable.stop()  # fast shutdown: every session ends, the holder's too
            restartable.start()
        else:
            if fault == "kill runner":
                os.kill(migration.pid, signal.SIGKILL)
            # After a kill, what the server does when it notices the client is gone.
            query(url, "SELECT pg_terminate_backend(:pid)", pid=pid)
        holder.close()
        output, _ = migration.communicate(timeout=60)
        assert migration.returncode != 0
        if fault != "kill runner":
            failed = [line for line in output.splitlines() if line.startswith("FAILED:")]
            assert len(failed) == 1, output
            assert "Traceback" not in output, output

        assert current_version(url) == [HEAD, *added][APPLIED_WHEN_LEFT[barrier]]
        left_invalid = 1 if barrier == DURING_INDEX_BUILD else 0
        assert query(url, INVALID) == [(left_invalid,)]

        rerun = run_alembic("upgrade", "head", url=url, tree=tree)
        assert rerun.returncode == 0, rerun.stdout
        assert current_version(url) == added[-1]
        assert query(url, INVALID) == [(0,)]
        assert snapshot(url) == clean_schema
        assert query(url, "SELECT count(*), count(test_only_score) FROM organizations") == [
            (ROWS, ROWS)
        ]
