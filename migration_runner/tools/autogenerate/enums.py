"""Native enum types (SQLAlchemy's Enum with a name): created, given new values, dropped.

Alembic compares neither an enum's existence nor its values, so the types are
compared here, PostgreSQL's pg_enum against the models' Enum types, and each
difference joins model_parity's (so `alembic check` sees it too):

- a new type: CREATE TYPE ... AS ENUM first in the expand revision (before the
  columns that use it; a new table's CREATE TABLE makes its own), DROP TYPE
  last in its down, once those columns are gone;
- new values: ALTER TYPE ... ADD VALUE in the expand online steps (`Transaction:
  none`): a value added in a transaction cannot be used in it before it
  commits. PostgreSQL cannot drop a value, so the down swaps the type for one
  without it (a rewrite of each table using it, inside one DO block: all or
  nothing), which fails while a row holds the value;
- a type no model uses: DROP TYPE in the contract online steps, after the
  contract revision dropped the columns that used it; the down creates it first;
- a value removed or the values reordered: refused. PostgreSQL cannot drop or
  move a value; the change is a type swap that rewrites every table using it,
  which autogenerate does not write online: write it by hand.
"""

from dataclasses import dataclass

from sqlalchemy import Enum, MetaData, text
from sqlalchemy.engine import Connection

from migration_runner.errors import MigrationError
from migration_runner.steps.phases import CONTRACT, EXPAND
from migration_runner.tools.autogenerate import lock_facts
from migration_runner.tools.autogenerate.identifiers import literal, quoted
from migration_runner.tools.autogenerate.plan import Plan, Statement
from migration_runner.tools.autogenerate.renderers import ADDED, DROPPED, Context, mismatch, renders
from migration_runner.tools.model_parity import ModelMismatch

KIND = "ENUM"
ENUMS = """
SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
FROM pg_type AS t
INNER JOIN pg_enum AS e ON e.enumtypid = t.oid
WHERE t.typnamespace = current_schema()::regnamespace
GROUP BY t.typname
ORDER BY t.typname
"""
# The columns of a type, with their defaults (a default names the type: it is reset around a
# swap).
COLUMNS = """
SELECT c.relname, a.attname, pg_get_expr(d.adbin, d.adrelid)
FROM pg_attribute AS a
INNER JOIN pg_class AS c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p')
LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.atttypid = to_regtype(:type) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum
"""


@dataclass(frozen=True)
class Column:
    table: str
    name: str
    default: str | None  # pg_get_expr's text, e.g. 'new'::mood


class EnumDifference(ModelMismatch):
    """One enum type that differs: in the database only, in the models only, or in values."""

    def __init__(
        self,
        name: str,
        database: tuple[str, ...] | None,
        models: tuple[str, ...] | None,
        columns: list[Column],
    ):
        super().__init__(KIND, "", name, _listed(database), _listed(models))
        self.database_values, self.model_values, self.columns = database, models, columns

    @property
    def message(self) -> str:
        if self.database is None:
            return f"enum type {self.name} is in the models only: {self.models}"
        if self.models is None:
            return f"enum type {self.name} is in the database only: {self.database}"
        return f"enum type {self.name} differs: database {self.database} / models {self.models}"


def _listed(values: tuple[str, ...] | None) -> str | None:
    return None if values is None else "(" + ", ".join(map(literal, values)) + ")"


def model_enums(metadata: MetaData) -> dict[str, tuple[str, ...]]:
    """The native enum types the models' columns use, by name, with their values in order."""
    found = {}
    for table in metadata.tables.values():
        for column in table.columns:
            type_ = column.type
            if isinstance(type_, Enum) and type_.native_enum and type_.name:
                found[type_.name] = tuple(type_.enums)
    return found


def mismatches(connection: Connection, metadata: MetaData) -> list[EnumDifference]:
    """Every enum type whose existence or values differ between the database and the models."""
    database = {name: tuple(values) for name, values in connection.execute(text(ENUMS))}
    models = model_enums(metadata)
    found = []
    for name in sorted(database.keys() | models.keys()):
        if database.get(name) != models.get(name):
            columns = [
                Column(*row) for row in connection.execute(text(COLUMNS), {"type": quoted(name)})
            ]
            found.append(EnumDifference(name, database.get(name), models.get(name), columns))
    return found


def pair_first(plan: Plan, up: list[Statement], down: list[Statement], phase: str = EXPAND):
    """up first in its revision, down last in its down (a type before the columns using it)."""
    part = plan.parts[(phase, False)]
    part.up[:0] = up
    part.down += down


def create_type(name: str, values: tuple[str, ...], why: str) -> Statement:
    listed = ", ".join(map(literal, values))
    return Statement(
        f"CREATE TYPE {quoted(name)} AS ENUM ({listed})",
        f"{why}: " + lock_facts.describe("create_enum", name, type=name),
    )


def drop_type(name: str, why: str) -> Statement:
    """squawk bans DROP TYPE (a client may use it): no column does, and the models name none."""
    return Statement(
        f"DROP TYPE {quoted(name)}",
        f"{why}: no column uses the type {name} and no model names it; "
        + lock_facts.describe("drop_enum", name, type=name),
        "ban-drop-type",
    )


def _users(context: Context, name: str) -> set[str]:
    """The tables whose model columns use the type."""
    return {
        table.name
        for table in context.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, Enum) and column.type.name == name
    }


@renders(mismatch(KIND, DROPPED))
def drop_enum(difference: EnumDifference, context: Context) -> None:
    """A type no model uses: dropped once the contract revision dropped its columns."""
    if difference.model_values is not None:
        return  # a change of values: enum_added writes it
    name = difference.name
    context.plan.pair(
        [drop_type(name, "The contract revision dropped the last column using it")],
        [create_type(name, difference.database_values, "The type, before the columns using it")],
        online=True,
        phase=CONTRACT,
    )


@renders(mismatch(KIND, ADDED))
def enum_added(difference: EnumDifference, context: Context) -> None:
    """A new type, or new values for a type the database has."""
    name, models = difference.name, difference.model_values
    if difference.database_values is None:
        created_by_table = _users(context, name) & context.new_tables
        up = [] if created_by_table else [create_type(name, models, f"New enum type {name}")]
        pair_first(context.plan, up, [drop_type(name, "Last, once its columns are gone")])
        return
    _add_values(difference, context)


def _add_values(difference: EnumDifference, context: Context) -> None:
    name, old, new = difference.name, difference.database_values, difference.model_values
    gone = [value for value in old if value not in new]
    if gone or [value for value in new if value in old] != list(old):
        what = f"loses {', '.join(map(literal, gone))}" if gone else "has its values reordered"
        raise MigrationError(
            f"enum type {name} {what} (database {difference.database}, models "
            f"{difference.models}): PostgreSQL cannot drop or move an enum value, and the type "
            "swap that does it rewrites every table using it; write it by hand (alembic "
            "revision -m ...)."
        )
    added = []
    for position, value in enumerate(new):
        if value in old:
            continue
        # Added in order: the value before it exists by now; a first value goes before the
        # type's first.
        where = f"AFTER {literal(new[position - 1])}" if position else f"BEFORE {literal(old[0])}"
        added.append(
            Statement(
                f"ALTER TYPE {quoted(name)} ADD VALUE IF NOT EXISTS {literal(value)} {where}",
                f"New value {literal(value)} of {name}, outside a transaction block (a value "
                "added in a transaction cannot be used before it commits): "
                + lock_facts.describe("alter_enum_add_value", name, type=name),
            )
        )
    context.plan.pair(added, [_swap_back(difference)], online=True)


def _swap_back(difference: EnumDifference) -> Statement:
    """The down of new values: PostgreSQL cannot drop a value, so the type is swapped for one
    without them, in one DO block (one transaction: all or nothing)."""
    name, old = difference.name, difference.database_values
    kept = f"{name[:57]}__gone"
    lines = [
        f"ALTER TYPE {quoted(name)} RENAME TO {quoted(kept)};",
        f"CREATE TYPE {quoted(name)} AS ENUM ({', '.join(map(literal, old))});",
    ]
    tables = sorted({column.table for column in difference.columns})
    for column in difference.columns:
        target = f"ALTER TABLE {quoted(column.table)} ALTER COLUMN {quoted(column.name)}"
        if column.default is not None:
            lines.append(f"{target} DROP DEFAULT;")
        lines.append(
            f"{target} TYPE {quoted(name)}\n        "
            f"USING {quoted(column.name)}::text::{quoted(name)};"
        )
        if column.default is not None:
            lines.append(f"{target} SET DEFAULT {column.default};")
    lines.append(f"DROP TYPE {quoted(kept)};")
    body = "\n".join(f"    {line}" for line in lines)
    rewrites = "; ".join(lock_facts.describe("alter_type_rewriting", table) for table in tables)
    return Statement(
        f"DO $enum$\nBEGIN\n{body}\nEND\n$enum$",
        f"{name} without the values the up added: PostgreSQL cannot drop an enum value, so the "
        "type is swapped for one without them, in one transaction; fails while a row holds one"
        + (f". Each column's type change {rewrites}" if tables else ""),
    )
