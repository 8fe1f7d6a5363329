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

from conftest import engine_for, query


def _local_server(action, project):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "migration_runner.servers.local_postgres",
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
