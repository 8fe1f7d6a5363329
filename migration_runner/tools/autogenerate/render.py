"""Alembic's autogenerate ops as SQL a DBA reviews: online-safe, each risk named, in phases.

pg-schema-diff's rules, applied to each change on a table that already exists:
- an index is built with CREATE INDEX CONCURRENTLY, in a revision of its own
  headed `-- Transaction: none` (a plain CREATE INDEX blocks writes for the build);
- a foreign key or CHECK is added NOT VALID, then VALIDATEd (the scan then
  takes a lock that lets reads and writes through);
- SET NOT NULL goes through a validated CHECK (col IS NOT NULL), so PostgreSQL
  skips its own full scan under ACCESS EXCLUSIVE;
- a type change PostgreSQL makes without a rewrite (a longer varchar) stays one
  statement.
And the rules of expand and contract (MIGRATIONS.md section 2): what the old
code would break on waits for the contract phase (dropped columns and tables, a
NOT NULL the old code may violate), and a rename or a rewriting type change
becomes a new column kept in step by a trigger (expand_contract.py). A drop
plus an add of the same type on one table, undeclared, is reported as a likely
rename. New tables are created whole: nobody is reading them yet.
Each statement is preceded by a comment that says what it does and its hazard.
"""

import io
import logging
import re

from alembic.migration import MigrationContext
from alembic.operations import Operations, ops
from sqlalchemy import MetaData

from migration_runner.errors import MigrationError
from migration_runner.steps.phases import CONTRACT
from migration_runner.tools.autogenerate import expand_contract
from migration_runner.tools.autogenerate.catalog import Catalog
from migration_runner.tools.autogenerate.expand_contract import (
    BRIEF,
    concurrently,
    drop_constraint,
    table_of,
)
from migration_runner.tools.autogenerate.plan import Plan, Statement
from migration_runner.tools.autogenerate.type_changes import spelled
from migration_runner.tools.model_parity import ModelMismatch

FOREIGN_KEY = re.compile(r"^ALTER TABLE \S+ ADD CONSTRAINT (\S+) FOREIGN KEY")
# AlterColumnOp's "nothing changes" value of each modify_* attribute.
UNCHANGED = {
    "modify_type": None,
    "modify_nullable": None,
    "modify_server_default": False,
    "modify_comment": False,
}


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
        self,
        upgrade_ops: ops.UpgradeOps,
        mismatches: list[ModelMismatch],
        metadata: MetaData,
        catalog: Catalog,
    ):
        self.metadata, self.catalog = metadata, catalog
        all_ops = flatten(upgrade_ops)
        self.changes = expand_contract.analyse(all_ops, metadata, catalog)
        self.ops = [op for op in all_ops if not self.changes.covers(op)]
        self.new_tables = {table_of(op) for op in self.ops if isinstance(op, ops.CreateTableOp)}
        self.gone_tables = {op.table_name for op in self.ops if isinstance(op, ops.DropTableOp)}
        named = {
            getattr(op, "index_name", None) or getattr(op, "constraint_name", None)
            for op in all_ops
        }
        renamed = {name for rename in self.changes.table_renames for name in vars(rename).values()}
        self.mismatches = [
            m for m in mismatches
            if m.table not in self.new_tables | self.gone_tables | renamed
            and m.name not in named and (m.table, m.name) not in self.changes.covered_names
        ]  # fmt: skip
        self.plan = Plan()

    def render(self) -> Plan:
        # The contract's first steps (their downs run last), our removals (a CHECK on a column
        # about to go), Alembic's ops, the two-phase changes, our additions.
        expand_contract.write_contract_prelude(self.plan, self.changes)
        for mismatch in self.mismatches:
            if mismatch.database is not None:
                self._drop_mismatch(mismatch)
        for op in self.ops:
            self._render(op)
        for rename in self.changes.table_renames:
            expand_contract.write_table_rename(self.plan, rename, self.catalog)
        for swap in self.changes.swaps:
            expand_contract.write_swap(self.plan, swap)
        for table, moved in self.changes.moved_objects.items():
            expand_contract.write_moved_objects(self.plan, table, moved)
        for mismatch in self.mismatches:
            if mismatch.models is not None:
                self._add_mismatch(mismatch)
        self._warn_renames()
        return self.plan

    # -- one op --------------------------------------------------------------

    def _plain(self, op, comment: str) -> list[Statement]:
        return [Statement(sql, comment) for sql in alembic_sql(op, self.metadata)]

    def _render(self, op) -> None:
        table = table_of(op)
        existing = table not in self.new_tables
        if isinstance(op, ops.CreateTableOp):
            self.plan.pair(self._plain(op, f"New table {table}: nothing reads it yet."),
                           self._drop_table_statements(op.reverse()))  # fmt: skip
        elif isinstance(op, ops.DropTableOp):
            self.plan.pair(
                self._drop_table_statements(op),
                self._plain(op.reverse(), f"Recreate {table} (empty)."),
                phase=CONTRACT,
            )
        elif isinstance(op, ops.AddColumnOp):
            self._add_column(op, existing)
        elif isinstance(op, ops.DropColumnOp):
            self._drop_column(op)
        elif isinstance(op, ops.AlterColumnOp):
            self._alter_column(op, existing)
        elif isinstance(op, ops.CreateIndexOp):
            self._index(op, existing)
        elif isinstance(op, ops.DropIndexOp):
            self.plan.pair(self._concurrently(self._plain(op, f"Drop index {op.index_name}.")),
                           self._concurrently(self._plain(op.reverse(), f"Rebuild index {op.index_name}.")),
                           online=existing)  # fmt: skip
        elif isinstance(op, ops.CreateForeignKeyOp) and existing:
            self._not_valid_then_validate(op, f"foreign key {op.constraint_name}")
        elif isinstance(
            op, (ops.CreateTableCommentOp, ops.DropTableCommentOp, ops.CreateForeignKeyOp)
        ):
            self.plan.pair(
                self._plain(op, "Comment, or a key on a new table."),
                self._plain(op.reverse(), "Undo it."),
            )
        elif isinstance(op, ops.DropConstraintOp):
            self.plan.pair([drop_constraint(table, op.constraint_name, f"Drop {op.constraint_name}, which the models no longer declare: " + BRIEF.format(table=table))],
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

    def _drop_column(self, op: ops.DropColumnOp) -> None:
        """Contract: the old code may still read or write it. Its indexes and constraints go with
        it; the down rebuilds them (expand_contract.write_contract_prelude)."""
        table = op.table_name
        self.plan.drops_columns = True
        brief = BRIEF.format(table=table)
        hazard = f"Hazard: deletes every value of {table}.{op.column_name}; {brief}"
        self.plan.pair(
            self._ignoring(self._plain(op, hazard), "ban-drop-column"),
            self._plain(
                op.reverse(),
                f"Put {table}.{op.column_name} back, as the last column (its values are not).",
            ),
            phase=CONTRACT,
        )

    def _add_column(self, op: ops.AddColumnOp, existing: bool) -> None:
        column = op.column
        table, name = op.table_name, column.name
        # NOT NULL without a default: the old code's inserts leave it NULL, so it is added
        # nullable and made NOT NULL in the contract phase.
        not_null_later = existing and not column.nullable and column.server_default is None
        comment = f"Add {table}.{name}: " + BRIEF.format(table=table)
        if column.server_default is not None:
            comment += "; a volatile default would rewrite the table"
        if not_null_later:
            comment += "; nullable until the contract phase (the old code leaves it NULL)"
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
        if not_null_later:  # PostgreSQL's column definition ends with its NOT NULL
            add[0].sql = add[0].sql.removesuffix(" NOT NULL")
        self.plan.pair(add, self._plain(op.reverse(), f"Drop {table}.{name} again."))
        for key_name, add_sql in keys:
            self.plan.pair(
                self._validated(table, key_name, add_sql, f"foreign key {key_name}"),
                [drop_constraint(table, key_name, f"Drop foreign key {key_name}.")],
                online=True,
            )
        if not_null_later:
            expand_contract.not_null_in_contract(self.plan, table, name)

    def _alter_column(self, op: ops.AlterColumnOp, existing: bool) -> None:
        """Each kind of change on its own: a type change that rewrites the table is a column
        swap (expand_contract.py) and never reaches here."""
        if not existing:
            self._plain_alter(op)
            return
        if op.modify_type is not None:
            self._plain_alter(_only(op, "modify_type"), rewrite_free=True)
        if op.modify_server_default is not False or op.modify_comment is not False:
            self._plain_alter(_only(op, "modify_server_default", "modify_comment"))
        if op.modify_nullable is True:
            self._plain_alter(_only(op, "modify_nullable"))
        elif op.modify_nullable is False:
            self._not_null(op)

    def _plain_alter(self, op: ops.AlterColumnOp, rewrite_free: bool = False) -> None:
        table, name = op.table_name, op.column_name
        comment = f"Alter {table}.{name}: " + BRIEF.format(table=table)
        if rewrite_free:
            comment = (
                f"Retype {table}.{name} from {spelled(op.existing_type)} to "
                f"{spelled(op.modify_type)}: PostgreSQL changes its catalog only (no rewrite, "
                f"no scan); an ACCESS EXCLUSIVE lock on {table}, briefly."
            )
        up = self._plain(op, comment)
        if rewrite_free:  # squawk assumes a rewrite; type_changes.py proves there is none
            self._ignoring(up, "changing-column-type")
        self.plan.pair(up, self._plain(op.reverse(), f"Undo the change to {table}.{name}."))

    def _not_null(self, op: ops.AlterColumnOp) -> None:
        """Contract: the old code may still write NULL. With a default in the models, expand
        fills the NULLs first; without one, the contract refuses while a NULL is left."""
        table = self.metadata.tables[op.table_name]
        column = table.c[op.column_name]
        if column.server_default is not None:
            expand_contract.write_filled_not_null(self.plan, table, column)
        else:
            expand_contract.not_null_in_contract(self.plan, table.name, column.name)

    def _index(self, op: ops.CreateIndexOp, existing: bool) -> None:
        name = op.index_name
        if not existing:
            self.plan.pair(
                self._plain(op, f"Index {name} on the new table."),
                self._plain(op.reverse(), f"Drop {name}."),
            )
            return
        up = self._concurrently(self._plain(op, f"Build {name} without blocking writes (CONCURRENTLY); "
                                                "if it is interrupted, drop the INVALID index and rerun."))  # fmt: skip
        down = self._concurrently(
            self._plain(op.reverse(), f"Drop {name} without blocking (CONCURRENTLY).")
        )
        self.plan.pair(up, down, online=True)

    @staticmethod
    def _concurrently(statements: list[Statement]) -> list[Statement]:
        for statement in statements:
            if statement.sql.startswith("DROP INDEX "):
                statement.sql = f"DROP INDEX CONCURRENTLY IF EXISTS {statement.sql[11:]}"
            else:
                statement.sql = concurrently(statement.sql)
        return statements

    def _not_valid_then_validate(self, op, what: str) -> None:
        table, name = table_of(op), op.constraint_name
        add = []
        for sql in alembic_sql(op, self.metadata):
            add += self._validated(table, name, sql, what)
        self.plan.pair(add, self._plain(op.reverse(), f"Drop {what}."), online=True)

    @staticmethod
    def _validated(table: str, name: str, add_sql: str, what: str) -> list[Statement]:
        """ADD CONSTRAINT ... NOT VALID (no scan under the strong lock), then VALIDATE."""
        return [
            Statement(add_sql + " NOT VALID", f"Add {what} NOT VALID: {BRIEF.format(table=table)}, no scan."),
            Statement(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}",
                      "Validate it: scans under SHARE UPDATE EXCLUSIVE (reads and writes go on)."),
        ]  # fmt: skip

    # -- CHECK and index differences Alembic does not see ---------------------------

    def _drop_mismatch(self, mismatch: ModelMismatch) -> None:
        table, name = mismatch.table, mismatch.name
        if mismatch.kind == "CHECK":
            back = f"ALTER TABLE {table} ADD CONSTRAINT {name} {mismatch.database}"
            self.plan.pair([drop_constraint(table, name, f"Drop CHECK {name}, which the models no longer declare: " + BRIEF.format(table=table))],
                           [Statement(back, f"Restore CHECK {name}.")])  # fmt: skip
        else:
            self.plan.pair([Statement(f"DROP INDEX CONCURRENTLY IF EXISTS {name}", f"Drop index {name} without blocking.")],
                           [Statement(concurrently(mismatch.database), f"Rebuild index {name}.")], online=True)  # fmt: skip

    def _add_mismatch(self, mismatch: ModelMismatch) -> None:
        table, name = mismatch.table, mismatch.name
        if mismatch.kind == "CHECK":
            add = Statement(
                f"ALTER TABLE {table} ADD CONSTRAINT {name} {mismatch.models} NOT VALID",
                f"Add CHECK {name} NOT VALID: {BRIEF.format(table=table)}, no scan.",
            )
            validate = Statement(
                f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}",
                "Validate it: scans under SHARE UPDATE EXCLUSIVE (reads and writes go on); fails if a row violates it.",
            )
            self.plan.pair([add, validate], [drop_constraint(table, name, f"Drop CHECK {name}.")], online=True)  # fmt: skip
        else:
            self.plan.pair([Statement(concurrently(mismatch.models), f"Build index {name} without blocking writes.")],
                           [Statement(f"DROP INDEX CONCURRENTLY IF EXISTS {name}", f"Drop index {name}.")], online=True)  # fmt: skip

    def _warn_renames(self) -> None:
        dropped = [op for op in self.ops if isinstance(op, ops.DropColumnOp)]
        added = [op for op in self.ops if isinstance(op, ops.AddColumnOp)]
        for gone in dropped:
            old_type = gone.to_column().type
            for new in added:
                if new.table_name == gone.table_name and str(new.column.type) == str(old_type):
                    self.plan.warnings.append(
                        f"{gone.table_name}.{gone.column_name} is dropped and "
                        f"{new.table_name}.{new.column.name} added with the same type: if this is a "
                        "rename, the values are lost; declare it in the model, "
                        f'info={{"renamed_from": "{gone.column_name}"}}, and autogenerate writes '
                        "it in two phases (MIGRATIONS.md section 2)"
                    )


def _only(op: ops.AlterColumnOp, *kept: str) -> ops.AlterColumnOp:
    """op with only the kept modify_* changes (the others left as they are)."""
    changes = {
        name: getattr(op, name) if name in kept else same for name, same in UNCHANGED.items()
    }
    return ops.AlterColumnOp(
        op.table_name, op.column_name, schema=op.schema, existing_type=op.existing_type,
        existing_server_default=op.existing_server_default,
        existing_nullable=op.existing_nullable, existing_comment=op.existing_comment,
        **changes,
    )  # fmt: skip


def plan(
    upgrade_ops: ops.UpgradeOps,
    mismatches: list[ModelMismatch],
    metadata: MetaData,
    catalog: Catalog,
) -> Plan:
    return Renderer(upgrade_ops, mismatches, metadata, catalog).render()
