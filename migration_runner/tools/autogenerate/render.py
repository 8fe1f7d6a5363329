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

This module decides the order; each op's SQL comes from the one function registered for
its class in renderers.py's dispatch table (render_tables, render_columns, render_indexes,
render_constraints), imported here so that they are registered.
"""

from alembic.operations import ops
from sqlalchemy import MetaData

from migration_runner.tools.autogenerate import (  # noqa: F401 - each registers its renderers
    constraints,
    expand_contract,
    kinds,
    render_columns,
    render_constraints,
    render_indexes,
    render_tables,
    table_drops,
)
from migration_runner.tools.autogenerate.catalog import Catalog
from migration_runner.tools.autogenerate.expand_contract import table_of
from migration_runner.tools.autogenerate.plan import Plan
from migration_runner.tools.autogenerate.renderers import (
    ADDED,
    DROPPED,
    Context,
    render_mismatch,
    render_op,
)
from migration_runner.tools.model_parity import ModelMismatch


def flatten(container) -> list[ops.MigrateOperation]:
    found = []
    for op in container.ops:
        found += flatten(op) if isinstance(op, ops.OpContainer) else [op]
    return found


class Renderer:
    """The order of one diff's SQL; each op's own comes from its function in renderers.py's
    dispatch table (the render_*.py modules)."""

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
        new_tables = {table_of(op) for op in self.ops if isinstance(op, ops.CreateTableOp)}
        self.gone_tables = {op.table_name for op in self.ops if isinstance(op, ops.DropTableOp)}
        gone = self.gone_tables  # a dropped table's indexes go with it (table_drops.py)
        self.ops = [op for op in self.ops if not table_drops.taken_with_table(op, gone)]
        self.ops = table_drops.in_drop_order(self.ops, catalog.connection)
        named = {
            getattr(op, "index_name", None) or getattr(op, "constraint_name", None)
            for op in all_ops
        }
        renamed = {name for rename in self.changes.table_renames for name in vars(rename).values()}
        self.mismatches = [
            m
            for m in mismatches
            if m.table not in new_tables | self.gone_tables | renamed
            and m.name not in named
            and (m.table, m.name) not in self.changes.covered_names
        ]
        # Changed, dropped and unique constraints: rerunnable online steps (constraints.py).
        found = constraints.find(self.ops, self.mismatches, metadata, catalog, new_tables)
        self.constraint_changes = found
        self.ops = [op for op in self.ops if not found.covers(op)]
        self.mismatches = [m for m in self.mismatches if not found.covers(m)]
        self.context = Context(metadata, Plan(), new_tables, catalog)
        self.plan = self.context.plan

    def render(self) -> Plan:
        # The contract's first steps (their downs run last), our removals (a CHECK on a column
        # about to go), Alembic's ops, the two-phase changes, our additions.
        expand_contract.write_contract_prelude(self.plan, self.changes)
        for mismatch in self.mismatches:
            if mismatch.database is not None:
                render_mismatch(mismatch, DROPPED, self.context)
        self.constraint_changes.write(self.plan)
        for op in self.ops:
            render_op(op, self.context)
        for rename in self.changes.table_renames:
            expand_contract.write_table_rename(self.plan, rename, self.catalog)
        for swap in self.changes.swaps:
            expand_contract.write_swap(self.plan, swap)
        for table, moved in self.changes.moved_objects.items():
            expand_contract.write_moved_objects(self.plan, table, moved)
        for mismatch in self.mismatches:
            if mismatch.models is not None:
                render_mismatch(mismatch, ADDED, self.context)
        self._warn_renames()
        return self.plan

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


def plan(
    upgrade_ops: ops.UpgradeOps,
    mismatches: list[ModelMismatch],
    metadata: MetaData,
    catalog: Catalog,
) -> Plan:
    return Renderer(upgrade_ops, mismatches, metadata, catalog).render()
