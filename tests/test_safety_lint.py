"""squawk, configured in .squawk.toml, catches migrations that would block production."""

import subprocess
import sys
from pathlib import Path

from support.project import ROOT

# squawk-cli installs its binary beside the interpreter running the tests.
SQUAWK = Path(sys.executable).parent / "squawk"


def _squawk(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SQUAWK), "--config", str(ROOT / ".squawk.toml"), "--reporter", "gcc", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )


def test_the_project_up_files_pass_squawk():
    result = _squawk(*sorted(str(path) for path in (ROOT / "sql" / "up").glob("*.sql")))
    assert result.returncode == 0, result.stdout + result.stderr


def test_blocking_changes_to_an_existing_table_are_caught(tmp_path):
    bad = tmp_path / "bad.sql"
    bad.write_text(
        "-- bad (up): test-only, two classic outages.\n"
        "CREATE INDEX organizations_name_idx ON organizations (name);\n"
        "ALTER TABLE organizations ADD COLUMN region text NOT NULL;\n"
    )
    result = _squawk(str(bad))
    assert result.returncode != 0
    assert "require-concurrent-index-creation" in result.stdout
    assert "adding-required-field" in result.stdout


def test_the_safe_versions_of_those_changes_pass(tmp_path):
    good = tmp_path / "good.sql"
    good.write_text(
        "-- good (up): test-only.\n"
        "-- Transaction: none\n"
        "CREATE INDEX CONCURRENTLY organizations_name_idx ON organizations (name);\n"
    )
    result = _squawk("--no-assume-in-transaction", str(good))
    assert result.returncode == 0, result.stdout
