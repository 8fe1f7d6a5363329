"""Short lock waits that grow, with pauses between: the application never queues for long.

A migration that waits for a lock makes every later query on that table wait
behind it: the classic migration outage. So each attempt sets a short
lock_timeout (GitLab's with_lock_retries is the model): 100 ms at first, half
as long again on every retry, never more than lock-timeout-max (400 ms), so no
application query queues longer than that behind a waiting migration. After a
timeout the transaction rolls back, the application's queries go through, and
the runner sleeps (0.5 s, doubling to 10 s, jittered) before the next attempt.
When the retries are used up, the failure names the sessions that held tables.
"""

import dataclasses
import logging
import random
import time
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError

from migration_runner.errors import LockTimeout, MigrationError, database_error
from migration_runner.steps.settings import RunSettings, milliseconds

log = logging.getLogger(__name__)
FIRST_DELAY = 0.5
LONGEST_DELAY = 10.0
GROWTH = 1.5
# The oldest open transactions that hold table locks: listed in a lock-timeout failure, and
# given whole in its message to run by hand.
BLOCKERS = """
SELECT a.pid, coalesce(nullif(a.application_name, ''), a.usename) AS who, a.state,
       round(extract(epoch FROM now() - a.xact_start)) AS seconds, left(a.query, 80) AS query
FROM pg_stat_activity AS a
WHERE a.pid <> pg_backend_pid() AND a.datname = current_database() AND a.xact_start IS NOT NULL
  AND EXISTS (SELECT FROM pg_locks AS l WHERE l.pid = a.pid AND l.locktype = 'relation' AND l.granted)
ORDER BY a.xact_start
LIMIT 3
"""


def describe_blockers(connection) -> str:
    """The oldest open transactions that hold table locks, for a lock-timeout failure."""
    try:
        rows = connection.exec_driver_sql(BLOCKERS).fetchall()
    except Exception:  # noqa: BLE001  (only an aid to the message; the failure stands)
        return ""
    return "; ".join(
        f"pid {pid} ({who}, {state}, transaction open {seconds:.0f} s): {query}"
        for pid, who, state, seconds, query in rows
    )


def lock_timeout_for(attempt: int, settings: RunSettings) -> str:
    """The lock_timeout of attempt 1, 2, ...: growing from lock-timeout to lock-timeout-max."""
    first = milliseconds(settings.lock_timeout)
    if first == 0:
        return settings.lock_timeout  # 0: no timeout, as the operator asked
    longest = max(first, milliseconds(settings.lock_timeout_max))
    return f"{round(min(first * GROWTH ** (attempt - 1), longest))}ms"


def one_attempt(settings: RunSettings) -> RunSettings:
    """Settings for a run that cannot retry (an offline script): the longest wait allowed."""
    longest = lock_timeout_for(settings.lock_retries + 1, settings)
    return dataclasses.replace(settings, lock_timeout=longest)


def run_with_lock_retries(
    attempt: Callable[[RunSettings], None],
    settings: RunSettings,
    describe_blockers: Callable[[], str] = lambda: "",
) -> None:
    """Call attempt with this try's settings; after a lock timeout (rolled back) wait, retry."""
    attempts = settings.lock_retries + 1
    for number in range(1, attempts + 1):
        this_try = dataclasses.replace(settings, lock_timeout=lock_timeout_for(number, settings))
        try:
            attempt(this_try)
            return
        except DBAPIError as error:
            failure = database_error(error, "the migration run")
            if not isinstance(failure, LockTimeout):
                raise failure from None
        except LockTimeout as error:
            failure = error
        if number == attempts:
            blockers = describe_blockers()
            raise MigrationError(
                f"{failure} Gave up after {attempts} attempts (lock_timeout "
                f"{settings.lock_timeout} growing to {this_try.lock_timeout}); the run was rolled "
                "back. "
                + (f"Holding tables: {blockers}. " if blockers else "")
                + f"Find long transactions with `{' '.join(BLOCKERS.split())}`, end them, then run again "
                "(or raise -x lock-retries / -x lock-timeout-max)."
            ) from None
        delay = min(FIRST_DELAY * 2 ** (number - 1), LONGEST_DELAY) * random.uniform(0.8, 1.2)
        log.warning(
            "%s (lock_timeout %s); rolled back, attempt %d of %d in %.1fs",
            failure,
            this_try.lock_timeout,
            number + 1,
            attempts,
            delay,
        )
        time.sleep(delay)
