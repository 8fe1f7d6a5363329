"""Send SQL text verbatim: executed online, written to the script offline.

SQLAlchemy's text() would read `:name` as a bind parameter, and psycopg2
would read `%` as a placeholder whenever parameters are passed. Running the
string through exec_driver_sql with no_parameters=True hands it to the driver
untouched, so colons, percent signs, `::` casts and dollar quotes all survive.
"""

from dataclasses import dataclass, field

from alembic.runtime.migration import MigrationContext

from migration_runner.steps.sql_files import SqlFile


def emit(ctx: MigrationContext, sql: str) -> None:
    """Run sql on the migration connection, or append it to the --sql script."""
    if ctx.as_sql:
        ctx.impl.static_output(sql.strip())
    else:
        ctx.connection.execution_options(no_parameters=True).exec_driver_sql(sql)


def fetch(ctx: MigrationContext, sql: str) -> list[tuple]:
    """Rows of a query; online mode only."""
    result = ctx.connection.execution_options(no_parameters=True).exec_driver_sql(sql)
    return [tuple(row) for row in result]


def literal(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(eq=False)
class Held:
    """What a revision sends with its commit instead of on its own round trip
    (steps/transaction.py, one_round_trip_per_revision): its transactional SQL file, and
    Alembic's alembic_version statements. The run's lock hand-over keeps it (steps/run.py)."""

    file: SqlFile | None = None
    versions: list = field(default_factory=list)  # transaction.VersionChange
    # Whether a direct run has prepared its bookkeeping statements on its connection yet
    # (steps/prepared_handover.py).
    prepared: bool = False


def run_of(ctx: MigrationContext):
    """The Run (steps/run.py) that env.py's context.configure(run=...) hung on the context.

    The one channel to the run: Alembic calls a shim's run_up and its own HeadMaintainer
    with no argument of ours. Every other step receives the Run as an argument.
    """
    return ctx.opts["run"]
