"""Changes the old code would break on, written in two phases (MIGRATIONS.md section 2).

- A renamed column (the model says `info={"renamed_from": "old"}`) and a column
  whose new type makes PostgreSQL rewrite the table are both a column swap:
  expand adds the new column, a trigger that keeps it equal to the old one on
  every write, a batched backfill, and the models' indexes and constraints on
  it (built CONCURRENTLY or NOT VALID, under a temporary name while the old
  column's object holds the final one); contract drops the trigger and the old
  column and, for a retyped column, renames the new one to the old name (the
  new code keeps that name, so the swap waits until the old code is gone).
- A column becoming NOT NULL: the old code may still leave it NULL, so the
  NOT NULL itself is a contract step (a validated CHECK first). When the models
  give it a server default, expand fills it: a trigger turns the old code's
  NULLs into the default and a batched backfill fills the rows already there.
- A renamed table (`__table_args__ = {"info": {"renamed_from": "old"}}`):
  expand renames it and leaves a view under the old name, which PostgreSQL
  updates like the table (a simple view), for the old code; contract drops it.

Every down undoes its up without losing a value: the contract's down puts the
old column back, copies every value into it and restores its trigger, in one
transaction. Only that must be atomic: the old column's constraints, indexes
and NOT NULL are taken off it in a `-- Transaction: none` revision numbered
before the contract's (write_contract_prelude), whose down, which runs after
the contract's, rebuilds them online: a CHECK or foreign key NOT VALID then
VALIDATE, a unique constraint on an index built CONCURRENTLY, NOT NULL by way
of a validated CHECK (constraints.py), an index CONCURRENTLY.
"""

import re
from dataclasses import dataclass, field

from alembic.operations import ops
from sqlalchemy import Column, MetaData, Table

from migration_runner.errors import MigrationError
from migration_runner.steps.phases import CONTRACT
from migration_runner.tools.autogenerate import casts, triggers
from migration_runner.tools.autogenerate.backfill import batched_update
from migration_runner.tools.autogenerate.catalog import Catalog, Dependent
from migration_runner.tools.autogenerate.constraints import (
    dropped,
    validated,
    validated_not_null,
)
from migration_runner.tools.autogenerate.identifiers import fitted_name, literal, quoted
from migration_runner.tools.autogenerate.lock_facts import describe
from migration_runner.tools.autogenerate.plan import BEFORE_SWAP, Plan, Statement
from migration_runner.tools.autogenerate.statements import (
    IDENTIFIER,
    concurrently,
    drop_constraint,
    drop_index_concurrently,
    fitted,
    unquoted,
)
from migration_runner.tools.autogenerate.type_changes import converted, rewrites, spelled

RENAMED_FROM = "renamed_from"
STAGING = "__new"  # a retyped column's name, and a moved object's, until the contract
GONE = "The old code is gone"  # why the contract drops what kept it working
UNDONE = "Back to before the expand phase"


@dataclass
class ColumnSwap:
    """A column the models replace: renamed, or retyped in a way that rewrites the table."""

    table: Table  # the models'
    old: Column  # as the database has it
    new: Column  # as the models declare it
    staging: str  # the new column's name until the contract

    @property
    def renamed(self) -> bool:
        return self.staging == self.new.name

    def sync_trigger(self) -> triggers.Trigger:
        table, old, new = self.table.name, self.old, self.new
        to_new = converted(f"NEW.{quoted(old.name)}", old.type, new.type)
        if self.renamed:
            to_old = converted(f"NEW.{quoted(new.name)}", new.type, old.type)
            return triggers.both_ways(table, old.name, new.name, to_new, to_old)
        return triggers.one_way(table, old.name, self.staging, to_new)


@dataclass
class TableRename:
    old: str
    new: str


@dataclass
class Changes:
    """The two-phase changes in one diff, and the ops and differences they take over."""

    swaps: list[ColumnSwap] = field(default_factory=list)
    table_renames: list[TableRename] = field(default_factory=list)
    dropped_objects: dict[str, list[Dependent]] = field(default_factory=dict)  # by table
    moved_objects: dict[str, list[tuple[Dependent, Dependent]]] = field(default_factory=dict)
    covered_ops: set[int] = field(default_factory=set)  # id() of the ops taken over
    covered_names: set[tuple[str, str]] = field(default_factory=set)  # (table, object name)

    def covers(self, op) -> bool:
        name = getattr(op, "index_name", None) or getattr(op, "constraint_name", None)
        return id(op) in self.covered_ops or (table_of(op), name) in self.covered_names


# -- finding them --------------------------------------------------------------------------


def analyse(operations: list, metadata: MetaData, catalog: Catalog) -> Changes:
    """The swaps, renamed tables and dropped columns in Alembic's ops, with the objects they
    carry (read from the database and the models)."""
    changes = Changes()
    dropped = {
        (op.table_name, op.column_name): op for op in operations if isinstance(op, ops.DropColumnOp)
    }
    for op in operations:
        if isinstance(op, ops.AddColumnOp) and RENAMED_FROM in op.column.info:
            changes.swaps.append(_renamed_column(op, dropped, metadata))
            changes.covered_ops |= {id(op), id(dropped[(op.table_name, _renamed_from(op))])}
        elif isinstance(op, ops.AlterColumnOp) and _rewrites(op):
            casts.require_cast(catalog.connection, op)  # its values must have a way there
            changes.swaps.append(_retyped_column(op, metadata))
            changes.covered_ops.add(id(op))
    _find_table_renames(changes, operations, metadata)
    swapped = {(swap.table.name, swap.old.name) for swap in changes.swaps}
    for table, column in [*swapped, *(key for key in dropped if key not in swapped)]:
        _carry_dropped_objects(changes, catalog, table, column)
    for swap in changes.swaps:
        _carry_model_objects(changes, catalog, swap)
    return changes


def _renamed_from(op: ops.AddColumnOp) -> str:
    return op.column.info[RENAMED_FROM]


def _renamed_column(op: ops.AddColumnOp, dropped: dict, metadata: MetaData) -> ColumnSwap:
    old_name = _renamed_from(op)
    gone = dropped.get((op.table_name, old_name))
    if gone is None:
        raise MigrationError(
            f"{op.table_name}.{op.column.name} says renamed_from {old_name}, but the "
            f"database has no {op.table_name}.{old_name} that the models no longer map: "
            "correct the name, or drop the info once the rename is done."
        )
    table = metadata.tables[op.table_name]
    return ColumnSwap(table, gone.to_column(), op.column, op.column.name)


def _rewrites(op: ops.AlterColumnOp) -> bool:
    return op.modify_type is not None and rewrites(op.existing_type, op.modify_type)


def _retyped_column(op: ops.AlterColumnOp, metadata: MetaData) -> ColumnSwap:
    table = metadata.tables[op.table_name]
    old = Column(
        op.column_name,
        op.existing_type,
        nullable=bool(op.existing_nullable),
        server_default=op.existing_server_default or None,
        comment=op.existing_comment,
    )
    return ColumnSwap(table, old, table.c[op.column_name], _staged(op.column_name))


def _staged(name: str) -> str:
    return fitted_name(name, suffix=STAGING)  # within 63 bytes, and not another's


def _carry_dropped_objects(changes: Changes, catalog: Catalog, table: str, column: str) -> None:
    """The old column's indexes and constraints: DROP COLUMN takes them, a downgrade rebuilds
    them, and the diff's own drops of them are taken over."""
    known = changes.dropped_objects.setdefault(table, [])
    for dependent in catalog.dependents(table, column):
        changes.covered_names.add((table, dependent.name))
        if dependent.name not in {d.name for d in known}:
            known.append(dependent)


def _carry_model_objects(changes: Changes, catalog: Catalog, swap: ColumnSwap) -> None:
    """The models' indexes and constraints on the new column, built on it in expand (under a
    temporary name while an old object holds the final one) and renamed in contract."""
    table = swap.table.name
    staging = {s.new.name: s.staging for s in changes.swaps if s.table.name == table}
    in_use = catalog.names_in_use(table)
    moved = changes.moved_objects.setdefault(table, [])
    for final in catalog.model_dependents(table, swap.new.name):
        changes.covered_names.add((table, final.name))
        if final.name in {f.name for f, _ in moved}:
            continue  # on two swapped columns: moved once
        name = _staged(final.name) if final.name in in_use else final.name
        needs_move = name != final.name or any(old != new for old, new in staging.items())
        moved.append((final, final.moved(staging, name) if needs_move else final))


def _find_table_renames(changes: Changes, operations: list, metadata: MetaData) -> None:
    created = {op.table_name: op for op in operations if isinstance(op, ops.CreateTableOp)}
    gone = {op.table_name: op for op in operations if isinstance(op, ops.DropTableOp)}
    for name, op in created.items():
        old = metadata.tables[name].info.get(RENAMED_FROM)
        if old is None:
            continue
        if old not in gone:
            raise MigrationError(
                f"Table {name} says renamed_from {old}, but the database has no table {old} "
                "that the models no longer map: correct the name, or drop the info once the "
                "rename is done."
            )
        changes.table_renames.append(TableRename(old, name))
        changes.covered_ops |= {id(op), id(gone[old])}
        # Its own indexes come with it (the diff drops each under the old table's name and
        # adds it under the new one); so do other tables' keys that now name it (the diff
        # drops each and adds it back): PostgreSQL's key follows the table.
        changes.covered_ops |= {id(other) for other in operations if table_of(other) in {name, old}}
        changes.covered_ops |= _keys_naming(operations, name)


def _keys_naming(operations: list, table: str) -> set[int]:
    """The foreign keys the diff drops and adds back, the same, only to name a renamed table."""
    added = {
        (op.source_table, op.constraint_name): op
        for op in operations
        if isinstance(op, ops.CreateForeignKeyOp) and op.referent_table == table
    }
    found = set()
    for op in operations:
        if isinstance(op, ops.DropConstraintOp) and (op.table_name, op.constraint_name) in added:
            found |= {id(op), id(added[(op.table_name, op.constraint_name)])}
    return found


def table_of(op) -> str:
    """The table an op changes (a foreign key op calls it source_table)."""
    return getattr(op, "table_name", None) or getattr(op, "source_table", "")


# -- writing them --------------------------------------------------------------------------


def write_contract_prelude(plan: Plan, changes: Changes) -> None:
    """What must come first in the contract revision, so that its down runs last: the triggers
    (restored once the old columns are back). The old columns' objects and NOT NULL come off in
    the revision before it, online, whose down rebuilds them online once every old column is
    back (the contract's transactional down then only puts back what must be atomic)."""
    for swap in changes.swaps:
        trigger = swap.sync_trigger()
        plan.pair(trigger.drop(GONE), trigger.create(), phase=CONTRACT)
    for table, objects in changes.dropped_objects.items():
        for dependent in objects:
            plan.pair(
                [_take_off(table, dependent)],
                _rebuilt_online(table, dependent),
                online=BEFORE_SWAP,
                phase=CONTRACT,
            )
    for swap in changes.swaps:
        table, old = swap.table.name, swap.old.name
        if not swap.old.nullable:
            drop = _alter(
                table,
                old,
                "DROP NOT NULL",
                f"{table}.{old} goes in the next revision and the new code no longer "
                "writes it: its NOT NULL first, so that the down puts it back by way "
                "of a validated CHECK once the column is back: "
                f"{describe('drop_not_null', table)}.",
            )
            drop.squawk_ignore = "ban-drop-not-null"
            plan.pair(
                [drop],
                validated_not_null(table, old),
                online=BEFORE_SWAP,
                phase=CONTRACT,
            )


def write_swap(plan: Plan, swap: ColumnSwap) -> None:
    """The column steps of a swap (write_moved_objects adds the table's objects)."""
    table, old, new, staging = swap.table.name, swap.old, swap.new, swap.staging
    trigger = swap.sync_trigger()
    add = Column(staging, new.type, nullable=True, comment=new.comment)
    what = "renamed" if swap.renamed else f"retyped ({spelled(old.type)} to {spelled(new.type)})"
    plan.pair(
        _add_column(
            table,
            add,
            f"The {what} {table}.{old.name}: its new column, nullable and "
            "without a default until every row has its value: "
            + describe("add_column_nullable", table),
        ),
        [_drop_column(table, staging, f"{table}.{old.name} still holds every value")],
    )
    plan.pair(trigger.create(), trigger.drop(UNDONE))
    copy = converted(quoted(old.name), old.type, new.type)
    todo = f"{quoted(staging)} IS NULL AND {quoted(old.name)} IS NOT NULL"
    plan.pair(
        [
            Statement(
                batched_update(swap.table, staging, copy, todo),
                f"Copy {table}.{old.name} into {staging} for the rows already there, a batch "
                "at a time (the trigger copies every write from now on).",
            )
        ],
        [],
        online=True,
    )
    if not new.nullable and not old.nullable:
        plan.pair(validated_not_null(table, staging), [_drop_not_null(table, staging)], online=True)
    _write_swap_contract(plan, swap)


def _write_swap_contract(plan: Plan, swap: ColumnSwap) -> None:
    table, old, new, staging = swap.table.name, swap.old, swap.new, swap.staging
    plan.pair(
        [
            _drop_column(
                table,
                old.name,
                f"the new code no longer uses it and every value is in "
                f"{staging} (its indexes and constraints went in the revision before)",
            )
        ],
        _restore_column(swap),
        phase=CONTRACT,
    )
    plan.drops_columns = True
    if not swap.renamed:
        plan.pair(
            [
                _rename_column(
                    table,
                    staging,
                    new.name,
                    "The swap: the retyped column takes the "
                    "name the new code uses, in the same transaction as the drop.",
                )
            ],
            [_rename_column(table, new.name, staging, f"{new.name} goes back to being the copy.")],
            phase=CONTRACT,
        )
    if new.server_default is not None:
        default = default_sql(new.server_default)
        plan.pair(
            [
                _alter(
                    table,
                    new.name,
                    f"SET DEFAULT {default}",
                    f"Its default, now that no trigger fills it: {describe('set_default', table)}.",
                )
            ],
            [_alter(table, new.name, "DROP DEFAULT", "The trigger fills it again.")],
            phase=CONTRACT,
        )
    if not new.nullable and old.nullable:
        not_null_in_contract(plan, table, new.name)


def write_moved_objects(plan: Plan, table: str, moved: list[tuple[Dependent, Dependent]]) -> None:
    """Build the models' objects on the new columns (expand), then give them their final names
    (contract, once the old column's objects are gone)."""
    for _final, staged in moved:
        plan.pair(_build(table, staged), [_unbuild(table, staged)], online=True)
    for final, staged in moved:
        if staged.name != final.name:
            plan.pair(
                [_rename_object(table, staged, final.name, "takes the name the models give it")],
                [_rename_object(table, final, staged.name, "goes back to its temporary name")],
                phase=CONTRACT,
            )


def write_filled_not_null(plan: Plan, table: Table, column: Column) -> None:
    """An existing column becoming NOT NULL with a server default: expand fills the NULLs the
    old code writes and those already there; contract sets NOT NULL."""
    default = default_sql(column.server_default)
    trigger = triggers.fill(table.name, column.name, default)
    plan.pair(trigger.create(), trigger.drop(UNDONE))
    plan.pair(
        [
            Statement(
                batched_update(table, column.name, default, f"{quoted(column.name)} IS NULL"),
                f"Give the rows already there their default for a NULL {column.name}, a "
                "batch at a time (the trigger does it for every write from now on).",
            )
        ],
        [],
        online=True,
    )
    plan.pair(
        validated_not_null(table.name, column.name),
        [_drop_not_null(table.name, column.name)],
        online=True,
        phase=CONTRACT,
    )
    plan.pair(trigger.drop(GONE), trigger.create(), online=True, phase=CONTRACT)


def not_null_in_contract(plan: Plan, table: str, column: str) -> None:
    """NOT NULL on a column the old code may leave NULL, with nothing to fill it with: once the
    old code is gone, refuse clearly if a NULL is left, else set it by way of a CHECK."""
    plan.warnings.append(
        f"{table}.{column} becomes NOT NULL with nothing to fill the rows left NULL: its "
        "contract revision refuses to run while one is; fill them first (or give the column "
        "a server_default: autogenerate then fills them in the expand phase)"
    )
    plan.pair(
        validated_not_null(table, column),  # its first step is the refusal, naming rows
        [_drop_not_null(table, column)],
        online=True,
        phase=CONTRACT,
    )


def put_back_nullable(
    plan: Plan, table: str, column: Column, back: list[Statement]
) -> list[Statement]:
    """The down of a dropped NOT NULL column without a default: back (Alembic's ADD COLUMN ...
    NOT NULL, which fails on a table with rows) adds it nullable instead, since no down file
    can give the rows their values back. Its NOT NULL comes off first, in the contract's first
    online steps, whose down, run once the column is back, puts it back by the CHECK route:
    it refuses, counting the rows left NULL, until the team fills them; then a plain rerun of
    the downgrade finishes."""
    name = column.name
    if column.nullable or column.server_default is not None or not back:
        return back
    if column.identity is not None or column.computed is not None:
        return back  # they fill every row themselves
    back[0].sql = back[0].sql.removesuffix(" NOT NULL")
    back[0].comment += " Nullable: the rows have no value for it."
    fix = (
        f"fill them (the backup the runner took before the drop holds them: make restore) or "
        f"UPDATE {table} SET {name} = ... WHERE {name} IS NULL"
    )
    drop = _alter(
        table,
        name,
        "DROP NOT NULL",
        f"{table}.{name} goes in the next revision: its NOT NULL first, so that the "
        "down puts it back by way of a validated CHECK once the column and its "
        f"values are back: {describe('drop_not_null', table)}.",
    )
    drop.squawk_ignore = "ban-drop-not-null"
    plan.pair([drop], validated_not_null(table, name, fix), online=BEFORE_SWAP, phase=CONTRACT)
    plan.parts[(CONTRACT, False)].down_warnings.append(
        f"{table}.{name} comes back nullable and empty: no down file has its values; the down "
        "of the revision before refuses until they are filled, then makes it NOT NULL"
    )
    plan.parts[(CONTRACT, BEFORE_SWAP)].down_warnings.append(
        f"{table}.{name} becomes NOT NULL again only once every row has a value: until then "
        f"this down refuses, counting the rows left NULL; {fix}, then run the downgrade again"
    )
    plan.warnings.append(
        f"{table}.{name} is NOT NULL without a default: its down adds it back empty and refuses "
        "until its values are filled in (from the backup the runner takes, or an UPDATE)"
    )
    return back


def write_table_rename(plan: Plan, rename: TableRename, catalog: Catalog) -> None:
    """Expand renames the table and leaves a view under the old name; contract drops it."""
    old, new = rename.old, rename.new
    objects = catalog.table_objects(old)
    plan.pair(
        [
            Statement(
                f"ALTER TABLE {quoted(old)} RENAME TO {quoted(new)}",
                f"Rename {old} to {new}: {describe('rename_table', old)}; the old code goes on "
                f"through the view {old} below.",
                "renaming-table",
            )
        ],
        [Statement(f"ALTER TABLE {quoted(new)} RENAME TO {quoted(old)}", f"{new} is {old} again.")],
    )
    for kind, name in objects.named_after_table:
        renamed = new + name[len(old) :]
        plan.pair(
            [_rename(kind, new, name, renamed, f"The {kind} {name} follows the table's name")],
            [_rename(kind, new, renamed, name, f"The {kind} {renamed} takes its old name back")],
        )
    view = _view(old, new, objects.columns)
    plan.pair(view, [_drop_view(old, UNDONE)])
    plan.pair([_drop_view(old, GONE)], view, phase=CONTRACT)


# -- statements ----------------------------------------------------------------------------


def default_sql(server_default) -> str:
    """A server default as SQL: a plain string is a literal, anything else is SQL already."""
    value = server_default.arg
    if isinstance(value, str):
        return literal(value)
    return str(value)


def _drop_not_null(table: str, column: str) -> Statement:
    return _alter(table, column, "DROP NOT NULL", f"{table}.{column} may be NULL again.")


def _alter(table: str, column: str, change: str, comment: str) -> Statement:
    return Statement(f"ALTER TABLE {quoted(table)} ALTER COLUMN {quoted(column)} {change}", comment)


def _add_column(table: str, column: Column, comment: str) -> list[Statement]:
    """ADD COLUMN, nullable and without a default: a catalog change, no rewrite."""
    type_ = spelled(column.type)
    added = [
        Statement(f"ALTER TABLE {quoted(table)} ADD COLUMN {quoted(column.name)} {type_}", comment)
    ]
    if type_.startswith("varchar("):  # squawk would have text and a CHECK: the models say no
        added[
            0
        ].comment += f"; {type_} as the models declare it (a limit on a new column locks nothing)"
        added[0].squawk_ignore = "prefer-text-field"
    if column.comment:
        added.append(
            Statement(
                f"COMMENT ON COLUMN {quoted(table)}.{quoted(column.name)} IS {literal(column.comment)}",
                "Its comment.",
            )
        )
    return added


def _drop_column(table: str, column: str, why: str) -> Statement:
    return Statement(
        f"ALTER TABLE {quoted(table)} DROP COLUMN {quoted(column)}",
        f"Drop {table}.{column}: {why}; {describe('drop_column', table)}.",
        "ban-drop-column",
    )


def _rename_column(table: str, old: str, new: str, comment: str) -> Statement:
    return Statement(
        f"ALTER TABLE {quoted(table)} RENAME COLUMN {quoted(old)} TO {quoted(new)}",
        comment,
        "renaming-column",
    )


def _restore_column(swap: ColumnSwap) -> list[Statement]:
    """The contract's down: the old column back with every value, inside one transaction (a
    downgrade comes back whole or not at all; it holds the table's lock for the copy). Its NOT
    NULL and constraints come back online in the down of the revision before the contract."""
    table, old, new, staging = swap.table.name, swap.old, swap.new, swap.staging
    back = [
        *_add_column(
            table,
            Column(old.name, old.type, comment=old.comment),
            f"Put {table}.{old.name} back (as the last column): the old code reads it.",
        ),
        Statement(
            f"UPDATE {quoted(table)} SET {quoted(old.name)} = "
            f"{converted(quoted(staging), new.type, old.type)}",
            f"Every value, from {staging}: this transaction holds the table's lock until "
            "it commits.",
        ),
    ]
    if old.server_default is not None:
        default = default_sql(old.server_default)
        back.append(_alter(table, old.name, f"SET DEFAULT {default}", "Its default, as it was."))
    return back


def _take_off(table: str, dependent: Dependent) -> Statement:
    """An object of a column the contract drops, dropped before it (IF EXISTS: a rerun finds
    it gone), so that the down can rebuild it online once the column is back."""
    why = "goes before its column (the next revision), so that the down rebuilds it online"
    if dependent.kind == "index":
        return drop_index_concurrently(
            dependent.name,
            f"{dependent.name} {why}: {describe('drop_index_concurrently', table)}.",
        )
    kind = {"check": "drop_check", "foreign key": "drop_foreign_key"}.get(
        dependent.kind, "drop_unique_constraint"
    )
    return dropped(
        table,
        dependent.name,
        f"{dependent.kind} {dependent.name} {why}: "
        f"{describe(kind, table, _referenced(dependent))}.",
    )


def _referenced(dependent: Dependent) -> str | None:
    found = re.search(rf"\bREFERENCES ({IDENTIFIER})", dependent.statement)
    return unquoted(found.group(1)) if found else None


def _rebuilt_online(table: str, dependent: Dependent) -> list[Statement]:
    """The down of _take_off, once the column is back: an index CONCURRENTLY, a constraint by
    constraints.py's rerunnable steps (NOT VALID + VALIDATE; a unique one USING INDEX)."""
    if dependent.kind == "index":
        return [
            Statement(
                concurrently(dependent.statement),
                f"Rebuild {dependent.name} on the column put back, without blocking "
                f"writes: {describe('create_index_concurrently', table)}; if it is "
                "interrupted, the runner drops the INVALID index before the rerun.",
            )
        ]
    return validated(table, dependent.name, dependent.statement)


def _build(table: str, dependent: Dependent) -> list[Statement]:
    """An object on the new column, online: indexes CONCURRENTLY, constraints NOT VALID then
    VALIDATE, a unique constraint on a unique index built CONCURRENTLY."""
    name = dependent.name
    if dependent.kind == "index":
        unique = dependent.statement.startswith("CREATE UNIQUE ")
        kind = "create_unique_index_concurrently" if unique else "create_index_concurrently"
        return [
            Statement(
                concurrently(dependent.statement),
                f"Build {name} without blocking writes: {describe(kind, table)}; if "
                "it is interrupted, drop the INVALID index and rerun.",
            )
        ]
    if dependent.kind == "unique":
        return [
            Statement(
                concurrently(dependent.index_statement),
                f"The index of unique constraint {name}, built without blocking writes: "
                f"{describe('create_unique_index_concurrently', table)}.",
            ),
            Statement(
                fitted(
                    f"ALTER TABLE {quoted(table)} ADD CONSTRAINT {quoted(name)} UNIQUE "
                    f"USING INDEX {quoted(name)}",
                    " UNIQUE ",
                ),
                "The constraint, on the index just built: "
                f"{describe('add_unique_using_index', table, index=name)}.",
            ),
        ]
    return validated(table, name, dependent.statement, f"{dependent.kind} {name}")


def _unbuild(table: str, dependent: Dependent) -> Statement:
    if dependent.kind == "index":
        return drop_index_concurrently(dependent.name, f"Drop {dependent.name}.")
    return drop_constraint(table, dependent.name, f"Drop {dependent.name}.")


def _rename_object(table: str, dependent: Dependent, name: str, why: str) -> Statement:
    kind = "index" if dependent.kind == "index" else "constraint"
    return _rename(kind, table, dependent.name, name, f"The {kind} {dependent.name} {why}")


def _rename(kind: str, table: str, name: str, new_name: str, why: str) -> Statement:
    """ALTER INDEX, CONSTRAINT or TRIGGER ... RENAME: a catalog change under a brief lock.
    squawk warns that a client may use the old name: none does, the models name the new one."""
    sql = {
        "index": f"ALTER INDEX {quoted(name)} RENAME TO {quoted(new_name)}",
        "constraint": f"ALTER TABLE {quoted(table)} RENAME CONSTRAINT {quoted(name)} TO {quoted(new_name)}",
        "trigger": f"ALTER TRIGGER {quoted(name)} ON {quoted(table)} RENAME TO {quoted(new_name)}",
    }[kind]
    locks = {
        "index": describe("rename_index", table, index=name),
        "constraint": describe("rename_constraint", table),
    }.get(kind)
    comment = f"{why}: {new_name}" + (f"; {locks}." if locks else ".")
    # Broken before TO, if at all: squawk-ignore covers the line where RENAME is.
    return Statement(fitted(sql, " TO "), comment, "renaming-object")


def _view(old: str, new: str, columns: list[str]) -> list[Statement]:
    listed = ", ".join(quoted(column) for column in columns)
    return [
        Statement(
            f"CREATE VIEW {quoted(old)} AS SELECT {listed} FROM {quoted(new)}",
            f"The old code reads and writes {old}: a simple view, which PostgreSQL "
            f"updates as it updates {new} (defaults and triggers included); "
            f"{describe('create_view', new)}.",
        ),
        Statement(
            f"COMMENT ON VIEW {quoted(old)} IS\n"
            + literal(f"The old name of {new}, until the contract phase."),
            "Say what it is for.",
        ),
    ]


def _drop_view(old: str, why: str) -> Statement:
    """squawk warns that a client may read the view: the old code was its only reader."""
    return Statement(
        f"DROP VIEW {quoted(old)}",
        f"{why}: drop the view {old}; {describe('drop_view', old, view=old)}.",
        "ban-drop-view",
    )
