"""The comparison policy: what counts as a difference between the database and the models.

One module, used by every comparison: env.py's `alembic check` and `alembic revision
--autogenerate` (through model_compare's wiring), and autogenerate's proof of its draft
(draft.py). Alembic compares with OPTIONS (types and server defaults included, the
runner's own tables left out) and the plugins OPTIONS lists: Alembic's own comparators,
and ours, which Alembic dispatches as its own. enum_defaults and column_details compare what
Alembic's column comparison misses; model_parity adds to the diff what Alembic does not
compare at all (CHECK expressions, index definitions, enums, primary keys, sequences).
in_words() says each difference as a person reads it.
"""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.exc import CompileError

from migration_runner.bookkeeping import RUNNER_TABLES
from migration_runner.tools import model_parity
from migration_runner.tools.autogenerate import column_details, enum_defaults


def include_name(name, type_, parent_names) -> bool:
    """Alembic's include_name hook: every table but the runner's bookkeeping."""
    return not (type_ == "table" and name in RUNNER_TABLES)


# context.configure() / MigrationContext options of every comparison with the models.
OPTIONS = {
    "include_name": include_name,
    "compare_type": True,
    "compare_server_default": True,
    # Alembic's comparators; ours of a default that casts to an enum type not there yet; ours
    # of a collation or a temporal type's precision (which Alembic does not compare); and
    # model_parity's, after Alembic's of the tables, of what Alembic does not compare at all.
    "autogenerate_plugins": [
        "alembic.autogenerate.*",
        enum_defaults.NAME,
        column_details.NAME,
        model_parity.NAME,
    ],
}


def differences(connection: Connection, metadata: MetaData) -> list:
    """Alembic's diff of the database against metadata, ours included (OPTIONS' plugins)."""
    context = MigrationContext.configure(connection, opts=OPTIONS)
    return list(compare_metadata(context, metadata))


def _type(type_) -> str:
    if type_ is None:
        return "none"
    try:
        return type_.compile(dialect=postgresql.dialect())
    except CompileError:  # a type PostgreSQL's dialect cannot spell: its class name
        return type(type_).__name__


def _default(default) -> str:
    if default is None:
        return "none"
    value = getattr(default, "arg", default)
    return str(getattr(value, "text", value))


def _nullable(nullable) -> str:
    return "nullable" if nullable else "NOT NULL"


def _comment(comment) -> str:
    return "none" if comment is None else repr(str(comment))


def _named(item) -> str:
    """An index, constraint or table by its name (and its table's)."""
    table = getattr(item, "table", None)
    name = getattr(item, "name", None) or "(unnamed)"
    return f"{name} on {table.name}" if table is not None and table is not item else str(name)


def _foreign_key(constraint) -> str:
    """users_organization_id_fkey on users (organization_id) REFERENCES organizations (id)
    ON DELETE CASCADE: a foreign key by its name and what it says."""
    targets = [element.target_fullname.rsplit(".", 1) for element in constraint.elements]
    actions = "".join(
        f" ON {event} {action.upper()}"
        for event, action in (("DELETE", constraint.ondelete), ("UPDATE", constraint.onupdate))
        if action
    )
    return (
        f"{_named(constraint)} ({', '.join(constraint.column_keys)}) REFERENCES "
        f"{targets[0][0]} ({', '.join(column for _table, column in targets)}){actions}"
    )


# What each of Alembic's column differences is called, and how its values are spelled.
COLUMN_CHANGES = {
    "modify_type": ("type", _type),
    "modify_nullable": ("nullability", _nullable),
    "modify_default": ("server default", _default),
    "modify_comment": ("comment", _comment),
}
ONE_OBJECT = {
    "add_table": "table {} is in the models only",
    "remove_table": "table {} is in the database only",
    "add_index": "index {} is in the models only",
    "remove_index": "index {} is in the database only",
    "add_constraint": "constraint {} is in the models only",
    "remove_constraint": "constraint {} is in the database only",
    "remove_table_comment": "the comment of table {} is in the database only",
}


def in_words(diff) -> str:
    """One of Alembic's diff tuples (or a list of them, one column's) as a person says it:
    `users.full_name: server default differs (database: none, models: 'x')`."""
    if isinstance(diff, list):
        return "; ".join(in_words(part) for part in diff)
    kind = diff[0]
    if kind in COLUMN_CHANGES:
        _schema, table, column, _existing, database, models = diff[1:]
        what, spell = COLUMN_CHANGES[kind]
        return f"{table}.{column}: {what} differs (database: {spell(database)}, models: {spell(models)})"
    if kind in ("add_column", "remove_column"):
        _schema, table, column = diff[1:]
        side = "models" if kind == "add_column" else "database"
        return f"column {table}.{column.name} is in the {side} only"
    if kind == "add_table_comment":
        table, database = diff[1], diff[2]
        return (
            f"table {table.name}: comment differs (database: {_comment(database)}, "
            f"models: {_comment(table.comment)})"
        )
    if kind in ("add_fk", "remove_fk"):
        side = "models" if kind == "add_fk" else "database"
        return f"foreign key {_foreign_key(diff[1])} is in the {side} only"
    if kind in ONE_OBJECT:
        return ONE_OBJECT[kind].format(_named(diff[1]))
    if kind == "model_mismatch":
        return diff[1]
    names = " ".join(part for part in diff[1:] if isinstance(part, str))
    return f"{kind.replace('_', ' ')} {names}".strip()
