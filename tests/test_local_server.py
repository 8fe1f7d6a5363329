"""The development server behind `make migrate`: set up once, reused, stopped, removed.

As root the server runs as `postgres`; the project folder here is a 0700
temporary folder that user cannot enter, as a clone in root's home would be.
"""

import os
import subprocess
import sys
import time

import pytest
from sqlalchemy.exc import OperationalError

from support.database import current_version, engine_for, query
from support.processes import run_alembic, run_make
from support.project import HEAD, add_revision

# On both versions in make test: each version's own server binaries.
pytestmark = pytest.mark.every_version


def _local_server(action, project):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "migration_runner.cli",
            "db",
            action,
            "--project",
            str(project),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_dev_server_starts_once_is_reused_and_is_removed_with_its_data(tmp_path):
    project = tmp_path / "clone"
    project.mkdir(mode=0o700)
    try:
        first = _local_server("start", project)
        assert first.returncode == 0, first.stderr
        url = first.stdout.strip()
        datadir = os.path.realpath(project / ".localdb" / "data")
        assert query(url, "SELECT current_database()") == [("assessment",)]

        started = time.monotonic()
        again = _local_server("start", project)
        assert again.returncode == 0 and again.stdout.strip() == url
        assert time.monotonic() - started < 5  # a running server is reused, not set up again
        assert _local_server("url", project).stdout.strip() == url
        assert oct(project.stat().st_mode & 0o777) == "0o700"  # no folder of ours was opened up

        assert _local_server("stop", project).returncode == 0
        with pytest.raises(OperationalError, match="Connection refused"):
            engine_for(url, connect_args={"connect_timeout": 2}).connect()
        assert os.path.isdir(datadir)
    finally:
        removed = _local_server("remove", project)
    assert removed.returncode == 0, removed.stderr
    assert not (project / ".localdb").exists()
    assert not os.path.exists(datadir)


def test_a_stopped_dev_server_restarts_without_migrating_and_alembic_names_make_db_start(
    project_copy,
):
    """After `make db-stop`, `alembic` fails at once saying `make db-start`, which brings the
    same server and data back without applying anything."""
    project = project_copy

    def make(target: str) -> subprocess.CompletedProcess:
        return run_make(project, "-s", target)

    try:
        assert make("migrate").returncode == 0
        url = make("db-url").stdout.strip()
        query(url, "INSERT INTO organizations (name, slug) VALUES ('Kept', 'kept')")
        assert make("db-stop").returncode == 0
        assert "make db-start" in make("db-url").stderr

        started = time.monotonic()
        refused = run_alembic("upgrade", "head", url=url, tree=project)
        assert refused.returncode != 0
        assert "the local development PostgreSQL is stopped. Start it with `make db-start`." in (
            refused.stdout
        )
        assert time.monotonic() - started < 5  # no retrying a server that is not there

        add_revision(
            project,
            "add_test_only_note",
            "ALTER TABLE organizations ADD test_only_note text;\n",
            "ALTER TABLE organizations DROP COLUMN test_only_note;\n",
        )
        restarted = make("db-start")
        assert restarted.returncode == 0, restarted.stderr
        assert f"local PostgreSQL started: {url}" in restarted.stdout
        assert current_version(url) == HEAD  # started, not migrated: the pending one waits
        assert query(url, "SELECT name FROM organizations") == [("Kept",)]
    finally:
        make("db-remove")
