"""Names as PostgreSQL needs them written: quoted when mixed case, spaced or reserved.

Every identifier autogenerate writes by hand (outside Alembic's own rendering,
which quotes already) goes through quoted(), so a model with a column called
"Score" or a table called "foobar fk" gets SQL that names the right object.
"""

import hashlib

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


LONGEST_NAME = 63  # bytes: PostgreSQL's NAMEDATALEN - 1, beyond which it cuts a name silently
HASHED = 8  # hex digits of the whole name's md5 in a name cut to fit


def fitted_name(*parts: str, suffix: str = "") -> str:
    """A name autogenerate makes ("_".join(parts) + suffix) as PostgreSQL will store it.

    Within 63 bytes it is as given. Longer, PostgreSQL would cut it silently: two objects
    could get one name, and a rerun's catalog check would look for the uncut one. So the
    joined parts are cut (at a character boundary) to leave room for "_", 8 hex digits of the
    whole name's md5 and the suffix, as SQLAlchemy's naming convention does with a hash: the
    same parts always give the same name, and two that differ only past the cut still differ.
    """
    whole = "_".join(parts) + suffix
    if len(whole.encode()) <= LONGEST_NAME:
        return whole
    digest = hashlib.md5(whole.encode(), usedforsecurity=False).hexdigest()[:HASHED]
    room = LONGEST_NAME - len(suffix.encode()) - HASHED - 1
    head = "_".join(parts).encode()[:room].decode(errors="ignore")
    return f"{head}_{digest}{suffix}"
