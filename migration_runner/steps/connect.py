"""Open the migration connection, retrying while the server wakes up.

A suspended Neon/Vercel compute takes seconds to accept its first connection,
and a server that is restarting refuses connections for a moment. Those are
retried with backoff for a bounded time; errors that waiting cannot fix
(wrong password, unknown database, TLS refused) fail at once.
"""

import math
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from migration_runner.errors import MigrationError
from migration_runner.steps.database_url import DatabaseTarget

# Seconds libpq waits for one attempt when the URL does not say.
ATTEMPT_TIMEOUT = "5"
PERMANENT_FAILURES = (
    "password authentication failed",
    "no password supplied",
    "does not exist",
    "no pg_hba.conf entry",
    "server does not support ssl",
    "could not translate host name",
    "invalid sslmode",
    "invalid connection option",
    "invalid integer value",
    "permission denied",
)


def _reason(error: DBAPIError | ArgumentError) -> str:
    """The driver's message, first meaningful line, without the SQLAlchemy banner."""
    message = str(error.orig) if isinstance(error, DBAPIError) else str(error)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("FATAL:", "ERROR:")):
            return line
    return lines[0] if lines else "unknown error"


def _is_permanent(reason: str) -> bool:
    return any(marker in reason.lower() for marker in PERMANENT_FAILURES)


def _attempt_timeout(left: float) -> str:
    """libpq's connect_timeout for one attempt: ATTEMPT_TIMEOUT, cut to the time left.

    A pooler or Neon's proxy holds a login while the compute wakes, so one
    attempt can last its whole connect_timeout; cutting it keeps the run within
    retry_seconds. At least 2 s, so a TLS + SCRAM handshake always fits.
    """
    return str(max(2, min(int(ATTEMPT_TIMEOUT), math.ceil(left))))


def _stopped_dev_server(target: DatabaseTarget, project: Path | None) -> bool:
    """The target is `make migrate`'s local server, and it is stopped: waiting cannot help."""
    if project is None or target.url.host not in ("127.0.0.1", "localhost"):
        return False
    from migration_runner.servers.local_postgres import stopped_dev_server  # on failure only

    return stopped_dev_server(project, target.url.port)


def connect(
    target: DatabaseTarget, retry_seconds: float, project: Path | None = None
) -> Connection:
    """A connection to target, retried with backoff for up to retry_seconds.

    project is the migration tree: a refused connection to its stopped development
    server (`make db-stop`) fails at once and says how to start it.
    """
    deadline = time.monotonic() + retry_seconds
    delay = 0.5
    while True:
        connect_args = (
            {}
            if "connect_timeout" in target.url.query
            else {"connect_timeout": _attempt_timeout(deadline - time.monotonic())}
        )
        try:
            engine = create_engine(
                target.url,
                poolclass=NullPool,
                connect_args=connect_args,
                use_native_hstore=False,  # no hstore lookup per connection: migrations send text
            )
            return engine.connect()
        # Not only OperationalError: a URL parameter libpq rejects ("invalid dsn") comes as a
        # ProgrammingError, a port that is not a number as SQLAlchemy's ArgumentError.
        except (DBAPIError, ArgumentError) as error:
            reason = _reason(error)
            permanent = not isinstance(error, OperationalError) or _is_permanent(reason)
            if "refused" in reason and _stopped_dev_server(target, project):
                raise MigrationError(
                    f"Cannot connect to {target.shown} (from {target.variable}): the local "
                    "development PostgreSQL is stopped. Start it with `make db-start`."
                ) from None
            left = deadline - time.monotonic()
            if permanent or left <= 0:
                raise MigrationError(
                    f"Cannot connect to {target.shown} (from {target.variable}): {reason}. "
                    "Check the host, port, user, password and database in that variable"
                    + (
                        "."
                        if permanent
                        else f"; gave up after retrying for {retry_seconds:g}s "
                        "(raise it with -x connect-timeout=SECONDS)."
                    )
                ) from None
            wait = min(delay, left)
            print(
                f"database not reachable yet ({reason}); retrying in {wait:.1f}s, {left:.0f}s left",
                file=sys.stderr,
            )
            time.sleep(wait)
            delay = min(delay * 2, 5.0)
