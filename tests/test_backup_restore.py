"""Before an allowed data loss the runner writes a pg_dump backup; restore brings the rows back.

The data-loss guard lets rows go only when told to; this proves that once told,
nothing is lost for good: every dropped value is in the backup, restore puts it
back (and the next insert into a restored table works), the server's own
pg_restore reads the backup with the commands its manifest gives, only the
backup's owner can read it, restore refuses a database that moved on since the
backup unless told to overwrite, and a backup that cannot be written stops the
run before any change.
"""

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator

import pytest

from migration_runner.pg_programs import client_version, find_client, major_of
from migration_runner.servers import local_postgres
from migration_runner.steps import backup
from support.database import (
    TEST_HBA,
    Server,
    current_version,
    fresh_database,
    libpq_dsn,
    query,
    seed_organizations,
)
from support.processes import clean_environ, run_alembic, run_migrations_command
from support.project import HEAD, ROOT, add_revision

# On both versions in make test: pg_dump and pg_restore of each server's major.
pytestmark = pytest.mark.every_version

COLUMN_PLAN = "SELECT count(*) FROM information_schema.columns WHERE column_name = 'plan'"
# A table with an identity, a serial and a generated column (which pg_dump leaves out).
LEDGER = (
    "CREATE TABLE test_ledger (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " line serial NOT NULL, entry text NOT NULL,"
    " entry_length integer GENERATED ALWAYS AS (length(entry)) STORED);\n"
)
LEDGER_ROWS = "SELECT id, line, entry, entry_length FROM test_ledger ORDER BY id"
# The restore's peak memory above what it had once imported, in KiB (Linux's ru_maxrss unit).
PEAK_GROWTH = (
    "import resource, sys\n"
    "from migration_runner.cli import main\n"
    "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "code = main(['restore', *sys.argv[1:]])\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    "sys.exit(code)\n"
)


@pytest.fixture
def with_plans(database_url, tree_copy):
    """At head with six organizations on three plans, and a test-only revision on top pending
    (it drops organizations.plan); its id."""
    return plans_at(database_url, tree_copy)


@pytest.fixture
def older_than_newest_pg_dump(postgres_server) -> Iterator[str]:
    """A database on a server older than the newest pg_dump here: the suite's own server, or
    on the PostgreSQL 18 leg (the newest here), a throwaway Debian PostgreSQL 15."""
    newest = major_of(client_version(find_client("pg_dump")))
    if int(postgres_server.version) < newest:
        with fresh_database(postgres_server) as url:
            yield url
        return
    server = local_postgres.start_throwaway("15", hba=TEST_HBA)
    try:
        with fresh_database(Server(server.url(), "15")) as url:
            yield url
    finally:
        local_postgres.remove_throwaway(server)


def plans_at(database_url: str, tree_copy) -> tuple:
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    query(
        database_url,
        "INSERT INTO organizations (name, slug, plan) SELECT 'Org', 'org-' || i,"
        " (ARRAY['free', 'team', 'enterprise'])[1 + i % 3] FROM generate_series(1, 6) AS i",
    )
    added = add_revision(
        tree_copy,
        "drop_plan",
        "-- test-only: drops a column.\n-- Destructive: yes\nALTER TABLE organizations DROP COLUMN plan;\n",
        "ALTER TABLE organizations ADD COLUMN plan text NOT NULL DEFAULT 'free';\n",
    )
    return database_url, tree_copy, added


@pytest.fixture
def ledger(database_url, tree_copy):
    """Two test-only revisions on top of head, the first creating test_ledger, the second
    dropping it; the database at the first. (url, tree, created, dropped)."""
    created = add_revision(
        tree_copy,
        "create_ledger",
        "-- test-only: creates a table.\n" + LEDGER,
        "DROP TABLE test_ledger;\n",
    )
    dropped = add_revision(
        tree_copy,
        "drop_ledger",
        "-- test-only: drops the table.\n-- Destructive: yes\nDROP TABLE test_ledger;\n",
        LEDGER,
    )
    assert run_alembic("upgrade", created, url=database_url, tree=tree_copy).returncode == 0
    return database_url, tree_copy, created, dropped


def restore(url: str, backup_file, *options: str) -> subprocess.CompletedProcess:
    return run_migrations_command(
        "restore", *options, str(backup_file), env=clean_environ(DATABASE_URL=url)
    )


def only_backup(folder):
    dumps = sorted(folder.glob("*.dump"))
    assert len(dumps) == 1, dumps
    return dumps[0], json.loads(dumps[0].with_suffix(".json").read_text())


def destroy_with_backup(url, tree, command: str, revision: str, folder):
    """`alembic COMMAND REVISION` allowed to destroy rows; the backup it wrote, and its manifest."""
    result = run_alembic(
        "-x",
        "allow-data-loss=true",
        command,
        revision,
        url=url,
        tree=tree,
        env={"MIGRATION_BACKUP_DIR": str(folder)},
    )
    assert result.returncode == 0, result.stdout
    return only_backup(folder)


def server_major(url: str) -> int:
    return int(query(url, "SHOW server_version_num")[0][0]) // 10000


def paste(command: str, pg_restore, url: str) -> subprocess.CompletedProcess:
    """A manifest's command run as a DBA pastes it into a shell where `pg_restore` is this one."""
    environ = clean_environ(
        DATABASE_URL=libpq_dsn(url), PATH=f"{pg_restore.parent}{os.pathsep}{os.environ['PATH']}"
    )
    return subprocess.run(
        ["bash", "-c", command],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_dropped_column_is_backed_up_and_restored_value_for_value(with_plans, tmp_path):
    url, tree, added = with_plans
    before = query(url, "SELECT id, plan FROM organizations ORDER BY id")
    result = run_alembic(
        "-x",
        "allow-data-loss=true",
        "upgrade",
        "head",
        url=url,
        tree=tree,
        env={"MIGRATION_BACKUP_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout
    dump, manifest = only_backup(tmp_path)
    assert dump.name.startswith(f"{added}-") and f"backup before {added}: {dump}" in result.stdout
    assert [(item["table"], item["destroys"], item["rows"]) for item in manifest["destroys"]] == [
        ("public.organizations", "drops column plan of", 6)
    ]
    assert manifest["database_at"] == HEAD
    assert query(url, COLUMN_PLAN) == [(0,)]

    assert run_alembic("downgrade", HEAD, url=url, tree=tree).returncode == 0
    assert query(url, "SELECT DISTINCT plan FROM organizations") == [("free",)]
    restored = restore(url, dump)
    assert restored.returncode == 0, restored.stderr
    assert "restored column plan of 6 rows into public.organizations" in restored.stdout
    assert query(url, "SELECT id, plan FROM organizations ORDER BY id") == before


def test_dropped_tables_are_backed_up_and_restored_row_for_row(with_plans, tmp_path):
    """Downgrading 001 drops every table: the ones holding rows are in the backup, and the
    identity of audit_logs goes on after the restored ids."""
    url, _tree, _added = with_plans
    # Down to 001 first (the revisions above it may destroy rows too: their backups go
    # elsewhere), so that the backup below is the one of 001's downgrade alone.
    to_001 = run_alembic(
        "-x",
        "allow-data-loss=true",
        "downgrade",
        "001",
        url=url,
        env={"MIGRATION_BACKUP_DIR": str(tmp_path / "above-001")},
    )
    assert to_001.returncode == 0, to_001.stdout
    query(
        url,
        "INSERT INTO users (organization_id, email, full_name, role) SELECT id, slug || '@example.com', 'A', 'member' FROM organizations",
    )
    query(
        url,
        "INSERT INTO audit_logs (organization_id, action, entity_type)"
        " SELECT id, 'organization.created', 'organization' FROM organizations",
    )
    before = query(url, "SELECT id, slug, plan, created_at FROM organizations ORDER BY id")
    dump, manifest = destroy_with_backup(url, ROOT, "downgrade", "base", tmp_path)
    assert current_version(url) is None
    assert {item["table"]: item["rows"] for item in manifest["destroys"]} == {
        "public.organizations": 6,
        "public.users": 6,
        "public.audit_logs": 6,
    }
    assert manifest["database_at"] == "001"
    assert run_alembic("upgrade", "001", url=url).returncode == 0
    restored = restore(url, dump)
    assert restored.returncode == 0, restored.stderr
    assert query(url, "SELECT id, slug, plan, created_at FROM organizations ORDER BY id") == before
    assert query(url, "SELECT count(*) FROM users") == [(6,)]
    assert query(url, "SELECT min(id), max(id) FROM audit_logs") == [(1, 6)]
    query(url, "INSERT INTO audit_logs (action, entity_type) VALUES ('user.created', 'user')")
    assert query(url, "SELECT max(id), count(*) FROM audit_logs") == [(7, 7)]


def test_restored_identity_and_serial_columns_continue_after_the_restored_rows(ledger, tmp_path):
    url, tree, created, dropped = ledger
    query(
        url, "INSERT INTO test_ledger (entry) SELECT 'entry ' || i FROM generate_series(1, 3) AS i"
    )
    before = query(url, LEDGER_ROWS)
    dump, manifest = destroy_with_backup(url, tree, "upgrade", dropped, tmp_path)
    assert manifest["database_at"] == created
    assert run_alembic("downgrade", created, url=url, tree=tree).returncode == 0

    restored = restore(url, dump)
    assert restored.returncode == 0, restored.stderr
    assert "restored 3 rows into public.test_ledger" in restored.stdout
    assert (
        "sequence test_ledger_id_seq of public.test_ledger.id continues after 3" in restored.stdout
    )
    assert query(url, LEDGER_ROWS) == before
    query(url, "INSERT INTO test_ledger (entry) VALUES ('after the restore')")
    assert query(url, "SELECT id, line FROM test_ledger WHERE entry = 'after the restore'") == [
        (4, 4)
    ]


def test_the_servers_own_pg_restore_reads_the_backup_with_the_manifests_commands(ledger, tmp_path):
    """A DBA restores without the runner: the pg_restore of the server's major lists the backup
    and loads the table (and its sequences) with the commands the manifest gives."""
    url, tree, created, dropped = ledger
    query(
        url, "INSERT INTO test_ledger (entry) SELECT 'entry ' || i FROM generate_series(1, 3) AS i"
    )
    before = query(url, LEDGER_ROWS)
    _dump, manifest = destroy_with_backup(url, tree, "upgrade", dropped, tmp_path)
    major = server_major(url)
    pg_restore = find_client("pg_restore", major, same_major=True)
    assert major_of(client_version(pg_restore)) == major == manifest["pg_dump_major"]
    assert manifest["read_by"] == f"pg_restore {major} or newer" and "note" not in manifest

    listed = paste(manifest["restore_commands"]["list"], pg_restore, url)
    assert listed.returncode == 0, listed.stderr
    assert "TABLE DATA public test_ledger" in listed.stdout
    assert run_alembic("downgrade", created, url=url, tree=tree).returncode == 0
    [command] = manifest["restore_commands"]["data_only"]
    loaded = paste(command, pg_restore, url)
    assert loaded.returncode == 0, loaded.stderr
    assert query(url, LEDGER_ROWS) == before
    query(url, "INSERT INTO test_ledger (entry) VALUES ('after the restore')")
    assert query(url, "SELECT id, line FROM test_ledger WHERE entry = 'after the restore'") == [
        (4, 4)
    ]


def test_a_backup_by_a_newer_pg_dump_says_which_pg_restore_reads_it(
    older_than_newest_pg_dump, tree_copy, tmp_path, monkeypatch
):
    """Without a pg_dump of the server's major, the newest writes the backup, and the log and
    the manifest say the server's own pg_restore cannot read it. (alembic runs forked from this
    process, so it sees the lookup patched to find no pg_dump of the server's major.)"""
    url, tree, _added = plans_at(older_than_newest_pg_dump, tree_copy)
    major = server_major(url)
    newest = major_of(client_version(find_client("pg_dump", major)))
    assert newest > major
    monkeypatch.setattr(
        backup, "find_client", lambda program, server_major, same_major=False: find_client(program)
    )
    result = run_alembic(
        "-x",
        "allow-data-loss=true",
        "upgrade",
        "head",
        url=url,
        tree=tree,
        env={"MIGRATION_BACKUP_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout
    dump, manifest = only_backup(tmp_path)
    assert (
        manifest["pg_dump_major"] == newest
        and manifest["read_by"] == f"pg_restore {newest} or newer"
    )
    assert f"the server's own pg_restore {major} cannot read it" in manifest["note"]
    assert manifest["note"] in result.stdout
    listed = subprocess.run(
        [str(find_client("pg_restore", newest, same_major=True)), "--list", str(dump)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr


def test_restore_refuses_a_backup_from_another_revision_until_told_to_overwrite(
    database_url, tree_copy, tmp_path
):
    """The database moved on since the backup (a later revision rewrote the column): restore
    refuses in one line that says what --overwrite would overwrite; --overwrite does it."""
    url, tree = database_url, tree_copy
    tiered = add_revision(
        tree,
        "add_tier",
        "-- test-only: adds a column.\nALTER TABLE organizations ADD COLUMN tier text;\n",
        "-- Destructive: yes\nALTER TABLE organizations DROP COLUMN tier;\n",
    )
    gold = add_revision(
        tree,
        "gold_tier",
        "-- test-only: rewrites it.\nUPDATE organizations SET tier = 'gold';\n",
        "UPDATE organizations SET tier = NULL;\n",
    )
    assert run_alembic("upgrade", tiered, url=url, tree=tree).returncode == 0
    seed_organizations(url, 6)
    query(url, "UPDATE organizations SET tier = 'tier-' || slug")
    backed_up = query(url, "SELECT id, tier FROM organizations ORDER BY id")
    dump, manifest = destroy_with_backup(url, tree, "downgrade", HEAD, tmp_path)
    assert manifest["database_at"] == tiered
    assert run_alembic("upgrade", gold, url=url, tree=tree).returncode == 0

    refused = restore(url, dump)
    assert refused.returncode == 1
    assert refused.stderr.startswith("FAILED:") and len(refused.stderr.splitlines()) == 1
    assert f"taken at revision {tiered}, the database is at revision {gold}" in refused.stderr
    overwrites = "overwrites column tier of the 6 rows of public.organizations"
    assert "--overwrite" in refused.stderr and overwrites in refused.stderr
    assert query(url, "SELECT DISTINCT tier FROM organizations") == [("gold",)]

    overwritten = restore(url, dump, "--overwrite")
    assert overwritten.returncode == 0, overwritten.stderr
    assert overwrites in overwritten.stderr and "6 of the backup's rows" in overwritten.stderr
    assert query(url, "SELECT id, tier FROM organizations ORDER BY id") == backed_up


def test_restore_refuses_a_table_whose_columns_changed_since_the_backup(ledger, tmp_path):
    url, tree, created, dropped = ledger
    query(url, "INSERT INTO test_ledger (entry) VALUES ('one'), ('two')")
    dump, _ = destroy_with_backup(url, tree, "upgrade", dropped, tmp_path)
    assert run_alembic("downgrade", created, url=url, tree=tree).returncode == 0
    query(url, "ALTER TABLE test_ledger ALTER COLUMN line TYPE bigint")

    refused = restore(url, dump)
    assert refused.returncode == 1
    assert refused.stderr.startswith("FAILED:") and len(refused.stderr.splitlines()) == 1
    assert "public.test_ledger.line is bigint here, integer in the backup" in (refused.stderr)
    assert query(url, "SELECT count(*) FROM test_ledger") == [(0,)]


def test_backups_are_readable_by_their_owner_only_whatever_the_umask(with_plans, tmp_path):
    """They hold user data. (alembic runs forked from this process, so it has this umask.)"""
    url, tree, _added = with_plans
    folder = tmp_path / "backups"
    previous = os.umask(0o022)
    try:
        dump, _ = destroy_with_backup(url, tree, "upgrade", "head", folder)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()}
    assert modes == {dump.name: 0o600, dump.with_suffix(".json").name: 0o600}


def test_a_table_destroyed_twice_by_one_revision_is_named_and_dumped_once(
    database_url, tree_copy, tmp_path
):
    url, tree = database_url, tree_copy
    assert run_alembic("upgrade", "head", url=url).returncode == 0
    seed_organizations(url, 3)
    twice = add_revision(
        tree,
        "drop_two_columns",
        "-- test-only: drops two columns of one table.\n-- Destructive: yes\n"
        "ALTER TABLE organizations DROP COLUMN created_at;\n"
        "ALTER TABLE organizations DROP COLUMN updated_at;\n",
        "ALTER TABLE organizations ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();\n"
        "ALTER TABLE organizations ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();\n",
    )
    dump, manifest = destroy_with_backup(url, tree, "upgrade", twice, tmp_path)
    assert dump.name.startswith(f"{twice}-") and dump.name.endswith("Z-organizations.dump")
    assert [item["destroys"] for item in manifest["destroys"]] == [
        "drops column created_at of",
        "drops column updated_at of",
    ]
    assert len(manifest["restore_commands"]["data_only"]) == 1


def test_tables_of_one_name_in_two_schemas_are_named_with_their_schemas(
    database_url, tree_copy, tmp_path
):
    url, tree = database_url, tree_copy
    assert run_alembic("upgrade", "head", url=url).returncode == 0
    seed_organizations(url, 2)
    query(url, "CREATE SCHEMA archive")
    query(url, "CREATE TABLE archive.organizations (id integer PRIMARY KEY, slug text)")
    query(url, "INSERT INTO archive.organizations VALUES (1, 'old')")
    both = add_revision(
        tree,
        "drop_slugs",
        "-- test-only: drops a column of two tables of one name.\n-- Destructive: yes\n"
        "ALTER TABLE organizations DROP COLUMN created_at;\n"
        "ALTER TABLE archive.organizations DROP COLUMN slug;\n"
        "ALTER TABLE public.organizations DROP COLUMN updated_at;\n",
        "ALTER TABLE archive.organizations ADD COLUMN slug text;\n"
        "ALTER TABLE organizations ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();\n"
        "ALTER TABLE organizations ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();\n",
    )
    dump, manifest = destroy_with_backup(url, tree, "upgrade", both, tmp_path)
    assert dump.name.endswith("Z-public.organizations+archive.organizations.dump")
    assert len(manifest["restore_commands"]["data_only"]) == 2


def test_a_table_whose_name_needs_quotes_is_backed_up_and_restored(
    database_url, tree_copy, tmp_path
):
    """ "foobar fk": found by the guard, dumped by pg_dump, its column restored value for value;
    one table spelled two ways in one revision is named once."""
    url, tree = database_url, tree_copy
    assert run_alembic("upgrade", "head", url=url).returncode == 0
    query(url, 'CREATE TABLE "foobar fk" (id integer PRIMARY KEY, note text, "Score" integer)')
    query(
        url, "INSERT INTO \"foobar fk\" SELECT i, 'note ' || i, i FROM generate_series(1, 5) AS i"
    )
    before = query(url, 'SELECT id, note, "Score" FROM "foobar fk" ORDER BY id')
    dropped = add_revision(
        tree,
        "drop_foobar_columns",
        "-- test-only: drops two columns of a table whose name needs quotes.\n"
        "-- Destructive: yes\n"
        'ALTER TABLE "foobar fk" DROP COLUMN note;\n'
        'ALTER TABLE public."foobar fk" DROP COLUMN "Score";\n',
        'ALTER TABLE "foobar fk" ADD COLUMN note text;\n'
        'ALTER TABLE "foobar fk" ADD COLUMN "Score" integer;\n',
    )
    refused = run_alembic("upgrade", "head", url=url, tree=tree)
    assert refused.returncode != 0 and 'drops column note of "foobar fk" (5 rows)' in refused.stdout
    dump, manifest = destroy_with_backup(url, tree, "upgrade", dropped, tmp_path)
    assert dump.name.endswith("Z-foobar_fk.dump")
    assert [(item["table"], item["destroys"]) for item in manifest["destroys"]] == [
        ('public."foobar fk"', "drops column note of"),
        ('public."foobar fk"', "drops column Score of"),
    ]
    assert run_alembic("downgrade", HEAD, url=url, tree=tree).returncode == 0
    restored = restore(url, dump)
    assert restored.returncode == 0, restored.stderr
    assert query(url, 'SELECT id, note, "Score" FROM "foobar fk" ORDER BY id') == before


def test_restore_streams_the_rows_instead_of_holding_the_table_in_memory(ledger, tmp_path):
    """40 MB of rows restored while the restore's memory grows by less than half of that."""
    url, tree, created, dropped = ledger
    query(
        url,
        "INSERT INTO test_ledger (entry)"
        " SELECT repeat(md5(i::text), 64) FROM generate_series(1, 20000) AS i",
    )
    dump, _ = destroy_with_backup(url, tree, "upgrade", dropped, tmp_path)
    assert run_alembic("downgrade", created, url=url, tree=tree).returncode == 0
    measured = subprocess.run(
        [sys.executable, "-c", PEAK_GROWTH, str(dump)],
        env=clean_environ(DATABASE_URL=url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert measured.returncode == 0, measured.stderr
    assert query(url, "SELECT count(*), sum(entry_length) FROM test_ledger") == [(20000, 40960000)]
    assert int(measured.stdout.split()[-1]) < 20_000, measured.stdout


def test_backup_that_cannot_be_written_stops_the_run_before_any_change(with_plans):
    url, tree, _added = with_plans
    result = run_alembic(
        "-x",
        "allow-data-loss=true",
        "upgrade",
        "head",
        url=url,
        tree=tree,
        env={"MIGRATION_BACKUP_DIR": "/dev/null/backups"},
    )
    assert result.returncode != 0
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1 and "nothing was changed" in failed[0]
    assert "MIGRATION_BACKUP_DIR" in failed[0] and "Traceback" not in result.stdout
    assert current_version(url) == HEAD
    assert query(url, COLUMN_PLAN) == [(1,)]
    assert query(url, "SELECT count(*) FROM organizations") == [(6,)]


def test_offline_script_says_it_carries_no_backup():
    result = run_alembic("-x", "allow-data-loss=true", "downgrade", "001:base", "--sql")
    assert result.returncode == 0, result.stdout
    assert "-- No backup: this script destroys data" in result.stdout


def test_restore_of_a_file_that_is_no_runner_backup_fails_in_one_line(database_url, tmp_path):
    stray = tmp_path / "other.dump"
    stray.write_bytes(b"PGDMP")
    result = restore(database_url, stray)
    assert result.returncode == 1
    assert result.stderr.startswith("FAILED:") and len(result.stderr.splitlines()) == 1
    assert os.path.exists(stray)


def test_a_second_backup_with_the_same_name_gets_a_file_of_its_own(tmp_path):
    """Two runs (or a rerun) backing up one revision's tables in the same second."""
    first = backup._new_backup_file(tmp_path, "003-20261130T120000Z-organizations")
    second = backup._new_backup_file(tmp_path, "003-20261130T120000Z-organizations")
    assert (first.name, second.name) == (
        "003-20261130T120000Z-organizations.dump",
        "003-20261130T120000Z-organizations-2.dump",
    )
    assert stat.S_IMODE(second.stat().st_mode) == 0o600
