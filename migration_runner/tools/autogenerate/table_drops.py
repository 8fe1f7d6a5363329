"""A dropped table takes its triggers with it, and the trigger functions only it used.

DROP TABLE drops the table's triggers; a function that only those triggers
called would be left behind, calling nothing. So the contract revision drops
the table, then each function no other trigger (or other object) uses; its down
recreates each function from PostgreSQL's own text (pg_get_functiondef), the
table (empty, by Alembic), then each trigger (pg_get_triggerdef), the comments
on both, and the grants the table had (the schema's default privileges would
otherwise give the recreated table other ones: audit_logs' append-only INSERT
and SELECT would come back as SELECT, INSERT, UPDATE, DELETE).
"""

import re
from dataclasses import dataclass
from graphlib import TopologicalSorter

from alembic.operations import ops
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from migration_runner.bookkeeping import RUNNER_TABLES
from migration_runner.steps.phases import CONTRACT
from migration_runner.tools.autogenerate import lock_facts
from migration_runner.tools.autogenerate.identifiers import literal, quoted
from migration_runner.tools.autogenerate.plan import Plan, Statement

TRIGGERS = """
SELECT t.tgname, pg_get_triggerdef(t.oid), obj_description(t.oid, 'pg_trigger'), t.tgfoid
FROM pg_trigger AS t
WHERE t.tgrelid = to_regclass(:table) AND NOT t.tgisinternal
ORDER BY t.tgname
"""
# The functions this table's triggers call that nothing else needs: no other table's trigger,
# and no other dependent object (a view, a default, an event trigger) besides them.
OWN_FUNCTIONS = """
SELECT DISTINCT p.oid::regprocedure::text, pg_get_functiondef(p.oid),
    obj_description(p.oid, 'pg_proc')
FROM pg_trigger AS t
INNER JOIN pg_proc AS p ON p.oid = t.tgfoid
WHERE t.tgrelid = to_regclass(:table) AND NOT t.tgisinternal
    AND NOT EXISTS (
        SELECT FROM pg_trigger AS other
        WHERE other.tgfoid = p.oid AND other.tgrelid <> t.tgrelid
    )
    AND NOT EXISTS (
        SELECT FROM pg_depend AS d
        WHERE d.refclassid = 'pg_proc'::regclass AND d.refobjid = p.oid
            AND d.classid <> 'pg_trigger'::regclass AND d.deptype = 'n'
    )
ORDER BY 1
"""
# The functions this table's triggers call that triggers of other tables call too, when every
# one of those tables goes as well (:gone): dropped once, after all of them.
SHARED_FUNCTIONS = """
SELECT DISTINCT p.oid::regprocedure::text, pg_get_functiondef(p.oid),
    obj_description(p.oid, 'pg_proc')
FROM pg_trigger AS t
INNER JOIN pg_proc AS p ON p.oid = t.tgfoid
WHERE t.tgrelid = to_regclass(:table) AND NOT t.tgisinternal
    AND EXISTS (
        SELECT FROM pg_trigger AS other
        WHERE other.tgfoid = p.oid AND other.tgrelid <> t.tgrelid
    )
    AND NOT EXISTS (
        SELECT FROM pg_trigger AS other
        WHERE other.tgfoid = p.oid AND NOT other.tgrelid::regclass::text = ANY(:gone)
    )
    AND NOT EXISTS (
        SELECT FROM pg_depend AS d
        WHERE d.refclassid = 'pg_proc'::regclass AND d.refobjid = p.oid
            AND d.classid <> 'pg_trigger'::regclass AND d.deptype = 'n'
    )
ORDER BY 1
"""
TABLES = """
SELECT relname FROM pg_class
WHERE relkind IN ('r', 'p') AND relnamespace = current_schema()::regnamespace
"""
# Its indexes that no constraint owns: Alembic's create_table does not make them.
INDEXES = """
SELECT i.relname, pg_get_indexdef(x.indexrelid)
FROM pg_index AS x
INNER JOIN pg_class AS i ON i.oid = x.indexrelid
WHERE x.indrelid = to_regclass(:table)
    AND NOT EXISTS (SELECT FROM pg_constraint AS c WHERE c.conindid = x.indexrelid)
ORDER BY 1
"""
# Where a trigger definition is broken into lines (pg_get_triggerdef writes one).
TRIGGER_CLAUSES = re.compile(r" (?=(?:BEFORE|AFTER|INSTEAD OF|FOR EACH|EXECUTE FUNCTION) )")
# Who may do what on the table, besides its owner (pg_dump's GRANT lines, as rows).
GRANTS = """
SELECT a.grantee::regrole::text, string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type)
FROM pg_class AS c, aclexplode(c.relacl) AS a
WHERE c.oid = to_regclass(:table) AND a.grantee <> c.relowner AND a.grantee <> 0
GROUP BY a.grantee
ORDER BY 1
"""


@dataclass(frozen=True)
class TableExtras:
    """What DROP TABLE takes or leaves that Alembic's drop_table and create_table do not say."""

    table: str
    triggers: list[tuple[str, str, str | None]]  # name, definition, comment
    functions: list[tuple[str, str, str | None]]  # signature, definition, comment
    grants: list[tuple[str, str]]  # grantee, privileges
    indexes: list[tuple[str, str]]  # name, definition

    def drop_functions(self) -> list[Statement]:
        """After DROP TABLE (which dropped the triggers that called them)."""
        return [
            Statement(
                f"DROP FUNCTION {signature}",
                f"Drop {signature}, which only the triggers of {self.table} called: "
                + lock_facts.describe("drop_function", self.table, function=signature),
                "ban-drop-function",
            )
            for signature, _, _ in self.functions
        ]

    def create_functions(self) -> list[Statement]:
        """Before the table comes back: its triggers call them."""
        made = []
        for signature, definition, comment in self.functions:
            made.append(
                Statement(
                    definition.strip(),
                    f"Recreate {signature} as it was "
                    "(pg_get_functiondef): the triggers below call it.",
                )
            )
            if comment is not None:
                made.append(
                    Statement(
                        f"COMMENT ON FUNCTION {signature} IS\n{literal(comment)}",
                        "Its comment, as it was.",
                    )
                )
        return made

    def create_triggers(self) -> list[Statement]:
        """After the table is back: its triggers and grants, as they were."""
        made = [
            Statement(
                definition.replace(" ON public.", " ON "),
                f"Rebuild index {name} on the empty table (nothing to wait for).",
            )
            for name, definition in self.indexes
        ]
        for name, definition, comment in self.triggers:
            definition = TRIGGER_CLAUSES.sub("\n", definition.replace(" ON public.", " ON "))
            made.append(
                Statement(
                    definition,
                    f"Recreate trigger {name} as it was "
                    "(pg_get_triggerdef): " + lock_facts.describe("create_trigger", self.table),
                )
            )
            if comment is not None:
                made.append(
                    Statement(
                        f"COMMENT ON TRIGGER {quoted(name)} ON {quoted(self.table)} IS\n{literal(comment)}",
                        "Its comment, as it was.",
                    )
                )
        for grantee, privileges in self.grants:
            made.append(
                Statement(
                    f"REVOKE ALL ON {quoted(self.table)} FROM {grantee}",
                    f"{grantee} gets its rights on {self.table} back as they were: "
                    "first none of what the schema's default privileges gave it,",
                )
            )
            made.append(
                Statement(
                    f"GRANT {privileges} ON {quoted(self.table)} TO {grantee}",
                    f"then what it had: {privileges}.",
                )
            )
        return made


def read(connection: Connection, table: str) -> TableExtras:
    """The table's triggers, the functions only they use, and its grants, as the database has
    them."""
    params = {"table": quoted(table)}
    triggers = connection.execute(text(TRIGGERS), params).all()
    functions = connection.execute(text(OWN_FUNCTIONS), params).all()
    grants = connection.execute(text(GRANTS), params).all()
    indexes = connection.execute(text(INDEXES), params).all()
    return TableExtras(
        table,
        [(name, definition, comment) for name, definition, comment, _ in triggers],
        [tuple(row) for row in functions],
        [tuple(row) for row in grants],
        [tuple(row) for row in indexes],
    )


def gone_tables(connection: Connection, metadata: MetaData) -> list[str]:
    """The tables the models no longer map, by any name (a renamed one is not gone)."""
    renamed = {table.info.get("renamed_from") for table in metadata.tables.values()}
    kept = metadata.tables.keys() | renamed | set(RUNNER_TABLES)
    return sorted(quoted(row[0]) for row in connection.execute(text(TABLES)) if row[0] not in kept)


def _drop_shared_functions(
    connection: Connection, table: str, plan: Plan, metadata: MetaData
) -> None:
    """The functions of this table's triggers that only tables going with it also call: once
    all of them are dropped (the contract's online steps), and recreated before any of them."""
    params = {"table": quoted(table), "gone": gone_tables(connection, metadata)}
    shared = TableExtras(
        table,
        [],
        [tuple(row) for row in connection.execute(text(SHARED_FUNCTIONS), params)],
        [],
        [],
    )
    done = {statement.sql for statement in plan.parts[(CONTRACT, True)].up}
    for function in shared.functions:
        drop = TableExtras("the dropped tables", [], [function], [], [])
        if drop.drop_functions()[0].sql not in done:
            plan.pair(drop.drop_functions(), drop.create_functions(), online=True, phase=CONTRACT)


def with_extras(
    connection: Connection,
    table: str,
    up: list[Statement],
    down: list[Statement],
    plan: Plan | None = None,
    metadata: MetaData | None = None,
) -> tuple[list[Statement], list[Statement]]:
    """up (DROP TABLE) and down (the table recreated) with the triggers, functions and grants
    around them. With plan and metadata, a function that only dropped tables call goes too."""
    if plan is not None and metadata is not None:
        _drop_shared_functions(connection, table, plan, metadata)
    extras = read(connection, table)
    for statement in down:  # Alembic writes a table's comment on one line, however long
        if statement.sql.startswith("COMMENT ON TABLE ") and " IS '" in statement.sql:
            statement.sql = statement.sql.replace(" IS '", " IS\n'", 1)
    return (
        [*up, *extras.drop_functions()],
        [*extras.create_functions(), *down, *extras.create_triggers()],
    )


# Foreign keys between tables: (referencing, referenced).
REFERENCES = """
SELECT DISTINCT c.conrelid::regclass::text, c.confrelid::regclass::text
FROM pg_constraint AS c
WHERE c.contype = 'f' AND c.conrelid <> c.confrelid
"""


def in_drop_order(operations: list, connection: Connection) -> list:
    """operations with the dropped tables in an order PostgreSQL accepts: a table before the
    tables it references (and so, in the downs, which run in reverse, after them). Only the
    DropTableOps move, among their own places."""
    drops = [op for op in operations if isinstance(op, ops.DropTableOp)]
    if len(drops) < 2:
        return operations
    gone = {quoted(op.table_name): op for op in drops}
    must_come_first = {name: set() for name in gone}  # a table: the tables that reference it
    for referencing, referenced in connection.execute(text(REFERENCES)):
        if referencing in gone and referenced in gone:
            must_come_first[referenced].add(referencing)
    ordered = iter([gone[name] for name in TopologicalSorter(must_come_first).static_order()])
    return [next(ordered) if isinstance(op, ops.DropTableOp) else op for op in operations]


def taken_with_table(op: ops.MigrateOperation, dropped_tables: set[str]) -> bool:
    """An index the diff drops on a table it drops: DROP TABLE takes it, in the contract
    phase (the old code still reads the table until then), and the down rebuilds it."""
    return isinstance(op, ops.DropIndexOp) and op.table_name in dropped_tables
