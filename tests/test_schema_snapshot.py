"""sql/schema.sql is what the migrations produce, byte for byte, on every server version."""

import subprocess

import pytest

from migration_runner.tools.schema_snapshot import (
    head_revision,
    parse_objects,
    read_file,
    render_file,
    snapshot,
)
from support.processes import run_alembic, run_migrations_command
from support.project import ROOT, add_revision

# On both versions in make test: pg_dump's output is each version's own.
pytestmark = pytest.mark.every_version

ADD_COLUMN = "-- test-only (up).\nALTER TABLE organizations ADD COLUMN test_only_note text;\n"
DROP_COLUMN = "-- test-only (down).\nALTER TABLE organizations DROP COLUMN test_only_note;\n"


def schema_command(action: str, tree, scratch_url: str) -> subprocess.CompletedProcess:
    return run_migrations_command(
        "schema",
        action,
        "--tree",
        str(tree),
        env={"PATH": "/usr/bin:/bin", "SCHEMA_SCRATCH_URL": scratch_url},
    )


def test_committed_snapshot_is_byte_identical_to_a_migrated_database(database_url):
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0

    live = snapshot(database_url)

    # Run on 15 and on 18 (make test does both): the same committed bytes each time.
    assert (ROOT / "sql" / "schema.sql").read_text() == render_file(head_revision(ROOT), live)
    assert live == read_file(ROOT)
    for version_specific in ("Dumped from", "Dumped by", "\\restrict", "Owner:"):
        assert version_specific not in live
    assert not [line for line in live.splitlines() if line.startswith(("SET ", "SELECT pg_"))]
    kinds = {obj.kind for obj in parse_objects(live)}
    assert {"TABLE", "INDEX", "CONSTRAINT", "FK CONSTRAINT", "TRIGGER", "FUNCTION"} <= kinds
    names = {obj.name for obj in parse_objects(live)}
    assert "alembic_version" not in names and "migration_history" not in names


def test_check_fails_with_the_diff_until_the_snapshot_is_regenerated(tree_copy, postgres_server):
    added = add_revision(tree_copy, "add_organizations_test_only_note", ADD_COLUMN, DROP_COLUMN)

    stale = schema_command("check", tree_copy, postgres_server.admin_url)
    assert stale.returncode == 1
    assert "+    test_only_note text" in stale.stdout
    assert "make schema" in stale.stderr

    written = schema_command("write", tree_copy, postgres_server.admin_url)
    assert written.returncode == 0, written.stderr
    content = (tree_copy / "sql" / "schema.sql").read_text()
    assert f"revision {added}" in content and "    test_only_note text" in content
    assert schema_command("check", tree_copy, postgres_server.admin_url).returncode == 0
