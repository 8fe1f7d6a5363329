"""An applied migration is never edited: its checksum in migration_history says so."""

import hashlib
import subprocess

from support.database import current_version, query
from support.processes import run_alembic
from support.project import HEAD, REVISIONS, ROOT, add_revision

UP = """-- add_test_only_note (up): test-only revision.
ALTER TABLE organizations ADD COLUMN test_only_note text;
"""
DOWN = """-- add_test_only_note (down): test-only revision.
ALTER TABLE organizations DROP COLUMN test_only_note;
"""


def checksum(direction: str, revision: str) -> str:
    """The sha256 of the real tree's sql/<direction>/ file of revision."""
    (path,) = (ROOT / "sql" / direction).glob(f"{revision}_*.sql")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_history_records_each_step_with_the_checksum_of_its_file(database_url):
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    assert run_alembic("downgrade", "base", url=database_url).returncode == 0
    rows = query(
        database_url,
        """
        SELECT revision, direction, stamped, checksum, applied_by = current_user, duration_ms >= 0
        FROM migration_history ORDER BY id""",
    )
    steps = [(revision, "up") for revision in REVISIONS]
    steps += [(revision, "down") for revision in reversed(REVISIONS)]
    assert rows == [
        (revision, direction, False, checksum(direction, revision), True, True)
        for revision, direction in steps
    ]


def test_edited_applied_file_stops_the_run_before_anything_changes(database_url, tree_copy):
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    up_file = tree_copy / "sql" / "up" / "001_initial_schema.sql"
    up_file.write_text(up_file.read_text() + "\n-- an innocent-looking edit\n")
    add_revision(tree_copy, "add_test_only_note", UP, DOWN)

    result = run_alembic("upgrade", "head", url=database_url, tree=tree_copy)

    assert result.returncode != 0
    assert "001 (sql/up/001_initial_schema.sql)" in result.stdout
    assert "fix forward with a new revision" in result.stdout
    assert "Traceback" not in result.stdout
    assert current_version(database_url) == HEAD
    assert query(database_url, "SELECT count(*) FROM migration_history") == [(len(REVISIONS),)]
    downgrade = run_alembic("downgrade", "base", url=database_url, tree=tree_copy)
    assert downgrade.returncode != 0 and current_version(database_url) == HEAD


def test_unedited_files_pass_verification(database_url, tree_copy):
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    added = add_revision(tree_copy, "add_test_only_note", UP, DOWN)
    result = run_alembic("upgrade", "head", url=database_url, tree=tree_copy)
    assert result.returncode == 0, result.stdout
    assert current_version(database_url) == added


def test_offline_script_refuses_an_edited_history_too(database_url, tree_copy):
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    up_file = tree_copy / "sql" / "up" / "001_initial_schema.sql"
    up_file.write_text(up_file.read_text() + "\n-- edited\n")
    add_revision(tree_copy, "add_test_only_note", UP, DOWN)
    script = run_alembic("upgrade", f"{HEAD}:head", "--sql", tree=tree_copy, env={})
    assert script.returncode == 0, script.stdout
    sql = tree_copy / "upgrade.sql"
    sql.write_text(
        "\n".join(line for line in script.stdout.splitlines() if not line.startswith("INFO"))
    )

    applied = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database_url, "-f", str(sql)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert applied.returncode != 0
    assert "were edited after they ran" in applied.stderr
    assert current_version(database_url) == HEAD
