"""The history stays one straight line of numbered revisions, each with its SQL pair."""

import subprocess
import sys
from pathlib import Path

from migration_runner.tools.linear_history import problems
from migration_runner.tools.scaffold import render_shim
from support.project import HEAD, REVISIONS, ROOT, add_revision

UP = "-- test-only revision.\nSELECT 1;\n"
DOWN = "-- test-only revision.\nSELECT 1;\n"


def after(revision: str) -> str:
    """The id that follows revision: one more, zero-padded to three digits."""
    return f"{int(revision) + 1:03d}"


def write_revision(tree: Path, number: str, slug: str, parent: str) -> None:
    """A test-only revision with the number and parent given, as another branch may have made it
    (add_revision always takes the next number on top of the head)."""
    mako = (tree / "alembic" / "script.py.mako").read_text()
    shim = render_shim(mako, number, parent, slug.replace("_", " "))
    (tree / "alembic" / "versions" / f"{number}_{slug}.py").write_text(shim)
    (tree / "sql" / "up" / f"{number}_{slug}.sql").write_text(UP)
    (tree / "sql" / "down" / f"{number}_{slug}.sql").write_text(DOWN)


def test_the_project_history_is_linear():
    result = subprocess.run(
        [sys.executable, "-m", "migration_runner.cli", "linear-history", str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"{len(REVISIONS)} revision(s), 001 to {HEAD}," in result.stdout


def test_two_branches_adding_the_same_number_collide(tree_copy):
    added = add_revision(tree_copy, "add_widgets", UP, DOWN)
    write_revision(tree_copy, added, "add_gadgets", HEAD)
    found = problems(tree_copy)
    assert any(f"number {added} is used twice" in problem for problem in found), found
    result = subprocess.run(
        [sys.executable, "-m", "migration_runner.cli", "linear-history", str(tree_copy)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1 and f"{added}_add_gadgets, {added}_add_widgets" in result.stderr


def test_a_gap_in_numbering_is_refused(tree_copy):
    missing = after(HEAD)
    write_revision(tree_copy, after(missing), "add_widgets", HEAD)
    assert any(f"gaps: {missing} missing" in problem for problem in problems(tree_copy))


def test_a_shim_without_its_sql_files_is_refused(tree_copy):
    added = add_revision(tree_copy, "add_widgets", UP, DOWN)
    (tree_copy / "sql" / "down" / f"{added}_add_widgets.sql").unlink()
    assert problems(tree_copy) == [f"{added}_add_widgets: missing sql/down/{added}_add_widgets.sql"]


def test_sql_files_without_a_shim_are_refused(tree_copy):
    orphan = f"{after(HEAD)}_orphan"
    (tree_copy / "sql" / "up" / f"{orphan}.sql").write_text(UP)
    (tree_copy / "sql" / "down" / f"{orphan}.sql").write_text(DOWN)
    assert problems(tree_copy) == [f"{orphan}: missing alembic/versions/{orphan}.py"]


def test_a_revision_pointing_at_the_wrong_parent_is_refused(tree_copy):
    widgets = add_revision(tree_copy, "add_widgets", UP, DOWN)
    gadgets = after(widgets)
    write_revision(tree_copy, gadgets, "add_gadgets", HEAD)
    found = problems(tree_copy)
    assert f"more than one head: {widgets}, {gadgets}; history must be linear" in found
    assert any(f"down_revision is '{HEAD}', expected '{widgets}'" in problem for problem in found)
