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
from dataclasses import dataclass, field

from alembic.migration import MigrationContext
from alembic.operations import Operations, ops
from sqlalchemy import MetaData

from migration_runner.errors import MigrationError
from migration_runner.tools.model_parity import ModelMismatch

ACCESS_EXCLUSIVE = "takes an ACCESS EXCLUSIVE lock on {table}, briefly (no table rewrite)"


@dataclass
class Statement:
    sql: str
    comment: str


@dataclass
class Plan:
    """The SQL of one model change: a transactional part and a concurrent (index) part."""

    up: list[Statement] = field(default_factory=list)
    down: list[Statement] = field(default_factory=list)  # in the order it runs
    concurrent_up: list[Statement] = field(default_factory=list)
    concurrent_down: list[Statement] = field(default_factory=list)
    destructive_up: bool = False
    destructive_down: bool = False
    warnings: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.up or self.concurrent_up)


def alembic_sql(op: ops.MigrateOperation, metadata: MetaData) -> list[str]:
    """The statements Alembic itself would run for op, as its --sql mode writes them
    (with the models' naming convention, so unnamed indexes get our names)."""
    buffer = io.StringIO()
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
        self.new_tables = {op.table_name for op in self.ops if isinstance(op, ops.CreateTableOp)}
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
        self.plan.concurrent_down.reverse()
        return self.plan

    # -- one op --------------------------------------------------------------

    def _pair(self, up: list[Statement], down: list[Statement], concurrent: bool = False) -> None:
        """up runs now; down undoes it, and runs in reverse order of the ups."""
        if concurrent:
            self.plan.concurrent_up += up
            self.plan.concurrent_down += list(reversed(down))
        else:
            self.plan.up += up
            self.plan.down += list(reversed(down))

    def _plain(self, op, comment: str) -> list[Statement]:
        return [Statement(sql, comment) for sql in alembic_sql(op, self.metadata)]

    def _render(self, op) -> None:
        table = getattr(op, "table_name", "")
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
            self.plan.destructive_up = True
            hazard = (
                f"Hazard: deletes every value of {table}.{op.column_name}; "
                + ACCESS_EXCLUSIVE.format(table=table)
            )
            back = op.reverse()
            self._pair(
                self._plain(op, hazard),
                self._plain(back, f"Put {table}.{op.column_name} back (its values are not)."),
            )
        elif isinstance(op, ops.AlterColumnOp):
            self._alter_column(op, existing)
        elif isinstance(op, ops.CreateIndexOp):
            self._index(op, existing)
        elif isinstance(op, ops.DropIndexOp):
            self._pair(self._concurrently(self._plain(op, f"Drop index {op.index_name}.")),
                       self._concurrently(self._plain(op.reverse(), f"Rebuild index {op.index_name}.")),
                       concurrent=existing)  # fmt: skip
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
            self._pair(self._plain(op, f"Drop {op.constraint_name}: " + ACCESS_EXCLUSIVE.format(table=table)),
                       self._plain(op.reverse(), f"Restore {op.constraint_name}."))  # fmt: skip
        else:
            raise MigrationError(
                f"autogenerate does not write {type(op).__name__} ({table}) yet: "
                "write this change by hand with `alembic revision -m ...` (MIGRATIONS.md)."
            )

    def _drop_table_statements(self, op: ops.DropTableOp) -> list[Statement]:
        hazard = f"Hazard: deletes {op.table_name} and every row in it."
        return self._plain(op, hazard)

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
        add = [st for st in self._plain(op, comment) if " INDEX " not in st.sql.split("(")[0]]
        self._pair(add, self._plain(op.reverse(), f"Drop {table}.{name} again."))
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
                    Statement(f"ALTER TABLE {table} DROP CONSTRAINT {check}", "The CHECK has done its job."),
                ],
                [Statement(f"ALTER TABLE {table} ALTER COLUMN {name} DROP NOT NULL", f"{table}.{name} may be NULL again.")],
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
        self._pair(up, down, concurrent=True)

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
        table, name = op.table_name, op.constraint_name
        add = [Statement(sql + " NOT VALID", f"Add {what} NOT VALID: {ACCESS_EXCLUSIVE.format(table=table)}, no scan.")
               for sql in alembic_sql(op, self.metadata)]  # fmt: skip
        validate = Statement(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}",
                             "Validate it: scans under SHARE UPDATE EXCLUSIVE (reads and writes go on).")  # fmt: skip
        self._pair(add + [validate], self._plain(op.reverse(), f"Drop {what}."))

    # -- CHECK and index differences Alembic does not see ---------------------------

    def _drop_mismatch(self, mismatch: ModelMismatch) -> None:
        table, name = mismatch.table, mismatch.name
        if mismatch.kind == "CHECK":
            back = f"ALTER TABLE {table} ADD CONSTRAINT {name} {mismatch.database}"
            self._pair([Statement(f"ALTER TABLE {table} DROP CONSTRAINT {name}", f"Drop CHECK {name}: " + ACCESS_EXCLUSIVE.format(table=table))],
                       [Statement(back, f"Restore CHECK {name}.")])  # fmt: skip
        else:
            self._pair([Statement(f"DROP INDEX CONCURRENTLY IF EXISTS {name}", f"Drop index {name} without blocking.")],
                       [Statement(_concurrent_definition(mismatch.database), f"Rebuild index {name}.")], concurrent=True)  # fmt: skip

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
            self._pair([add, validate], [Statement(f"ALTER TABLE {table} DROP CONSTRAINT {name}", f"Drop CHECK {name}.")])  # fmt: skip
        else:
            self._pair([Statement(_concurrent_definition(mismatch.models), f"Build index {name} without blocking writes.")],
                       [Statement(f"DROP INDEX CONCURRENTLY IF EXISTS {name}", f"Drop index {name}.")], concurrent=True)  # fmt: skip

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


def _concurrent_definition(indexdef: str) -> str:
    """pg_get_indexdef's text, built CONCURRENTLY."""
    for plain in ("CREATE UNIQUE INDEX ", "CREATE INDEX "):
        if indexdef.startswith(plain):
            return f"{plain}CONCURRENTLY IF NOT EXISTS {indexdef[len(plain) :]}"
    return indexdef


def plan(upgrade_ops: ops.UpgradeOps, mismatches: list[ModelMismatch], metadata: MetaData) -> Plan:
    return Renderer(upgrade_ops, mismatches, metadata).render()
