"""`make drift`: does a live database still have the schema of the revision it is at?

    migrations drift        # the database of DATABASE_URL or Vercel's variables

The live schema (migration_runner.tools.schema_snapshot) is compared with the
snapshot of its revision: the committed sql/schema.sql at head, otherwise one
built by migrating a scratch database to that revision. Every object that is
missing, unexpected or different is listed, then the unified diff.
Exit status (migration_runner/cli.py): 0 no drift, 1 drift, 2 the check could not run.
"""

import sys
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from migration_runner.errors import MigrationError
from migration_runner.steps.database_url import DatabaseTarget, resolve_target
from migration_runner.tools import schema_snapshot

VERSIONS = (
    "SELECT version_num FROM alembic_version"
    " WHERE to_regclass('alembic_version') IS NOT NULL ORDER BY version_num"
)


def applied_revisions(target: DatabaseTarget) -> list[str] | None:
    """The database's alembic_version rows; None when it has no such table."""
    engine = create_engine(target.url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            if connection.execute(text("SELECT to_regclass('alembic_version')")).scalar() is None:
                return None
            return [row[0] for row in connection.execute(text(VERSIONS))]
    except DBAPIError as error:
        raise MigrationError(f"Cannot read {target.shown}: {error.orig}".strip()) from None
    finally:
        engine.dispose()


def live_url(target: DatabaseTarget) -> str:
    return target.url.render_as_string(hide_password=False)


def known_revision(tree: Path, revision: str) -> None:
    script = ScriptDirectory.from_config(Config(str(tree / "alembic.ini")))
    if revision not in {rev.revision for rev in script.walk_revisions()}:
        raise MigrationError(
            f"The database is at revision {revision}, which this checkout does not have: "
            "update the checkout (git pull) and check again."
        )


def compare(
    tree: Path,
    revision: str,
    target: DatabaseTarget,
    scratch_url: str | None,
    from_migrations: bool = False,
) -> list[str]:
    """Print how target's live schema differs from revision's (list, then diff); return the list.

    revision's schema is sql/schema.sql at head, unless from_migrations asks to build it
    by migrating an empty database (rehearsal: the snapshot may not be regenerated yet).
    """
    if from_migrations:
        expected = schema_snapshot.build(tree, revision, scratch_url)
    else:
        expected = schema_snapshot.expected(tree, revision, scratch_url)
    live = schema_snapshot.snapshot(live_url(target))
    found = schema_snapshot.differences(expected, live)
    if found:
        print("\n".join(found))
        print()
        print(
            schema_snapshot.unified_diff(
                expected, live, f"schema of revision {revision}", f"live {target.shown}"
            )
        )
    return found


def run(tree: Path, scratch_url: str | None) -> int:
    """`migrations drift`: 0 no drift, 1 drift (listed); raises when it cannot check."""
    target = resolve_target()
    revisions = applied_revisions(target)
    if not revisions:
        raise MigrationError(
            f"{target.shown} is not under migrations (no alembic_version row): "
            "compare nothing; adopt it with `make adopt` if it predates them."
        )
    if len(revisions) > 1:
        raise MigrationError(f"{target.shown} has several heads: {', '.join(revisions)}")
    revision = revisions[0]
    known_revision(tree, revision)
    found = compare(tree, revision, target, scratch_url)
    if found:
        print(
            f"FAILED: DRIFT: {target.shown} differs from revision {revision} in {len(found)} "
            "object(s). Someone changed it outside migrations: undo that by hand, or capture it "
            "in a new revision.",
            file=sys.stderr,
        )
        return 1
    print(f"no drift: {target.shown} has exactly the schema of revision {revision}")
    return 0
