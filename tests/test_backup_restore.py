"""Before an allowed data loss the runner writes a pg_dump backup; restore brings the rows back.

The data-loss guard lets rows go only when told to; this proves that once told,
nothing is lost for good: every dropped value is in the backup and restore puts
it back, and a backup that cannot be written stops the run before any change.
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import (
    HEAD,
    ROOT,
    add_revision,
    clean_environ,
    current_version,
    query,
    run_alembic,
)

COLUMN_PLAN = "SELECT count(*) FROM information_schema.columns WHERE column_name = 'plan'"


@pytest.fixture
def with_plans(database_url, tree_copy):
    """At head with six organizations on three plans, and a test-only revision on top pending
    (it drops organizations.plan); its id."""
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    query(
        database_url,
        "INSERT INTO organizations (name, slug, plan) SELECT 'Org', 'org-' || i,"
        " (ARRAY['free', 'team', 'enterprise'])[1 + i % 3] FROM generate_series(1, 6) AS i",
    )
    added = add_revision(
        tree_copy,
        "drop_plan",
        "-- test-only: drops a column.\n-- Destructive: yes\nALTER TABLE organizations DROP COLUMN plan;\n",
        "ALTER TABLE organizations ADD COLUMN plan text NOT NULL DEFAULT 'free';\n",
    )
    return database_url, tree_copy, added


def restore(url: str, backup) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "migration_runner.tools.restore", str(backup)],
        env=clean_environ(DATABASE_URL=url), cwd=ROOT,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def only_backup(folder):
    dumps = sorted(folder.glob("*.dump"))
    assert len(dumps) == 1, dumps
    return dumps[0], json.loads(dumps[0].with_suffix(".json").read_text())


def test_dropped_column_is_backed_up_and_restored_value_for_value(with_plans, tmp_path):
    url, tree, added = with_plans
    before = query(url, "SELECT id, plan FROM organizations ORDER BY id")
    result = run_alembic(
        "-x", "allow-data-loss=true", "upgrade", "head",
        url=url, tree=tree, env={"MIGRATION_BACKUP_DIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
    dump, manifest = only_backup(tmp_path)
    assert dump.name.startswith(f"{added}-") and f"backup before {added}: {dump}" in result.stdout
    assert manifest["destroys"] == [
        {"table": "public.organizations", "destroys": "drops column plan of", "rows": 6}
    ]
    assert query(url, COLUMN_PLAN) == [(0,)]

    assert run_alembic("downgrade", HEAD, url=url, tree=tree).returncode == 0
    assert query(url, "SELECT DISTINCT plan FROM organizations") == [("free",)]
    restored = restore(url, dump)
    assert restored.returncode == 0, restored.stderr
    assert "restored column plan of 6 rows into public.organizations" in restored.stdout
    assert query(url, "SELECT id, plan FROM organizations ORDER BY id") == before


def test_dropped_tables_are_backed_up_and_restored_row_for_row(with_plans, tmp_path):
    """Downgrading 001 drops every table: the ones holding rows are in the backup."""
    url, _tree, _added = with_plans
    # Down to 001 first (the revisions above it may destroy rows too: their backups go
    # elsewhere), so that the backup below is the one of 001's downgrade alone.
    to_001 = run_alembic(
        "-x", "allow-data-loss=true", "downgrade", "001",
        url=url, env={"MIGRATION_BACKUP_DIR": str(tmp_path / "above-001")},
    )  # fmt: skip
    assert to_001.returncode == 0, to_001.stdout
    query(
        url,
        "INSERT INTO users (organization_id, email, full_name, role) SELECT id, slug || '@example.com', 'A', 'member' FROM organizations",
    )
    before = query(url, "SELECT id, slug, plan, created_at FROM organizations ORDER BY id")
    result = run_alembic(
        "-x", "allow-data-loss=true", "downgrade", "base",
        url=url, env={"MIGRATION_BACKUP_DIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
    assert current_version(url) is None
    dump, manifest = only_backup(tmp_path)
    assert {item["table"]: item["rows"] for item in manifest["destroys"]} == {
        "public.organizations": 6,
        "public.users": 6,
    }
    assert run_alembic("upgrade", "001", url=url).returncode == 0
    restored = restore(url, dump)
    assert restored.returncode == 0, restored.stderr
    assert query(url, "SELECT id, slug, plan, created_at FROM organizations ORDER BY id") == before
    assert query(url, "SELECT count(*) FROM users") == [(6,)]


def test_backup_that_cannot_be_written_stops_the_run_before_any_change(with_plans):
    url, tree, _added = with_plans
    result = run_alembic(
        "-x", "allow-data-loss=true", "upgrade", "head",
        url=url, tree=tree, env={"MIGRATION_BACKUP_DIR": "/dev/null/backups"},
    )  # fmt: skip
    assert result.returncode != 0
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1 and "nothing was changed" in failed[0]
    assert "MIGRATION_BACKUP_DIR" in failed[0] and "Traceback" not in result.stdout
    assert current_version(url) == HEAD
    assert query(url, COLUMN_PLAN) == [(1,)]
    assert query(url, "SELECT count(*) FROM organizations") == [(6,)]


def test_offline_script_says_it_carries_no_backup():
    result = run_alembic("-x", "allow-data-loss=true", "downgrade", "001:base", "--sql")
    assert result.returncode == 0, result.stdout
    assert "-- No backup: this script destroys data" in result.stdout


def test_restore_of_a_file_that_is_no_runner_backup_fails_in_one_line(database_url, tmp_path):
    stray = tmp_path / "other.dump"
    stray.write_bytes(b"PGDMP")
    result = restore(database_url, stray)
    assert result.returncode == 1
    assert result.stderr.startswith("FAILED:") and len(result.stderr.splitlines()) == 1
    assert os.path.exists(stray)
