"""The suite holds past today's head: in a copy of the project with three ordinary revisions on
top (tests/past_head.py), the revision-sensitive tests pass too.

A team's first revision must never turn `make test` red for reasons that have nothing to do
with it. This runs those tests in the copy, on this suite's own server.
"""

import os
import subprocess
import sys

from migration_runner.tools.scaffold import revision_ids
from support.past_head import REVISION_SENSITIVE, SPLIT_VARIABLE, add_three_revisions, clone_project
from support.processes import clean_environ
from support.project import ROOT


def test_revision_sensitive_tests_pass_with_three_more_revisions(postgres_server, tmp_path):
    copy = tmp_path / "project"
    clone_project(copy)  # the team's clone; the three revisions are its uncommitted work
    before = revision_ids(copy)
    add_three_revisions(copy)
    assert revision_ids(copy) == [*before, *(f"{int(before[-1]) + i:03d}" for i in (1, 2, 3))]

    environ = clean_environ(
        TEST_DATABASE_URL=postgres_server.admin_url, TEST_POSTGRES_VERSION=postgres_server.version
    )
    environ.pop("PYTHONPATH", None)
    environ.pop(SPLIT_VARIABLE, None)  # the copy runs every file it is given
    inner = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rs",
            *(os.path.join("tests", name) for name in REVISION_SENSITIVE),
        ],
        cwd=copy,
        env=environ,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )

    summary = inner.stdout.strip().splitlines()[-1] if inner.stdout.strip() else inner.stderr
    assert inner.returncode == 0, inner.stdout[-6000:] + inner.stderr[-2000:]
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary, summary


def test_make_test_runs_each_revision_sensitive_file_once_per_version():
    """PostgreSQL 15's run of the tree leaves out what its past-head copy runs; 18's leaves out
    the copy: collected for real, with the variable the Makefile sets for each version."""

    def collected(split: str) -> set[str]:
        environ = {**os.environ, SPLIT_VARIABLE: split}
        listing = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
            cwd=ROOT,
            env=environ,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return {
            line.split("::")[0].removeprefix("tests/")
            for line in listing.splitlines()
            if "::" in line
        }

    tests = ROOT / "tests"
    everything = {str(path.relative_to(tests)) for path in tests.rglob("test_*.py")}
    assert set(REVISION_SENSITIVE) <= everything
    assert collected("past-head") == everything - set(REVISION_SENSITIVE)
    assert collected("head") == everything - {"test_past_head.py"}
    makefile = (ROOT / "Makefile").read_text()
    assert f"TEST_POSTGRES_VERSION=15 {SPLIT_VARIABLE}=past-head" in makefile
    assert f"TEST_POSTGRES_VERSION=18 {SPLIT_VARIABLE}=head" in makefile
