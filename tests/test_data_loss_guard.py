"""Dropping or truncating tables with rows, or their columns, needs an explicit yes."""

import pytest

from conftest import (
    add_revision,
    current_version,
    public_tables,
    query,
    run_alembic,
    seed_organizations,
)
from migration_runner.steps.data_loss_guard import find_destruction
from migration_runner.steps.sql_files import SqlFile


@pytest.fixture
def migrated(database_url):
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    return database_url


@pytest.fixture
def at_001(database_url):
    """A database at 001, whose down file drops the tables it created: downgrade -1 from
    there loses data whatever revisions the tree has on top of it."""
    assert run_alembic("upgrade", "001", url=database_url).returncode == 0
    return database_url


def test_downgrade_dropping_tables_with_rows_is_refused_with_counts(at_001):
    seed_organizations(at_001, 3)
    result = run_alembic("downgrade", "-1", url=at_001)
    assert result.returncode != 0
    assert "drops organizations (3 rows)" in result.stdout
    assert "-x allow-data-loss=true" in result.stdout
    assert "Traceback" not in result.stdout
    assert current_version(at_001) == "001"
    assert "organizations" in public_tables(at_001)
    assert query(at_001, "SELECT count(*) FROM organizations") == [(3,)]


def test_allow_data_loss_lets_the_downgrade_through(at_001):
    seed_organizations(at_001, 3)
    result = run_alembic("-x", "allow-data-loss=true", "downgrade", "-1", url=at_001)
    assert result.returncode == 0, result.stdout
    assert "organizations" not in public_tables(at_001)
    assert current_version(at_001) is None


def test_downgrade_of_empty_tables_needs_no_confirmation(migrated):
    """From head to base: every down file, 001's table drops included, on empty tables."""
    assert run_alembic("downgrade", "base", url=migrated).returncode == 0
    assert current_version(migrated) is None


def test_upgrade_dropping_a_column_with_rows_is_refused(migrated, tree_copy):
    seed_organizations(migrated, 2)
    add_revision(
        tree_copy,
        "drop_plan",
        "-- test-only: drops a column.\nALTER TABLE organizations DROP COLUMN plan;\n",
        "ALTER TABLE organizations ADD COLUMN plan text NOT NULL DEFAULT 'free';\n",
    )
    result = run_alembic("upgrade", "head", url=migrated, tree=tree_copy)
    assert result.returncode != 0
    assert "drops column plan of organizations (2 rows)" in result.stdout
    assert query(
        migrated, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'plan'"
    ) == [(1,)]
    assert (
        run_alembic(
            "-x", "allow-data-loss=true", "upgrade", "head", url=migrated, tree=tree_copy
        ).returncode
        == 0
    )
    assert query(
        migrated, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'plan'"
    ) == [(0,)]


def test_environment_variable_also_confirms_data_loss(at_001):
    seed_organizations(at_001, 1)
    result = run_alembic("downgrade", "-1", url=at_001, env={"MIGRATION_ALLOW_DATA_LOSS": "true"})
    assert result.returncode == 0, result.stdout
    assert current_version(at_001) is None


def test_destructive_statements_are_found_by_parsing_not_by_words(tmp_path):
    sql = SqlFile(
        tmp_path / "x.sql",
        """
        -- DROP TABLE in a comment is not a statement
        COMMENT ON TABLE t IS 'we never DROP TABLE t; honest';
        CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ SELECT 1 $$;
        DROP TABLE IF EXISTS public.a, b CASCADE;
        TRUNCATE c;
        ALTER TABLE d DROP COLUMN e, ADD COLUMN f int;
        DROP INDEX g_idx;
    """,
    )
    found = [(d.table, d.what) for d in find_destruction(sql)]
    assert found == [
        ("public.a", "drops"),
        ("b", "drops"),
        ("c", "truncates"),
        ("d", "drops column e of"),
    ]
