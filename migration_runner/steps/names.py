"""Names parsed out of a revision's SQL, written back as SQL for the runner's catalog lookups.

pglast gives a name as PostgreSQL stores it: an unquoted name folded to lower
case, a quoted one as written ("foobar fk", "Users", "select"). Pasted back
into SQL unquoted, such a name means another object or is a syntax error
(`to_regclass('foobar fk')`); quoted, it always means itself.
"""

import re

from migration_runner.steps.emit import literal

# A name PostgreSQL reads back as itself without quotes (keywords aside: shown() is for messages).
PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")


def quoted(name: str) -> str:
    """name as an SQL identifier that means exactly it."""
    return '"' + name.replace('"', '""') + '"'


def qualified(*parts: str | None) -> str:
    """schema.name (or name) as SQL, every part quoted: for statements and to_regclass."""
    return ".".join(quoted(part) for part in parts if part)


def regclass(*parts: str | None) -> str:
    """The to_regclass() argument, an SQL literal, that finds this relation whatever its name."""
    return literal(qualified(*parts))


def shown(*parts: str | None) -> str:
    """schema.name as a reader expects it in a message: quoted only where it has to be."""
    return ".".join(part if PLAIN.fullmatch(part) else quoted(part) for part in parts if part)
