"""Eight `alembic upgrade head` at once: all succeed, the schema is applied once."""

import subprocess
import sys

from conftest import ROOT, V001_TABLES, RUNNER_TABLES, clean_environ, public_tables, query

RUNNERS = 8


def test_eight_concurrent_upgrades_apply_the_schema_exactly_once(database_url):
    environ = clean_environ(DATABASE_URL=database_url)
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "upgrade", "head"],
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(RUNNERS)
    ]
    outcomes = [(run.wait(timeout=120), run.stderr.read()) for run in runs]

    assert [code for code, _ in outcomes] == [0] * RUNNERS, outcomes
    assert sum("Running upgrade" in err for _, err in outcomes) == 1
    assert public_tables(database_url) == V001_TABLES | RUNNER_TABLES
    assert query(database_url, "SELECT revision, direction FROM migration_history") == [
        ("001", "up")
    ]
    assert query(database_url, "SELECT version_num FROM alembic_version") == [("001",)]
