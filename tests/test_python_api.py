"""The commands that compare the models work from Python as from the command line.

`alembic.command.check(config)` and `command.revision(config, autogenerate=True,
message=...)` compare the database with the models (or with a MetaData a tool passes in
`config.attributes["target_metadata"]`), while `command.upgrade` still never imports the
models. Each runs in a fresh interpreter, as a tool calling the API would.
"""

import subprocess
import sys
import textwrap

import pytest
from sqlalchemy.engine import make_url

from conftest import ROOT, clean_environ, query, run_alembic

# Prints whether the models were imported, after the calls of the script it ends.
MODELS_IMPORTED = "\nimport sys\nprint('models imported:', 'assessment_models' in sys.modules)\n"

# A MetaData of the models plus one table of a tool's own.
OTHER_METADATA = """
from sqlalchemy import BigInteger, Column, Identity, MetaData, Table, Text

import assessment_models

other = MetaData(naming_convention=assessment_models.metadata.naming_convention)
for table in assessment_models.metadata.tables.values():
    table.to_metadata(other)
Table(
    "test_only_widgets", other,
    Column("id", BigInteger, Identity(), primary_key=True), Column("name", Text),
)
"""


def python_api(tree, url, body: str, scratch: str | None = None) -> subprocess.CompletedProcess:
    """Run body (after `from alembic import command` and `config = Config(...)`) in a fresh
    interpreter in tree, DATABASE_URL set to url."""
    script = (
        "from alembic import command\nfrom alembic.config import Config\n\n"
        f"config = Config({str(tree / 'alembic.ini')!r})\n" + textwrap.dedent(body)
    )
    extra = {"DATABASE_URL": url, "PYTHONPATH": str(tree)}
    if scratch:
        extra["SCHEMA_SCRATCH_URL"] = scratch
    return subprocess.run(
        [sys.executable, "-c", script], cwd=tree, env=clean_environ(**extra),
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip


@pytest.fixture
def at_head(database_url):
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    return database_url


def test_check_from_python_compares_the_models(at_head):
    result = python_api(ROOT, at_head, "command.check(config)" + MODELS_IMPORTED)
    assert result.returncode == 0, result.stderr
    assert "No new upgrade operations detected." in result.stdout
    assert "models imported: True" in result.stdout


def test_upgrade_from_python_does_not_import_the_models(database_url):
    result = python_api(ROOT, database_url, 'command.upgrade(config, "head")' + MODELS_IMPORTED)
    assert result.returncode == 0, result.stderr
    assert "models imported: False" in result.stdout
    assert query(database_url, "SELECT to_regclass('organizations') IS NOT NULL") == [(True,)]


def test_check_from_python_honours_a_target_metadata_passed_in(at_head):
    body = OTHER_METADATA + textwrap.dedent("""
        config.attributes["target_metadata"] = other
        try:
            command.check(config)
        except Exception as error:
            print("check found:", error)
    """)
    result = python_api(ROOT, at_head, body)
    assert result.returncode == 0, result.stderr
    assert "check found: New upgrade operations detected" in result.stdout
    assert "test_only_widgets" in result.stdout


def test_revision_autogenerate_from_python_writes_the_pair_of_a_target_metadata(
    at_head, tree_copy, postgres_server
):
    scratch = make_url(postgres_server.admin_url).render_as_string(hide_password=False)
    body = OTHER_METADATA + textwrap.dedent("""
        config.attributes["target_metadata"] = other
        command.revision(config, autogenerate=True, message="add widgets")
    """)
    result = python_api(tree_copy, at_head, body, scratch=scratch)
    assert result.returncode == 0, result.stderr
    (up,) = (tree_copy / "sql" / "up").glob("*_add_widgets.sql")
    assert "CREATE TABLE test_only_widgets" in up.read_text()
    (down,) = (tree_copy / "sql" / "down").glob("*_add_widgets.sql")
    assert "DROP TABLE test_only_widgets" in down.read_text()
