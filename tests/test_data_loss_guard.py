"""Dropping or truncating tables with rows, or their columns, needs an explicit yes."""

import subprocess

import pytest

from migration_runner.steps.data_loss_guard import find_destruction
from migration_runner.steps.sql_files import SqlFile
from support.database import current_version, libpq_dsn, public_tables, query, seed_organizations
from support.processes import run_alembic
from support.project import HEAD, add_revision


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


@pytest.mark.parametrize(
    ("name", "spelled"),
    [("foobar fk", '"foobar fk"'), ("FooBar", '"FooBar"'), ("select", '"select"')],
)
def test_tables_whose_names_need_quotes_are_found_and_named(migrated, tree_copy, name, spelled):
    """A table with a space, capitals or a keyword for a name: the guard finds its rows and
    names it as SQL writes it. It looked up `to_regclass('foobar fk')` (invalid name syntax on
    PostgreSQL 15, no table on 18) and `to_regclass('FooBar')` (the table foobar)."""
    query(migrated, f"CREATE TABLE {spelled} (id integer PRIMARY KEY, note text)")
    query(migrated, f"INSERT INTO {spelled} SELECT i, 'note ' || i FROM generate_series(1, 4) AS i")
    add_revision(
        tree_copy,
        "drop_note",
        f"-- test-only: drops a column.\nALTER TABLE public.{spelled} DROP COLUMN note;\n",
        f"ALTER TABLE {spelled} ADD COLUMN note text;\n",
    )
    result = run_alembic("upgrade", "head", url=migrated, tree=tree_copy)
    assert result.returncode != 0
    assert f"drops column note of {spelled} (4 rows)" in result.stdout
    assert "Traceback" not in result.stdout
    assert query(migrated, f"SELECT count(note) FROM {spelled}") == [(4,)]
    allowed = run_alembic(
        "-x", "allow-data-loss=true", "upgrade", "head", url=migrated, tree=tree_copy
    )
    assert allowed.returncode == 0, allowed.stdout
    assert query(
        migrated, "SELECT count(*) FROM information_schema.columns WHERE table_name = :t", t=name
    ) == [(1,)]


def test_the_offline_guard_finds_a_table_whose_name_needs_quotes(migrated, tree_copy):
    """The script's own check, run by psql as a DBA would, refuses while the table has rows."""
    query(migrated, 'CREATE TABLE "foobar fk" (id integer PRIMARY KEY, note text)')
    query(migrated, "INSERT INTO \"foobar fk\" VALUES (1, 'one')")
    added = add_revision(
        tree_copy,
        "drop_note",
        '-- test-only: drops a column.\nALTER TABLE "foobar fk" DROP COLUMN note;\n',
        'ALTER TABLE "foobar fk" ADD COLUMN note text;\n',
    )
    script = run_alembic("upgrade", f"{HEAD}:{added}", "--sql", tree=tree_copy)
    assert script.returncode == 0, script.stdout
    guard = script.stdout[script.stdout.index("DO $guard$") :]
    guard = guard[: guard.index("$guard$;") + len("$guard$;")]
    assert "'\"foobar fk\"'" in guard
    psql = subprocess.run(
        ["psql", "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", libpq_dsn(migrated)],
        input=guard,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert psql.returncode != 0
    assert '"foobar fk" holds rows' in psql.stderr
    query(migrated, 'DELETE FROM "foobar fk"')
    psql = subprocess.run(
        ["psql", "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", libpq_dsn(migrated)],
        input=guard,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert psql.returncode == 0, psql.stderr


def test_quoted_names_are_parsed_as_postgresql_stores_them(tmp_path):
    sql = SqlFile(
        tmp_path / "x.sql",
        'DROP TABLE "foobar fk", "Mixed"."Case"; TRUNCATE "select";'
        ' ALTER TABLE FooBar DROP COLUMN "Note"; DROP SCHEMA "My Schema";',
    )
    found = [(d.table, d.what, d.parts) for d in find_destruction(sql)]
    assert found == [
        ('"foobar fk"', "drops", ("foobar fk",)),
        ('"Mixed"."Case"', "drops", ("Mixed", "Case")),
        ("select", "truncates", ("select",)),
        ("foobar", "drops column Note of", ("foobar",)),  # restore reads the name as stored
        ('"My Schema".*', "drops schema of", ("My Schema",)),
    ]
