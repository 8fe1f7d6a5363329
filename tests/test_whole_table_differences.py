"""A table on one side only is one difference, in comparison.differences (autogenerate's
proof of its draft) as in `alembic check` (tests/test_python_api.py): model_parity's CHECKs
and indexes of that table (a new table's primary key index) are not listed again."""

from sqlalchemy import BigInteger, CheckConstraint, Column, Identity, MetaData, Table, Text

import assessment_models
from migration_runner.tools import comparison
from support.database import engine_for
from support.processes import run_alembic


def test_new_and_dropped_tables_are_one_difference_each(database_url):
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    metadata = MetaData(naming_convention=assessment_models.metadata.naming_convention)
    for table in assessment_models.metadata.tables.values():
        if table.name != "audit_logs":
            table.to_metadata(metadata)
    Table(
        "test_only_widgets",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("name", Text),
        CheckConstraint("name <> ''", name="name"),
    )
    engine = engine_for(database_url)
    try:
        with engine.connect() as connection:
            found = comparison.differences(connection, metadata)
    finally:
        engine.dispose()
    words = [comparison.in_words(diff) for diff in found]
    assert "table test_only_widgets is in the models only" in words
    assert "table audit_logs is in the database only" in words
    assert not [diff for diff in found if diff[0] == "model_mismatch"], words
