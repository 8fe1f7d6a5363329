"""A run with nothing to apply (every deploy's) imports no shim, yet still verifies checksums."""

from migration_runner.steps.at_head import _ids
from support.database import current_version, query
from support.processes import run_alembic
from support.project import HEAD, REVISIONS, add_revision, ups

UP = """-- add_test_only_note (up): test-only revision.
ALTER TABLE organizations ADD COLUMN test_only_note text;
"""
DOWN = """-- add_test_only_note (down): test-only revision.
ALTER TABLE organizations DROP COLUMN test_only_note;
"""
SHORT_CUT = "nothing to apply"


def test_shim_ids_are_read_only_when_plainly_stated():
    assert _ids('revision = "002"\ndown_revision = "001"\nbranch_labels = None\n') == ("002", "001")
    assert _ids("revision: str = '001'\ndown_revision: str | None = None  # first\n") == (
        "001",
        None,
    )
    assert _ids('revision = "003"\ndown_revision = ("001", "002")\n') is None  # a merge
    assert _ids('revision = "002"\ndown_revision = "001"\nbranch_labels = ("x",)\n') is None
    assert _ids('revision = NUMBER\ndown_revision = "001"\n') is None  # computed
    assert _ids('revision = "002"\nrevision = "003"\ndown_revision = "001"\n') is None
    assert _ids('down_revision = "001"\n') is None


def test_second_upgrade_takes_the_short_cut_and_records_nothing(database_url):
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    result = run_alembic("upgrade", "head", url=database_url)
    assert result.returncode == 0, result.stdout
    assert SHORT_CUT in result.stdout
    assert "Running upgrade" not in result.stdout
    assert query(
        database_url, "SELECT revision, direction FROM migration_history ORDER BY id"
    ) == ups(*REVISIONS)


def test_the_short_cut_still_refuses_an_edited_applied_file(database_url, tree_copy):
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    up_file = tree_copy / "sql" / "up" / "001_initial_schema.sql"
    up_file.write_text(up_file.read_text() + "\n-- an innocent-looking edit\n")

    result = run_alembic("upgrade", "head", url=database_url, tree=tree_copy)

    assert result.returncode != 0
    assert "001 (sql/up/001_initial_schema.sql)" in result.stdout
    assert SHORT_CUT not in result.stdout


def test_a_pending_revision_takes_alembics_path(database_url, tree_copy):
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    added = add_revision(tree_copy, "add_test_only_note", UP, DOWN)
    result = run_alembic("upgrade", "head", url=database_url, tree=tree_copy)
    assert result.returncode == 0, result.stdout
    assert SHORT_CUT not in result.stdout
    assert current_version(database_url) == added


def test_a_shim_with_computed_ids_falls_back_to_alembic(database_url, tree_copy):
    shim = tree_copy / "alembic" / "versions" / "001_initial_schema.py"
    shim.write_text(shim.read_text().replace('revision = "001"', 'revision = "0" + "01"'))
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    result = run_alembic("upgrade", "head", url=database_url, tree=tree_copy)
    assert result.returncode == 0, result.stdout
    assert SHORT_CUT not in result.stdout
    assert current_version(database_url) == HEAD


def test_other_targets_and_commands_take_alembics_path(database_url):
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    for args in (("upgrade", HEAD), ("current",), ("downgrade", "base")):
        result = run_alembic(*args, url=database_url)
        assert result.returncode == 0, result.stdout
        assert SHORT_CUT not in result.stdout
    assert current_version(database_url) is None
