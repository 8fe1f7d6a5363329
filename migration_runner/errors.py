"""Errors meant for a person: one paragraph that says what to fix.

They subclass Alembic's CommandError, which the `alembic` command prints as
`FAILED: <message>` with a non-zero exit and no traceback.
"""

import signal
from collections.abc import Iterator
from contextlib import contextmanager

from alembic.util import CommandError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

LOCK_NOT_AVAILABLE = "55P03"


class MigrationError(CommandError):
    """A run was refused or failed; the database is left as it was."""


class LockTimeout(MigrationError):
    """A statement waited longer than lock_timeout; the run may be retried."""


class FileFailed(MigrationError):
    """A SQL file sent whole failed; the run is rolled back and tried one statement at a time."""


class PartlyApplied(MigrationError):
    """A `-- Transaction: none` file failed after some of its statements committed: the message
    names them; they stay applied, and a rerun continues after them."""


def reason_of(error: DBAPIError) -> str:
    """The first line of PostgreSQL's (or the driver's) own words about a failure, and its
    DETAIL when it gives one (the duplicated key of a unique index that cannot be built)."""
    original = error.orig
    first = (getattr(original, "pgerror", None) or str(original)).strip().splitlines()[0]
    detail = getattr(getattr(original, "diag", None), "message_detail", None)
    if not detail:
        return first
    return f"{first} (DETAIL: {' '.join(detail.split()).rstrip('.')})"


def database_error(error: DBAPIError, where: str) -> MigrationError:
    """PostgreSQL's own words about a failed statement, naming where it happened."""
    reason = reason_of(error)
    if getattr(error.orig, "pgcode", None) == LOCK_NOT_AVAILABLE:
        return LockTimeout(f"{where} waited too long for a lock: {reason}")
    return MigrationError(f"{where} failed: {reason}. The transaction was rolled back.")


@contextmanager
def one_failed_line() -> Iterator[None]:
    """Turn a lost connection, and the driver errors that follow it, into one FAILED line.

    When the server goes away mid-run (a terminated backend, a failover, a
    restart), closing and rolling back fail too; the first message is the
    one that says what happened, so it is the one raised.
    """
    try:
        yield
    except SQLAlchemyError as error:
        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, MigrationError):
            cause = cause.__context__
        if isinstance(cause, PartlyApplied):  # it says what stays applied
            raise MigrationError(str(cause)) from None
        if cause is not None:
            raise MigrationError(_lost(str(cause))) from None
        raise MigrationError(
            _lost(f"the database connection failed: {error}".splitlines()[0])
        ) from None


def _lost(message: str) -> str:
    return (
        f"{message.removesuffix(' The transaction was rolled back.')} The revision in progress was "
        "rolled back (a concurrent index build may be left INVALID; the next run rebuilds it); the "
        "revisions before it are applied. Run the same command again to finish."
    )


def _interrupted(signum, _frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def interrupt_on_sigterm() -> None:
    """SIGTERM (a CI cancel, `kill`) stops a tool like Ctrl-C: its cleanup still runs."""
    signal.signal(signal.SIGTERM, _interrupted)
