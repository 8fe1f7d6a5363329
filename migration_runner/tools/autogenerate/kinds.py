"""The differences Alembic does not compare that autogenerate writes all the same: native enum
types and their values (enums.py), primary keys (primary_keys.py), serial columns
(sequences.py). Each module registers its renderers in renderers.py's dispatch table, by the
kind of its differences; model_parity.mismatches() hands its own differences here and gets
them back with these added, so `alembic check` reports them as autogenerate writes them."""

from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from migration_runner.tools.autogenerate import enums, primary_keys, sequences
from migration_runner.tools.model_parity import ModelMismatch


def with_kinds(
    found: list[ModelMismatch], connection: Connection, metadata: MetaData
) -> list[ModelMismatch]:
    """found (model_parity's CHECK and index differences) and ours. The index of a primary
    key that moves is the key's difference, not an index difference of its own."""
    keys = primary_keys.mismatches(connection, metadata)
    key_indexes = {(key.table, name) for key in keys for name in key.index_names}
    return [
        *(m for m in found if not (m.kind == "INDEX" and (m.table, m.name) in key_indexes)),
        *enums.mismatches(connection, metadata),
        *keys,
        *sequences.mismatches(connection, metadata),
    ]
