"""Errors meant for a person: one paragraph that says what to fix.

They subclass Alembic's CommandError, which the `alembic` command prints as
`FAILED: <message>` with a non-zero exit and no traceback.
"""

from alembic.util import CommandError
from sqlalchemy.exc import DBAPIError

LOCK_NOT_AVAILABLE = "55P03"


class MigrationError(CommandError):
    """A run was refused or failed; the database is left as it was."""


class LockTimeout(MigrationError):
    """A statement waited longer than lock_timeout; the run may be retried."""


class FileFailed(MigrationError):
    """A SQL file sent whole failed; the run is rolled back and tried one statement at a time."""


def database_error(error: DBAPIError, where: str) -> MigrationError:
    """PostgreSQL's own words about a failed statement, naming where it happened."""
    original = error.orig
    reason = (getattr(original, "pgerror", None) or str(original)).strip().splitlines()[0]
    if getattr(original, "pgcode", None) == LOCK_NOT_AVAILABLE:
        return LockTimeout(f"{where} waited too long for a lock: {reason}")
    return MigrationError(f"{where} failed: {reason}. The transaction was rolled back.")
