"""Upgrading a database that already holds data keeps every row."""

from support.database import current_version, query
from support.processes import run_alembic
from support.project import REVISIONS, add_revision, ups

ADD_COLUMN_UP = """-- add_test_only_note (up): test-only revision.
ALTER TABLE organizations ADD COLUMN test_only_note text;
COMMENT ON COLUMN organizations.test_only_note IS 'A test-only note: e.g. DE';
"""
ADD_COLUMN_DOWN = """-- add_test_only_note (down): test-only revision.
ALTER TABLE organizations DROP COLUMN test_only_note;
"""


def test_upgrade_of_a_database_with_data_keeps_its_rows(database_url, tree_copy):
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    query(
        database_url,
        "INSERT INTO organizations (name, slug) SELECT 'Org ' || i, 'org-' || i FROM generate_series(1, 50) AS i",
    )
    added = add_revision(tree_copy, "add_test_only_note", ADD_COLUMN_UP, ADD_COLUMN_DOWN)

    result = run_alembic("upgrade", "head", url=database_url, tree=tree_copy)

    assert result.returncode == 0, result.stdout
    assert current_version(database_url) == added
    assert query(database_url, "SELECT count(*), count(test_only_note) FROM organizations") == [
        (50, 0)
    ]
    assert query(
        database_url, "SELECT revision, direction FROM migration_history ORDER BY id"
    ) == ups(*REVISIONS, added)


def test_a_copied_tree_runs_its_own_sql_files(database_url, tree_copy):
    add_revision(tree_copy, "add_test_only_note", ADD_COLUMN_UP, ADD_COLUMN_DOWN)
    # A new interpreter, as a user has: the copy's own runner and SQL files via its alembic.ini.
    result = run_alembic(
        "upgrade", "head", url=database_url, tree=tree_copy, fresh_interpreter=True
    )
    assert result.returncode == 0, result.stdout
    assert query(
        database_url,
        "SELECT count(*) FROM information_schema.columns WHERE column_name = 'test_only_note'",
    ) == [(1,)]
