"""What Alembic's comparison misses: CHECK expressions and index definitions.

Alembic compares tables, columns, types, defaults, keys, indexes by their
columns and comments, but a CHECK constraint only by name (if at all) and an
index's expressions and predicate not at all. Here PostgreSQL itself is the
judge: the models are created in a scratch schema inside a savepoint that is
rolled back, and pg_get_constraintdef / pg_get_indexdef of both sides are
compared name by name. A difference names the object and shows both texts.

These differences reach every comparison through Alembic's own: this module is an Alembic
plugin (NAME, which comparison.py's options list) whose schema-level comparator runs after
Alembic's comparison of the tables and appends them to its diff, as ModelMismatch ops. So
`alembic check` fails on them, comparison.differences() lists them, and `alembic revision
--autogenerate` finds them in the diff it is handed (autogenerate/revision.py).
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from alembic.operations import ops
from alembic.runtime.plugins import Plugin
from alembic.util import DispatchPriority, PriorityDispatchResult
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from migration_runner.bookkeeping import RUNNER_TABLES

NAME = "migration_runner.model_parity"
# A context.configure() option: True keeps the CHECK and index differences of tables added or
# dropped whole in the diff (autogenerate's refused draft names them); without it they are
# left out, as `alembic check` and comparison.differences() leave them out.
WHOLE_TABLES = "model_parity_whole_tables"

CHECKS = """
SELECT t.relname, c.conname, pg_get_constraintdef(c.oid)
FROM pg_constraint AS c
INNER JOIN pg_class AS t ON t.oid = c.conrelid
INNER JOIN pg_namespace AS n ON n.oid = t.relnamespace
WHERE c.contype = 'c' AND n.nspname = :schema AND t.relname NOT IN :runner
"""
INDEXES = """
SELECT t.relname, i.relname, pg_get_indexdef(i.oid)
FROM pg_index AS x
INNER JOIN pg_class AS i ON i.oid = x.indexrelid
INNER JOIN pg_class AS t ON t.oid = x.indrelid
INNER JOIN pg_namespace AS n ON n.oid = t.relnamespace
WHERE n.nspname = :schema AND t.relname NOT IN :runner
"""


class ModelMismatch(ops.MigrateOperation):
    """One difference Alembic does not see, carried in its diff so `alembic check` fails."""

    def __init__(self, kind: str, table: str, name: str, database: str | None, models: str | None):
        self.kind, self.table, self.name = kind, table, name
        self.database, self.models = database, models

    @property
    def message(self) -> str:
        if self.database is None:
            return f"{self.kind} {self.name} on {self.table} is in the models only: {self.models}"
        if self.models is None:
            return (
                f"{self.kind} {self.name} on {self.table} is in the database only: {self.database}"
            )
        return (
            f"{self.kind} {self.name} on {self.table} differs: "
            f"database {self.database} / models {self.models}"
        )

    def to_diff_tuple(self) -> tuple:
        return ("model_mismatch", self.message)

    def reverse(self) -> "ModelMismatch":
        return ModelMismatch(self.kind, self.table, self.name, self.models, self.database)


@contextmanager
def _with_parameters(connection: Connection) -> Iterator[Connection]:
    """connection, its statements executed with (empty) parameters meanwhile.

    SQLAlchemy writes a `%` of DDL text (a CHECK's `price % 5`, `LIKE 'a%'`) as `%%` for
    psycopg2's pyformat, which undoes it only when parameters are handed over; the runner sets
    no_parameters=True on the connection (steps/emit.py: in place, as SQLAlchemy 2 does), with
    which `%%` reached PostgreSQL as it was.
    """
    before = connection.get_execution_options().get("no_parameters", False)
    connection.execution_options(no_parameters=False)
    try:
        yield connection
    finally:
        connection.execution_options(no_parameters=before)


def create_models(connection: Connection, metadata: MetaData) -> None:
    """metadata.create_all, every `%` of the models' DDL reaching PostgreSQL once."""
    with _with_parameters(connection):
        metadata.create_all(connection)


def _definitions(connection: Connection, schema: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(kind, name) -> (table, definition), with the schema taken out of index texts."""
    found = {}
    runner = {"schema": schema, "runner": RUNNER_TABLES}
    for table, name, definition in connection.execute(text(CHECKS), runner):
        found[("CHECK", name)] = (table, definition)
    for table, name, definition in connection.execute(text(INDEXES), runner):
        found[("INDEX", name)] = (table, definition.replace(f" ON {schema}.", " ON "))
    return found


def mismatches(connection: Connection, metadata: MetaData) -> list[ModelMismatch]:
    """Every CHECK and index whose definition differs between the database and the models."""
    database_schema = connection.execute(text("SELECT current_schema()")).scalar()
    database = _definitions(connection, database_schema)
    scratch = f"model_parity_{uuid.uuid4().hex[:8]}"
    savepoint = connection.begin_nested()
    try:
        connection.exec_driver_sql(f"CREATE SCHEMA {scratch}")
        connection.exec_driver_sql(f"SET LOCAL search_path = {scratch}")
        create_models(connection, metadata)
        models = _definitions(connection, scratch)
    finally:
        savepoint.rollback()  # the scratch schema and search_path go with it
    found = []
    for key in sorted(database.keys() | models.keys()):
        in_db, in_models = database.get(key), models.get(key)
        if in_db != in_models:
            table = (in_db or in_models)[0]
            found.append(
                ModelMismatch(key[0], table, key[1], in_db and in_db[1], in_models and in_models[1])
            )
    from migration_runner.tools.autogenerate import kinds  # enums, keys, sequences: their own

    return kinds.with_kinds(found, connection, metadata)


def whole_tables(upgrade_ops) -> set[str]:
    """The tables an Alembic diff adds or drops whole."""
    return {
        op.table_name
        for op in upgrade_ops.ops
        if isinstance(op, (ops.CreateTableOp, ops.DropTableOp))
    }


def beyond_whole_tables(mismatches: list, tables: set[str]) -> list:
    """mismatches less the CHECKs and indexes of tables added or dropped whole: Alembic's
    `table ... is in the models only` (or database only) line says them already, as it says a
    new table's primary key index."""
    return [m for m in mismatches if not (m.kind in ("CHECK", "INDEX") and m.table in tables)]


def compare(autogen_context, upgrade_ops, schemas) -> PriorityDispatchResult:
    """The plugin's schema-level comparator: our differences join Alembic's diff, after its
    own of the tables (those of tables added or dropped whole left out, unless WHOLE_TABLES)."""
    metadata = autogen_context.metadata
    if metadata is None:  # nothing to compare with (autogenerate without target_metadata)
        return PriorityDispatchResult.CONTINUE
    found = mismatches(autogen_context.connection, metadata)
    if not autogen_context.opts.get(WHOLE_TABLES):
        found = beyond_whole_tables(found, whole_tables(upgrade_ops))
    upgrade_ops.ops.extend(found)
    return PriorityDispatchResult.CONTINUE


try:  # LAST: after Alembic's "tables" comparator (MEDIUM), whose ops say the whole tables
    Plugin(NAME).add_autogenerate_comparator(
        compare, "schema", "model_parity", priority=DispatchPriority.LAST
    )
except ValueError:  # registered already (the module imported under another name)
    pass
