"""A run imports the steps its revisions need, no more: a deploy's checkout has no bytecode,
so every module a run imports is compiled first.

Transactional revisions, the usual run, load neither the steps of `-- Transaction: none`
files (partial application, invalid and failed index builds) nor the backup step, which
only a run allowed to lose data can need (the guard refuses every other loss).
"""

import ast

import pytest
from test_non_transactional import INDEX_DOWN, INDEX_UP

from support.database import current_version, query
from support.processes import run_alembic, run_python
from support.project import add_revision

OUTSIDE_TRANSACTION = ("partial_application", "invalid_indexes", "failed_builds")
BACKUP = ("backup",)
# Runs `alembic upgrade head` (with the -x options given) in this interpreter, then names
# the runner's step modules it loaded.
LOADED = """
import sys
from alembic.config import main
main(argv=[*sys.argv[1:], "upgrade", "head"], prog="alembic")
print(sorted(name.rsplit(".", 1)[1] for name in sys.modules
             if name.startswith("migration_runner.steps.")))
"""
NOTE_UP = (
    "-- add_note (up): test-only.\nALTER TABLE organizations ADD COLUMN test_only_note text;\n"
)
NOTE_DOWN = (
    "-- add_note (down): test-only.\nALTER TABLE organizations DROP COLUMN test_only_note;\n"
)
DOWNS = {INDEX_UP: INDEX_DOWN, NOTE_UP: NOTE_DOWN}


def loaded_steps(tree, url: str, *options: str) -> set[str]:
    """The step modules an upgrade to head of tree loaded; it must succeed."""
    result = run_python(LOADED, *options, tree=tree, url=url)
    assert result.returncode == 0, result.stdout + result.stderr
    return set(ast.literal_eval(result.stdout.splitlines()[-1]))


def at_head(tree, url: str) -> None:
    """url migrated to tree's head (whatever revisions it holds, `-- Transaction: none` ones
    too), so the run measured applies only what the test adds."""
    assert run_alembic("upgrade", "head", url=url, tree=tree).returncode == 0


def test_a_run_of_transactional_revisions_loads_no_step_it_does_not_use(database_url, tree_copy):
    at_head(tree_copy, database_url)
    added = add_revision(tree_copy, "add_note", NOTE_UP, NOTE_DOWN)

    loaded = loaded_steps(tree_copy, database_url)

    assert current_version(database_url) == added
    assert {"preflight", "revision", "revision_sender"} <= loaded  # it did run revisions
    assert loaded.isdisjoint(OUTSIDE_TRANSACTION + BACKUP), loaded


@pytest.mark.parametrize(
    ("up", "options", "expected"),
    [
        (INDEX_UP, (), OUTSIDE_TRANSACTION),
        (NOTE_UP, ("-x", "allow-data-loss=true"), BACKUP),
    ],
    ids=["outside-a-transaction", "allowed-to-lose-data"],
)
def test_the_steps_a_run_needs_are_loaded_when_it_needs_them(
    database_url, tree_copy, up, options, expected
):
    at_head(tree_copy, database_url)
    added = add_revision(tree_copy, "needs_a_step", up, DOWNS[up])

    loaded = loaded_steps(tree_copy, database_url, *options)

    assert current_version(database_url) == added
    assert set(expected) <= loaded, loaded
    recorded = "SELECT count(*) FROM migration_history WHERE revision = :revision"
    assert query(database_url, recorded, revision=added) == [(1,)]
