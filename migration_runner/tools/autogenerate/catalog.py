"""What PostgreSQL knows about the objects a column change carries with it.

A column that the contract phase drops takes its indexes and constraints with
it (DROP COLUMN drops them); its replacement needs its own, built in the expand
phase; a downgrade rebuilds the old ones. PostgreSQL is the judge of what
depends on a column (pg_depend): in the database, and for the models in a
scratch schema created inside a savepoint that is rolled back. The database's
objects are rebuilt from their own definitions (pg_get_indexdef,
pg_get_constraintdef, as pg_dump does); the models' are made by the models' DDL.
"""

import re
import uuid
from dataclasses import dataclass, replace

import pglast
from pglast import ast, visitors
from pglast.stream import RawStream
from sqlalchemy import (
    CheckConstraint,
    ForeignKeyConstraint,
    MetaData,
    Table,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.schema import AddConstraint, CreateIndex

from migration_runner.errors import MigrationError
from migration_runner.tools.autogenerate.identifiers import AS_RUN, quoted
from migration_runner.tools.autogenerate.statements import IDENTIFIER, unquoted
from migration_runner.tools.model_parity import create_models

# The objects that depend on one column, one row each (a CHECK depends on its column twice),
# plus the foreign keys of other tables that reference it.
DEPENDENTS = """
SELECT DISTINCT
    CASE
        WHEN c.oid IS NOT NULL THEN c.contype::text
        WHEN x.indexrelid IS NOT NULL THEN 'index'
        WHEN ad.adnum = a.attnum THEN 'default'
        ELSE 'other'
    END AS kind,
    coalesce(c.conname, i.relname, pg_describe_object(d.classid, d.objid, d.objsubid)) AS name,
    coalesce(pg_get_constraintdef(c.oid), pg_get_indexdef(x.indexrelid), '') AS definition,
    coalesce(pg_get_indexdef(c.conindid), '') AS index_definition
FROM pg_depend AS d
INNER JOIN pg_attribute AS a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
LEFT JOIN pg_constraint AS c ON d.classid = 'pg_constraint'::regclass AND c.oid = d.objid
LEFT JOIN pg_index AS x ON d.classid = 'pg_class'::regclass AND x.indexrelid = d.objid
LEFT JOIN pg_class AS i ON i.oid = x.indexrelid
LEFT JOIN pg_attrdef AS ad ON d.classid = 'pg_attrdef'::regclass AND ad.oid = d.objid
WHERE d.refclassid = 'pg_class'::regclass
    AND d.refobjid = to_regclass(:table)
    AND a.attname = :column
    AND d.deptype IN ('a', 'n')
UNION ALL
SELECT 'referenced', c.conname || ' on ' || c.conrelid::regclass::text, '', ''
FROM pg_constraint AS c
INNER JOIN pg_attribute AS a ON a.attrelid = c.confrelid AND a.attnum = ANY(c.confkey)
WHERE c.contype = 'f' AND c.confrelid = to_regclass(:table) AND a.attname = :column
ORDER BY 2
"""
# A table's named objects: constraints, the indexes no constraint owns, its own triggers.
OBJECTS = """
SELECT 'constraint', conname FROM pg_constraint WHERE conrelid = to_regclass(:table)
UNION ALL
SELECT 'index', i.relname
FROM pg_index AS x
INNER JOIN pg_class AS i ON i.oid = x.indexrelid
WHERE x.indrelid = to_regclass(:table) AND NOT EXISTS (
    SELECT FROM pg_constraint AS c WHERE c.conindid = x.indexrelid AND c.conrelid = x.indrelid
)
UNION ALL
SELECT 'trigger', tgname FROM pg_trigger WHERE tgrelid = to_regclass(:table) AND NOT tgisinternal
ORDER BY 1, 2
"""
COLUMNS = """
SELECT attname FROM pg_attribute
WHERE attrelid = to_regclass(:table) AND attnum > 0 AND NOT attisdropped
ORDER BY attnum
"""
# The name a statement of the models' DDL makes, quoted where PostgreSQL needs it.
MADE_NAME = re.compile(rf"(?:INDEX|CONSTRAINT) ({IDENTIFIER})")
# What a new column can be given CONCURRENTLY or NOT VALID; anything else is refused.
CARRIED = {"index": "index", "c": "check", "f": "foreign key", "u": "unique"}
# PostgreSQL 18 records NOT NULL as a constraint (contype n): nullability is handled apart.
SKIPPED = {"n", "default"}


@dataclass(frozen=True)
class Dependent:
    """An index or constraint on a column, and the statement that makes it."""

    kind: str  # index, check, foreign key, unique
    name: str
    statement: str  # CREATE INDEX ..., or ALTER TABLE ... ADD CONSTRAINT ...
    index_statement: str = ""  # a unique constraint's index, to build it CONCURRENTLY

    def moved(self, columns: dict[str, str], name: str) -> "Dependent":
        """The same object under another name, on the columns renamed as `columns` says."""
        index = self.index_statement and _retarget(self.index_statement, columns, name)
        return replace(
            self,
            name=name,
            statement=_retarget(self.statement, columns, name),
            index_statement=index,
        )


class _Retarget(visitors.Visitor):
    """Renames column references (expressions, index columns, key lists) and the object."""

    def __init__(self, columns: dict[str, str], name: str):
        self.columns, self.name = columns, name

    def visit_ColumnRef(self, ancestors, node):
        last = node.fields[-1]
        if isinstance(last, ast.String) and last.sval in self.columns:
            fields = (*node.fields[:-1], ast.String(self.columns[last.sval]))
            return ast.ColumnRef(fields=fields, location=node.location)
        return None

    def visit_IndexElem(self, ancestors, node):
        node.name = self.columns.get(node.name, node.name)

    def visit_IndexStmt(self, ancestors, node):
        node.idxname = self.name

    def visit_Constraint(self, ancestors, node):
        if node.conname:
            node.conname = self.name
        for attribute in ("keys", "fk_attrs", "including"):
            names = getattr(node, attribute)
            if names:
                renamed = (ast.String(self.columns.get(n.sval, n.sval)) for n in names)
                setattr(node, attribute, tuple(renamed))


@dataclass(frozen=True)
class TableObjects:
    table: str
    named: list[tuple[str, str]]  # (constraint, index or trigger, its name)
    columns: list[str]  # in the table's order

    @property
    def named_after_table(self) -> list[tuple[str, str]]:
        """Those whose names start with the table's, as the naming convention makes them."""
        return [(kind, name) for kind, name in self.named if name.startswith(f"{self.table}_")]


def _retarget(statement: str, columns: dict[str, str], name: str) -> str:
    tree = pglast.parse_sql(statement)
    _Retarget(columns, name)(tree)
    return RawStream()(tree)


class Catalog:
    """Facts for one autogenerate run, read on the connection Alembic compared with."""

    def __init__(self, connection: Connection, metadata: MetaData):
        self.connection, self.metadata = connection, metadata
        self.schema = connection.execute(text("SELECT current_schema()")).scalar()

    def dependents(self, table: str, column: str) -> list[Dependent]:
        """The indexes and constraints on a column of the database."""
        return self._dependents(table, column, self.schema)

    def model_dependents(self, table: str, column: str) -> list[Dependent]:
        """The indexes and constraints the models declare on a column: which ones, PostgreSQL
        says (the models created in a scratch schema); each made by the models' own statement.

        Not by pg_get_constraintdef's text: PostgreSQL may read that back as a different tree
        (`varchar_column IN (...)` comes back with its casts moved), which would then differ
        from the models.
        """
        scratch = f"autogenerate_{uuid.uuid4().hex[:8]}"
        savepoint = self.connection.begin_nested()
        try:
            self.connection.exec_driver_sql(f"CREATE SCHEMA {scratch}")
            self.connection.exec_driver_sql(f"SET LOCAL search_path = {scratch}")
            create_models(self.connection, self.metadata)  # a CHECK's `%` once
            found = self._dependents(table, column, scratch)
        finally:
            savepoint.rollback()  # the scratch schema and search_path go with it
        statements = _model_statements(self.metadata.tables[table])
        return [replace(d, statement=statements.get(d.name, d.statement)) for d in found]

    def table_objects(self, table: str) -> TableObjects:
        named = self.connection.execute(text(OBJECTS), {"table": quoted(table)})
        columns = self.connection.execute(text(COLUMNS), {"table": quoted(table)})
        return TableObjects(table, [tuple(row) for row in named], [row[0] for row in columns])

    def names_in_use(self, table: str) -> set[str]:
        """Its constraints' and indexes' names: an object under the same name waits for the
        old one to go."""
        return {name for kind, name in self.table_objects(table).named if kind != "trigger"}

    def _dependents(self, table: str, column: str, schema: str) -> list[Dependent]:
        found = []
        rows = self.connection.execute(text(DEPENDENTS), {"table": quoted(table), "column": column})
        for kind, name, definition, index_definition in rows:
            if kind in SKIPPED:
                continue
            if kind not in CARRIED:
                raise _cannot_carry(table, column, kind, name)
            unqualified = f" ON {schema}."
            statement = (
                definition.replace(unqualified, " ON ")
                if kind == "index"
                else f"ALTER TABLE {quoted(table)} ADD CONSTRAINT {quoted(name)} {definition}"
            )
            index = index_definition.replace(unqualified, " ON ")
            found.append(Dependent(CARRIED[kind], name, statement, index))
        return found


def _model_statements(table: Table) -> dict[str, str]:
    """The statement that makes each of the table's indexes and constraints, as the models
    write it (SQLAlchemy's DDL, names from the naming convention), by name."""
    made = [CreateIndex(index) for index in table.indexes] + [
        AddConstraint(constraint, isolate_from_table=False)  # leaves the models as they are
        for constraint in table.constraints
        if isinstance(constraint, (CheckConstraint, ForeignKeyConstraint, UniqueConstraint))
    ]
    statements = {}
    for ddl in made:
        statement = str(ddl.compile(dialect=AS_RUN))
        statements[unquoted(MADE_NAME.search(statement).group(1))] = statement
    return statements


def _cannot_carry(table: str, column: str, kind: str, name: str) -> MigrationError:
    how = {
        "referenced": "is referenced by the foreign key",
        "p": "is in the primary key",
        "x": "is in the exclusion constraint",
    }.get(kind, "is used by")
    return MigrationError(
        f"{table}.{column} {how} {name}, which autogenerate does not move to a new column: "
        "write this change by hand (`alembic revision -m ...`, MIGRATIONS.md section 2)."
    )
