"""Upgrading a database that already holds data keeps every row."""

from conftest import add_revision, current_version, query, run_alembic

ADD_COLUMN_UP = """-- 002_add_organizations_country (up): test-only revision.
ALTER TABLE organizations ADD COLUMN country text;
COMMENT ON COLUMN organizations.country IS 'ISO 3166-1 alpha-2: e.g. DE';
"""
ADD_COLUMN_DOWN = """-- 002_add_organizations_country (down): test-only revision.
ALTER TABLE organizations DROP COLUMN country;
"""


def test_upgrade_of_a_database_with_data_keeps_its_rows(database_url, tree_copy):
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    query(
        database_url,
        "INSERT INTO organizations (name, slug) SELECT 'Org ' || i, 'org-' || i FROM generate_series(1, 50) AS i",
    )
    add_revision(
        tree_copy, "002", "add_organizations_country", ADD_COLUMN_UP, ADD_COLUMN_DOWN, "001"
    )

    result = run_alembic("upgrade", "head", url=database_url, tree=tree_copy)

    assert result.returncode == 0, result.stdout
    assert current_version(database_url) == "002"
    assert query(database_url, "SELECT count(*), count(country) FROM organizations") == [(50, 0)]
    assert query(database_url, "SELECT revision, direction FROM migration_history ORDER BY id") == [
        ("001", "up"),
        ("002", "up"),
    ]


def test_a_copied_tree_runs_its_own_sql_files(database_url, tree_copy):
    add_revision(
        tree_copy, "002", "add_organizations_country", ADD_COLUMN_UP, ADD_COLUMN_DOWN, "001"
    )
    # A new interpreter, as a user has: the copy's own runner and SQL files via its alembic.ini.
    result = run_alembic(
        "upgrade", "head", url=database_url, tree=tree_copy, fresh_interpreter=True
    )
    assert result.returncode == 0, result.stdout
    assert query(
        database_url,
        "SELECT count(*) FROM information_schema.columns WHERE column_name = 'country'",
    ) == [(1,)]
