"""Names as PostgreSQL needs them written: quoted when mixed case, spaced or reserved.

Every identifier autogenerate writes by hand (outside Alembic's own rendering,
which quotes already) goes through quoted(), so a model with a column called
"Score" or a table called "foobar fk" gets SQL that names the right object.
"""

from sqlalchemy.dialects import postgresql

_PREPARER = postgresql.dialect().identifier_preparer
# The dialect that compiles SQL as a file holds it: named parameters, so a `%` (a CHECK's
# modulo, a LIKE pattern) stays one `%` (psycopg2's pyformat would double it).
AS_RUN = postgresql.dialect(paramstyle="named")


def quoted(name: str) -> str:
    """name as an SQL identifier: as is when PostgreSQL folds it to itself, else in quotes."""
    return _PREPARER.quote(name)


def literal(text: str) -> str:
    """text as an SQL string literal (for catalog lookups such as to_regclass)."""
    return "'" + text.replace("'", "''") + "'"


def regclass(table: str) -> str:
    """The to_regclass() argument that finds table whatever its spelling."""
    return literal(quoted(table))
