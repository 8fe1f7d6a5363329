"""Send SQL text verbatim: executed online, written to the script offline.

SQLAlchemy's text() would read `:name` as a bind parameter, and psycopg2
would read `%` as a placeholder whenever parameters are passed. Running the
string through exec_driver_sql with no_parameters=True hands it to the driver
untouched, so colons, percent signs, `::` casts and dollar quotes all survive.
"""

from alembic.runtime.migration import MigrationContext


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
