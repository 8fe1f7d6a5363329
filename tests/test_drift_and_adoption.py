"""Drift: a live database against its revision's snapshot. Adoption: stamp only an exact v001."""

import subprocess

import pytest

from migration_runner.pg_programs import find_client
from migration_runner.tools.schema_snapshot import read_file, snapshot
from support.database import current_version, public_tables, query
from support.processes import clean_environ, run_alembic, run_migrations_command
from support.project import HEAD, ROOT, add_revision

# On both versions in make test: drift reads each version's catalog and pg_dump.
pytestmark = pytest.mark.every_version

ADD_COLUMN = "-- (up): test.\nALTER TABLE organizations ADD COLUMN test_only_country text;\n"
DROP_COLUMN = "-- (down): test.\nALTER TABLE organizations DROP COLUMN test_only_country;\n"
HAND_CHANGES = """
ALTER TABLE organizations ADD COLUMN hand_made_notes text;
DROP INDEX users_organization_id_idx;
CREATE TABLE hand_made (id integer PRIMARY KEY);
"""


def tool(module: str, *args: str, tree=ROOT, **variables: str) -> subprocess.CompletedProcess:
    """`migrations <command>` with only the given URL variables set."""
    return run_migrations_command(
        module, "--tree", str(tree), *args, env=clean_environ(**variables), timeout=180
    )


@pytest.fixture
def predates_migrations(database_url):
    """A database made before migrations existed: v001's SQL run by hand, no alembic_version."""
    sql = ROOT / "sql" / "up" / "001_initial_schema.sql"
    result = subprocess.run(
        [
            str(find_client("psql")),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
            str(sql),
            database_url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "alembic_version" not in public_tables(database_url)
    return database_url


def test_no_drift_after_migrating(database_url):
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    result = tool("drift", DATABASE_URL=database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no drift" in result.stdout


def test_every_hand_change_is_listed_with_vercel_variables(database_url):
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    query(database_url, HAND_CHANGES)

    result = tool("drift", POSTGRES_URL_NON_POOLING=database_url)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "different:  TABLE organizations" in result.stdout
    assert "missing:    INDEX users_organization_id_idx" in result.stdout
    assert "unexpected: TABLE hand_made" in result.stdout
    assert "+    hand_made_notes text" in result.stdout
    assert "DRIFT" in result.stderr


def test_drift_at_an_older_revision_uses_that_revision_schema(
    database_url, tree_copy, postgres_server
):
    add_revision(tree_copy, "add_test_only_country", ADD_COLUMN, DROP_COLUMN)
    assert run_alembic("upgrade", HEAD, url=database_url, tree=tree_copy).returncode == 0
    scratch = ("--scratch-url", postgres_server.admin_url)

    assert tool("drift", *scratch, tree=tree_copy, DATABASE_URL=database_url).returncode == 0
    query(database_url, "ALTER TABLE organizations ADD COLUMN test_only_country text")
    result = tool("drift", *scratch, tree=tree_copy, DATABASE_URL=database_url)
    assert result.returncode == 1
    assert "different:  TABLE organizations" in result.stdout


def test_drift_of_an_unmanaged_database_cannot_be_checked(predates_migrations):
    result = tool("drift", DATABASE_URL=predates_migrations)
    assert result.returncode == 2
    assert "make adopt" in result.stderr


def test_adopt_stamps_a_database_that_is_exactly_v001(predates_migrations):
    query(predates_migrations, "INSERT INTO organizations (name, slug) VALUES ('Acme', 'acme')")

    result = tool("adopt", DATABASE_URL=predates_migrations)

    assert result.returncode == 0, result.stdout + result.stderr
    assert current_version(predates_migrations) == "001"
    assert query(
        predates_migrations, "SELECT revision, direction, stamped FROM migration_history"
    ) == [("001", "up", True)]
    assert run_alembic("upgrade", "head", url=predates_migrations).returncode == 0
    assert snapshot(predates_migrations) == read_file(ROOT)
    assert query(predates_migrations, "SELECT slug FROM organizations") == [("acme",)]
    assert tool("adopt", DATABASE_URL=predates_migrations).returncode == 2  # only once


def test_adopt_refuses_any_difference_and_writes_nothing(predates_migrations, tree_copy):
    # Head is past 001 in this tree, so v001's schema is built from the migrations
    # on a throwaway server (no --scratch-url): the default path of the command.
    add_revision(tree_copy, "add_test_only_country", ADD_COLUMN, DROP_COLUMN)
    query(predates_migrations, HAND_CHANGES)

    result = tool("adopt", tree=tree_copy, DATABASE_URL=predates_migrations)

    assert result.returncode == 1, result.stdout + result.stderr
    for difference in (
        "different:  TABLE organizations",
        "missing:    INDEX users_organization_id_idx",
        "unexpected: TABLE hand_made",
    ):
        assert difference in result.stdout
    assert "REFUSED" in result.stderr
    assert public_tables(predates_migrations).isdisjoint({"alembic_version", "migration_history"})
