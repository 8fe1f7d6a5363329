"""What each kind of statement autogenerate writes does to a table: its locks, rewrite, scan.

The comments autogenerate puts above its statements come from this table, and
tests/test_lock_facts.py proves every row on PostgreSQL 15 and 18, on the
tables of FIXTURE with ROWS rows each:
- the lock modes from pg_locks, read by a second session while the statement's
  transaction is held open (or, for a statement that cannot run in a
  transaction, while it waits behind a third session's open write
  transaction), each relation or object mapped back to its role;
- the rewrite from the table's relfilenode before and after;
- the scan from the rows PostgreSQL counts as read (pg_stat_user_tables'
  seq_tup_read), and where a row can violate what the statement checks, from
  whether that row makes it fail.

Roles, and the names the test gives them (placeholders in `example` and `setup`):
{table} the table the statement alters, {referenced} the table a foreign key
names, {index}, {sequence}, {view}, {type} (an enum) and {function}.
A role missing from a fact's locks takes no lock (table and referenced are
always checked; the others when the fact names them).
"""

from dataclasses import dataclass, field

ROWS = 3000
# The tables every kind starts from: {referenced} with a primary key, {table} whose rows all
# satisfy the examples' constraints (ref names a parent, amount > 0, no NULL anywhere).
FIXTURE = [
    (
        "CREATE TABLE {referenced} (id integer PRIMARY KEY, label text NOT NULL)"
        " WITH (autovacuum_enabled = false)"
    ),
    f"INSERT INTO {{referenced}} SELECT i, 'parent ' || i FROM generate_series(1, {ROWS}) AS i",
    (
        "CREATE TABLE {table} (id integer NOT NULL, ref integer, note text, amount integer,"
        " name varchar(50), code integer) WITH (autovacuum_enabled = false)"
    ),
    (
        "INSERT INTO {table} SELECT i, i, 'note ' || i, i, 'name ' || i, i"
        f" FROM generate_series(1, {ROWS}) AS i"
    ),
]

# The modes, weakest first (PostgreSQL's lock levels 1 to 8), and what each keeps others from.
MODES = [
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
]
BLOCKS = {
    "ACCESS SHARE": "blocks neither reads nor writes",
    "ROW SHARE": "blocks neither reads nor writes",
    "ROW EXCLUSIVE": "blocks neither reads nor writes",
    "SHARE UPDATE EXCLUSIVE": "blocks neither reads nor writes",
    "SHARE": "blocks writes, not reads",
    "SHARE ROW EXCLUSIVE": "blocks writes, not reads",
    "EXCLUSIVE": "blocks writes, not reads",
    "ACCESS EXCLUSIVE": "blocks reads and writes",
}
# How a role is named in a comment when the caller does not name it.
UNNAMED = {
    "referenced": "the referenced table",
    "index": "the index",
    "sequence": "the sequence",
    "view": "the view",
    "type": "the type",
    "function": "the function",
}


@dataclass(frozen=True)
class Fact:
    what: str  # the statement kind, as a reviewer reads it
    locks: dict[str, str]  # role ("table", "referenced", ...) -> lock mode, e.g. "ACCESS EXCLUSIVE"
    rewrites: bool  # the table gets a new relfilenode
    scans: bool  # every row of the table is read (under the locks above)
    example: str  # run by the test on its fixture tables; {table} and {referenced} filled in
    setup: list[str] = field(default_factory=list)  # run first, committed
    transactional: bool = True  # False: runs outside a transaction block (CONCURRENTLY)
    # Committed before setup: a row the statement rejects if, and only if, it reads the rows.
    violation: str | None = None


ADD = "ALTER TABLE {table} ADD COLUMN added "
ALTER = "ALTER TABLE {table} ALTER COLUMN "
ADD_OTHER = "ALTER TABLE {table} ADD COLUMN "  # a column of another type, for a setup
CHECK = "ALTER TABLE {table} ADD CONSTRAINT {table}_amount_check CHECK (amount > 0)"
FOREIGN_KEY = (
    "ALTER TABLE {table} ADD CONSTRAINT {table}_ref_fkey FOREIGN KEY (ref) REFERENCES {referenced}"
)
FUNCTION = (
    "CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
)
TRIGGER = (
    "CREATE TRIGGER {table}_touch BEFORE UPDATE ON {table} FOR EACH ROW"
    " EXECUTE FUNCTION {function}()"
)
AE, SRE, SUE = "ACCESS EXCLUSIVE", "SHARE ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE"

FACTS: dict[str, Fact] = {
    "create_table": Fact(
        "CREATE TABLE",
        {},
        rewrites=False,
        scans=False,
        example="CREATE TABLE {table}_created (id bigint PRIMARY KEY, note text)",
    ),
    "create_table_with_foreign_key": Fact(
        "CREATE TABLE with a foreign key",
        {"referenced": SRE},
        rewrites=False,
        scans=False,
        example="CREATE TABLE {table}_created (id bigint PRIMARY KEY,"
        " ref integer REFERENCES {referenced} (id))",
    ),
    "drop_table": Fact(
        "DROP TABLE",
        {"table": AE},
        rewrites=False,
        scans=False,
        example="DROP TABLE {table}",
    ),
    "drop_table_with_foreign_key": Fact(
        "DROP TABLE of a table with a foreign key",
        {"table": AE, "referenced": AE},
        rewrites=False,
        scans=False,
        example="DROP TABLE {table}",
        setup=[FOREIGN_KEY],
    ),
    "add_column_nullable": Fact(
        "ADD COLUMN, nullable, no default",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ADD + "text",
    ),
    "add_column_constant_default": Fact(
        "ADD COLUMN with a constant default",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ADD + "text DEFAULT 'free'",
    ),
    "add_column_stable_default": Fact(
        "ADD COLUMN with a stable default (now(): one value for every row)",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ADD + "timestamptz DEFAULT now()",
    ),
    "add_column_volatile_default": Fact(
        "ADD COLUMN with a volatile default",
        {"table": AE},
        rewrites=True,
        scans=True,
        example=ADD + "timestamptz DEFAULT clock_timestamp()",
    ),
    "add_column_random_uuid_default": Fact(
        "ADD COLUMN with DEFAULT gen_random_uuid() (volatile)",
        {"table": AE},
        rewrites=True,
        scans=True,
        example=ADD + "uuid DEFAULT gen_random_uuid()",
    ),
    "add_column_not_null_default": Fact(
        "ADD COLUMN NOT NULL with a constant default",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ADD + "text NOT NULL DEFAULT 'free'",
    ),
    "add_column_identity": Fact(
        "ADD COLUMN ... GENERATED BY DEFAULT AS IDENTITY",
        {"table": AE},
        rewrites=True,
        scans=True,
        example=ADD + "bigint GENERATED BY DEFAULT AS IDENTITY",
    ),
    "add_column_generated_stored": Fact(
        "ADD COLUMN ... GENERATED ALWAYS AS (...) STORED",
        {"table": AE},
        rewrites=True,
        scans=True,
        example=ADD + "integer GENERATED ALWAYS AS (amount * 2) STORED",
    ),
    "add_column_serial": Fact(
        "ADD COLUMN serial",
        {"table": AE},
        rewrites=True,
        scans=True,
        example=ADD + "serial",
    ),
    "drop_column": Fact(
        "DROP COLUMN",
        {"table": AE},
        rewrites=False,
        scans=False,
        example="ALTER TABLE {table} DROP COLUMN note",
    ),
    "set_default": Fact(
        "ALTER COLUMN SET DEFAULT",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ALTER + "note SET DEFAULT 'none'",
    ),
    "drop_default": Fact(
        "ALTER COLUMN DROP DEFAULT",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ALTER + "note DROP DEFAULT",
        setup=[ALTER + "note SET DEFAULT 'none'"],
    ),
    "set_not_null": Fact(
        "ALTER COLUMN SET NOT NULL",
        {"table": AE},
        rewrites=False,
        scans=True,
        example=ALTER + "note SET NOT NULL",
        violation="UPDATE {table} SET note = NULL WHERE id = 1",
    ),
    "set_not_null_proven_by_check": Fact(
        "ALTER COLUMN SET NOT NULL with a valid CHECK (column IS NOT NULL)",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ALTER + "note SET NOT NULL",
        setup=[
            (
                "ALTER TABLE {table} ADD CONSTRAINT {table}_note_not_null"
                " CHECK (note IS NOT NULL) NOT VALID"
            ),
            "ALTER TABLE {table} VALIDATE CONSTRAINT {table}_note_not_null",
        ],
    ),
    "drop_not_null": Fact(
        "ALTER COLUMN DROP NOT NULL",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ALTER + "note DROP NOT NULL",
        setup=[ALTER + "note SET NOT NULL"],
    ),
    "alter_type_rewriting": Fact(
        "ALTER COLUMN TYPE that rewrites (integer to bigint)",
        {"table": AE},
        rewrites=True,
        scans=True,
        example=ALTER + "amount TYPE bigint",
    ),
    "alter_type_longer_varchar": Fact(
        "ALTER COLUMN TYPE to a longer varchar",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ALTER + "name TYPE varchar(200)",
    ),
    "alter_type_varchar_to_text": Fact(
        "ALTER COLUMN TYPE varchar to text",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ALTER + "name TYPE text",
    ),
    "alter_type_text_to_varchar": Fact(
        "ALTER COLUMN TYPE text to varchar without a limit",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ALTER + "note TYPE varchar",
    ),
    "alter_type_numeric_more_digits": Fact(
        "ALTER COLUMN TYPE numeric to more digits, the same scale",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ALTER + "price TYPE numeric(12, 2)",
        setup=[ADD_OTHER + "price numeric(10, 2)", "UPDATE {table} SET price = amount / 100.0"],
    ),
    "alter_type_cidr_to_inet": Fact(
        "ALTER COLUMN TYPE cidr to inet",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ALTER + "net TYPE inet",
        setup=[ADD_OTHER + "net cidr", "UPDATE {table} SET net = '10.0.0.0/8'"],
    ),
    "alter_type_longer_timestamptz_precision": Fact(
        "ALTER COLUMN TYPE timestamptz to a finer precision",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ALTER + "at TYPE timestamptz(6)",
        setup=[ADD_OTHER + "at timestamptz(3)", "UPDATE {table} SET at = now()"],
    ),
    "alter_type_longer_timestamp_precision": Fact(
        "ALTER COLUMN TYPE timestamp to a finer precision",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ALTER + "at TYPE timestamp(6)",
        setup=[ADD_OTHER + "at timestamp(3)", "UPDATE {table} SET at = localtimestamp"],
    ),
    "alter_type_longer_time_precision": Fact(
        "ALTER COLUMN TYPE time to a finer precision",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ALTER + "at TYPE time(6)",
        setup=[ADD_OTHER + "at time(3)", "UPDATE {table} SET at = localtime"],
    ),
    "alter_type_longer_interval_precision": Fact(
        "ALTER COLUMN TYPE interval to a finer precision",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ALTER + "took TYPE interval(6)",
        setup=[ADD_OTHER + "took interval(3)", "UPDATE {table} SET took = interval '1.5 seconds'"],
    ),
    "alter_type_longer_varbit": Fact(
        "ALTER COLUMN TYPE bit varying to a longer limit",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ALTER + "bits TYPE varbit(16)",
        setup=[ADD_OTHER + "bits varbit(8)", "UPDATE {table} SET bits = B'1010'"],
    ),
    "add_check_not_valid": Fact(
        "ADD CHECK ... NOT VALID",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=CHECK + " NOT VALID",
        violation="UPDATE {table} SET amount = -1 WHERE id = 1",
    ),
    "add_foreign_key_not_valid": Fact(
        "ADD FOREIGN KEY ... NOT VALID",
        {"table": SRE, "referenced": SRE},
        rewrites=False,
        scans=False,
        example=FOREIGN_KEY + " (id) NOT VALID",
        violation="UPDATE {table} SET ref = -1 WHERE id = 1",
    ),
    "validate_check": Fact(
        "VALIDATE CONSTRAINT of a CHECK",
        {"table": SUE},
        rewrites=False,
        scans=True,
        example="ALTER TABLE {table} VALIDATE CONSTRAINT {table}_amount_check",
        setup=[CHECK + " NOT VALID"],
        violation="UPDATE {table} SET amount = -1 WHERE id = 1",
    ),
    "validate_foreign_key": Fact(
        "VALIDATE CONSTRAINT of a foreign key",
        {"table": SUE, "referenced": "ROW SHARE"},
        rewrites=False,
        scans=True,
        example="ALTER TABLE {table} VALIDATE CONSTRAINT {table}_ref_fkey",
        setup=[FOREIGN_KEY + " (id) NOT VALID"],
        violation="UPDATE {table} SET ref = -1 WHERE id = 1",
    ),
    "drop_check": Fact(
        "DROP CONSTRAINT of a CHECK",
        {"table": AE},
        rewrites=False,
        scans=False,
        example="ALTER TABLE {table} DROP CONSTRAINT {table}_amount_check",
        setup=[CHECK],
    ),
    "drop_foreign_key": Fact(
        "DROP CONSTRAINT of a foreign key",
        {"table": AE, "referenced": AE},
        rewrites=False,
        scans=False,
        example="ALTER TABLE {table} DROP CONSTRAINT {table}_ref_fkey",
        setup=[FOREIGN_KEY],
    ),
    "drop_primary_key": Fact(
        "DROP CONSTRAINT of a primary key (its index goes with it)",
        {"table": AE, "index": AE},
        rewrites=False,
        scans=False,
        example="ALTER TABLE {table} DROP CONSTRAINT {index}",
        setup=["ALTER TABLE {table} ADD CONSTRAINT {index} PRIMARY KEY (id)"],
    ),
    "drop_unique_constraint": Fact(
        "DROP CONSTRAINT of a unique constraint (its index goes with it)",
        {"table": AE, "index": AE},
        rewrites=False,
        scans=False,
        example="ALTER TABLE {table} DROP CONSTRAINT {index}",
        setup=["ALTER TABLE {table} ADD CONSTRAINT {index} UNIQUE (code)"],
    ),
    "drop_exclusion_constraint": Fact(
        "DROP CONSTRAINT of an exclusion constraint (its index goes with it)",
        {"table": AE, "index": AE},
        rewrites=False,
        scans=False,
        example="ALTER TABLE {table} DROP CONSTRAINT {index}",
        setup=["ALTER TABLE {table} ADD CONSTRAINT {index} EXCLUDE USING btree (code WITH =)"],
    ),
    "rename_constraint": Fact(
        "RENAME CONSTRAINT",
        {"table": AE},
        rewrites=False,
        scans=False,
        example="ALTER TABLE {table} RENAME CONSTRAINT {table}_amount_check TO {table}_positive",
        setup=[CHECK],
    ),
    "add_unique_using_index": Fact(
        "ADD CONSTRAINT ... UNIQUE USING INDEX",
        {"table": AE, "index": SUE},
        rewrites=False,
        scans=False,
        example="ALTER TABLE {table} ADD CONSTRAINT {table}_code_key UNIQUE USING INDEX {index}",
        setup=["CREATE UNIQUE INDEX {index} ON {table} (code)"],
    ),
    "add_primary_key_using_index": Fact(
        "ADD PRIMARY KEY USING INDEX, its column already NOT NULL",
        {"table": AE, "index": SUE},
        rewrites=False,
        scans=False,
        example="ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY USING INDEX {index}",
        setup=["CREATE UNIQUE INDEX {index} ON {table} (id)"],
    ),
    "count_offending_rows": Fact(
        "The refusal before a constraint: a DO block that counts the rows it would reject",
        {"table": "ACCESS SHARE"},
        rewrites=False,
        scans=True,
        example="DO $$ DECLARE offending bigint; BEGIN"
        " SELECT count(*) INTO offending FROM {table} WHERE note IS NULL; END $$",
    ),
    "create_index_concurrently": Fact(
        "CREATE INDEX CONCURRENTLY",
        {"table": SUE},
        rewrites=False,
        scans=True,
        example="CREATE INDEX CONCURRENTLY {table}_amount_idx ON {table} (amount)",
        transactional=False,
    ),
    "create_unique_index_concurrently": Fact(
        "CREATE UNIQUE INDEX CONCURRENTLY",
        {"table": SUE},
        rewrites=False,
        scans=True,
        example="CREATE UNIQUE INDEX CONCURRENTLY {table}_code_idx ON {table} (code)",
        transactional=False,
        violation="UPDATE {table} SET code = 2 WHERE id = 1",
    ),
    "drop_index_concurrently": Fact(
        "DROP INDEX CONCURRENTLY",
        {"table": SUE},
        rewrites=False,
        scans=False,
        example="DROP INDEX CONCURRENTLY {index}",
        setup=["CREATE INDEX {index} ON {table} (amount)"],
        transactional=False,
    ),
    "create_index": Fact(
        "CREATE INDEX (not CONCURRENTLY: for a table created in the same revision)",
        {"table": "SHARE"},
        rewrites=False,
        scans=True,
        example="CREATE INDEX {table}_amount_idx ON {table} (amount)",
    ),
    "rename_index": Fact(
        "ALTER INDEX RENAME",
        {"index": SUE},
        rewrites=False,
        scans=False,
        example="ALTER INDEX {index} RENAME TO {index}_renamed",
        setup=["CREATE INDEX {index} ON {table} (amount)"],
    ),
    "rename_column": Fact(
        "RENAME COLUMN",
        {"table": AE},
        rewrites=False,
        scans=False,
        example="ALTER TABLE {table} RENAME COLUMN note TO remark",
    ),
    "rename_table": Fact(
        "RENAME TABLE",
        {"table": AE},
        rewrites=False,
        scans=False,
        example="ALTER TABLE {table} RENAME TO {table}_renamed",
    ),
    "comment_on_table": Fact(
        "COMMENT ON TABLE",
        {"table": SUE},
        rewrites=False,
        scans=False,
        example="COMMENT ON TABLE {table} IS 'a table'",
    ),
    "comment_on_column": Fact(
        "COMMENT ON COLUMN",
        {"table": SUE},
        rewrites=False,
        scans=False,
        example="COMMENT ON COLUMN {table}.note IS 'a note'",
    ),
    "create_view": Fact(
        "CREATE VIEW",
        {"table": "ACCESS SHARE"},
        rewrites=False,
        scans=False,
        example="CREATE VIEW {view} AS SELECT * FROM {table}",
    ),
    "drop_view": Fact(
        "DROP VIEW",
        {"view": AE},
        rewrites=False,
        scans=False,
        example="DROP VIEW {view}",
        setup=["CREATE VIEW {view} AS SELECT * FROM {table}"],
    ),
    "create_enum": Fact(
        "CREATE TYPE ... AS ENUM",
        {},
        rewrites=False,
        scans=False,
        example="CREATE TYPE {type} AS ENUM ('calm', 'busy')",
    ),
    "alter_enum_add_value": Fact(
        "ALTER TYPE ... ADD VALUE",
        {"type": "EXCLUSIVE"},
        rewrites=False,
        scans=False,
        example="ALTER TYPE {type} ADD VALUE 'idle'",
        setup=["CREATE TYPE {type} AS ENUM ('calm', 'busy')"],
    ),
    "drop_enum": Fact(
        "DROP TYPE of an enum no column uses",
        {"type": AE},
        rewrites=False,
        scans=False,
        example="DROP TYPE {type}",
        setup=["CREATE TYPE {type} AS ENUM ('calm', 'busy')"],
    ),
    "create_trigger": Fact(
        "CREATE TRIGGER",
        {"table": SRE},
        rewrites=False,
        scans=False,
        example=TRIGGER,
        setup=[FUNCTION],
    ),
    "drop_trigger": Fact(
        "DROP TRIGGER",
        {"table": AE},
        rewrites=False,
        scans=False,
        example="DROP TRIGGER {table}_touch ON {table}",
        setup=[FUNCTION, TRIGGER],
    ),
    "create_function": Fact(
        "CREATE FUNCTION",
        {},
        rewrites=False,
        scans=False,
        example=FUNCTION,
    ),
    "replace_function": Fact(
        "CREATE OR REPLACE FUNCTION of a trigger's function",
        {},
        rewrites=False,
        scans=False,
        example=FUNCTION.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"),
        setup=[FUNCTION, TRIGGER],
    ),
    "drop_function": Fact(
        "DROP FUNCTION",
        {"function": AE},
        rewrites=False,
        scans=False,
        example="DROP FUNCTION {function}()",
        setup=[FUNCTION],
    ),
    "create_sequence": Fact(
        "CREATE SEQUENCE",
        {},
        rewrites=False,
        scans=False,
        example="CREATE SEQUENCE {sequence}",
    ),
    "drop_sequence": Fact(
        "DROP SEQUENCE",
        {"sequence": AE},
        rewrites=False,
        scans=False,
        example="DROP SEQUENCE {sequence}",
        setup=["CREATE SEQUENCE {sequence}"],
    ),
    "alter_sequence_owned_by": Fact(
        "ALTER SEQUENCE ... OWNED BY",
        {"sequence": SRE, "table": "ACCESS SHARE"},
        rewrites=False,
        scans=False,
        example="ALTER SEQUENCE {sequence} OWNED BY {table}.code",
        setup=["CREATE SEQUENCE {sequence}"],
    ),
    "add_identity": Fact(
        "ALTER COLUMN ... ADD GENERATED BY DEFAULT AS IDENTITY, the column NOT NULL already",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ALTER + "id ADD GENERATED BY DEFAULT AS IDENTITY",
    ),
    "drop_identity": Fact(
        "ALTER COLUMN ... DROP IDENTITY (the values stay)",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ALTER + "id DROP IDENTITY",
        setup=[ALTER + "id ADD GENERATED BY DEFAULT AS IDENTITY"],
    ),
    "set_generated": Fact(
        "ALTER COLUMN ... SET GENERATED ALWAYS (or BY DEFAULT)",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ALTER + "id SET GENERATED ALWAYS",
        setup=[ALTER + "id ADD GENERATED BY DEFAULT AS IDENTITY"],
    ),
    "setval_to_max": Fact(
        "SELECT setval(<the column's sequence>, max(column)) FROM the table (no index on it)",
        {"table": "ACCESS SHARE"},
        rewrites=False,
        scans=True,
        example="SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}",
        setup=[ALTER + "id ADD GENERATED BY DEFAULT AS IDENTITY"],
    ),
    "setval_to_max_of_key": Fact(
        "SELECT setval(<the column's sequence>, max(column)) FROM the table, the column its key",
        {"table": "ACCESS SHARE"},
        rewrites=False,
        scans=False,
        example="SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}",
        setup=[
            ALTER + "id ADD GENERATED BY DEFAULT AS IDENTITY",
            "ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (id)",
        ],
    ),
    "alter_column_collation": Fact(
        "ALTER COLUMN TYPE of the same type with another COLLATE, a CHECK on the column",
        {"table": AE},
        rewrites=False,
        scans=True,
        example=ALTER + 'note TYPE text COLLATE "C"',
        setup=["ALTER TABLE {table} ADD CONSTRAINT {table}_note_check CHECK (note <> '')"],
    ),
    "alter_column_collation_unchecked": Fact(
        "ALTER COLUMN TYPE of the same type with another COLLATE, no CHECK or index on it",
        {"table": AE},
        rewrites=False,
        scans=False,
        example=ALTER + 'note TYPE text COLLATE "C"',
    ),
}


def add_column_kind(
    *,
    default: str | None = None,
    not_null: bool = False,
    identity: bool = False,
    generated: bool = False,
    serial: bool = False,
) -> str:
    """The FACTS kind of an ADD COLUMN. default: None, "constant" (or stable, like now()) or
    "volatile" (like clock_timestamp() or gen_random_uuid(): a value per row, so a rewrite)."""
    if identity:
        return "add_column_identity"
    if generated:
        return "add_column_generated_stored"
    if serial:
        return "add_column_serial"
    if default == "volatile":
        return "add_column_volatile_default"
    if default is not None:
        return "add_column_not_null_default" if not_null else "add_column_constant_default"
    return "add_column_nullable"


# A column PostgreSQL adds to a probe table, to say whether adding it rewrites: a default
# stored once (atthasmissing) is read by every row as it stands; otherwise each row gets its own.
PROBED = """
SELECT atthasmissing, atthasdef OR attidentity <> '' OR attgenerated <> ''
FROM pg_attribute WHERE attrelid = 'pg_temp.lock_facts_probe'::regclass AND attname = %(name)s
"""


def add_column_rewrites(connection, column: str, ddl: str, like: str | None = None) -> bool | None:
    """Whether ALTER TABLE ... ADD COLUMN <ddl> rewrites the table, as PostgreSQL decides it
    (a volatile default, an identity, a generated column: yes; a constant or stable default:
    no), asked of PostgreSQL on an empty temporary table (shaped like the table `like`, a
    quoted name, so a generated column finds its columns) in a savepoint rolled back after.
    column is the added column's name, ddl its definition as ADD COLUMN writes it. None when
    PostgreSQL cannot add it there (a type the same revision creates, say).

    connection: a SQLAlchemy Connection (autogenerate's, in its transaction).
    """
    from sqlalchemy.exc import DBAPIError

    savepoint = connection.begin_nested()
    try:
        shape = f"(LIKE {like})" if like else "()"
        connection.exec_driver_sql(f"CREATE TEMPORARY TABLE lock_facts_probe {shape}")
        connection.exec_driver_sql(f"ALTER TABLE pg_temp.lock_facts_probe ADD COLUMN {ddl}")
        stored_once, defaulted = connection.exec_driver_sql(PROBED, {"name": column}).one()
    except DBAPIError:
        return None
    finally:
        savepoint.rollback()
    return defaulted and not stored_once


def added_column_rewrites(connection, table: str, column) -> bool | None:
    """add_column_rewrites for a SQLAlchemy Column that autogenerate adds to the existing
    table of that name."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateColumn

    from migration_runner.tools.autogenerate.identifiers import quoted

    ddl = str(CreateColumn(column).compile(dialect=postgresql.dialect()))
    return add_column_rewrites(connection, column.name, ddl, like=quoted(table))


def describe(kind: str, table: str, referenced: str | None = None, **names: str) -> str:
    """The comment clause for a statement of this kind on table: its locks, rewrite and scan.

    names: the other roles' objects (index=..., sequence=..., view=..., type=..., function=...);
    a role not named is described by what it is ("the index").
    """
    fact = FACTS[kind]
    names = {**UNNAMED, **names, "table": table}
    if referenced:
        names["referenced"] = referenced
    locks = [f"{mode} on {names[role]} ({BLOCKS[mode]})" for role, mode in fact.locks.items()]
    if not locks:
        return "locks no existing table, rewrites and reads nothing"
    taken = f"takes {' and '.join(locks)}"
    if fact.rewrites:
        return f"{taken}, and rewrites {table} while it holds it"
    if fact.scans:
        return f"{taken}, and reads every row of {table} while it holds it"
    return f"{taken}, briefly: no rewrite, no scan"
