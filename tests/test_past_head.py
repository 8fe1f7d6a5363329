"""The suite holds past today's head: in a copy of the project with three ordinary revisions on
top (tests/past_head.py), the revision-sensitive tests pass too.

A team's first revision must never turn `make test` red for reasons that have nothing to do
with it. This runs those tests in the copy, on this suite's own server.
"""

import os
import subprocess
import sys

import pytest

from migration_runner.tools.scaffold import revision_ids
from support.past_head import REVISION_SENSITIVE, SPLIT_VARIABLE, add_three_revisions, clone_project
from support.processes import clean_environ

# On both versions in make test: each version runs its own share of the revision-sensitive files.
pytestmark = pytest.mark.every_version


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
