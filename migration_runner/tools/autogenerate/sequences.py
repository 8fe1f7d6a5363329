"""Serial columns: an integer key whose default is nextval() of a sequence the column owns.

Alembic takes a serial's nextval() default for part of the column (it leaves
such a default out when it reads the database), so a model that stops being
serial, or starts, compared as "no changes". Here the columns are compared:
the database's (a nextval() default on a sequence owned by the column, as
pg_depend says) against the models' (the table's autoincrement integer key with
no default and no identity, which SQLAlchemy creates as SERIAL), and each
difference joins model_parity's, so `alembic check` sees it too.

- serial to plain integer: the contract drops the default and the sequence (the
  old code's inserts count on them); the down creates the sequence again, owned
  by the column, moved past the values, and sets the default back;
- plain integer to serial: expand creates the sequence, moves it past the
  values (before the default, so the table's strong lock is held only for the
  default), sets the default and makes the column own it; the down drops both.
"""

from dataclasses import dataclass

from sqlalchemy import Integer, MetaData, Table, text
from sqlalchemy.engine import Connection

from migration_runner.bookkeeping import RUNNER_TABLES
from migration_runner.steps.phases import CONTRACT
from migration_runner.tools.autogenerate import lock_facts
from migration_runner.tools.autogenerate.identifiers import literal, quoted
from migration_runner.tools.autogenerate.plan import Statement
from migration_runner.tools.autogenerate.renderers import ADDED, DROPPED, Context, mismatch, renders
from migration_runner.tools.model_parity import ModelMismatch

KIND = "SERIAL"
# Each column whose default is nextval() of a sequence it owns (an identity's is 'i', not 'a').
SERIALS = """
SELECT c.relname, a.attname, s.relname, format_type(q.seqtypid, NULL), EXISTS (
    SELECT FROM pg_constraint AS k
    WHERE k.conrelid = c.oid AND k.contype = 'p' AND k.conkey = ARRAY[a.attnum]
)
FROM pg_depend AS d
INNER JOIN pg_class AS s ON s.oid = d.objid AND s.relkind = 'S'
INNER JOIN pg_sequence AS q ON q.seqrelid = s.oid
INNER JOIN pg_class AS c ON c.oid = d.refobjid
INNER JOIN pg_attribute AS a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
INNER JOIN pg_attrdef AS f ON f.adrelid = d.refobjid AND f.adnum = d.refobjsubid
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
    AND d.deptype = 'a' AND c.relnamespace = current_schema()::regnamespace
    AND pg_get_expr(f.adbin, f.adrelid) LIKE 'nextval(%'
"""
# The integer columns of the database, with their types and whether they have a default.
COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, NULL), d.adrelid IS NOT NULL, EXISTS (
    SELECT FROM pg_constraint AS k
    WHERE k.conrelid = c.oid AND k.contype = 'p' AND k.conkey = ARRAY[a.attnum]
)
FROM pg_attribute AS a
INNER JOIN pg_class AS c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p')
LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = current_schema()::regnamespace AND a.attnum > 0
    AND NOT a.attisdropped AND a.atttypid IN ('smallint'::regtype, 'integer'::regtype,
    'bigint'::regtype) AND a.attidentity = ''
"""


@dataclass(frozen=True)
class Serial:
    sequence: str
    type_: str  # smallint, integer, bigint
    is_key: bool = False  # the column is the table's primary key (max() reads its index)


class SerialDifference(ModelMismatch):
    """A column that is serial in the database or in the models, not both."""

    def __init__(self, table: str, column: str, database: Serial | None, models: Serial | None):
        super().__init__(
            KIND, table, column, database and database.sequence, models and models.sequence
        )
        self.column, self.database_serial, self.model_serial = column, database, models

    @property
    def message(self) -> str:
        side = "database" if self.database_serial else "models"
        return f"{self.table}.{self.column} is serial in the {side} only"


def model_serial(table: Table) -> str | None:
    """The column SQLAlchemy creates as SERIAL on table, if any."""
    column = table.autoincrement_column
    if (
        column is None
        or not isinstance(column.type, Integer)
        or column.server_default is not None
        or column.identity is not None
        or column.default is not None
    ):
        return None
    return column.name


def sequence_name(table: str, column: str) -> str:
    """PostgreSQL's own name for a serial's sequence, within 63 characters."""
    return f"{table[:29]}_{column[:29]}_seq"


def mismatches(connection: Connection, metadata: MetaData) -> list[SerialDifference]:
    database = {
        (table, column): Serial(sequence, type_, is_key)
        for table, column, sequence, type_, is_key in connection.execute(text(SERIALS))
    }
    columns = {
        (table, column): (type_, has_default, is_key)
        for table, column, type_, has_default, is_key in connection.execute(text(COLUMNS))
    }
    found = []
    for table in sorted(metadata.tables.keys() - set(RUNNER_TABLES)):
        in_models = model_serial(metadata.tables[table])
        for key in [k for k in database if k[0] == table]:
            if key[1] != in_models:
                found.append(SerialDifference(table, key[1], database[key], None))
        key = (table, in_models)
        if in_models and key in columns and key not in database and not columns[key][1]:
            serial = Serial(sequence_name(table, in_models), columns[key][0], columns[key][2])
            found.append(SerialDifference(table, in_models, None, serial))
    return found


def _default(table: str, column: str, sequence: str) -> Statement:
    return Statement(
        f"ALTER TABLE {quoted(table)} ALTER COLUMN {quoted(column)} "
        f"SET DEFAULT nextval({literal(quoted(sequence))}::regclass)",
        f"New rows take {table}.{column} from {sequence}: "
        + lock_facts.describe("set_default", table),
    )


def create(table: str, column: str, serial: Serial, fill_first: bool = True) -> list[Statement]:
    """The sequence, as the column's default and owned by it; first moved past the values
    already there (fill_first), or not (a new column: its rows are numbered from it)."""
    sequence = quoted(serial.sequence)
    created = Statement(
        f"CREATE SEQUENCE {sequence} AS {serial.type_}",
        f"{table}.{column}'s sequence: " + lock_facts.describe("create_sequence", table),
    )
    if not fill_first:
        return [created, *_default_and_owner(table, column, serial)]
    return [
        created,
        Statement(
            f"SELECT setval({literal(sequence)}, max({quoted(column)})) FROM {quoted(table)}\n"
            f"HAVING max({quoted(column)}) IS NOT NULL",
            f"It goes on after the largest {column} already there, before the default takes "
            "the table's strong lock: "
            + lock_facts.describe(
                "setval_to_max_of_key" if serial.is_key else "setval_to_max", table
            ),
        ),
        *_default_and_owner(table, column, serial),
    ]


def _default_and_owner(table: str, column: str, serial: Serial) -> list[Statement]:
    return [
        _default(table, column, serial.sequence),
        Statement(
            f"ALTER SEQUENCE {quoted(serial.sequence)} OWNED BY {quoted(table)}.{quoted(column)}",
            "The column owns it, as a serial's (it goes when the column goes): "
            + lock_facts.describe("alter_sequence_owned_by", table, sequence=serial.sequence),
        ),
    ]


def _drop(table: str, column: str, serial: Serial, why: str) -> list[Statement]:
    return [
        Statement(
            f"ALTER TABLE {quoted(table)} ALTER COLUMN {quoted(column)} DROP DEFAULT",
            f"{why}: " + lock_facts.describe("drop_default", table),
            "ban-drop-default",  # squawk: a client may count on it; why says none does
        ),
        Statement(
            f"DROP SEQUENCE {quoted(serial.sequence)}",
            "And its sequence, which nothing else uses: "
            + lock_facts.describe("drop_sequence", table, sequence=serial.sequence),
            "ban-drop-sequence",  # squawk: a client may use it; only this default did
        ),
    ]


@renders(mismatch(KIND, DROPPED))
def serial_dropped(difference: SerialDifference, context: Context) -> None:
    """A serial the models make a plain integer: the old code's inserts count on its default,
    so it goes in the contract."""
    table, column, serial = difference.table, difference.column, difference.database_serial
    context.plan.pair(
        _drop(
            table,
            column,
            serial,
            f"{table}.{column} is a plain integer now; the old code, "
            "whose inserts left it to the default, is gone",
        ),
        create(table, column, serial),
        phase=CONTRACT,
    )


@renders(mismatch(KIND, ADDED))
def serial_added(difference: SerialDifference, context: Context) -> None:
    """An integer key the models make serial: its default, in expand."""
    table, column, serial = difference.table, difference.column, difference.model_serial
    context.plan.pair(
        create(table, column, serial),
        _drop(table, column, serial, f"{table}.{column} without its default again"),
    )
