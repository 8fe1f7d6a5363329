"""Retry a whole run after a lock timeout, with backoff, a bounded number of times.

A migration that waits for a lock makes every later query on that table wait
behind it: the classic migration outage. With lock_timeout the migration gives
up quickly instead, its transaction rolls back, the application's queries
proceed, and we try again a little later.
"""

import logging
import random
import time
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError

from migration_runner.errors import LockTimeout, MigrationError, database_error
from migration_runner.steps.settings import RunSettings

log = logging.getLogger(__name__)
FIRST_DELAY = 0.5
LONGEST_DELAY = 10.0
BLOCKERS_QUERY = (
    "SELECT pid, state, xact_start, query FROM pg_stat_activity "
    "WHERE pid <> pg_backend_pid() AND xact_start IS NOT NULL ORDER BY xact_start"
)


def run_with_lock_retries(attempt: Callable[[], None], settings: RunSettings) -> None:
    """Call attempt; after a lock timeout (already rolled back) wait and call it again."""
    attempts = settings.lock_retries + 1
    for number in range(1, attempts + 1):
        try:
            attempt()
            return
        except DBAPIError as error:
            failure = database_error(error, "the migration run")
            if not isinstance(failure, LockTimeout):
                raise failure from None
        except LockTimeout as error:
            failure = error
        if number == attempts:
            raise MigrationError(
                f"{failure} Gave up after {attempts} attempts with lock_timeout "
                f"{settings.lock_timeout}; the run was rolled back. A long transaction holds a "
                f"table this migration needs: find it with `{BLOCKERS_QUERY}`, then run again "
                "(or raise -x lock-retries / -x lock-timeout)."
            ) from None
        delay = min(FIRST_DELAY * 2 ** (number - 1), LONGEST_DELAY) * random.uniform(0.8, 1.2)
        log.warning(
            "%s; rolled back, attempt %d of %d in %.1fs", failure, number + 1, attempts, delay
        )
        time.sleep(delay)
