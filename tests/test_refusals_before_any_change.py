"""A refused run changes nothing: every refusal is decided before the run's first revision.

Each revision commits on its own, so a refusal met at revision k would leave the
revisions before k applied; the preflight (steps/preflight.py) reads every file
the run will execute first.
"""

from support.database import current_version, query
from support.processes import run_alembic
from support.project import add_revision

WIDGETS_UP = """-- add_test_only_widgets (up): test-only revision.
CREATE TABLE test_only_widgets (id bigint PRIMARY KEY, name text NOT NULL);
"""
WIDGETS_DOWN = """-- add_test_only_widgets (down): test-only revision.
-- Destructive: yes
DROP TABLE test_only_widgets;
"""
INDEX_UP = "CREATE INDEX test_only_widgets_name_idx ON test_only_widgets (name);\n"
INDEX_DOWN = "DROP INDEX test_only_widgets_name_idx;\n"
VIEW_UP = "CREATE VIEW test_only_widget_names AS SELECT name FROM test_only_widgets;\n"
VIEW_DOWN = "DROP VIEW test_only_widget_names;\n"
SCHEMA = """
SELECT c.relname, c.relkind::text FROM pg_class AS c
INNER JOIN pg_namespace AS n ON c.relnamespace = n.oid
WHERE n.nspname = 'public' ORDER BY 1
"""


def test_downgrade_refused_at_its_third_revision_changes_nothing(database_url, tree_copy):
    widgets = add_revision(tree_copy, "add_test_only_widgets", WIDGETS_UP, WIDGETS_DOWN)
    add_revision(tree_copy, "index_test_only_widgets", INDEX_UP, INDEX_DOWN)
    view = add_revision(tree_copy, "view_test_only_widget_names", VIEW_UP, VIEW_DOWN)
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    query(
        database_url,
        "INSERT INTO test_only_widgets SELECT i, 'w' || i FROM generate_series(1, 5) AS i",
    )
    schema = query(database_url, SCHEMA)
    history = query(database_url, "SELECT revision, direction FROM migration_history ORDER BY id")

    result = run_alembic("downgrade", "base", url=database_url, tree=tree_copy)

    assert result.returncode != 0
    assert (
        f"FAILED: Refusing to run sql/down/{widgets}_add_test_only_widgets.sql: "
        "it drops test_only_widgets (5 rows). Nothing was changed" in result.stdout
    ), result.stdout
    assert "Traceback" not in result.stdout
    assert current_version(database_url) == view
    assert query(database_url, SCHEMA) == schema  # the view and the index are still there
    assert query(database_url, "SELECT count(*) FROM test_only_widgets") == [(5,)]
    assert (
        query(database_url, "SELECT revision, direction FROM migration_history ORDER BY id")
        == history
    )


def test_rows_written_earlier_in_the_same_run_are_still_guarded(database_url, tree_copy):
    """The preflight sees the rows present when the run begins; a revision of the run that
    fills a table a later one drops is caught when that one starts, and says what is applied."""
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    filled = add_revision(
        tree_copy,
        "add_test_only_widgets",
        WIDGETS_UP + "INSERT INTO test_only_widgets VALUES (1, 'one');\n",
        WIDGETS_DOWN,
    )
    dropped = add_revision(
        tree_copy, "drop_test_only_widgets", "DROP TABLE test_only_widgets;\n", WIDGETS_UP
    )

    result = run_alembic("upgrade", "head", url=database_url, tree=tree_copy)

    assert result.returncode != 0
    assert f"Refusing to run sql/up/{dropped}_drop_test_only_widgets.sql" in result.stdout
    assert "the revisions before it in this run are applied" in result.stdout
    assert current_version(database_url) == filled
    assert query(database_url, "SELECT count(*) FROM test_only_widgets") == [(1,)]
