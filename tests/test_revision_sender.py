"""Alembic prepares the next revision while the server runs this one, and nothing else changes.

Each revision's string (its file, its history row, its version change, the commit) is sent
from a thread of the run's own (migration_runner/steps/revision_sender.py). These prove that
the overlap happens, and that the server still sees one revision at a time: a failure stops
the run before the next revision is sent, whatever kind it is, and names its own file.
"""

import subprocess
import sys
import time

import pytest

from support.database import current_version, public_tables, query
from support.processes import clean_environ, run_alembic, start_alembic
from support.project import HEAD, add_revision

SLOW = "-- test-only: a revision the server takes two seconds over.\nSELECT pg_sleep(2);\n"
NEXT_TABLE = "CREATE TABLE test_only_after (id integer);\n"
THIRD_TABLE = "CREATE TABLE test_only_third (id integer);\n"
NEXT_KINDS = {
    "transactional": NEXT_TABLE,
    "non-transactional": "-- Transaction: none\n" + NEXT_TABLE,
}


def _sleeping(url: str) -> bool:
    """Whether a backend other than ours runs the slow revision's string right now."""
    rows = query(
        url,
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(2)%'"
        " AND pid <> pg_backend_pid() AND state = 'active'",
    )
    return rows[0][0] > 0


def test_alembic_reaches_the_next_revisions_while_the_server_runs_this_one(database_url, tree_copy):
    """Two strings wait or run at once (revision_sender.DEPTH): while the slow revision runs,
    the next one's string is handed over and Alembic goes on to the one after it."""
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    add_revision(tree_copy, "slow", SLOW, "SELECT 1;\n")
    after = add_revision(tree_copy, "after", NEXT_TABLE, "DROP TABLE test_only_after;\n")
    third = add_revision(tree_copy, "third", THIRD_TABLE, "DROP TABLE test_only_third;\n")
    # A new interpreter: its output can be read line by line as it comes.
    migration = start_alembic(
        "upgrade", "head", url=database_url, tree=tree_copy, fresh_interpreter=True
    )
    seen, output = None, []
    deadline = time.monotonic() + 60
    while seen is None and time.monotonic() < deadline:
        line = migration.stdout.readline()
        if not line:
            break
        output.append(line)
        if f"Running upgrade {after} -> {third}" in line:
            seen = _sleeping(database_url)  # the slow string, still on the server
    rest, _ = migration.communicate(timeout=60)
    assert migration.returncode == 0, "".join(output) + rest
    assert seen is True, "Alembic reached the revisions after the slow one only once it ended"
    assert current_version(database_url) == third
    assert {"test_only_after", "test_only_third"} <= public_tables(database_url)


@pytest.mark.parametrize("kind", sorted(NEXT_KINDS))
def test_a_failed_revision_stops_the_run_before_the_next_is_sent(database_url, tree_copy, kind):
    """The slow revision fails on the server (statement_timeout, not retried) while Alembic
    already prepares the next two: the run fails with its message, and neither ran."""
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    slow = add_revision(tree_copy, "slow", SLOW, "SELECT 1;\n")
    add_revision(tree_copy, "after", NEXT_KINDS[kind], "DROP TABLE test_only_after;\n")
    add_revision(tree_copy, "third", THIRD_TABLE, "DROP TABLE test_only_third;\n")
    result = run_alembic(
        "-x", "statement-timeout=500ms", "upgrade", "head", url=database_url, tree=tree_copy
    )
    assert result.returncode != 0
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1, result.stdout
    assert failed[0].startswith(f"FAILED: sql/up/{slow}_slow.sql failed: "), failed[0]
    assert "canceling statement due to statement timeout" in failed[0]
    assert "Traceback" not in result.stdout
    assert current_version(database_url) == HEAD
    assert not {"test_only_after", "test_only_third"} & public_tables(database_url)
    assert query(
        database_url, "SELECT count(*) FROM migration_history WHERE revision > :head", head=HEAD
    ) == [(0,)]


def test_the_run_ends_its_sender_thread(database_url, tree_copy):
    """A program that migrates from Python keeps no thread of the run's."""
    add_revision(tree_copy, "after", NEXT_TABLE, "DROP TABLE test_only_after;\n")
    script = (
        "import threading\nfrom alembic import command\nfrom alembic.config import Config\n"
        "before = threading.active_count()\n"
        f"command.upgrade(Config({str(tree_copy / 'alembic.ini')!r}), 'head')\n"
        "print('threads', before, threading.active_count())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tree_copy,
        env=clean_environ(DATABASE_URL=database_url, PYTHONPATH=str(tree_copy)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "threads 1 1" in result.stdout, result.stdout + result.stderr
    assert "test_only_after" in public_tables(database_url)
