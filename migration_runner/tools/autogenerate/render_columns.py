"""Columns: added in expand (NOT NULL without a default waits for the contract), dropped in the
contract, altered one kind of change at a time. A type change that rewrites the table and a
renamed column are column swaps (expand_contract.py) and never reach here."""

import re

from alembic.operations import ops

from migration_runner.errors import MigrationError
from migration_runner.steps.phases import CONTRACT
from migration_runner.tools.autogenerate import expand_contract, identity
from migration_runner.tools.autogenerate.backfill import batched_update
from migration_runner.tools.autogenerate.constraints import validated, validated_not_null
from migration_runner.tools.autogenerate.identifiers import quoted
from migration_runner.tools.autogenerate.lock_facts import added_column_rewrites, describe
from migration_runner.tools.autogenerate.plan import Statement
from migration_runner.tools.autogenerate.renderers import Context, renders
from migration_runner.tools.autogenerate.statements import (
    IDENTIFIER,
    drop_constraint,
    ignoring,
    unquoted,
)
from migration_runner.tools.autogenerate.type_changes import collation_of, collation_only, spelled

# The column's own REFERENCES or UNIQUE, as Alembic's add_column writes it after the ADD COLUMN.
FOREIGN_KEY = re.compile(
    rf"^ALTER TABLE {IDENTIFIER} ADD CONSTRAINT ({IDENTIFIER}) (?:FOREIGN KEY|UNIQUE)"
)
# AlterColumnOp's "nothing changes" value of each modify_* attribute.
UNCHANGED = {
    "modify_type": None,
    "modify_nullable": None,
    "modify_server_default": False,
    "modify_comment": False,
}


@renders(ops.AddColumnOp)
def add_column(op: ops.AddColumnOp, context: Context) -> None:
    if identity.add_column(op, context):  # an identity or generated column: identity.py
        return
    column = op.column
    table, name = op.table_name, column.name
    existing = context.existing(table)
    if (
        existing
        and column.server_default is not None
        and context.catalog is not None
        and added_column_rewrites(context.catalog.connection, table, column)
    ):
        _add_with_volatile_default(op, context)
        return
    # NOT NULL without a default: the old code's inserts leave it NULL, so it is added
    # nullable and made NOT NULL in the contract phase.
    not_null_later = existing and not column.nullable and column.server_default is None
    if column.server_default is None or not_null_later:
        kind = "add_column_nullable"
    else:
        kind = "add_column_constant_default" if column.nullable else "add_column_not_null_default"
    rewrites = None  # PostgreSQL's answer (lock_facts), when there is a database to ask
    if column.server_default is not None and existing and context.catalog is not None:
        rewrites = added_column_rewrites(context.catalog.connection, table, column)
    if rewrites:
        kind = "add_column_volatile_default"
    comment = f"Add {table}.{name}: {describe(kind, table)}"
    if column.server_default is not None and rewrites is None:
        comment += "; a volatile default would rewrite the table"
    if not_null_later:
        comment += "; nullable until the contract phase (the old code leaves it NULL)"
    # Alembic's add_column also builds the column's index=True index; autogenerate lists
    # that index as an op of its own, built online on an existing table (render_indexes.py).
    add, keys = [], []
    for statement in context.plain(op, comment):
        if " INDEX " in statement.sql.split("(")[0]:
            continue
        key = FOREIGN_KEY.match(statement.sql)
        if key and existing:  # REFERENCES or UNIQUE: online steps (constraints.validated)
            keys.append((unquoted(key.group(1)), statement.sql))
        else:
            add.append(statement)
    if not_null_later:  # PostgreSQL's column definition ends with its NOT NULL
        add[0].sql = add[0].sql.removesuffix(" NOT NULL")
    context.plan.pair(add, context.plain(op.reverse(), f"Drop {table}.{name} again."))
    for key_name, add_sql in keys:
        context.plan.pair(
            validated(table, key_name, add_sql, f"foreign key {key_name}"),
            [drop_constraint(table, key_name, f"Drop {key_name}.")],
            online=True,
        )
    if not_null_later:
        expand_contract.not_null_in_contract(context.plan, table, name)


def _add_with_volatile_default(op: ops.AddColumnOp, context: Context) -> None:
    """A default PostgreSQL computes per row (gen_random_uuid(), clock_timestamp()) given in
    ADD COLUMN rewrites the table under ACCESS EXCLUSIVE, so: expand adds the column nullable
    without it (its keys and index as any new column's), then SET DEFAULT for every row written
    from then on, the old code's inserts included; the online steps give the rows already
    there a value of their own in batches and, when the models say NOT NULL, set it by way of
    a validated CHECK (no row is NULL by then: the default fills every insert)."""
    column = op.column
    table, name = op.table_name, column.name
    bare = column._copy()
    bare.server_default, bare.nullable = None, True
    add_column(ops.AddColumnOp(table, bare, schema=op.schema), context)
    default = expand_contract.default_sql(column.server_default)
    quoted_table, quoted_name = quoted(table), quoted(name)
    context.plan.pair(
        [
            Statement(
                f"ALTER TABLE {quoted_table} ALTER COLUMN {quoted_name} SET DEFAULT {default}",
                f"Its default {default} for every row written from now on (an ADD COLUMN with "
                f"this volatile default {describe('add_column_volatile_default', table)}): "
                f"{describe('set_default', table)}.",
            )
        ],
        [
            Statement(
                f"ALTER TABLE {quoted_table} ALTER COLUMN {quoted_name} DROP DEFAULT",
                f"{table}.{name} without its default again.",
            )
        ],
    )
    todo = f"{quoted_name} IS NULL"
    context.plan.pair(
        [
            Statement(
                batched_update(context.metadata.tables[table], name, default, todo),
                f"Give the rows already there a {name} of their own, {default}, a batch at a "
                "time (the default gives one to every row written from now on).",
            )
        ],
        [],
        online=True,
    )
    if not column.nullable:
        context.plan.pair(
            validated_not_null(table, name),
            [expand_contract._drop_not_null(table, name)],
            online=True,
        )


@renders(ops.DropColumnOp)
def drop_column(op: ops.DropColumnOp, context: Context) -> None:
    """Contract: the old code may still read or write it. Its indexes and constraints go with
    it; the down rebuilds them (expand_contract.write_contract_prelude)."""
    table = op.table_name
    context.plan.drops_columns = True
    hazard = f"Hazard: deletes every value of {table}.{op.column_name}; " + describe(
        "drop_column", table
    )
    context.plan.pair(
        ignoring(context.plain(op, hazard), "ban-drop-column"),
        expand_contract.put_back_nullable(
            context.plan,
            table,
            op.reverse().column,
            context.plain(
                op.reverse(),
                f"Put {table}.{op.column_name} back, as the last column (its values are not).",
            ),
        ),
        phase=CONTRACT,
    )


@renders(ops.AlterColumnOp)
def alter_column(op: ops.AlterColumnOp, context: Context) -> None:
    """Each kind of change on its own, on a table that has rows."""
    op = identity.alter_column(op, context)  # an identity added or dropped: identity.py
    if not context.existing(op.table_name):
        _plain_alter(op, context)
        return
    if op.modify_type is not None and collation_only(op.existing_type, op.modify_type):
        _collation(_only(op, "modify_type"), context)
    elif op.modify_type is not None and collation_of(op.existing_type) != collation_of(
        op.modify_type
    ):  # PostgreSQL's locks and scans were measured for a collation on its own
        raise MigrationError(
            f"autogenerate does not write a new type and a new collation of "
            f"{op.table_name}.{op.column_name} in one change yet: change the collation in one "
            "revision and the type in the next."
        )
    elif op.modify_type is not None:
        _plain_alter(_only(op, "modify_type"), context, rewrite_free=True)
    if op.modify_server_default is None:  # dropped: the old code may still rely on it
        _dropped_default(_only(op, "modify_server_default"), context)
    elif op.modify_server_default is not False:
        _plain_alter(_only(op, "modify_server_default"), context)
    if op.modify_comment is not False:
        _plain_alter(_only(op, "modify_comment"), context)
    if op.modify_nullable is True:
        _dropped_not_null(_only(op, "modify_nullable"), context)
    elif op.modify_nullable is False:
        _not_null(op, context)


def _plain_alter(op: ops.AlterColumnOp, context: Context, rewrite_free: bool = False) -> None:
    table, name = op.table_name, op.column_name
    if rewrite_free:
        comment = (
            f"Retype {table}.{name} from {spelled(op.existing_type)} to "
            f"{spelled(op.modify_type)}: PostgreSQL changes its catalog only (no rewrite, "
            f"no scan); an ACCESS EXCLUSIVE lock on {table}, briefly."
        )
    elif not context.existing(table):
        comment = f"Alter {table}.{name}: the table is new, nothing reads it yet."
    else:
        comment = f"Alter {table}.{name}: {describe(_alter_kind(op), table)}."
    up = context.plain(op, comment)
    if rewrite_free:  # squawk assumes a rewrite; type_changes.py proves there is none
        ignoring(up, "changing-column-type")
    context.plan.pair(up, context.plain(op.reverse(), f"Undo the change to {table}.{name}."))


def _collation(op: ops.AlterColumnOp, context: Context) -> None:
    """A new collation for a column of the same type: the rows stay as they are, but each
    index or key on the column is rebuilt under the ACCESS EXCLUSIVE lock, which no online
    form of ALTER COLUMN avoids: such a column is refused. Any other is altered in expand (the
    old code's comparisons and sort orders on it follow the new collation from then); a CHECK
    on it is rechecked, reading every row under that lock."""
    table, name = op.table_name, op.column_name
    dependents = context.catalog.dependents(table, name)
    indexes = [d.name for d in dependents if d.kind != "check"]
    checked = any(d.kind == "check" for d in dependents)
    if indexes:
        raise MigrationError(
            f"autogenerate does not write the new collation of {table}.{name} yet: ALTER "
            f"COLUMN ... COLLATE rebuilds its index or key {', '.join(sorted(set(indexes)))} under an "
            f"ACCESS EXCLUSIVE lock on {table}; write this change by hand with `alembic "
            "revision -m ...` (MIGRATIONS.md)."
        )
    before = collation_of(op.existing_type) or "the default one"
    kind = "alter_column_collation" if checked else "alter_column_collation_unchecked"
    comment = (
        f"Collate {table}.{name} by {collation_of(op.modify_type) or 'its type default'} "
        f"(was {before}): the rows stay as they are"
        + ("" if checked else ", and no CHECK or index uses it")
        + f"; {describe(kind, table)}"
        + (" (to recheck its CHECK)." if checked else ".")
    )
    up = ignoring(context.plain(op, comment), "changing-column-type")
    context.plan.pair(up, context.plain(op.reverse(), f"Undo the change to {table}.{name}."))


def _dropped_default(op: ops.AlterColumnOp, context: Context) -> None:
    """Contract: the old code's inserts that omit the column count on its default (squawk's
    ban-drop-default is about them, not a lock: DROP DEFAULT neither rewrites nor scans)."""
    table, name = op.table_name, op.column_name
    comment = (
        f"Drop the default of {table}.{name} in the contract phase, once the old code that "
        f"omits it on insert is gone (why the squawk rule is ignored here): "
        f"{describe('drop_default', table)}."
    )
    up = ignoring(context.plain(op, comment), "ban-drop-default")
    down = context.plain(op.reverse(), f"Give {table}.{name} its default back.")
    context.plan.pair(up, down, phase=CONTRACT)


def _dropped_not_null(op: ops.AlterColumnOp, context: Context) -> None:
    """Expand: the old code writes a value on every insert and update, so a column that may
    be NULL changes nothing for it (squawk's ban-drop-not-null is about old readers of a
    NULL, which appear only once the new code writes one)."""
    table, name = op.table_name, op.column_name
    comment = (
        f"{table}.{name} may be NULL: the old code, still running, writes a value in every row "
        f"and reads no NULL until the new code writes one (why the squawk rule is ignored "
        f"here); {describe('drop_not_null', table)}."
    )
    up = ignoring(context.plain(op, comment), "ban-drop-not-null")
    context.plan.pair(up, context.plain(op.reverse(), f"Undo the change to {table}.{name}."))


def _alter_kind(op: ops.AlterColumnOp) -> str:
    """The lock_facts kind of an ALTER COLUMN that changes one thing (see alter_column)."""
    if op.modify_server_default is not False:
        return "drop_default" if op.modify_server_default is None else "set_default"
    if op.modify_comment is not False:
        return "comment_on_column"
    return "drop_not_null"


def _not_null(op: ops.AlterColumnOp, context: Context) -> None:
    """Contract: the old code may still write NULL. With a default in the models, expand
    fills the NULLs first; without one, the contract refuses while a NULL is left."""
    table = context.metadata.tables[op.table_name]
    column = table.c[op.column_name]
    if column.server_default is not None:
        expand_contract.write_filled_not_null(context.plan, table, column)
    else:
        expand_contract.not_null_in_contract(context.plan, table.name, column.name)


def _only(op: ops.AlterColumnOp, *kept: str) -> ops.AlterColumnOp:
    """op with only the kept modify_* changes (the others left as they are)."""
    changes = {
        name: getattr(op, name) if name in kept else same for name, same in UNCHANGED.items()
    }
    return ops.AlterColumnOp(
        op.table_name,
        op.column_name,
        schema=op.schema,
        existing_type=op.existing_type,
        existing_server_default=op.existing_server_default,
        existing_nullable=op.existing_nullable,
        existing_comment=op.existing_comment,
        **changes,
    )
