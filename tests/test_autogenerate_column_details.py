"""What the acceptance corpus found autogenerate missing or refusing, proven on their own.

- A collation and a temporal type's precision are compared (autogenerate/column_details.py,
  an Alembic comparator plugin), in both directions, and equal ones are no difference.
- A collation change of the same type keeps the table's rows where they are (relfilenode)
  and rebuilds an index on the column (the index's relfilenode), which is why autogenerate
  refuses it for an indexed column.
- A batched backfill's conditions are wrapped within sqlfluff's 100 characters, and stay on
  one line when they fit; an ALTER TABLE line too long puts its last name on the next line.
- A retyped column's `<column>__new` is the model's column for a type-choice squawk-ignore.
- A dropped default is written in the contract, a dropped NOT NULL in expand, each with its
  squawk-ignore (the corpus's drop_server_default and drop_not_null run them under the old
  code's writes); a new type and collation at once is refused in one line.
"""

from sqlalchemy import Column, Integer, MetaData, Table, Text
from sqlalchemy.dialects import postgresql

from migration_runner.tools import comparison
from migration_runner.tools.autogenerate import draft
from migration_runner.tools.autogenerate.backfill import MAX_LINE, batched_update
from migration_runner.tools.autogenerate.type_changes import collation_only, rewrites
from support.database import engine_for, query


def differences(url: str, metadata: MetaData) -> list[str]:
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            return [comparison.in_words(d) for d in comparison.differences(connection, metadata)]
    finally:
        engine.dispose()


def models(name_type, at_type) -> MetaData:
    metadata = MetaData()
    Table(
        "test_only_details",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("name", name_type),
        Column("at", at_type),
    )
    return metadata


def test_collation_and_precision_are_compared(database_url):
    query(
        database_url,
        "CREATE TABLE test_only_details (id integer PRIMARY KEY, name text, at timestamptz)",
    )
    found = differences(
        database_url, models(Text(collation="C"), postgresql.TIMESTAMP(timezone=True, precision=3))
    )
    assert len(found) == 2, found
    assert any("test_only_details.name: type differs" in f and 'COLLATE "C"' in f for f in found)
    assert any("test_only_details.at: type differs" in f and "TIMESTAMP(3)" in f for f in found)
    # the same on both sides: nothing
    assert differences(database_url, models(Text(), postgresql.TIMESTAMP(timezone=True))) == []
    query(
        database_url,
        'ALTER TABLE test_only_details ALTER COLUMN name TYPE text COLLATE "C",'
        " ALTER COLUMN at TYPE timestamptz(3)",
    )
    same = models(Text(collation="C"), postgresql.TIMESTAMP(timezone=True, precision=3))
    assert differences(database_url, same) == []
    # and back: the database's collation and precision against the models' defaults
    back = differences(database_url, models(Text(), postgresql.TIMESTAMP(timezone=True)))
    assert len(back) == 2, back


def test_a_collation_change_keeps_the_rows_and_rebuilds_an_index(database_url):
    query(
        database_url,
        "CREATE TABLE test_only_collated (name text); CREATE INDEX test_only_collated_idx"
        " ON test_only_collated (name); INSERT INTO test_only_collated VALUES ('a'), ('b')",
    )
    relfilenode = "SELECT relname, relfilenode FROM pg_class WHERE relname LIKE 'test_only_coll%'"
    before = dict(query(database_url, relfilenode))
    query(database_url, 'ALTER TABLE test_only_collated ALTER COLUMN name TYPE text COLLATE "C"')
    after = dict(query(database_url, relfilenode))
    assert after["test_only_collated"] == before["test_only_collated"]
    assert after["test_only_collated_idx"] != before["test_only_collated_idx"]
    assert collation_only(Text(), Text(collation="C")) and not rewrites(Text(), Text(collation="C"))
    assert not collation_only(Text(), postgresql.VARCHAR(10, collation="C"))


def test_backfill_conditions_fit_in_a_line():
    table = Table(
        "assessment_results",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("maturity_level", Integer),
    )
    long = batched_update(
        table,
        "maturity_level__new",
        "maturity_level::integer",
        "maturity_level__new IS NULL AND maturity_level IS NOT NULL AND (a IS NULL AND b = 'x')",
    )
    assert max(len(line) for line in long.splitlines()) <= MAX_LINE
    assert "\n                AND (a IS NULL AND b = 'x')" in long  # no split inside brackets
    short = batched_update(table, "x", "1", "x IS NULL")
    assert "SELECT count(*) INTO total FROM assessment_results WHERE x IS NULL;" in short
    assert "WHERE assessment_results.id = batch.batch_key AND x IS NULL" in short


def test_long_alter_table_lines_put_the_last_name_on_a_line_of_its_own():
    sql = (
        "ALTER TABLE assessment_results DROP CONSTRAINT IF EXISTS "
        "assessment_results_maturity_level__new_not_null_check"
    )
    first, second = draft._short_lines(sql).split("\n")
    assert first == "ALTER TABLE assessment_results DROP CONSTRAINT IF EXISTS"
    assert second.strip() == "assessment_results_maturity_level__new_not_null_check"
    assert draft._short_lines("ALTER TABLE t DROP CONSTRAINT c") == (
        "ALTER TABLE t DROP CONSTRAINT c"
    )


def test_a_retyped_columns_new_column_is_the_models_column():
    metadata = MetaData()
    Table("assessment_results", metadata, Column("maturity_level", Integer))
    statement = "ALTER TABLE assessment_results ADD COLUMN maturity_level__new "
    table, column = draft._model_column(metadata, statement, "ADD COLUMN maturity_level__new ")
    assert (table, column.name) == ("assessment_results", "maturity_level")
    assert (
        draft._model_column(metadata, statement.replace("__new", "_x"), "maturity_level_x ") is None
    )


def test_an_intervals_precision_is_compared_as_either_type_spells_it(database_url):
    from sqlalchemy import Interval

    query(database_url, "CREATE TABLE test_only_spans (id integer PRIMARY KEY, span interval(3))")

    def spans(type_) -> MetaData:
        metadata = MetaData()
        Table(
            "test_only_spans",
            metadata,
            Column("id", Integer, primary_key=True, autoincrement=False),
            Column("span", type_),
        )
        return metadata

    assert differences(database_url, spans(Interval(second_precision=3))) == []
    assert differences(database_url, spans(postgresql.INTERVAL(precision=3))) == []
    assert len(differences(database_url, spans(postgresql.INTERVAL()))) == 1


def test_a_type_change_keeps_the_databases_collation_on_its_old_type(database_url):
    """varchar(10) COLLATE "C" to varchar(20) COLLATE "C": Alembic's type difference, whose
    old type carries the database's collation (reflection reads none), so nothing takes it
    for a collation change and the down file puts the collation back."""
    from sqlalchemy import String

    query(database_url, 'CREATE TABLE test_only_codes (code varchar(10) COLLATE "C")')
    metadata = MetaData()
    Table("test_only_codes", metadata, Column("code", String(20, collation="C")))
    engine = engine_for(database_url)
    try:
        with engine.connect() as connection:
            found = comparison.differences(connection, metadata)
    finally:
        engine.dispose()
    ((diff,),) = [d for d in found if isinstance(d, list)]
    assert diff[0] == "modify_type"
    assert (diff[-2].length, diff[-2].collation) == (10, "C")
    assert (diff[-1].length, diff[-1].collation) == (20, "C")


def _rendered(op):
    from migration_runner.tools.autogenerate import render  # noqa: F401 - registers renderers
    from migration_runner.tools.autogenerate.plan import Plan
    from migration_runner.tools.autogenerate.renderers import Context, render_op

    metadata = MetaData()
    Table("people", metadata, Column("code", Text), Column("weight", Integer, nullable=True))
    context = Context(metadata, Plan(), set())
    render_op(op, context)
    return {key: part for key, part in context.plan.parts.items() if part.up or part.down}


def test_a_new_type_and_collation_at_once_is_refused_in_one_line():
    import pytest
    from alembic.operations import ops
    from sqlalchemy import String

    from migration_runner.errors import MigrationError

    op = ops.AlterColumnOp(
        "people", "code", existing_type=String(10), modify_type=String(20, collation="C")
    )
    with pytest.raises(MigrationError) as refusal:
        _rendered(op)
    assert "a new type and a new collation of people.code in one change" in str(refusal.value)
    assert "\n" not in str(refusal.value)


def test_a_dropped_default_waits_for_the_contract_a_dropped_not_null_does_not():
    from alembic.operations import ops
    from sqlalchemy import text

    from migration_runner.steps.phases import CONTRACT, EXPAND

    default = ops.AlterColumnOp(
        "people",
        "weight",
        existing_type=Integer(),
        existing_server_default=text("1"),
        modify_server_default=None,
    )
    ((key, part),) = _rendered(default).items()
    assert key == (CONTRACT, False)
    assert [(s.sql, s.squawk_ignore) for s in part.up] == [
        ("ALTER TABLE people ALTER COLUMN weight DROP DEFAULT", "ban-drop-default")
    ]
    nullable = ops.AlterColumnOp(
        "people", "weight", existing_type=Integer(), existing_nullable=False, modify_nullable=True
    )
    ((key, part),) = _rendered(nullable).items()
    assert key == (EXPAND, False)
    assert [(s.sql, s.squawk_ignore) for s in part.up] == [
        ("ALTER TABLE people ALTER COLUMN weight DROP NOT NULL", "ban-drop-not-null")
    ]
