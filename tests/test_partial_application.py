"""A revision that commits part of itself is detected, recorded and recoverable.

A `-- Transaction: none` file runs statement by statement, each its own
transaction: when statement k fails, statements 1..k-1 stay applied. Here a
five-statement file (the online NOT NULL pattern: add a column, a NOT VALID
CHECK, a backfill, a concurrent index, VALIDATE) fails at each statement in
turn, by a fault a production run meets: a session holding the table (then
the runner's backend terminated, or the runner killed), a row the statement
rejects. The failure names the lines that committed, migration_statements
records them, and once the cause is fixed a plain rerun continues after them
and ends with the schema and rows of an uninterrupted run, each statement
recorded once. A file edited in between is refused until repaired.

A transactional file that holds BEGIN or COMMIT would commit part of itself:
the run is refused before anything of it, or of the revisions before it, runs.
"""

import os
import re
import signal
import threading
import time
from pathlib import Path

import psycopg2
import pytest

from migration_runner.steps.sql_files import SqlFile
from migration_runner.tools.schema_snapshot import snapshot
from migration_runner.tools.sql_headers import problems_in
from support.database import current_version, fresh_database, libpq_dsn, query, seed_organizations
from support.processes import run_alembic, start_alembic
from support.project import HEAD, REVISIONS, add_revision

ROWS = 2000
HOST_UP = """-- add_host (up): test-only. Each organization's host name, added online.
-- Transaction: none
ALTER TABLE organizations ADD COLUMN test_only_host text;
ALTER TABLE organizations ADD CONSTRAINT organizations_test_only_host_check
CHECK (test_only_host IS NOT NULL AND char_length(test_only_host) <= 40) NOT VALID;
-- Enterprise organizations bring their own host name: VALIDATE checks each has one.
UPDATE organizations SET test_only_host = slug || '.example.com' WHERE plan <> 'enterprise';
CREATE INDEX CONCURRENTLY organizations_test_only_host_idx ON organizations (test_only_host);
ALTER TABLE organizations VALIDATE CONSTRAINT organizations_test_only_host_check;
"""
HOST_DOWN = """-- add_host (down): test-only.
-- Destructive: yes, the host names
-- Transaction: none
DROP INDEX CONCURRENTLY IF EXISTS organizations_test_only_host_idx;
ALTER TABLE organizations DROP COLUMN test_only_host;
"""
# Where each of the file's five statements starts.
LINES = [statement.line for statement in SqlFile(Path("add_host.sql"), HOST_UP).statements]
# The statements a session holds up, by text only the runner's statement has.
MARKERS = {
    1: "ADD COLUMN test_only_host",
    2: "ADD CONSTRAINT organizations_test_only_host_check",
    4: "CREATE INDEX CONCURRENTLY organizations_test_only_host_idx",
}
# A row that makes statement k fail: a host name over 40 characters, or no host at all.
REJECTED_ROWS = {
    3: "INSERT INTO organizations (name, slug) VALUES ('Long', repeat('x', 30))",
    5: "INSERT INTO organizations (name, slug, plan) VALUES ('Acme', 'acme', 'enterprise')",
}
ROWS_SQL = "SELECT slug, name, plan, test_only_host FROM organizations ORDER BY slug"
INVALID = "SELECT count(*) FROM pg_index WHERE NOT indisvalid"
RECORD = (
    "SELECT statement_line, file_completed FROM migration_statements WHERE sql_file = :file"
    " ORDER BY id"
)


@pytest.fixture
def pending(tree_copy):
    """The tree with add_host on top of its head; the tree, add_host's id and its up file."""
    added = add_revision(tree_copy, "add_host", HOST_UP, HOST_DOWN)
    return tree_copy, added, f"sql/up/{added}_add_host.sql"


def _database_at_head(url, tree):
    """A database at the tree's head with rows; add_host pending."""
    assert run_alembic("upgrade", HEAD, url=url, tree=tree).returncode == 0
    seed_organizations(url, ROWS)


_clean: dict[str, tuple] = {}


@pytest.fixture
def clean_run(postgres_server, pending):
    """The schema, rows and record of an uninterrupted run (once per server)."""
    tree, _added, up_file = pending
    if postgres_server.admin_url not in _clean:
        with fresh_database(postgres_server) as url:
            _database_at_head(url, tree)
            result = run_alembic("upgrade", "head", url=url, tree=tree)
            assert result.returncode == 0, result.stdout
            _clean[postgres_server.admin_url] = (
                snapshot(url),
                query(url, ROWS_SQL),
                query(url, RECORD, file=up_file),
            )
    return _clean[postgres_server.admin_url]


def test_a_clean_run_records_each_statement_once(clean_run):
    _schema, rows, record = clean_run
    assert record == [(line, True) for line in LINES]
    assert len(rows) == ROWS and all(host.endswith(".example.com") for *_, host in rows)


def _session(url, isolation_level=None):
    connection = psycopg2.connect(libpq_dsn(url))
    if isolation_level:
        connection.set_session(isolation_level=isolation_level)
    return connection


def _runner_in(url, marker: str) -> int:
    """The pid of the runner's backend once it waits inside the statement with marker."""
    sql = (
        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND query LIKE :like AND pid <> pg_backend_pid()"
    )
    return _wait_for(url, sql, f"the runner never waited in {marker}", like=f"%{marker}%")


def _wait_for(url, sql: str, failure: str, timeout: float = 30, **params) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = query(url, sql, **params)
        if rows:
            return rows[0][0]
        time.sleep(0.02)
    raise AssertionError(failure)


def _fail_statement(url, tree, statement: int, fault: str) -> tuple[str, list]:
    """Run add_host so that this statement (1-based) fails by fault; its output and the
    sessions that stay in the way until the cause is fixed."""
    if statement in REJECTED_ROWS:
        query(url, REJECTED_ROWS[statement])
        return run_alembic("upgrade", "head", url=url, tree=tree).stdout, []
    if statement == 4:  # a snapshot older than the build: CREATE INDEX CONCURRENTLY waits for it
        reader = _session(url, isolation_level="REPEATABLE READ")
        reader.cursor().execute("SELECT 1")
    else:  # an application transaction that read the table: ADD COLUMN waits for it
        reader = _session(url)
        reader.cursor().execute("SELECT 1 FROM organizations LIMIT 1")
    in_the_way = [reader]
    migration = start_alembic("upgrade", "head", url=url, tree=tree)
    if statement == 2:
        # A second reader queues behind the waiting ADD COLUMN: PostgreSQL grants it the
        # table as ADD COLUMN commits, before ADD CONSTRAINT asks for it.
        _runner_in(url, MARKERS[1])
        second = _session(url)
        queued = threading.Thread(
            target=second.cursor().execute, args=("LOCK TABLE organizations IN ACCESS SHARE MODE",)
        )
        queued.start()
        _wait_for(
            url,
            "SELECT pid FROM pg_locks WHERE pid = :pid AND NOT granted",
            "the second reader never queued",
            pid=second.get_backend_pid(),
        )
        reader.commit()
        queued.join(timeout=30)
        in_the_way = [second]
    pid = _runner_in(url, MARKERS[statement])
    if fault == "kill runner":
        os.kill(migration.pid, signal.SIGKILL)
    # After a kill, what the server does when it notices the client is gone.
    query(url, "SELECT pg_terminate_backend(:pid)", pid=pid)
    return migration.communicate(timeout=60)[0], in_the_way


def _fix_the_cause(url, statement: int, in_the_way: list) -> None:
    for session in in_the_way:
        session.close()
    if statement in REJECTED_ROWS:
        query(url, "DELETE FROM organizations WHERE slug IN (repeat('x', 30), 'acme')")


@pytest.mark.parametrize(
    ("statement", "fault"),
    [
        (1, "terminate backend"),
        (2, "terminate backend"),
        (2, "kill runner"),
        (3, "rejected row"),
        (4, "terminate backend"),
        (4, "kill runner"),
        (5, "rejected row"),
    ],
    ids=lambda value: str(value).replace(" ", "-"),
)
def test_a_failure_at_each_statement_is_recorded_and_a_rerun_finishes(
    postgres_server, pending, clean_run, statement, fault
):
    tree, added, up_file = pending
    clean_schema, clean_rows, clean_record = clean_run
    committed = LINES[: statement - 1]
    with fresh_database(postgres_server) as url:
        _database_at_head(url, tree)
        output, in_the_way = _fail_statement(url, tree, statement, fault)

        if fault != "kill runner":
            failed = [line for line in output.splitlines() if line.startswith("FAILED:")]
            assert len(failed) == 1 and "Traceback" not in output, output
            assert f"{up_file} line {LINES[statement - 1]} failed" in failed[0]
            if committed:
                lines = re.search(r"migration_statements: its (.*)\. Fix the cause", failed[0])
                assert lines and re.findall(r"\d+", lines.group(1)) == [str(n) for n in committed]
                assert f"continues at line {LINES[statement - 1]}" in failed[0]
                assert "rolled back" not in failed[0]
        assert current_version(url) == HEAD
        assert query(url, RECORD, file=up_file) == [(line, False) for line in committed]
        assert query(url, INVALID) == [(1 if statement == 4 else 0,)]

        _fix_the_cause(url, statement, in_the_way)
        rerun = run_alembic("upgrade", "head", url=url, tree=tree)
        assert rerun.returncode == 0, rerun.stdout
        if committed:
            assert f"continuing at line {LINES[statement - 1]}" in rerun.stdout
        assert current_version(url) == added
        assert snapshot(url) == clean_schema
        assert query(url, ROWS_SQL) == clean_rows
        assert query(url, RECORD, file=up_file) == clean_record
        assert query(url, INVALID) == [(0,)]
        assert query(url, "SELECT revision FROM migration_history ORDER BY id") == [
            (revision,) for revision in (*REVISIONS, added)
        ]


def test_a_file_edited_after_it_committed_in_part_is_refused_until_repaired(
    database_url, pending, clean_run
):
    tree, added, up_file = pending
    _database_at_head(database_url, tree)
    output, _ = _fail_statement(database_url, tree, 5, "rejected row")
    assert "continues at line" in output
    edited = HOST_UP.replace("test-only.", "test-only, edited.")
    (tree / up_file).write_text(edited)

    refused = run_alembic("upgrade", "head", url=database_url, tree=tree)
    failed = [line for line in refused.stdout.splitlines() if line.startswith("FAILED:")]
    assert refused.returncode != 0 and len(failed) == 1, refused.stdout
    assert f"{up_file} changed after an earlier run committed its lines" in failed[0]
    assert query(database_url, RECORD, file=up_file) == [(line, False) for line in LINES[:4]]

    repair = re.search(r'psql "\$DATABASE_URL" -c "([^"]+)"', failed[0]).group(1)
    query(database_url, repair)
    _fix_the_cause(database_url, 5, [])
    rerun = run_alembic("upgrade", "head", url=database_url, tree=tree)
    assert rerun.returncode == 0, rerun.stdout
    assert current_version(database_url) == added
    assert snapshot(database_url) == clean_run[0]
    assert query(database_url, ROWS_SQL) == clean_run[1]


def test_a_downgrade_and_upgrade_run_the_whole_file_again(database_url, pending):
    """Records of a finished run stop counting: the next upgrade skips nothing."""
    tree, _added, up_file = pending
    _database_at_head(database_url, tree)
    for command in ("upgrade", "downgrade", "upgrade"):
        target = "head" if command == "upgrade" else HEAD
        extra = ("-x", "allow-data-loss=true") if command == "downgrade" else ()
        result = run_alembic(*extra, command, target, url=database_url, tree=tree)
        assert result.returncode == 0, result.stdout
    assert query(database_url, RECORD, file=up_file) == [(line, True) for line in LINES * 2]
    assert query(database_url, "SELECT count(test_only_host) FROM organizations") == [(ROWS,)]


PARTITIONS_UP = """-- test-only: a table partitioned by year.
CREATE TABLE test_only_events (at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE test_only_events_2025 PARTITION OF test_only_events
FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
"""
DETACH_UP = """-- test-only: PostgreSQL runs this only outside a transaction block.
-- Transaction: none
ALTER TABLE test_only_events DETACH PARTITION test_only_events_2025 CONCURRENTLY;
"""


def test_a_statement_refused_inside_a_transaction_runs_alone_and_is_recorded(
    database_url, tree_copy
):
    """DETACH PARTITION CONCURRENTLY is refused with its record in one implicit transaction:
    the runner runs it alone, then records it."""
    add_revision(tree_copy, "partitions", PARTITIONS_UP, "DROP TABLE test_only_events;\n")
    detach = add_revision(tree_copy, "detach", DETACH_UP, "-- Transaction: none\nSELECT 1;\n")
    result = run_alembic("upgrade", "head", url=database_url, tree=tree_copy)
    assert result.returncode == 0, result.stdout
    assert query(database_url, "SELECT count(*) FROM pg_inherits") == [(0,)]
    assert query(database_url, RECORD, file=f"sql/up/{detach}_detach.sql") == [(3, True)]


BEGIN_COMMIT_UP = """-- commits_itself (up): test-only, a file that commits half of itself.
ALTER TABLE organizations ADD COLUMN test_only_a1 integer;
BEGIN;
ALTER TABLE organizations ADD COLUMN test_only_a2 integer;
COMMIT;
ALTER TABLE organizations ADD COLUMN test_only_a3 integer;
"""
FIRST_UP = "-- test-only: the revision before.\nCREATE TABLE test_only_before (id integer);\n"


def test_begin_or_commit_in_a_transactional_file_refuses_the_run_before_anything_runs(
    database_url, tree_copy
):
    assert run_alembic("upgrade", HEAD, url=database_url, tree=tree_copy).returncode == 0
    add_revision(tree_copy, "before", FIRST_UP, "DROP TABLE test_only_before;\n")
    commits = add_revision(tree_copy, "commits_itself", BEGIN_COMMIT_UP, "SELECT 1;\n")

    for args in (("upgrade", "head"), ("upgrade", f"{HEAD}:head", "--sql")):
        result = run_alembic(*args, url=database_url, tree=tree_copy)
        failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
        assert result.returncode != 0 and len(failed) == 1, result.stdout
        assert (
            f"sql/up/{commits}_commits_itself.sql line 3 (`BEGIN`), line 5 (`COMMIT`)"
            in (failed[0])
        )
        assert "Traceback" not in result.stdout

    assert current_version(database_url) == HEAD
    assert query(database_url, "SELECT to_regclass('test_only_before')") == [(None,)]
    assert query(
        database_url,
        "SELECT count(*) FROM information_schema.columns WHERE column_name LIKE 'test_only_a%'",
    ) == [(0,)]
    assert query(database_url, "SELECT revision FROM migration_history ORDER BY id") == [
        (revision,) for revision in REVISIONS
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "START TRANSACTION",
        "END",
        "ROLLBACK",
        "ABORT",
        "SAVEPOINT s",
        "RELEASE s",
        "PREPARE TRANSACTION 'x'",
        "COMMIT PREPARED 'x'",
    ],
)
def test_make_lint_names_every_transaction_control_statement(statement):
    for header in ("", "-- Transaction: none\n"):
        text = f"-- test-only.\n{header}SELECT 1;\n{statement};\n"
        line = text.count("\n", 0, text.index(statement)) + 1
        problems = problems_in(SqlFile(Path("tree/sql/up/009_x.sql"), text))
        assert [f"sql/up/009_x.sql line {line} (`{statement}`)" in p for p in problems] == [True]


def test_make_lint_passes_begin_and_commit_inside_a_function_or_do_block():
    text = """-- test-only.
-- Transaction: none
DO $$
BEGIN
    COMMIT;
END
$$;
CREATE FUNCTION test_only_f() RETURNS integer LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;
PREPARE test_only_p AS SELECT 1;
"""
    assert problems_in(SqlFile(Path("tree/sql/up/009_x.sql"), text)) == []
