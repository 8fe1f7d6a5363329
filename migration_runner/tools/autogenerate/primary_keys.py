"""Primary keys added, dropped or moved to other columns, on tables that have rows.

Alembic does not compare primary keys, so they are compared here (pg_constraint
against each model's PrimaryKeyConstraint), beside model_parity's differences,
and `alembic check` reports them too. A key is never built under ACCESS
EXCLUSIVE with a scan:

- expand, online steps: `CREATE UNIQUE INDEX CONCURRENTLY` on the new key's
  columns, under a temporary name (a duplicate makes it fail, before anything
  else changed); the columns become NOT NULL by the CHECK route where the
  models make them so (render_columns, in the contract online steps, before
  the key);
- contract, online steps: one ALTER TABLE drops the old key and attaches the
  new one (`ADD CONSTRAINT ... PRIMARY KEY USING INDEX`), so there is no moment
  without a key; the old code, which may still look rows up by the old key, is
  gone by then;
- the down builds the old key's index CONCURRENTLY and swaps back the same way.

A key another table's foreign key references is refused: the foreign key needs
its index, and moving both is a change to write by hand.
"""

from dataclasses import dataclass

from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from migration_runner.bookkeeping import RUNNER_TABLES
from migration_runner.errors import MigrationError
from migration_runner.steps.phases import CONTRACT
from migration_runner.tools.autogenerate import lock_facts
from migration_runner.tools.autogenerate.identifiers import fitted_name, quoted
from migration_runner.tools.autogenerate.plan import Statement
from migration_runner.tools.autogenerate.renderers import ADDED, DROPPED, Context, mismatch, renders
from migration_runner.tools.autogenerate.statements import (
    MAX_LINE,
    concurrently,
    drop_index_concurrently,
)
from migration_runner.tools.model_parity import ModelMismatch

KIND = "PRIMARY KEY"
STAGING = "__new"
KEYS = """
SELECT t.relname, c.conname, array_agg(a.attname::text ORDER BY k.ord),
    coalesce((
        SELECT string_agg(f.conname || ' on ' || f.conrelid::regclass::text, ', ')
        FROM pg_constraint AS f
        WHERE f.contype = 'f' AND f.confrelid = c.conrelid AND f.conindid = c.conindid
    ), '')
FROM pg_constraint AS c
INNER JOIN pg_class AS t ON t.oid = c.conrelid
CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k (attnum, ord)
INNER JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
WHERE c.contype = 'p' AND t.relnamespace = current_schema()::regnamespace
GROUP BY t.relname, c.conname, c.conrelid, c.conindid
"""
TABLES = """
SELECT relname FROM pg_class
WHERE relkind IN ('r', 'p') AND relnamespace = current_schema()::regnamespace
"""


@dataclass(frozen=True)
class Key:
    name: str
    columns: tuple[str, ...]

    @property
    def listed(self) -> str:
        return "(" + ", ".join(map(quoted, self.columns)) + ")"


class KeyDifference(ModelMismatch):
    """A table whose primary key is not the models': added, dropped or on other columns."""

    def __init__(self, table: str, database: Key | None, models: Key | None, referenced_by: str):
        name = (models or database).name
        super().__init__(KIND, table, name, database and database.listed, models and models.listed)
        self.database_key, self.model_key, self.referenced_by = database, models, referenced_by

    @property
    def index_names(self) -> set[str]:
        """The keys' indexes, named after them."""
        return {key.name for key in (self.database_key, self.model_key) if key is not None}

    @property
    def message(self) -> str:
        return (
            f"primary key of {self.table} differs: database {self.database or 'none'} / "
            f"models {self.models or 'none'}"
        )


def mismatches(connection: Connection, metadata: MetaData) -> list[KeyDifference]:
    """Every table, in the database and the models, whose primary key differs."""
    tables = {row[0] for row in connection.execute(text(TABLES))} - set(RUNNER_TABLES)
    database = {}
    for table, name, columns, referenced_by in connection.execute(text(KEYS)):
        database[table] = (Key(name, tuple(columns)), referenced_by)
    found = []
    for table in sorted(tables & metadata.tables.keys()):
        constraint = metadata.tables[table].primary_key
        columns = tuple(column.name for column in constraint.columns)
        models = Key(str(constraint.name or f"{table}_pkey"), columns) if columns else None
        in_db, referenced_by = database.get(table, (None, ""))
        if (in_db and in_db.columns) != (models and models.columns):
            found.append(KeyDifference(table, in_db, models, referenced_by))
    return found


def _staged(name: str) -> str:
    return fitted_name(name, suffix=STAGING)  # within 63 bytes, and not another's


def _build_index(table: str, key: Key, why: str) -> Statement:
    index = _staged(key.name)
    return Statement(
        concurrently(f"CREATE UNIQUE INDEX {quoted(index)} ON {quoted(table)} {key.listed}"),
        f"{why}: "
        + lock_facts.describe("create_unique_index_concurrently", table, index=index)
        + "; fails on a duplicate, before anything else changed.",
    )


def _swap(table: str, old: Key | None, new: Key | None, why: str) -> Statement:
    """Drop old and attach new in one statement: no moment without a key."""
    sql = f"ALTER TABLE {quoted(table)}"
    if old is not None:  # on the first line: squawk-ignore covers the line a statement starts on
        sql += f" DROP CONSTRAINT {quoted(old.name)}" + ("," if new is not None else "")
    if new is not None:
        index = _staged(new.name)
        add = f"ADD CONSTRAINT {quoted(new.name)} PRIMARY KEY USING INDEX {quoted(index)}"
        if len(add) >= MAX_LINE - 1:  # sqlfluff's limit, the semicolon included
            add = add.replace(" USING INDEX ", "\nUSING INDEX ")
        sql += "\n" + add
    facts = []
    if old is not None:
        facts.append("the drop " + lock_facts.describe("drop_primary_key", table, index=old.name))
    if new is not None:
        facts.append(
            "the new key "
            + lock_facts.describe("add_primary_key_using_index", table, index=_staged(new.name))
            + ", its index taking the key's name"
        )
    return Statement(
        sql,
        f"{why}, in one statement (no moment without a key): " + "; ".join(facts) + ".",
        "ban-drop-constraint" if old is not None else "",
    )


@renders(mismatch(KIND, DROPPED))
def key_dropped(difference: KeyDifference, context: Context) -> None:
    """A key the models no longer declare; one they declare instead is written with it, as
    one swap (key_added), not a drop then an add."""
    if difference.model_key is None:
        _write(difference, context)


@renders(mismatch(KIND, ADDED))
def key_added(difference: KeyDifference, context: Context) -> None:
    _write(difference, context)


def _write(difference: KeyDifference, context: Context) -> None:
    table, old, new = difference.table, difference.database_key, difference.model_key
    if old is not None and difference.referenced_by:
        raise MigrationError(
            f"The primary key {old.name} of {table} moves from {old.listed} to "
            f"{new.listed if new else 'none'}, but {difference.referenced_by} references it: "
            "move the foreign keys with it by hand (alembic revision -m ...)."
        )
    if new is not None:
        context.plan.pair(
            [_build_index(table, new, f"The index of {table}'s new primary key {new.listed}")],
            [drop_index_concurrently(_staged(new.name), "Drop it, if the swap back left it.")],
            online=True,
        )
    down = []
    if old is not None:
        down.append(_build_index(table, old, f"The index of the old primary key {old.listed}"))
    down.append(_swap(table, new, old, f"The old primary key {old.listed if old else 'none'} back"))
    what = f"{table}'s primary key moves to {new.listed}" if new else f"{table} loses its key"
    context.plan.pair([_swap(table, old, new, what)], down, online=True, phase=CONTRACT)
