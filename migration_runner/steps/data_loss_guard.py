"""Refuse SQL that would destroy rows unless the user said `-x allow-data-loss=true`.

Destructive statements are found by parsing the file with pglast, which wraps
PostgreSQL's own parser: DROP TABLE, DROP SCHEMA, TRUNCATE and
ALTER TABLE ... DROP COLUMN. Comments, string literals and function bodies
that merely mention those words are not statements and do not count.
"""

import re
from dataclasses import dataclass

from alembic.runtime.migration import MigrationContext

from migration_runner.errors import MigrationError
from migration_runner.steps.emit import emit, fetch, literal
from migration_runner.steps.names import regclass, shown
from migration_runner.steps.settings import RunSettings
from migration_runner.steps.sql_files import SqlFile

# Counting stops here: enough to tell "some rows" from "a lot of rows" cheaply.
COUNT_CAP = 1_000_000
# Statements whose parse tree can be a DropStmt, TruncateStmt or AlterTableStmt
# start with one of these words; no other statement needs a parse tree here.
MAYBE_DESTRUCTIVE = {"DROP", "TRUNCATE", "ALTER"}
# A file without any of those words, even in a comment, needs no parsing at all.
ANY_OF_THEM = re.compile(r"\b(DROP|TRUNCATE|ALTER)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Destruction:
    table: str  # as a message shows it, optionally schema-qualified, quoted where it must be
    what: str  # "drops", "truncates", "drops column x of", "drops schema of"
    # The name's parts as PostgreSQL stores them (schema, table), or (schema,) for a schema.
    parts: tuple[str, ...] = ()

    @property
    def schema_wide(self) -> bool:
        return self.what == "drops schema of"


def _destruction(what: str, *parts: str | None) -> Destruction:
    kept = tuple(part for part in parts if part)
    return Destruction(shown(*kept), what, kept)


def find_destruction(sql_file: SqlFile) -> list[Destruction]:
    """Every statement in the file that removes a table's rows or a column's values."""
    if not ANY_OF_THEM.search(sql_file.text):
        return []  # pglast (35 ms to import) is never loaded for create-only files
    from pglast import ast
    from pglast.enums import AlterTableType, ObjectType

    found = []
    for statement in sql_file.statements:
        if statement.keyword and statement.keyword not in MAYBE_DESTRUCTIVE:
            continue  # CREATE, INSERT, COMMENT...: no parse tree needed
        node = statement.node
        if isinstance(node, ast.DropStmt) and node.removeType == ObjectType.OBJECT_TABLE:
            found += [_destruction("drops", *(part.sval for part in obj)) for obj in node.objects]
        elif isinstance(node, ast.DropStmt) and node.removeType == ObjectType.OBJECT_SCHEMA:
            found += [
                Destruction(f"{shown(obj.sval)}.*", "drops schema of", (obj.sval,))
                for obj in node.objects
            ]
        elif isinstance(node, ast.TruncateStmt):
            found += [
                _destruction("truncates", rel.schemaname, rel.relname) for rel in node.relations
            ]
        elif isinstance(node, ast.AlterTableStmt):
            relation = node.relation
            found += [
                _destruction(f"drops column {cmd.name} of", relation.schemaname, relation.relname)
                for cmd in node.cmds
                if cmd.subtype == AlterTableType.AT_DropColumn
            ]
    return found


def tables_with_rows(ctx: MigrationContext, destruction: Destruction) -> list[tuple[str, int]]:
    if destruction.schema_wide:
        schema = destruction.parts[0]
        tables = [
            row[0]
            for row in fetch(
                ctx,
                (
                    "SELECT c.oid::regclass::text FROM pg_class AS c"
                    " INNER JOIN pg_namespace AS n ON c.relnamespace = n.oid"
                    f" WHERE n.nspname = {literal(schema)} AND c.relkind IN ('r', 'p')"
                ),
            )
        ]
    else:
        tables = [
            row[0]
            for row in fetch(ctx, f"SELECT to_regclass({regclass(*destruction.parts)})::text")
            if row[0] is not None
        ]
    counted = []
    for table in tables:
        rows = fetch(
            ctx, f"SELECT count(*) FROM (SELECT FROM {table} LIMIT {COUNT_CAP}) AS capped"
        )[0][0]
        if rows:
            counted.append((table, rows))
    return counted


def losses(ctx: MigrationContext, destructions: list[Destruction]) -> list[str]:
    """What these would destroy now, as "drops x (5 rows)"; empty when no row is lost."""
    found = []
    for destruction in destructions:
        for table, rows in tables_with_rows(ctx, destruction):
            count = f"{rows:,}+" if rows >= COUNT_CAP else f"{rows:,}"
            found.append(f"{destruction.what} {table} ({count} rows)")
    return found


def refusal(sql_file: SqlFile, lost: list[str], state: str) -> MigrationError:
    """The one message for a refused loss; state says what the run has changed so far."""
    return MigrationError(
        f"Refusing to run {sql_file.shown}: it {'; '.join(lost)}. {state} "
        "If those rows may go, run again with `alembic -x allow-data-loss=true ...`: "
        "the runner first writes a pg_dump backup of those tables (docs/rehearse-and-backup.md)."
    )


def refuse_data_loss(ctx: MigrationContext, sql_file: SqlFile, settings: RunSettings) -> None:
    """Stop before sql_file runs if it would destroy rows; offline, emit the same check.

    The run's preflight (steps/preflight.py) has already refused every file that
    would destroy rows present when the run began; this catches rows that an
    earlier revision of the same run wrote.
    """
    destructions = [] if settings.allow_data_loss else find_destruction(sql_file)
    if not destructions:
        return
    if ctx.as_sql:
        _emit_guard(ctx, sql_file, destructions)
        return
    lost = losses(ctx, destructions)
    if lost:
        raise refusal(
            sql_file, lost, "It was not run; the revisions before it in this run are applied."
        )


def _emit_guard(ctx: MigrationContext, sql_file: SqlFile, destructions: list[Destruction]) -> None:
    tables = ", ".join(regclass(*d.parts) for d in destructions if not d.schema_wide)
    if not tables:
        return
    emit(
        ctx,
        f"""DO $guard$
DECLARE
    target text;
    has_rows boolean;
BEGIN
    FOREACH target IN ARRAY ARRAY[{tables}] LOOP
        IF to_regclass(target) IS NOT NULL THEN
            EXECUTE format('SELECT EXISTS (SELECT FROM %s)', to_regclass(target)) INTO has_rows;
            IF has_rows THEN
                RAISE EXCEPTION 'Refusing to run {sql_file.shown}: % holds rows (regenerate this script with -x allow-data-loss=true to accept the loss)', target;
            END IF;
        END IF;
    END LOOP;
END
$guard$;""",
    )
