"""A revision failing half-way leaves no trace; the revisions before it stay applied."""

from support.database import current_version, public_tables, query
from support.processes import run_alembic
from support.project import HEAD, REVISIONS, add_revision

FAILING_UP = """-- half_done (up): test-only revision that fails after doing some work.
CREATE TABLE half_done (id integer);
INSERT INTO half_done VALUES (1);
ALTER TABLE organizations ADD COLUMN half_done integer;
SELECT 1 / 0;
"""


def test_failing_revision_rolls_back_everything_it_did(database_url, tree_copy):
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    added = add_revision(tree_copy, "half_done", FAILING_UP, "DROP TABLE half_done;\n")

    result = run_alembic("upgrade", "head", url=database_url, tree=tree_copy)

    assert result.returncode != 0
    assert f"sql/up/{added}_half_done.sql line 5 failed" in result.stdout
    assert "division by zero" in result.stdout
    assert "Traceback" not in result.stdout
    assert "half_done" not in public_tables(database_url)
    assert query(
        database_url,
        "SELECT count(*) FROM information_schema.columns WHERE column_name = 'half_done'",
    ) == [(0,)]
    assert current_version(database_url) == HEAD
    assert query(database_url, "SELECT revision FROM migration_history ORDER BY id") == [
        (revision,) for revision in REVISIONS
    ]


def test_failing_run_stops_at_the_last_revision_fully_applied(database_url, tree_copy):
    """Each revision commits on its own: the tree's revisions up to its head stay applied, the
    failing one on top leaves no trace, and a rerun with it fixed finishes the job."""
    added = add_revision(tree_copy, "half_done", FAILING_UP, "DROP TABLE half_done;\n")
    result = run_alembic("upgrade", "head", url=database_url, tree=tree_copy)
    assert result.returncode != 0
    assert current_version(database_url) == HEAD
    assert "half_done" not in public_tables(database_url) and "organizations" in public_tables(
        database_url
    )
    assert query(database_url, "SELECT revision FROM migration_history ORDER BY id") == [
        (revision,) for revision in REVISIONS
    ]
    fixed = FAILING_UP.replace("SELECT 1 / 0;", "SELECT 1;")
    (tree_copy / "sql" / "up" / f"{added}_half_done.sql").write_text(fixed)
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    assert current_version(database_url) == added
