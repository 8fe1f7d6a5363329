"""The suite holds past today's head: in a copy of the project with three ordinary revisions on
top (tests/past_head.py), the revision-sensitive tests pass too.

A team's first revision must never turn `make test` red for reasons that have nothing to do
with it. This runs those tests in the copy, on this suite's own server.
"""

import os
import subprocess
import sys

from conftest import clean_environ
from migration_runner.tools.scaffold import revision_ids
from past_head import add_three_revisions, clone_project

# Every test file that runs revisions, reads the head, or adds revisions of its own.
REVISION_SENSITIVE = (
    "test_at_head.py",
    "test_application_role.py",
    "test_autogenerate.py",
    "test_backup_restore.py",
    "test_checksums.py",
    "test_commit_per_revision.py",
    "test_compat.py",
    "test_concurrent_runs.py",
    "test_data_loss_guard.py",
    "test_drift_and_adoption.py",
    "test_existing_database.py",
    "test_failure_rollback.py",
    "test_history_checks.py",
    "test_interrupted_runs.py",
    "test_linear_history.py",
    "test_lock_timeout.py",
    "test_model_parity.py",
    "test_non_transactional.py",
    "test_offline_scripts.py",
    "test_partial_application.py",
    "test_phases.py",
    "test_refusals_before_any_change.py",
    "test_rehearse.py",
    "test_scaffold.py",
    "test_schema_snapshot.py",
    "test_upgrade_downgrade.py",
    "test_whole_file.py",
)


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
    inner = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
         *(os.path.join("tests", name) for name in REVISION_SENSITIVE)],
        cwd=copy, env=environ, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip

    summary = inner.stdout.strip().splitlines()[-1] if inner.stdout.strip() else inner.stderr
    assert inner.returncode == 0, inner.stdout[-6000:] + inner.stderr[-2000:]
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary, summary
