"""Among the revisions the running release does not have yet, no expand after a contract.

    migrations phase-order [TREE]      (in `make lint`)

`alembic -x phase=expand upgrade head` stops at the first pending contract
revision, so an expand revision numbered after it would silently wait for the
contract phase, after the deploy that needs it. The fix is in the message:
number it before the contract revision, or make it a contract revision itself.
"""

import sys
from pathlib import Path

from migration_runner.steps import sql_files
from migration_runner.steps.phases import CONTRACT, phase_of
from migration_runner.tools.release import release_ref, released_revisions
from migration_runner.tools.scaffold import revision_ids


def up_file(tree: Path, revision: str) -> sql_files.SqlFile:
    return sql_files.load(next((tree / "sql" / "up").glob(f"{revision}_*.sql")))


def problems(tree: Path, released: set[str], ref: str) -> list[str]:
    found, contract = [], None
    for revision in (r for r in revision_ids(tree) if r not in released):
        sql_file = up_file(tree, revision)
        if phase_of(sql_file) == CONTRACT:
            contract = contract or sql_file
        elif contract is not None:
            found.append(
                f"{sql_file.shown} is an expand revision after the contract revision "
                f"{contract.shown}, and the running release ({ref}) has neither: the expand "
                "phase stops before the contract one, so this one would wait until after the "
                "deploy. Renumber it before the contract revision, or head it "
                "`-- Phase: contract`."
            )
    return found


def run(tree: Path) -> int:
    """`migrations phase-order`: 1 with one FAILED line per problem."""
    ref = release_ref(tree)
    released = None if ref is None else released_revisions(tree, ref)
    if released is None:
        print("phase order: no running release to compare with (set COMPAT_REF); not checked")
        return 0
    found = problems(tree, released, ref)
    for problem in found:
        print(f"FAILED: {problem}", file=sys.stderr)
    if not found:
        print(f"phase order: no expand revision after a contract one since {ref}")
    return 1 if found else 0
