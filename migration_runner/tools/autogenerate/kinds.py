"""The differences Alembic does not compare that autogenerate writes all the same: native enum
types and their values (enums.py). Each module registers its renderers in renderers.py's
dispatch table, by the kind of its differences; model_parity.mismatches() adds the
differences themselves, so `alembic check` reports them as autogenerate writes them."""

from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from migration_runner.tools.autogenerate import enums
from migration_runner.tools.model_parity import ModelMismatch


def mismatches(connection: Connection, metadata: MetaData) -> list[ModelMismatch]:
    return [*enums.mismatches(connection, metadata)]
