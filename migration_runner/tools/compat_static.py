"""The static half of `make compat`: expand revisions that break the old code on sight.

Read with pglast (SqlFile.statements, Statement.node), before anything runs. Each
expand revision the running release does not have is checked against what the
release's models map (the old models' tables and columns, from compat_probe.py):

- dropping or renaming a table or a column they map;
- changing a mapped column's type to one that is not wider (varchar(200) to text
  widens; text to varchar(50), bigint to integer or text to integer do not);
- a column of a table they insert into that ends up NOT NULL without a default
  although the old code leaves it out or NULL: `ADD COLUMN ... NOT NULL` without
  DEFAULT, `SET NOT NULL` on a column they may leave NULL, `DROP DEFAULT` on one
  they leave to its default. Columns are followed statement by statement, so a
  column added with a default whose default a later statement drops counts too.

What SQL hides from a parser (a DO block, a function) is left to the ORM check.
"""

from dataclasses import dataclass
from pathlib import Path

from migration_runner.steps.phases import EXPAND, phase_of
from migration_runner.steps.sql_files import SqlFile
from migration_runner.tools.phase_order import up_file

# Digits each integer type holds: an integer fits a numeric with at least this many.
INTEGER_DIGITS = {2: 5, 4: 10, 8: 19}
TEXT_TYPES = {"text", "varchar", "character varying", "bpchar", "char", "character"}
SIZED_TYPES = {
    "int2": ("int", 2), "smallint": ("int", 2),
    "int4": ("int", 4), "integer": ("int", 4), "int": ("int", 4),
    "int8": ("int", 8), "bigint": ("int", 8),
    "float4": ("float", 4), "real": ("float", 4),
    "float8": ("float", 8), "double precision": ("float", 8), "float": ("float", 8),
}  # fmt: skip # one line per type: its names, then what it holds
SAME_TYPES = {
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "timetz": "time with time zone",
    "time": "time without time zone",
    "bool": "boolean",
    "decimal": "numeric",
}
SERIAL_TYPES = {"smallserial", "serial", "bigserial", "serial2", "serial4", "serial8"}
DROP_FIX = "move the drop to a contract revision (-- Phase: contract)"
RENAME_FIX = (
    "add the new name beside the old one, copy, switch the code, and drop the old one in a "
    "contract revision"
)
TYPE_FIX = (
    "add a column of the new type, backfill it, switch the code, and drop the old one in a "
    "contract revision"
)
ADDED = "adds it NOT NULL without a default: the old code's INSERT leaves it out"
MADE_NOT_NULL = "makes it NOT NULL: the old code's INSERT may leave it NULL"
DEFAULT_DROPPED = "drops the default of this NOT NULL column: the old code's INSERT leaves it out"
NOT_NULL_FIX = (
    "keep it nullable or give it a DEFAULT until a contract revision, once the new code "
    "always writes it"
)


@dataclass(frozen=True)
class Finding:
    table: str
    column: str | None  # None: the whole table
    text: str  # the FAILED line, without `FAILED: `


@dataclass
class ColumnState:
    nullable: bool
    default: bool
    left_out: bool  # the old code's INSERT may leave it out or NULL


@dataclass(frozen=True)
class Where:
    revision: str
    sql_file: SqlFile
    line: int

    def __str__(self) -> str:
        return f"revision {self.revision} (expand, {self.sql_file.shown} line {self.line})"


class OldModels:
    """The running release's mapped tables and columns, as compat_probe.py describes them."""

    def __init__(self, classes: list[dict]):
        self.tables = {entry["table"]: entry for entry in classes}

    def maps(self, table: str, column: str | None = None) -> bool:
        entry = self.tables.get(table)
        return entry is not None and (column is None or column in entry["columns"])

    def class_of(self, table: str) -> str:
        return self.tables[table]["class"]

    def column(self, table: str, column: str) -> dict:
        return self.tables[table]["columns"][column]


def findings(tree: Path, revisions: list[str], old: OldModels) -> list[Finding]:
    """What the expand revisions among these do to the old models, in file order."""
    found: list[Finding] = []
    states: dict[tuple[str, str], ColumnState] = {}
    for revision in revisions:
        sql_file = up_file(tree, revision)
        if phase_of(sql_file) != EXPAND:
            continue
        for statement in sql_file.statements:
            if statement.keyword not in ("DROP", "ALTER"):
                continue  # nothing else removes, renames or narrows what the old code uses
            where = Where(revision, sql_file, statement.line)
            found += statement_findings(statement.node, where, old, states)
    return unique(found)


def unique(found: list[Finding]) -> list[Finding]:
    """One finding per table or column: the first statement that breaks it."""
    seen: dict[tuple[str, str | None], Finding] = {}
    for finding in found:
        seen.setdefault((finding.table, finding.column), finding)
    return list(seen.values())


def table_name(relation) -> str:
    schema = relation.schemaname
    return relation.relname if schema in (None, "public") else f"{schema}.{relation.relname}"


def statement_findings(node, where: Where, old: OldModels, states: dict) -> list[Finding]:
    from pglast import ast
    from pglast.enums import ObjectType

    if isinstance(node, ast.DropStmt) and node.removeType == ObjectType.OBJECT_TABLE:
        tables = [dropped_name(parts) for parts in node.objects]
        return [dropped_table(table, where, old) for table in tables if old.maps(table)]
    if isinstance(node, ast.RenameStmt):
        return renamed(node, where, old)
    if isinstance(node, ast.AlterTableStmt) and node.relation is not None:
        table = table_name(node.relation)
        if old.maps(table):
            return [f for cmd in node.cmds for f in altered(table, cmd, where, old, states) if f]
    return []


def dropped_name(parts) -> str:
    names = [part.sval for part in parts]
    return names[-1] if len(names) == 1 or names[0] == "public" else ".".join(names)


def dropped_table(table: str, where: Where, old: OldModels) -> Finding:
    return Finding(
        table,
        None,
        f"{table}: {where} drops a table the old code maps ({old.class_of(table)}); {DROP_FIX}",
    )


def renamed(node, where: Where, old: OldModels) -> list[Finding]:
    from pglast.enums import ObjectType

    if node.relation is None:
        return []
    table = table_name(node.relation)
    if node.renameType == ObjectType.OBJECT_TABLE and old.maps(table):
        what, column = f"renames a table the old code maps ({old.class_of(table)})", None
    elif node.renameType == ObjectType.OBJECT_COLUMN and old.maps(table, node.subname):
        what, column = f"renames a column the old code maps ({old.class_of(table)})", node.subname
    else:
        return []
    subject = f"{table}.{column}" if column else table
    return [Finding(table, column, f"{subject}: {where} {what} to {node.newname}; {RENAME_FIX}")]


def altered(table: str, cmd, where: Where, old: OldModels, states: dict) -> list[Finding | None]:
    """What one ALTER TABLE subcommand does to a table the old code maps."""
    from pglast.enums import AlterTableType

    subject = f"{table}.{cmd.name}"
    if cmd.subtype == AlterTableType.AT_DropColumn and old.maps(table, cmd.name):
        what = f"drops a column the old code maps ({old.class_of(table)})"
        return [Finding(table, cmd.name, f"{subject}: {where} {what}; {DROP_FIX}")]
    if cmd.subtype == AlterTableType.AT_AlterColumnType and old.maps(table, cmd.name):
        return [narrowed(table, cmd, where, old)]
    if cmd.subtype == AlterTableType.AT_AddColumn:
        name = cmd.def_.colname
        states[(table, name)] = added_column(cmd.def_)
        return [left_out(table, name, states[(table, name)], where, ADDED)]
    state = column_state(table, cmd.name, old, states) if cmd.name else None
    if state is None:
        return []
    if cmd.subtype == AlterTableType.AT_SetNotNull:
        state.nullable = False
        return [left_out(table, cmd.name, state, where, MADE_NOT_NULL)]
    if cmd.subtype == AlterTableType.AT_DropNotNull:
        state.nullable = True
    elif cmd.subtype == AlterTableType.AT_ColumnDefault:
        state.default = cmd.def_ is not None  # SET DEFAULT x, or DROP DEFAULT
        return [left_out(table, cmd.name, state, where, DEFAULT_DROPPED)]
    return []


def column_state(table: str, column: str, old: OldModels, states: dict) -> ColumnState | None:
    """The column as the statements so far left it; from the old models if untouched yet."""
    if (table, column) not in states and old.maps(table, column):
        mapped_column = old.column(table, column)
        states[(table, column)] = ColumnState(
            nullable=mapped_column["nullable"],
            default=mapped_column["default"],
            left_out=not mapped_column.get("python_default")
            and (mapped_column["nullable"] or mapped_column["default"]),
        )
    return states.get((table, column))


def added_column(definition) -> ColumnState:
    from pglast.enums import ConstrType

    kinds = {constraint.contype for constraint in definition.constraints or ()}
    type_name = definition.typeName.names[-1].sval
    not_null = definition.is_not_null or bool(
        kinds & {ConstrType.CONSTR_NOTNULL, ConstrType.CONSTR_PRIMARY}
    )
    default = type_name in SERIAL_TYPES or bool(
        kinds & {ConstrType.CONSTR_DEFAULT, ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED}
    )
    return ColumnState(nullable=not not_null, default=default, left_out=True)


def left_out(
    table: str, column: str, state: ColumnState, where: Where, what: str
) -> Finding | None:
    """A finding when the old code's INSERT would now leave a NOT NULL column empty."""
    if state.nullable or state.default or not state.left_out:
        return None
    return Finding(table, column, f"{table}.{column}: {where} {what}; {NOT_NULL_FIX}")


def narrowed(table: str, cmd, where: Where, old: OldModels) -> Finding | None:
    """A finding when a mapped column's new type is not wider than its old one."""
    before = old.column(table, cmd.name)["type"]
    if widens(parse_type(before), new_type(cmd.def_.typeName)):
        return None
    return Finding(
        table,
        cmd.name,
        f"{table}.{cmd.name}: {where} changes its type from {before} to "
        f"{type_text(cmd.def_.typeName)} in place, "
        f"which is not wider: the old code may write what the new type refuses; {TYPE_FIX}",
    )


# --- types ------------------------------------------------------------------------------


def normalised(name: str, sizes: tuple[int, ...]) -> tuple[str, object]:
    """(family, size) of a type: ("text", 50), ("int", 8), ("numeric", (6, 3)), ("uuid", None)."""
    name = SAME_TYPES.get(name, name)
    if name in TEXT_TYPES:
        return "text", sizes[0] if sizes else None
    if name in SIZED_TYPES:
        return SIZED_TYPES[name]
    if name == "numeric":
        return "numeric", (*sizes, 0)[:2] if sizes else None
    return name, None


def parse_type(compiled: str) -> tuple[str, object]:
    """The family and size of a type as SQLAlchemy compiles it: VARCHAR(50), NUMERIC(6, 3)."""
    if compiled.endswith("[]"):  # an array: its element's family and size
        family, size = parse_type(compiled[:-2])
        return f"{family}[]", size
    name, _, rest = compiled.lower().partition("(")
    sizes = tuple(int(part) for part in rest.rstrip(")").split(",") if part.strip().isdigit())
    suffix = rest.partition(")")[2].strip()  # TIMESTAMP(3) WITH TIME ZONE
    return normalised(f"{name.strip()} {suffix}".strip(), sizes)


def type_text(type_name) -> str:
    """A pglast TypeName as PostgreSQL's catalog names it: varchar(50), int8, numeric(5, 2)."""
    sizes = [str(mod.val.ival) for mod in type_name.typmods or () if hasattr(mod.val, "ival")]
    shown = type_name.names[-1].sval + (f"({', '.join(sizes)})" if sizes else "")
    return shown + "[]" * len(type_name.arrayBounds or ())


def new_type(type_name) -> tuple[str, object]:
    """The family and size of a pglast TypeName: pg_catalog.varchar with typmods (50,)."""
    name = type_name.names[-1].sval
    sizes = tuple(mod.val.ival for mod in type_name.typmods or () if hasattr(mod.val, "ival"))
    family, size = normalised(name, sizes)
    return (f"{family}[]", size) if type_name.arrayBounds else (family, size)


def widens(before: tuple[str, object], after: tuple[str, object]) -> bool:
    """Whether every value of the old type fits the new one unchanged."""
    (family, size), (new_family, new_size) = before, after
    if family.endswith("[]") and new_family.endswith("[]"):  # arrays: as their elements
        return widens((family[:-2], size), (new_family[:-2], new_size))
    if family == "int" and new_family == "numeric":
        return new_size is None or new_size[0] - new_size[1] >= INTEGER_DIGITS[size]
    if family != new_family:
        return False
    if new_size is None:
        return True
    if family == "numeric":
        return (
            size is not None
            and new_size[1] >= size[1]
            and (new_size[0] - new_size[1] >= size[0] - size[1])
        )
    if family in ("text", "int", "float"):
        return size is not None and new_size >= size
    return True  # another family: only a precision changed
