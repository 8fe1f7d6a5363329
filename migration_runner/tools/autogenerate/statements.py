"""Small statements several renderers write the same way: drops of constraints and indexes,
online index builds, and the line-breaking sqlfluff cannot do for them.

Every name goes through identifiers.quoted(), so a mixed-case, spaced or reserved name
reaches PostgreSQL as the object it names.
"""

from migration_runner.tools.autogenerate.identifiers import quoted
from migration_runner.tools.autogenerate.plan import Statement

# An identifier as PostgreSQL's and SQLAlchemy's SQL write it: in quotes, or bare.
IDENTIFIER = r'(?:"(?:[^"]|"")+"|[^\s"(]+)'
MAX_LINE = 100  # .sqlfluff's, the statement's semicolon included
BRIEF = "takes an ACCESS EXCLUSIVE lock on {table}, briefly (no table rewrite)"


def brief(table: str) -> str:
    """The comment clause of a catalog-only change on table."""
    return BRIEF.format(table=table)


def unquoted(name: str) -> str:
    """An identifier as SQL writes it ("Score", users) back to the name itself."""
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def drop_constraint(table: str, name: str, comment: str) -> Statement:
    """DROP CONSTRAINT, which squawk bans unless someone meant it: here the models say so."""
    return Statement(
        f"ALTER TABLE {quoted(table)} DROP CONSTRAINT {quoted(name)}",
        comment,
        "ban-drop-constraint",
    )


def drop_index_concurrently(name: str, comment: str) -> Statement:
    """DROP INDEX without blocking writes; a rerun after an interruption repeats it."""
    return Statement(f"DROP INDEX CONCURRENTLY IF EXISTS {quoted(name)}", comment)


def concurrently(create_index: str) -> str:
    """CREATE [UNIQUE] INDEX as an online build that a rerun after an interruption repeats."""
    for plain in ("CREATE UNIQUE INDEX ", "CREATE INDEX "):
        if create_index.startswith(plain):
            online = f"{plain}CONCURRENTLY IF NOT EXISTS {create_index[len(plain) :]}"
            return fitted(online, " ON ")
    return create_index


def fitted(sql: str, before: str) -> str:
    """sql on two lines, broken before `before`, when one line would be longer than sqlfluff
    allows (it cannot break these statements itself)."""
    if len(sql.split("\n", 1)[0]) < MAX_LINE or before not in sql:
        return sql
    head, tail = sql.split(before, 1)
    return f"{head}\n{before.strip()} {tail}"


def ignoring(statements: list[Statement], rule: str) -> list[Statement]:
    """A destructive statement squawk bans: the header says Destructive: yes, and the
    runner's data-loss guard stops it while rows are there."""
    for statement in statements:
        statement.squawk_ignore = rule
    return statements
