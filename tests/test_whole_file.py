"""A transactional SQL file is sent whole; when it fails, a second pass names the line."""

from support.database import current_version, query
from support.processes import run_alembic
from support.project import HEAD, add_revision

FAILING_UP = """-- fails_late (up): test-only revision.
CREATE TABLE fails_late (id integer);
-- a comment between statements, with a colon: and 100% of a percent sign
INSERT INTO fails_late VALUES (1);
SELECT 1 / 0;
"""
GOOD_UP = """-- two_statements (up): test-only revision.
CREATE TABLE two_statements (id integer);
INSERT INTO two_statements VALUES (1) -- no semicolon after the last statement"""


def test_a_failing_file_is_run_again_statement_by_statement_to_name_its_line(
    database_url, tree_copy
):
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    added = add_revision(tree_copy, "fails_late", FAILING_UP, "DROP TABLE fails_late;\n")

    result = run_alembic("upgrade", "head", url=database_url, tree=tree_copy)

    assert result.returncode != 0
    assert "running again one statement at a time" in result.stdout
    assert f"sql/up/{added}_fails_late.sql line 5 failed: ERROR:  division by zero" in result.stdout
    assert current_version(database_url) == HEAD
    assert query(database_url, "SELECT to_regclass('fails_late')") == [(None,)]


def test_a_file_sent_whole_applies_every_statement(database_url, tree_copy):
    added = add_revision(tree_copy, "two_statements", GOOD_UP, "DROP TABLE two_statements;\n")
    result = run_alembic("upgrade", "head", url=database_url, tree=tree_copy)
    assert result.returncode == 0, result.stdout
    assert "one statement at a time" not in result.stdout
    assert query(database_url, "SELECT id FROM two_statements") == [(1,)]
    assert current_version(database_url) == added
