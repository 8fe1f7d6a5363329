"""A revision headed `-- Transaction: none` runs outside a transaction (CREATE INDEX CONCURRENTLY)."""

from conftest import add_revision, current_version, query, run_alembic, run_alembic_concurrently

INDEX_UP = """-- 002_index_organizations_name (up): test-only, builds an index without blocking writes.
-- Destructive: no
-- Transaction: none
CREATE INDEX CONCURRENTLY organizations_name_idx ON organizations (name);
"""
INDEX_DOWN = """-- 002_index_organizations_name (down): test-only.
-- Transaction: none
DROP INDEX CONCURRENTLY organizations_name_idx;
"""
AFTER_UP = (
    "-- 003_add_country (up): test-only.\nALTER TABLE organizations ADD COLUMN country text;\n"
)
AFTER_DOWN = "ALTER TABLE organizations DROP COLUMN country;\n"
VALID_INDEX = """
SELECT i.indisvalid FROM pg_index AS i
WHERE i.indexrelid = to_regclass('organizations_name_idx')"""


def _tree_with_concurrent_index(tree):
    add_revision(tree, "002", "index_organizations_name", INDEX_UP, INDEX_DOWN, "001")
    add_revision(tree, "003", "add_country", AFTER_UP, AFTER_DOWN, "002")


def test_concurrent_index_build_runs_outside_a_transaction(database_url, tree_copy):
    _tree_with_concurrent_index(tree_copy)
    result = run_alembic("upgrade", "head", url=database_url, tree=tree_copy)
    assert result.returncode == 0, result.stdout
    assert query(database_url, VALID_INDEX) == [(True,)]
    assert current_version(database_url) == "003"
    assert query(database_url, "SELECT revision, direction FROM migration_history ORDER BY id") == [
        ("001", "up"),
        ("002", "up"),
        ("003", "up"),
    ]
    assert query(database_url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [
        (0,)
    ]

    assert run_alembic("downgrade", "001", url=database_url, tree=tree_copy).returncode == 0
    assert query(database_url, VALID_INDEX) == []
    assert current_version(database_url) == "001"


def test_concurrent_runners_still_apply_a_non_transactional_revision_once(database_url, tree_copy):
    _tree_with_concurrent_index(tree_copy)
    results = run_alembic_concurrently(4, "upgrade", "head", url=database_url, tree=tree_copy)
    assert [result.returncode for result in results] == [0] * 4, [r.stdout for r in results]
    assert query(database_url, VALID_INDEX) == [(True,)]
    assert query(
        database_url,
        "SELECT revision, count(*) FROM migration_history GROUP BY revision ORDER BY revision",
    ) == [("001", 1), ("002", 1), ("003", 1)]


def test_offline_script_commits_around_the_non_transactional_revision(tree_copy):
    _tree_with_concurrent_index(tree_copy)
    script = run_alembic("upgrade", "001:head", "--sql", tree=tree_copy).stdout
    order = [
        "SELECT pg_advisory_lock(",  # bridges the commit
        "COMMIT;",
        "CREATE INDEX CONCURRENTLY organizations_name_idx",
        "BEGIN;",
        "SELECT pg_advisory_xact_lock(",
        "SELECT pg_advisory_unlock(",
        "SET LOCAL lock_timeout",
        "UPDATE alembic_version SET version_num='002'",
    ]
    start = script.index("Running upgrade 001 -> 002")
    positions = [script.index(marker, start) for marker in order]
    assert positions == sorted(positions)
