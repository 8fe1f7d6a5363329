"""Expand before the deploy, contract after: `-x phase=expand` stops at the first pending
contract revision and says what it held back; the contract phase applies the rest."""

import subprocess
import sys

import pytest

from support.database import current_version, query
from support.processes import clean_environ, run_alembic
from support.project import HEAD, ROOT, add_revision

LEGACY_UP = "ALTER TABLE organizations ADD COLUMN test_only_legacy text;\n"
LEGACY_DOWN = "-- Destructive: yes\nALTER TABLE organizations DROP COLUMN test_only_legacy;\n"
NEW_UP = "ALTER TABLE organizations ADD COLUMN test_only_new text;\n"
NEW_DOWN = "-- Destructive: yes\nALTER TABLE organizations DROP COLUMN test_only_new;\n"
DROP_UP = (
    "-- drop_test_only_legacy (up): the new code no longer reads it.\n"
    "-- Destructive: yes\n"
    "-- Phase: contract\n"
    "ALTER TABLE organizations DROP COLUMN test_only_legacy;\n"
)
LATER_UP = "CREATE INDEX test_only_new_idx ON organizations (test_only_new);\n"
LATER_DOWN = "DROP INDEX test_only_new_idx;\n"
COLUMNS = (
    "SELECT column_name FROM information_schema.columns"
    " WHERE table_name = 'organizations' AND column_name LIKE 'test_only_%' ORDER BY 1"
)


@pytest.fixture
def release(tree_copy, database_url):
    """The running release at `legacy` (the database there), and a new release on top:
    an expand revision, a contract revision, and an expand revision after it."""
    legacy = add_revision(tree_copy, "add_test_only_legacy", LEGACY_UP, LEGACY_DOWN)
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    new = add_revision(tree_copy, "add_test_only_new", NEW_UP, NEW_DOWN)
    drop = add_revision(tree_copy, "drop_test_only_legacy", DROP_UP, LEGACY_UP)
    later = add_revision(tree_copy, "index_test_only_new", LATER_UP, LATER_DOWN)
    return legacy, new, drop, later


def test_expand_phase_stops_before_the_first_contract_revision(database_url, tree_copy, release):
    legacy, new, drop, later = release

    expand = run_alembic("-x", "phase=expand", "upgrade", "head", url=database_url, tree=tree_copy)

    assert expand.returncode == 0, expand.stdout
    assert current_version(database_url) == new
    assert query(database_url, COLUMNS) == [("test_only_legacy",), ("test_only_new",)]
    held = (
        f"phase expand: holding back {drop}, {later}: sql/up/{drop}_drop_test_only_legacy.sql is "
        "headed `Phase: contract`"
    )
    assert expand.stdout.count(held) == 1, expand.stdout
    again = run_alembic("-x", "phase=expand", "upgrade", "head", url=database_url, tree=tree_copy)
    assert again.returncode == 0 and current_version(database_url) == new

    contract = run_alembic(
        "-x", "phase=contract", "upgrade", "head", url=database_url, tree=tree_copy
    )

    assert contract.returncode == 0, contract.stdout
    assert current_version(database_url) == later
    assert query(database_url, COLUMNS) == [("test_only_new",)]
    assert query(
        database_url, "SELECT revision FROM migration_history WHERE direction = 'up' ORDER BY id"
    )[-4:] == [(legacy,), (new,), (drop,), (later,)]


def test_plain_upgrade_head_applies_both_phases(database_url, tree_copy, release):
    *_, later = release
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    assert current_version(database_url) == later
    assert query(database_url, COLUMNS) == [("test_only_new",)]


@pytest.mark.usefixtures("release")
def test_downgrades_are_never_held_back(database_url, tree_copy):
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    down = run_alembic("-x", "phase=expand", "downgrade", HEAD, url=database_url, tree=tree_copy)
    assert down.returncode == 0, down.stdout
    assert current_version(database_url) == HEAD
    assert query(database_url, COLUMNS) == []


def test_offline_expand_script_stops_where_the_online_run_does(tree_copy, release):
    legacy, new, drop, _ = release
    script = run_alembic(
        "-x", "phase=expand", "upgrade", f"{legacy}:head", "--sql", tree=tree_copy
    ).stdout
    assert f"version_num='{new}'" in script
    assert f"version_num='{drop}'" not in script and "test_only_new_idx" not in script


def test_phase_lint_refuses_an_expand_revision_after_a_contract_one(project_copy):
    """Only among the revisions the running release (COMPAT_REF) does not have yet."""
    release = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project_copy, capture_output=True, text=True, check=True
    ).stdout.strip()
    drop = add_revision(project_copy, "drop_test_only_legacy", DROP_UP, LEGACY_UP)
    later = add_revision(project_copy, "index_test_only_new", LATER_UP, LATER_DOWN)
    lint = [sys.executable, "-m", "migration_runner.cli", "phase-order", str(project_copy)]

    refused = subprocess.run(
        lint,
        cwd=ROOT,
        env=clean_environ(COMPAT_REF=release),
        capture_output=True,
        text=True,
        check=False,
    )

    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"FAILED: sql/up/{later}_index_test_only_new.sql is an expand revision after the contract "
        f"revision sql/up/{drop}_drop_test_only_legacy.sql, and the running release ({release}) "
        "has neither: the expand phase stops before the contract one, so this one would wait "
        "until after the deploy. Renumber it before the contract revision, or head it "
        "`-- Phase: contract`."
    )
    # Once the release has shipped both, the order is history: nothing to refuse.
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "add", "-A"], cwd=project_copy, check=True)
    subprocess.run([*git, "commit", "-qm", "release"], cwd=project_copy, check=True)
    shipped = subprocess.run(
        lint,
        cwd=ROOT,
        env=clean_environ(COMPAT_REF="HEAD"),
        text=True,
        capture_output=True,
        check=False,
    )
    assert shipped.returncode == 0, shipped.stderr
