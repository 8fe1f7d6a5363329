"""`alembic ... --sql` scripts, applied with `psql -v ON_ERROR_STOP=1 -f`, equal the online run."""

import subprocess
import uuid
from pathlib import Path

import pytest

from migration_runner.pg_programs import find_client
from migration_runner.tools.schema_snapshot import snapshot
from support.database import current_version, fresh_database, query
from support.processes import run_alembic
from support.project import HEAD, REVISIONS, add_revision

COLUMN_UP = """-- add_organizations_test_only_note (up): test-only revision.
-- Destructive: no
-- Transaction: yes
ALTER TABLE organizations ADD COLUMN test_only_note text;
COMMENT ON COLUMN organizations.test_only_note IS 'Test-only note, kept verbatim: e.g. DE';
"""
COLUMN_DOWN = """-- add_organizations_test_only_note (down): test-only revision.
-- Destructive: yes
-- Transaction: yes
ALTER TABLE organizations DROP COLUMN test_only_note;
"""
INDEX_UP = """-- index_organizations_test_only_note (up): test-only, outside a transaction.
-- Destructive: no
-- Transaction: none
CREATE INDEX CONCURRENTLY organizations_test_only_note_idx ON organizations (test_only_note);
"""
INDEX_DOWN = """-- index_organizations_test_only_note (down): test-only, outside a transaction.
-- Destructive: no
-- Transaction: none
DROP INDEX CONCURRENTLY organizations_test_only_note_idx;
"""
HISTORY = "SELECT revision, direction, stamped, checksum FROM migration_history ORDER BY id"


@pytest.fixture
def twin_url(postgres_server):
    """A second empty database: one side runs the script with psql, the other runs online."""
    with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture
def added(tree_copy: Path) -> tuple[str, str]:
    """Two test-only revisions on top of head, a column then its index built concurrently;
    their ids."""
    column = add_revision(tree_copy, "add_organizations_test_only_note", COLUMN_UP, COLUMN_DOWN)
    index = add_revision(tree_copy, "index_organizations_test_only_note", INDEX_UP, INDEX_DOWN)
    return column, index


@pytest.fixture
def tree(tree_copy: Path, added: tuple[str, str]) -> Path:
    return tree_copy


def offline_script(tree: Path, *args: str) -> str:
    result = run_alembic(*args, "--sql", tree=tree)  # no database URL at all
    assert result.returncode == 0, result.stdout
    # Alembic's log lines go to stderr (merged here); the script is everything else.
    return "".join(
        line for line in result.stdout.splitlines(keepends=True) if not line.startswith("INFO  [")
    )


def psql(url: str, script: str, tmp_path: Path, succeeds: bool = True) -> str:
    path = tmp_path / f"script_{uuid.uuid4().hex[:6]}.sql"
    path.write_text(script)
    result = subprocess.run(
        [str(find_client("psql")), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(path), url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (result.returncode == 0) == succeeds, result.stderr
    return result.stderr


def state(url: str) -> tuple:
    """What must match: the schema, alembic_version, and the recorded steps."""
    return snapshot(url), current_version(url), query(url, HISTORY)


def test_offline_upgrade_script_gives_the_online_result(
    database_url, twin_url, tree, added, tmp_path
):
    script = offline_script(tree, "upgrade", "head")
    for step in (
        "pg_advisory_xact_lock",
        "SET LOCAL lock_timeout = '400ms'",
        "$verify$",
        "INSERT INTO migration_history",
        "CREATE INDEX CONCURRENTLY organizations_test_only_note_idx",
        "Test-only note, kept verbatim",  # the SQL files as written, comments included
    ):
        assert step in script

    psql(database_url, script, tmp_path)
    assert run_alembic("upgrade", "head", url=twin_url, tree=tree).returncode == 0

    offline, online = state(database_url), state(twin_url)
    assert offline == online
    assert offline[1] == added[-1]
    assert [row[:3] for row in offline[2]] == [
        (revision, "up", False) for revision in (*REVISIONS, *added)
    ]


def test_offline_downgrade_to_base_gives_the_online_result(
    database_url, twin_url, tree, added, tmp_path
):
    for url in (database_url, twin_url):
        assert run_alembic("upgrade", "head", url=url, tree=tree).returncode == 0
    script = offline_script(tree, "downgrade", "head:base")
    assert "DROP INDEX CONCURRENTLY organizations_test_only_note_idx" in script
    assert "$guard$" in script

    psql(database_url, script, tmp_path)
    assert run_alembic("downgrade", "base", url=twin_url, tree=tree).returncode == 0

    offline, online = state(database_url), state(twin_url)
    assert offline == online
    assert offline[1] is None and offline[0] == ""  # nothing but the runner's tables is left
    every = (*REVISIONS, *added)
    assert [row[:2] for row in offline[2]][-len(every) :] == [
        (revision, "down") for revision in reversed(every)
    ]


def test_offline_ranges_give_the_online_result(database_url, twin_url, tree, added, tmp_path):
    top = added[-1]
    for url in (database_url, twin_url):
        assert run_alembic("upgrade", HEAD, url=url, tree=tree).returncode == 0

    psql(database_url, offline_script(tree, "upgrade", f"{HEAD}:{top}"), tmp_path)
    assert run_alembic("upgrade", top, url=twin_url, tree=tree).returncode == 0
    assert state(database_url) == state(twin_url)

    psql(database_url, offline_script(tree, "downgrade", f"{top}:{HEAD}"), tmp_path)
    assert run_alembic("downgrade", HEAD, url=twin_url, tree=tree).returncode == 0
    assert state(database_url) == state(twin_url)
    assert current_version(database_url) == HEAD


def test_script_from_empty_refuses_a_migrated_database_naming_the_command(
    database_url, tree, added, tmp_path
):
    assert run_alembic("upgrade", HEAD, url=database_url, tree=tree).returncode == 0
    history = query(database_url, HISTORY)

    failed = psql(database_url, offline_script(tree, "upgrade", "head"), tmp_path, succeeds=False)

    assert (
        f"This script starts from an empty database, but the database is at revision {HEAD}. "
        f"Write the script from its revision: alembic upgrade {HEAD}:head --sql" in failed
    )
    assert "already exists" not in failed
    assert current_version(database_url) == HEAD and query(database_url, HISTORY) == history


def test_script_from_a_revision_refuses_a_database_elsewhere(database_url, tree, added, tmp_path):
    script = offline_script(tree, "upgrade", f"{added[0]}:head")
    assert run_alembic("upgrade", HEAD, url=database_url, tree=tree).returncode == 0

    failed = psql(database_url, script, tmp_path, succeeds=False)

    assert f"starts from revision {added[0]}, but the database is at revision {HEAD}" in failed
    assert current_version(database_url) == HEAD


def test_script_from_empty_applies_to_a_database_downgraded_to_base(
    database_url, twin_url, tree, added, tmp_path
):
    """After `downgrade base` alembic_version is still there, empty: that is the empty state."""
    assert run_alembic("upgrade", "head", url=database_url, tree=tree).returncode == 0
    assert run_alembic("downgrade", "base", url=database_url, tree=tree).returncode == 0
    assert query(database_url, "SELECT count(*) FROM alembic_version") == [(0,)]

    psql(database_url, offline_script(tree, "upgrade", "head"), tmp_path)

    assert current_version(database_url) == added[-1]
