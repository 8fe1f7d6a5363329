"""`migrations`, the one command-line entry point (migration_runner/cli.py).

Every subcommand is reachable from `migrations --help`; the Makefile calls the entry
point, never a module; what goes wrong is one `FAILED:` line on stderr with the exit
status of the table in cli.py's docstring and docs/commands-and-variables.md.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

from migration_runner import cli
from migration_runner.servers.local_postgres import free_port
from support.database import query
from support.processes import clean_environ, run_alembic
from support.project import HEAD, ROOT

MIGRATIONS = Path(sys.executable).with_name("migrations")  # pyproject.toml's [project.scripts]
SUBCOMMANDS = [
    "rehearse",
    "drift",
    "adopt",
    "restore",
    "status",
    "schema",
    "compat",
    "linear-history",
    "sql-headers",
    "phase-order",
    "db",
    "vercel-local",
]
PASSWORD = "cli-secret-pw"


def migrations(*args: str, cwd=ROOT, **variables: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(MIGRATIONS), *args],
        cwd=cwd,
        env=clean_environ(**variables),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def one_failed_line(result: subprocess.CompletedProcess) -> str:
    """The single line on stderr, which says FAILED; no traceback anywhere."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("FAILED: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def test_help_lists_every_subcommand_and_each_one_answers():
    listed = migrations("--help")
    assert listed.returncode == cli.OK, listed.stderr
    for name in SUBCOMMANDS:
        assert re.search(rf"^\s+{re.escape(name)}\b", listed.stdout, re.MULTILINE), name
        own = migrations(name, "--help")
        assert own.returncode == cli.OK and own.stdout.startswith(f"usage: migrations {name}")
    assert "exit status: 0 done; 1 found a problem or refused; 2 could not run" in " ".join(
        listed.stdout.split()
    )


def test_the_makefile_calls_the_entry_point_with_subcommands_that_exist():
    makefile = (ROOT / "Makefile").read_text()
    called = set(re.findall(r"\$\(BIN\)/migrations ([a-z-]+)", makefile))
    assert called == set(SUBCOMMANDS), called
    assert "python -m migration_runner" not in makefile
    assert "--group dev" in makefile and '"pip>=25.1"' in makefile


def test_a_usage_error_is_one_failed_line_and_exit_2():
    result = migrations("drift", "--no-such-option")
    assert result.returncode == cli.CANNOT_RUN == 2
    line = one_failed_line(result)
    assert "unrecognized arguments: --no-such-option" in line
    assert line.endswith("(see `migrations --help`)")
    unknown = migrations("no-such-command")
    assert unknown.returncode == 2 and "invalid choice: 'no-such-command'" in one_failed_line(
        unknown
    )


def test_drift_of_an_unreachable_database_is_one_failed_line_and_exit_2():
    url = f"postgresql://someone:{PASSWORD}@127.0.0.1:{free_port()}/nowhere"
    result = migrations("drift", DATABASE_URL=url)
    assert result.returncode == 2
    line = one_failed_line(result)
    assert line.startswith("FAILED: Cannot read postgresql://someone:***@127.0.0.1:"), line
    assert PASSWORD not in result.stdout + result.stderr


def test_restore_of_a_missing_file_is_a_usage_error(tmp_path):
    missing = tmp_path / "002-20261130T000000Z-users.dump"
    result = migrations("restore", str(missing))
    assert result.returncode == 2
    assert one_failed_line(result) == (
        f"FAILED: argument backup: {missing}: no such file (see `migrations restore --help`)"
    )


def test_restore_refusing_a_file_it_did_not_write_exits_1(database_url, tmp_path):
    """A refusal is restore's finding (1), not a failure to run (2)."""
    stray = tmp_path / "other.dump"
    stray.write_bytes(b"PGDMP")
    result = migrations("restore", str(stray), DATABASE_URL=database_url)
    assert result.returncode == cli.FOUND == 1
    assert "is not a backup written by the runner" in one_failed_line(result)
    assert stray.read_bytes() == b"PGDMP"


def test_status_reports_a_real_database_and_fails_in_one_line_without_one(database_url):
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    shown = migrations("status", DATABASE_URL=database_url)
    assert shown.returncode == 0, shown.stderr
    assert f"revision: {HEAD}" in shown.stdout
    assert query(database_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    url = f"postgresql://someone:{PASSWORD}@127.0.0.1:{free_port()}/nowhere"
    failed = migrations("status", DATABASE_URL=url)
    assert failed.returncode == 2 and "Connection refused" in one_failed_line(failed)
    assert PASSWORD not in failed.stdout + failed.stderr


def test_drift_found_is_one_failed_line_and_exit_1(database_url, postgres_server):
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    query(database_url, "CREATE TABLE test_only_hand_made (id integer PRIMARY KEY)")
    result = migrations(
        "drift", DATABASE_URL=database_url, SCHEMA_SCRATCH_URL=postgres_server.admin_url
    )
    assert result.returncode == 1
    assert (
        one_failed_line(result).startswith("FAILED: DRIFT: postgresql://")
        and "differs from revision" in result.stderr
    )
    assert "unexpected: TABLE test_only_hand_made" in result.stdout


def test_make_targets_run_the_entry_point(project_copy, postgres_server):
    environ = clean_environ(SCHEMA_SCRATCH_URL=postgres_server.admin_url)

    def make(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["make", "-s", *args],
            cwd=project_copy,
            env=environ,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    checked = make("check-schema")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"sql/schema.sql matches the migrations (revision {HEAD})" in checked.stdout
    # No local server in a fresh clone: the entry point's FAILED line, its exit 2 in make's.
    no_server = make("db-url")
    assert no_server.stderr.splitlines()[0] == (
        "FAILED: No local server yet: run `make migrate` first."
    )
    assert re.search(r"\[Makefile:\d+: db-url\] Error 2$", no_server.stderr.strip())
    # A finding (1) is make's `Error 1` line; make itself exits 2 whatever the recipe's was.
    schema = project_copy / "sql" / "schema.sql"
    schema.write_text(schema.read_text() + "-- edited by hand\n")
    stale = make("check-schema")
    assert stale.stderr.splitlines()[0] == (
        "FAILED: sql/schema.sql is out of date: run `make schema` and commit it."
    )
    assert re.search(r"\[Makefile:\d+: check-schema\] Error 1$", stale.stderr.strip())
    assert stale.returncode == no_server.returncode == 2
    no_backup = make("restore")
    assert no_backup.stderr.startswith("FAILED: no backup given: make restore BACKUP=")
    assert no_backup.returncode != 0 and "Error 2" in no_backup.stderr


def test_the_docs_table_of_exit_statuses_is_the_cli_docstring_s():
    page = (ROOT / "docs" / "commands-and-variables.md").read_text()
    documented = dict(re.findall(r"^\| `(\d+)` \| (.+?) \|$", page, re.MULTILINE))
    assert set(documented) == {"0", "1", "2", "130"}
    in_docstring = dict(re.findall(r"^    (\d+) +(\S.*)$", cli.__doc__, re.MULTILINE))
    assert set(in_docstring) == set(documented)
    assert (cli.OK, cli.FOUND, cli.CANNOT_RUN, cli.INTERRUPTED) == (0, 1, 2, 130)
    for code, meaning in documented.items():
        assert meaning.split(":")[0].split(",")[0] in in_docstring[code], code
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "0 done, 1 found a problem or refused, 2 could not run, 130 interrupted" in readme
    assert os.access(MIGRATIONS, os.X_OK)
