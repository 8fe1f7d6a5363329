"""The history stays one straight line of numbered revisions, each with its SQL pair."""

import subprocess
import sys

from conftest import ROOT, add_revision
from migration_runner.tools.linear_history import problems

UP = "-- test-only revision.\nSELECT 1;\n"
DOWN = "-- test-only revision.\nSELECT 1;\n"


def test_the_project_history_is_linear():
    result = subprocess.run(
        [sys.executable, "-m", "migration_runner.tools.linear_history", str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "001 to" in result.stdout


def test_two_branches_adding_the_same_number_collide(tree_copy):
    add_revision(tree_copy, "002", "add_widgets", UP, DOWN, "001")
    add_revision(tree_copy, "002", "add_gadgets", UP, DOWN, "001")
    found = problems(tree_copy)
    assert any("number 002 is used twice" in problem for problem in found), found
    result = subprocess.run(
        [sys.executable, "-m", "migration_runner.tools.linear_history", str(tree_copy)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1 and "002_add_gadgets, 002_add_widgets" in result.stderr


def test_a_gap_in_numbering_is_refused(tree_copy):
    add_revision(tree_copy, "003", "add_widgets", UP, DOWN, "001")
    assert any("gaps: 002 missing" in problem for problem in problems(tree_copy))


def test_a_shim_without_its_sql_files_is_refused(tree_copy):
    add_revision(tree_copy, "002", "add_widgets", UP, DOWN, "001")
    (tree_copy / "sql" / "down" / "002_add_widgets.sql").unlink()
    assert problems(tree_copy) == ["002_add_widgets: missing sql/down/002_add_widgets.sql"]


def test_sql_files_without_a_shim_are_refused(tree_copy):
    (tree_copy / "sql" / "up" / "002_orphan.sql").write_text(UP)
    (tree_copy / "sql" / "down" / "002_orphan.sql").write_text(DOWN)
    assert problems(tree_copy) == ["002_orphan: missing alembic/versions/002_orphan.py"]


def test_a_revision_pointing_at_the_wrong_parent_is_refused(tree_copy):
    add_revision(tree_copy, "002", "add_widgets", UP, DOWN, "001")
    add_revision(tree_copy, "003", "add_gadgets", UP, DOWN, "001")
    found = problems(tree_copy)
    assert "more than one head: 002, 003; history must be linear" in found
    assert any("down_revision is '001', expected '002'" in problem for problem in found)
