"""No lock outlives its revision: each revision commits before the next one starts.

In one transaction for the whole run, the first revision's ACCESS EXCLUSIVE lock
on a table would be held until the last revision ended, queueing the
application for as long as the slowest revision takes.
"""

import time

from support.database import current_version, public_tables, query
from support.processes import run_alembic, start_alembic
from support.project import HEAD, REVISIONS, add_revision
from support.query_proxy import carried, proxied_alembic

SLOW_UP = "-- test-only: a long second revision on another table.\nSELECT pg_sleep(3);\n"


def _runner_sleeping(url) -> int | None:
    """The pid of the migration's backend once it runs the slow revision (found by what it
    waits on: pg_stat_activity keeps only the start of a long string)."""
    rows = query(
        url,
        "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
        " AND datname = current_database() AND pid <> pg_backend_pid()",
    )
    return rows[0][0] if rows else None


def test_first_revisions_lock_is_released_before_the_next_revision_works(database_url, tree_copy):
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    noted = add_revision(
        tree_copy,
        "add_test_only_note",
        "ALTER TABLE organizations ADD COLUMN test_only_note text;\n",
        "ALTER TABLE organizations DROP COLUMN test_only_note;\n",
    )
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


SLEEP = "-- test-only\nSELECT pg_sleep(0.5);\n"


def test_a_revisions_duration_is_its_files_time_on_the_server(database_url, tree_copy):
    """The file and its history row go in one string: duration_ms is the time from the string's
    arrival, or from the commit of the revision before it in the same round trip
    (steps/revision_sender.py), to the row. So a revision does not inherit the time of a slow
    one before it. Slow and quick revisions alternate: wherever the sender's first round trip
    ends, some round trip carries a slow revision and then a quick one."""
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    kinds = ("slow", "slow", "quick", "slow", "quick")
    added = [
        add_revision(
            tree_copy, f"{kind}_{i}", SLEEP if kind == "slow" else "SELECT 1;\n", "SELECT 1;"
        )
        for i, kind in enumerate(kinds)
    ]
    result, sent = proxied_alembic(database_url, tree_copy, "upgrade", "head")
    assert result.returncode == 0, result.stdout
    trips = [carried(sql) for sql in sent]
    after_slow = {
        trip[i]
        for trip in trips
        for i in range(1, len(trip))
        if kinds[added.index(trip[i - 1])] == "slow" and kinds[added.index(trip[i])] == "quick"
    }
    assert after_slow, trips

    durations = dict(query(database_url, "SELECT revision, duration_ms FROM migration_history"))
    for revision, kind in zip(added, kinds, strict=True):
        wanted = range(500, 1000) if kind == "slow" else range(500)
        assert durations[revision] in wanted, (revision, kind, durations, trips)


def test_a_file_may_end_without_a_semicolon_or_a_newline(database_url, tree_copy):
    """The bookkeeping after a file in its revision's string starts on a statement of its own."""
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    bare = add_revision(
        tree_copy, "bare", "CREATE TABLE test_only_bare (id integer)", "DROP TABLE test_only_bare"
    )
    commented = add_revision(
        tree_copy,
        "commented",
        "CREATE TABLE test_only_commented (id integer);\n-- the last line, a comment",
        "DROP TABLE test_only_commented;\n-- the last line, a comment",
    )
    result = run_alembic("upgrade", "head", url=database_url, tree=tree_copy)
    assert result.returncode == 0, result.stdout
    assert "one statement at a time" not in result.stdout  # each went in its one string

    assert current_version(database_url) == commented
    assert query(database_url, "SELECT revision FROM migration_history ORDER BY id")[-2:] == [
        (bare,),
        (commented,),
    ]
    assert query(
        database_url,
        "SELECT count(*) FROM pg_tables WHERE tablename IN"
        " ('test_only_bare', 'test_only_commented')",
    ) == [(2,)]


def test_a_version_table_changed_under_the_run_fails_the_revision(database_url, tree_copy):
    """Alembic's check that its UPDATE of alembic_version matched one row holds inside the
    revision's string: a file that moved the version itself fails, and nothing of it stays."""
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    add_revision(
        tree_copy,
        "moves_version",
        "-- test-only\nCREATE TABLE test_only_moved (id integer);\n"
        "UPDATE alembic_version SET version_num = 'elsewhere';\n",
        "SELECT 1;\n",
    )
    result = run_alembic("upgrade", "head", url=database_url, tree=tree_copy)

    assert result.returncode != 0
    assert "alembic_version does not hold" in result.stdout, result.stdout
    assert current_version(database_url) == HEAD
    assert query(database_url, "SELECT to_regclass('test_only_moved') IS NULL") == [(True,)]
    assert query(database_url, "SELECT max(revision) FROM migration_history") == [(HEAD,)]


def test_a_version_row_gone_before_its_delete_fails_the_downgrade(database_url, tree_copy):
    """Downgrading the base revision deletes its alembic_version row; a down file that moved
    the row itself fails, and the revision stays applied."""
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    base = next((tree_copy / "sql" / "down").glob(f"{REVISIONS[0]}_*.sql"))
    base.write_text("-- test-only\nUPDATE alembic_version SET version_num = 'elsewhere';\n")
    result = run_alembic("downgrade", "base", url=database_url, tree=tree_copy)

    assert result.returncode != 0
    assert f"alembic_version does not hold {REVISIONS[0]} to delete" in result.stdout, result.stdout
    assert current_version(database_url) == REVISIONS[0]  # the downgrades before it committed
    assert "organizations" in public_tables(database_url)
