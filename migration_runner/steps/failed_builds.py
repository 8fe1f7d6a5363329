"""An index whose CONCURRENTLY build failed is dropped at once, not at the rerun.

CREATE UNIQUE INDEX CONCURRENTLY that meets a duplicate (a row written after
the file's refusal step counted them) fails and leaves its index behind,
INVALID but still checked on every write: the running code's inserts of a
duplicate value would fail until the rerun. So when a `-- Transaction: none`
file fails, every index its statements still to run build that exists INVALID
is dropped right away (concurrently), with a warning, and the rerun builds it
again. A runner that was killed drops nothing: invalid_indexes.py drops the
leftover before the rerun.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from alembic.runtime.migration import MigrationContext

from migration_runner.steps.invalid_indexes import drop_invalid, invalid_indexes
from migration_runner.steps.sql_files import SqlFile, Statement

log = logging.getLogger("migration_runner")


@contextmanager
def dropping_failed_builds(
    ctx: MigrationContext, sql_file: SqlFile, statements: list[Statement]
) -> Iterator[None]:
    """Outside a transaction, around the statements still to run: if one fails, drop the
    INVALID indexes they build, then let the failure go on as it was."""
    try:
        yield
    except Exception:
        try:
            drop_invalid(ctx, invalid_indexes(ctx, statements), sql_file)
        except Exception as error:  # noqa: BLE001 - the first failure is the one to report
            log.warning(
                "could not drop the INVALID index of the failed build (%s); the rerun drops it",
                str(error).strip().splitlines()[0],
            )
        raise
