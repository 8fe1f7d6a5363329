"""A revision headed `-- Transaction: none` runs outside a transaction (CREATE INDEX CONCURRENTLY)."""

from support.database import current_version, query
from support.processes import run_alembic, run_alembic_concurrently
from support.project import HEAD, REVISIONS, add_revision, ups

INDEX_UP = """-- index_organizations_name (up): test-only, builds an index without blocking writes.
-- Destructive: no
-- Transaction: none
CREATE INDEX CONCURRENTLY test_only_organizations_name_idx ON organizations (name);
"""
INDEX_DOWN = """-- index_organizations_name (down): test-only.
-- Transaction: none
DROP INDEX CONCURRENTLY test_only_organizations_name_idx;
"""
AFTER_UP = (
    "-- add_test_only_note (up): test-only.\n"
    "ALTER TABLE organizations ADD COLUMN test_only_note text;\n"
)
AFTER_DOWN = "ALTER TABLE organizations DROP COLUMN test_only_note;\n"
VALID_INDEX = """
SELECT i.indisvalid FROM pg_index AS i
WHERE i.indexrelid = to_regclass('test_only_organizations_name_idx')"""


def _tree_with_concurrent_index(tree) -> tuple[str, str]:
    """On top of head: the concurrent index build, then an ordinary revision; their ids."""
    index = add_revision(tree, "index_organizations_name", INDEX_UP, INDEX_DOWN)
    after = add_revision(tree, "add_test_only_note", AFTER_UP, AFTER_DOWN)
    return index, after


def test_concurrent_index_build_runs_outside_a_transaction(database_url, tree_copy):
    index, after = _tree_with_concurrent_index(tree_copy)
    result = run_alembic("upgrade", "head", url=database_url, tree=tree_copy)
    assert result.returncode == 0, result.stdout
    assert query(database_url, VALID_INDEX) == [(True,)]
    assert current_version(database_url) == after
    assert query(
        database_url, "SELECT revision, direction FROM migration_history ORDER BY id"
    ) == ups(*REVISIONS, index, after)
    assert query(database_url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [
        (0,)
    ]

    assert run_alembic("downgrade", HEAD, url=database_url, tree=tree_copy).returncode == 0
    assert query(database_url, VALID_INDEX) == []
    assert current_version(database_url) == HEAD


def test_concurrent_runners_still_apply_a_non_transactional_revision_once(database_url, tree_copy):
    index, after = _tree_with_concurrent_index(tree_copy)
    results = run_alembic_concurrently(4, "upgrade", "head", url=database_url, tree=tree_copy)
    assert [result.returncode for result in results] == [0] * 4, [r.stdout for r in results]
    assert query(database_url, VALID_INDEX) == [(True,)]
    assert query(
        database_url,
        "SELECT revision, count(*) FROM migration_history GROUP BY revision ORDER BY revision",
    ) == [(revision, 1) for revision in (*REVISIONS, index, after)]


def test_offline_script_commits_around_the_non_transactional_revision(tree_copy):
    index, _ = _tree_with_concurrent_index(tree_copy)
    script = run_alembic("upgrade", f"{HEAD}:head", "--sql", tree=tree_copy).stdout
    order = [
        "SELECT pg_advisory_lock(",  # bridges the commit
        "COMMIT;",
        "CREATE INDEX CONCURRENTLY test_only_organizations_name_idx",
        "BEGIN;",
        "SELECT pg_advisory_xact_lock(",
        "SELECT pg_advisory_unlock(",
        "SET LOCAL lock_timeout",
        f"UPDATE alembic_version SET version_num='{index}'",
    ]
    start = script.index(f"Running upgrade {HEAD} -> {index}")
    positions = [script.index(marker, start) for marker in order]
    assert positions == sorted(positions)
