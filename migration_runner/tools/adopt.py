"""`make adopt`: put a database that predates migrations under them, if it is exactly v001.

    migrations adopt [--revision 001]

The database (DATABASE_URL or Vercel's variables) must have no alembic_version
row. Its schema (migration_runner.tools.schema_snapshot) must equal the schema the
migrations produce at the revision, object for object; then `alembic stamp`
records the revision (alembic_version, and migration_history with
stamped = TRUE) without running any SQL. Any difference is refused with the
list, and nothing is written. Exit status: 0 adopted, 1 refused, 2 could not check.
"""

import os
import subprocess
import sys
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from migration_runner.errors import MigrationError
from migration_runner.steps.database_url import resolve_target
from migration_runner.tools.drift import applied_revisions, compare


def run(tree: Path, revision: str | None, scratch_url: str | None) -> int:
    """`migrations adopt`: 0 stamped, 1 the schema differs (listed); raises when it cannot."""
    script = ScriptDirectory.from_config(Config(str(tree / "alembic.ini")))
    revision = revision or script.get_base()
    target = resolve_target()
    applied = applied_revisions(target)
    if applied:
        raise MigrationError(
            f"{target.shown} is under migrations already (revision {', '.join(applied)}): "
            "nothing to adopt; use `alembic upgrade head`."
        )
    found = compare(tree, revision, target, scratch_url)
    if found:
        print(
            f"FAILED: REFUSED: {target.shown} differs from revision {revision} in {len(found)} "
            "object(s) (listed above); nothing was written. Make it match exactly, then adopt.",
            file=sys.stderr,
        )
        return 1
    stamp = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(tree / "alembic.ini"), "stamp", revision],
        cwd=tree,
        env=os.environ,
        check=False,
    )
    if stamp.returncode != 0:
        return 2  # alembic printed its own FAILED line
    print(f"adopted: {target.shown} has exactly the schema of {revision} and is stamped {revision}")
    return 0
