"""Alembic's autogenerate ops as SQL a DBA reviews: online-safe, each risk named.

pg-schema-diff's rules, applied to each change on a table that already exists:
- an index is built with CREATE INDEX CONCURRENTLY, in a revision of its own
  headed `-- Transaction: none` (a plain CREATE INDEX blocks writes for the build);
- a foreign key or CHECK is added NOT VALID, then VALIDATEd (the scan then
  takes a lock that lets reads and writes through);
- SET NOT NULL goes through a validated CHECK (col IS NOT NULL), so PostgreSQL
  skips its own full scan under ACCESS EXCLUSIVE;
- dropping a table or column deletes data: the revision is marked destructive,
  and a drop plus an add of the same type on one table is reported as a
  likely rename.
New tables are created whole: nobody is reading them yet.
Each statement is preceded by a comment that says what it does and its hazard.
"""

import io
import logging
import re
from dataclasses import dataclass, field

from alembic.migration import MigrationContext
from alembic.operations import Operations, ops
from sqlalchemy import MetaData

from migration_runner.errors import MigrationError
from migration_runner.tools.model_parity import ModelMismatch

FOREIGN_KEY = re.compile(r"^ALTER TABLE \S+ ADD CONSTRAINT (\S+) FOREIGN KEY")
ACCESS_EXCLUSIVE = "takes an ACCESS EXCLUSIVE lock on {table}, briefly (no table rewrite)"


@dataclass
class Statement:
    sql: str
    comment: str
    squawk_ignore: str = ""  # a squawk rule this statement breaks on purpose (the comment says why)


@dataclass
class Plan:
    """The SQL of one model change: a transactional part, and the online part that runs
    statement by statement outside a transaction (indexes built CONCURRENTLY, constraints
    VALIDATEd after their NOT VALID addition has committed)."""

    up: list[Statement] = field(default_factory=list)
    down: list[Statement] = field(default_factory=list)  # in the order it runs
    online_up: list[Statement] = field(default_factory=list)
    online_down: list[Statement] = field(default_factory=list)
    destructive_up: bool = False
    destructive_down: bool = False
    drops_columns: bool = False  # the down file then puts them back as their table's last columns
    warnings: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.up or self.online_up)


def alembic_sql(op: ops.MigrateOperation, metadata: MetaData) -> list[str]:
    """The statements Alembic itself would run for op, as its --sql mode writes them
    (with the models' naming convention, so unnamed indexes get our names)."""
    buffer = io.StringIO()
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)  # no "Context impl"
    context = MigrationContext.configure(
        dialect_name="postgresql",
        opts={
            "as_sql": True,
            "output_buffer": buffer,
            "literal_binds": True,
            "target_metadata": metadata,
        },
    )
    Operations(context).invoke(op)
    return [part.strip() for part in buffer.getvalue().split(";\n\n") if part.strip()]


def flatten(container) -> list[ops.MigrateOperation]:
    found = []
    for op in container.ops:
        found += flatten(op) if isinstance(op, ops.OpContainer) else [op]
    return found


class Renderer:
    def __init__(
        self, upgrade_ops: ops.UpgradeOps, mismatches: list[ModelMismatch], metadata: MetaData
    ):
        self.metadata = metadata
        self.ops = flatten(upgrade_ops)
        self.new_tables = {_table(op) for op in self.ops if isinstance(op, ops.CreateTableOp)}
        self.gone_tables = {op.table_name for op in self.ops if isinstance(op, ops.DropTableOp)}
        named = {
            getattr(op, "index_name", None) or getattr(op, "constraint_name", None)
            for op in self.ops
        }
        self.mismatches = [
            m for m in mismatches
            if m.table not in self.new_tables | self.gone_tables and m.name not in named
        ]  # fmt: skip
        self.plan = Plan()

    def render(self) -> Plan:
        # Our removals first (a CHECK on a column about to go), Alembic's ops, our additions.
        for mismatch in self.mismatches:
            if mismatch.database is not None:
                self._drop_mismatch(mismatch)
        for op in self.ops:
            self._render(op)
        for mismatch in self.mismatches:
            if mismatch.models is not None:
                self._add_mismatch(mismatch)
        self._warn_renames()
        self.plan.down.reverse()
        self.plan.online_down.reverse()
        return self.plan

    # -- one op --------------------------------------------------------------

    def _pair(self, up: list[Statement], down: list[Statement], online: bool = False) -> None:
        """up runs now; down undoes it, and runs in reverse order of the ups. online: in the
        revision that runs outside a transaction, each statement committed on its own."""
        if online:
            self.plan.online_up += up
            self.plan.online_down += list(reversed(down))
        else:
            self.plan.up += up
            self.plan.down += list(reversed(down))

    def _plain(self, op, comment: str) -> list[Statement]:
        return [Statement(sql, comment) for sql in alembic_sql(op, self.metadata)]

    def _render(self, op) -> None:
        table = _table(op)
        existing = table not in self.new_tables
        if isinstance(op, ops.CreateTableOp):
            self._pair(self._plain(op, f"New table {table}: nothing reads it yet."),
                       self._drop_table_statements(op.reverse()))  # fmt: skip
            self.plan.destructive_down = True
        elif isinstance(op, ops.DropTableOp):
            self.plan.destructive_up = True
            self._pair(
                self._drop_table_statements(op),
                self._plain(op.reverse(), f"Recreate {table} (empty)."),
            )
        elif isinstance(op, ops.AddColumnOp):
            self._add_column(op, existing)
        elif isinstance(op, ops.DropColumnOp):
            self.plan.destructive_up = self.plan.drops_columns = True
            hazard = (
                f"Hazard: deletes every value of {table}.{op.column_name}; "
                + ACCESS_EXCLUSIVE.format(table=table)
            )
            back = op.reverse()
            self._pair(
                self._ignoring(self._plain(op, hazard), "ban-drop-column"),
                self._plain(
                    back,
                    f"Put {table}.{op.column_name} back, as the last column (its values are not).",
                ),
            )
        elif isinstance(op, ops.AlterColumnOp):
            self._alter_column(op, existing)
        elif isinstance(op, ops.CreateIndexOp):
            self._index(op, existing)
        elif isinstance(op, ops.DropIndexOp):
            self._pair(self._concurrently(self._plain(op, f"Drop index {op.index_name}.")),
                       self._concurrently(self._plain(op.reverse(), f"Rebuild index {op.index_name}.")),
                       online=existing)  # fmt: skip
        elif isinstance(op, ops.CreateForeignKeyOp) and existing:
            self._not_valid_then_validate(op, f"foreign key {op.constraint_name}")
        elif isinstance(
            op, (ops.CreateTableCommentOp, ops.DropTableCommentOp, ops.CreateForeignKeyOp)
        ):
            self._pair(
                self._plain(op, "Comment, or a key on a new table."),
                self._plain(op.reverse(), "Undo it."),
            )
        elif isinstance(op, ops.DropConstraintOp):
            self._pair([_drop_constraint(table, op.constraint_name, f"Drop {op.constraint_name}, which the models no longer declare: " + ACCESS_EXCLUSIVE.format(table=table))],
                       self._plain(op.reverse(), f"Restore {op.constraint_name}."))  # fmt: skip
        else:
            raise MigrationError(
                f"autogenerate does not write {type(op).__name__} ({table}) yet: "
                "write this change by hand with `alembic revision -m ...` (MIGRATIONS.md)."
            )

    def _drop_table_statements(self, op: ops.DropTableOp) -> list[Statement]:
        hazard = f"Hazard: deletes {op.table_name} and every row in it."
        return self._ignoring(self._plain(op, hazard), "ban-drop-table")

    @staticmethod
    def _ignoring(statements: list[Statement], rule: str) -> list[Statement]:
        """A destructive statement squawk bans: the header says Destructive: yes, and the
        runner's data-loss guard stops it while rows are there."""
        for statement in statements:
            statement.squawk_ignore = rule
        return statements

    def _add_column(self, op: ops.AddColumnOp, existing: bool) -> None:
        column = op.column
        table, name = op.table_name, column.name
        if existing and not column.nullable and column.server_default is None:
            raise MigrationError(
                f"The models add {table}.{name} as NOT NULL without a server default: rows that "
                "exist cannot satisfy it. Add it nullable (or with a server_default), backfill, "
                "then make it NOT NULL in a later revision."
            )
        comment = f"Add {table}.{name}: " + ACCESS_EXCLUSIVE.format(table=table)
        if column.server_default is not None:
            comment += "; a volatile default would rewrite the table"
        # Alembic's add_column also builds the column's index=True index; autogenerate lists
        # that index as an op of its own, built below (CONCURRENTLY on an existing table).
        add, keys = [], []
        for statement in self._plain(op, comment):
            if " INDEX " in statement.sql.split("(")[0]:
                continue
            key = FOREIGN_KEY.match(statement.sql)
            if key and existing:  # the column's own REFERENCES: NOT VALID, then VALIDATE
                keys.append((key.group(1), statement.sql))
            else:
                add.append(statement)
        self._pair(add, self._plain(op.reverse(), f"Drop {table}.{name} again."))
        for key_name, add_sql in keys:
            self._pair(
                self._validated(table, key_name, add_sql, f"foreign key {key_name}"),
                [_drop_constraint(table, key_name, f"Drop foreign key {key_name}.")],
                online=True,
            )
        self.plan.destructive_down = True

    def _alter_column(self, op: ops.AlterColumnOp, existing: bool) -> None:
        table, name = op.table_name, op.column_name
        if op.modify_nullable is False and existing:
            check = f"{table}_{name}_not_null"
            self._pair(
                [
                    Statement(f"ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({name} IS NOT NULL) NOT VALID",
                              f"SET NOT NULL in steps: a CHECK first, NOT VALID: {ACCESS_EXCLUSIVE.format(table=table)}."),
                    Statement(f"ALTER TABLE {table} VALIDATE CONSTRAINT {check}",
                              "Validate it: scans the table under SHARE UPDATE EXCLUSIVE (reads and writes go on)."),
                    Statement(f"ALTER TABLE {table} ALTER COLUMN {name} SET NOT NULL",
                              "The validated CHECK proves it: no second scan, a brief ACCESS EXCLUSIVE lock."),
                    _drop_constraint(table, check, "The CHECK has done its job: NOT NULL says the same."),
                ],
                [Statement(f"ALTER TABLE {table} ALTER COLUMN {name} DROP NOT NULL", f"{table}.{name} may be NULL again.")],
                online=True,
            )  # fmt: skip
            return
        if op.modify_type is not None:
            self.plan.destructive_up = True  # a narrower type can cut or refuse values
            self.plan.warnings.append(
                f"{table}.{name} changes type: it rewrites the table; check the values fit"
            )
        comment = f"Alter {table}.{name}: " + ACCESS_EXCLUSIVE.format(table=table)
        if op.modify_type is not None:
            comment = f"Hazard: retypes {table}.{name}, rewriting the table under ACCESS EXCLUSIVE"
        self._pair(
            self._plain(op, comment),
            self._plain(op.reverse(), f"Undo the change to {table}.{name}."),
        )

    def _index(self, op: ops.CreateIndexOp, existing: bool) -> None:
        name = op.index_name
        if not existing:
            self._pair(
                self._plain(op, f"Index {name} on the new table."),
                self._plain(op.reverse(), f"Drop {name}."),
            )
            return
        up = self._concurrently(self._plain(op, f"Build {name} without blocking writes (CONCURRENTLY); "
                                                "if it is interrupted, drop the INVALID index and rerun."))  # fmt: skip
        down = self._concurrently(
            self._plain(op.reverse(), f"Drop {name} without blocking (CONCURRENTLY).")
        )
        self._pair(up, down, online=True)

    @staticmethod
    def _concurrently(statements: list[Statement]) -> list[Statement]:
        for statement in statements:
            for plain in ("CREATE UNIQUE INDEX ", "CREATE INDEX ", "DROP INDEX "):
                if statement.sql.startswith(plain):
                    rest = statement.sql[len(plain) :]
                    guard = "IF EXISTS " if plain == "DROP INDEX " else "IF NOT EXISTS "
                    statement.sql = f"{plain}CONCURRENTLY {guard}{rest}"
                    break
        return statements

    def _not_valid_then_validate(self, op, what: str) -> None:
        table, name = _table(op), op.constraint_name
        add = []
        for sql in alembic_sql(op, self.metadata):
            add += self._validated(table, name, sql, what)
        self._pair(add, self._plain(op.reverse(), f"Drop {what}."), online=True)

    @staticmethod
    def _validated(table: str, name: str, add_sql: str, what: str) -> list[Statement]:
        """ADD CONSTRAINT ... NOT VALID (no scan under the strong lock), then VALIDATE."""
        return [
            Statement(add_sql + " NOT VALID", f"Add {what} NOT VALID: {ACCESS_EXCLUSIVE.format(table=table)}, no scan."),
            Statement(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}",
                      "Validate it: scans under SHARE UPDATE EXCLUSIVE (reads and writes go on)."),
        ]  # fmt: skip

    # -- CHECK and index differences Alembic does not see ---------------------------

    def _drop_mismatch(self, mismatch: ModelMismatch) -> None:
        table, name = mismatch.table, mismatch.name
        if mismatch.kind == "CHECK":
            back = f"ALTER TABLE {table} ADD CONSTRAINT {name} {mismatch.database}"
            self._pair([_drop_constraint(table, name, f"Drop CHECK {name}, which the models no longer declare: " + ACCESS_EXCLUSIVE.format(table=table))],
                       [Statement(back, f"Restore CHECK {name}.")])  # fmt: skip
        else:
            self._pair([Statement(f"DROP INDEX CONCURRENTLY IF EXISTS {name}", f"Drop index {name} without blocking.")],
                       [Statement(_concurrent_definition(mismatch.database), f"Rebuild index {name}.")], online=True)  # fmt: skip

    def _add_mismatch(self, mismatch: ModelMismatch) -> None:
        table, name = mismatch.table, mismatch.name
        if mismatch.kind == "CHECK":
            add = Statement(
                f"ALTER TABLE {table} ADD CONSTRAINT {name} {mismatch.models} NOT VALID",
                f"Add CHECK {name} NOT VALID: {ACCESS_EXCLUSIVE.format(table=table)}, no scan.",
            )
            validate = Statement(
                f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}",
                "Validate it: scans under SHARE UPDATE EXCLUSIVE (reads and writes go on); fails if a row violates it.",
            )
            self._pair([add, validate], [_drop_constraint(table, name, f"Drop CHECK {name}.")], online=True)  # fmt: skip
        else:
            self._pair([Statement(_concurrent_definition(mismatch.models), f"Build index {name} without blocking writes.")],
                       [Statement(f"DROP INDEX CONCURRENTLY IF EXISTS {name}", f"Drop index {name}.")], online=True)  # fmt: skip

    def _warn_renames(self) -> None:
        dropped = [op for op in self.ops if isinstance(op, ops.DropColumnOp)]
        added = [op for op in self.ops if isinstance(op, ops.AddColumnOp)]
        for gone in dropped:
            old_type = gone.to_column().type if hasattr(gone, "to_column") else None
            for new in added:
                if new.table_name == gone.table_name and str(new.column.type) == str(old_type):
                    self.plan.warnings.append(
                        f"{gone.table_name}.{gone.column_name} is dropped and "
                        f"{new.table_name}.{new.column.name} added with the same type: if this is a "
                        "rename, the values are lost; rename with expand/contract instead (MIGRATIONS.md)"
                    )


def _drop_constraint(table: str, name: str, comment: str) -> Statement:
    """DROP CONSTRAINT, which squawk bans unless someone meant it: here the models say so."""
    return Statement(f"ALTER TABLE {table} DROP CONSTRAINT {name}", comment, "ban-drop-constraint")


def _table(op) -> str:
    """The table an op changes (a foreign key op calls it source_table)."""
    return getattr(op, "table_name", None) or getattr(op, "source_table", "")


def _concurrent_definition(indexdef: str) -> str:
    """pg_get_indexdef's text, built CONCURRENTLY."""
    for plain in ("CREATE UNIQUE INDEX ", "CREATE INDEX "):
        if indexdef.startswith(plain):
            return f"{plain}CONCURRENTLY IF NOT EXISTS {indexdef[len(plain) :]}"
    return indexdef


def plan(upgrade_ops: ops.UpgradeOps, mismatches: list[ModelMismatch], metadata: MetaData) -> Plan:
    return Renderer(upgrade_ops, mismatches, metadata).render()
