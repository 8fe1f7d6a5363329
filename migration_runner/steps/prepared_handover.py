"""A direct run's bookkeeping between two revisions, prepared once: two EXECUTEs a revision.

After each revision's file a direct run sends (steps/transaction.py) its history row,
Alembic's alembic_version UPDATE and the check that it matched, the session lock that
bridges the commit, COMMIT, BEGIN, the transaction lock taken back, the bridge let go and
three SET LOCAL. As text, besides COMMIT and BEGIN, these are nine small statements that
the server parses, analyses and plans again for every revision: about 0.1 s of its CPU in a
run of 300 revisions (docs/benchmarks.md). A run on a direct connection prepares them once,
as two statements, and sends `EXECUTE migration_runner_commit(...)`, COMMIT, BEGIN and
`EXECUTE migration_runner_resume(...)` after each file:

- migration_runner_commit: the history row and the version UPDATE as data-modifying WITH
  queries (PostgreSQL runs both whatever the SELECT reads), the check that the UPDATE matched
  the run's version, and the bridge;
- migration_runner_resume: the transaction lock, taken in a FROM subquery that OFFSET 0 keeps
  from being merged into the SELECT, so it is held before the bridge is let go, the three
  timeouts (set_config(..., true) is SET LOCAL), and where the next revision's duration
  starts (history.REVISION_STARTS).

What the database holds afterwards is the same as with the text (tests/test_prepared_handover.py).
The string now ends with a statement that returns a row, for which SQLAlchemy builds a result
that a SET did not need; measured side by side, the run is still faster (docs/benchmarks.md).
Prepared statements belong to the session and outlive a rollback: the preparation first
drops any that a failed run left on this connection, and a run that ends well drops its own.
Not through a pooler: there the run is one transaction and sends text, as offline scripts do.
"""

from migration_runner.steps.emit import literal
from migration_runner.steps.history import REVISION_STARTS

COMMIT = "migration_runner_commit"
RESUME = "migration_runner_resume"
NAMES = (COMMIT, RESUME)


def preparation(version_table: str, lock_key: int, settings: tuple[str, ...]) -> str:
    """What prepares both statements; version_table is quoted (and qualified), settings are
    the names each transaction sets locally (transaction.TRANSACTION_SETTINGS)."""
    leftovers = ", ".join(literal(name) for name in NAMES)
    parameters = ", ".join("text" for _ in settings)
    set_locally = "".join(
        f",\n    set_config({literal(name)}, ${number}, true)"
        for number, name in enumerate(settings, start=1)
    )
    return f"""DO $drop_leftovers$
DECLARE
    leftover text;
BEGIN
    FOR leftover IN SELECT name FROM pg_prepared_statements WHERE name IN ({leftovers}) LOOP
        EXECUTE 'DEALLOCATE ' || leftover;
    END LOOP;
END
$drop_leftovers$;
PREPARE {COMMIT} (text, text, boolean, text, integer, text, text, text) AS
WITH recorded AS (
    INSERT INTO migration_history (revision, direction, stamped, checksum, duration_ms)
    VALUES ($1, $2, $3, $4, $5)
),
moved AS (
    UPDATE {version_table} SET version_num = $6 WHERE version_num = $7
    RETURNING version_num
)
SELECT
    coalesce((SELECT 0 FROM moved WHERE version_num = $6), (SELECT $8)::integer),
    pg_advisory_lock({lock_key});
PREPARE {RESUME} ({parameters}) AS
SELECT
    pg_advisory_unlock({lock_key}){set_locally},
    {REVISION_STARTS}
FROM (SELECT pg_advisory_xact_lock({lock_key}) OFFSET 0) AS taken_back;
"""


def commit_and_resume(row: tuple[str, ...], update: tuple[str, str, str], timeouts: tuple) -> str:
    """The EXECUTEs around COMMIT and BEGIN. row: the history row's SQL values; update: the
    version to set, the one it replaces and the message if it does not; timeouts: the values
    of the settings preparation() was given, in order."""
    moved = ", ".join(literal(value) for value in update)
    settings = ", ".join(literal(value) for value in timeouts)
    return (
        f"EXECUTE {COMMIT}({', '.join(row)}, {moved});\nCOMMIT;\nBEGIN;\n"
        f"EXECUTE {RESUME}({settings});\n"
    )


DEALLOCATION = "".join(f"DEALLOCATE {name};\n" for name in NAMES)
