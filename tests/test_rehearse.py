"""`make rehearse` runs the pending revisions on a copy of the target and never on the target.

A revision that passes on an empty test database can still fail on production's
rows; rehearsal finds that out first, reports what each revision costs, and
leaves the target and the server as they were.
"""

import subprocess
import sys

import pytest

from conftest import HEAD, add_revision, clean_environ, current_version, query, run_alembic
from migration_runner.tools.schema_snapshot import snapshot

ROW_COUNTS = "SELECT (SELECT count(*) FROM organizations), (SELECT count(*) FROM users)"
SCRATCH_DATABASES = "SELECT count(*) FROM pg_database WHERE datname LIKE 'rehearsal_%'"


@pytest.fixture
def target(database_url, tree_copy):
    """A database at head holding organizations, some of them with over-long names."""
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    query(
        database_url,
        "INSERT INTO organizations (name, slug) SELECT repeat('n', 10 * i), 'org-' || i"
        " FROM generate_series(1, 20) AS i",
    )
    return database_url, tree_copy


def rehearse(url, tree) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "migration_runner.tools.rehearse", "--tree", str(tree)],
        env=clean_environ(DATABASE_URL=url), cwd=tree,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_good_revision_is_reported_and_the_target_is_left_identical(target):
    url, tree = target
    added = add_revision(
        tree, "add_test_only_country",
        "-- test-only\nALTER TABLE organizations ADD COLUMN test_only_country text;\n"
        "UPDATE organizations SET test_only_country = 'NZ';\n",
        "ALTER TABLE organizations DROP COLUMN test_only_country;\n",
    )  # fmt: skip
    schema_before, rows_before = snapshot(url), query(url, ROW_COUNTS)
    result = rehearse(url, tree)
    assert result.returncode == 0, result.stdout + result.stderr
    report = result.stdout
    assert f"{added}: applied in" in report
    assert "public.organizations AccessExclusiveLock" in report
    assert "rows written: public.organizations 20" in report
    assert "rehearsal passed: 1 revision(s) applied" in report and "no drift" in report
    assert snapshot(url) == schema_before
    assert query(url, ROW_COUNTS) == rows_before
    assert current_version(url) == HEAD
    assert query(url, SCRATCH_DATABASES) == [(0,)]


def test_revision_failing_on_the_targets_rows_fails_the_rehearsal_naming_it(target):
    url, tree = target
    added = add_revision(
        tree, "short_names",
        "-- test-only: rows with long names violate it.\n"
        "ALTER TABLE organizations ADD CONSTRAINT organizations_test_only_short_name_check"
        " CHECK (length(name) <= 100);\n",
        "ALTER TABLE organizations DROP CONSTRAINT organizations_test_only_short_name_check;\n",
    )  # fmt: skip
    schema_before = snapshot(url)
    result = rehearse(url, tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"REHEARSAL FAILED at {added}" in result.stdout
    assert "is violated by some row" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert snapshot(url) == schema_before and current_version(url) == HEAD
    assert query(url, SCRATCH_DATABASES) == [(0,)]


def test_copy_falls_back_to_pg_dump_while_someone_is_connected_to_the_target(target):
    """CREATE DATABASE ... TEMPLATE needs the target to itself; an open session must not stop us."""
    url, tree = target
    add_revision(
        tree, "add_test_only_country",
        "ALTER TABLE organizations ADD COLUMN test_only_country text;\n",
        "ALTER TABLE organizations DROP COLUMN test_only_country;\n",
    )  # fmt: skip
    from conftest import engine_for

    engine = engine_for(url)
    with engine.connect():
        result = rehearse(url, tree)
    engine.dispose()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pg_dump | pg_restore" in result.stderr
    assert query(url, SCRATCH_DATABASES) == [(0,)]


def test_interrupted_rehearsal_drops_its_scratch_database(target):
    """SIGTERM (a cancelled CI job) or Ctrl-C in the middle of a revision: nothing is left."""
    import signal
    import time

    url, tree = target
    add_revision(tree, "slow", "-- test-only\nSELECT pg_sleep(30);\n", "SELECT 1;\n")
    rehearsal = subprocess.Popen(
        [sys.executable, "-m", "migration_runner.tools.rehearse", "--tree", str(tree)],
        env=clean_environ(DATABASE_URL=url), cwd=tree,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    sleeping = (
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
        " AND pid <> pg_backend_pid() AND query LIKE '%pg_sleep(30)%'"
    )
    while not query(url, sleeping)[0][0]:
        assert time.monotonic() < deadline, "the rehearsal never reached the slow revision"
        time.sleep(0.05)
    rehearsal.send_signal(signal.SIGTERM)
    output, _ = rehearsal.communicate(timeout=60)
    assert rehearsal.returncode == 130, output
    assert "interrupted; the scratch database was dropped" in output
    assert query(url, SCRATCH_DATABASES) == [(0,)]
    assert current_version(url) == HEAD
