"""One comparison policy (migration_runner/tools/comparison.py) for `alembic check`,
autogenerate and the proof of its draft, and its differences said in words.

The differences come from a real database against a real MetaData; each is one phrase
naming the table and column, with both sides' values, and no Python repr.
"""

import subprocess
import sys

from sqlalchemy import CheckConstraint, Column, Index, MetaData, Table, Text, text
from sqlalchemy.types import String

from migration_runner.tools import comparison
from support.database import engine_for, query
from support.project import ROOT


def test_draft_does_not_import_env_wiring():
    """No circle: draft.py takes the policy from comparison.py, not from model_compare.py
    (which imports autogenerate's revision.py, which imports draft.py)."""
    script = (
        "import sys; import migration_runner.tools.autogenerate.draft; "
        "print(sorted(m for m in sys.modules if m.endswith(('model_compare', 'revision'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "migration_runner.tools.model_compare" not in result.stdout
    assert "migration_runner.tools.autogenerate.revision" not in result.stdout


def test_env_wiring_uses_the_policy():
    from migration_runner.tools import model_compare

    assert "include_name" not in vars(model_compare)
    assert comparison.OPTIONS["compare_type"] and comparison.OPTIONS["compare_server_default"]


def test_model_parity_is_an_alembic_plugin_after_the_tables():
    """Our differences reach every comparison through Alembic's comparator dispatch: the
    options name model_parity's plugin, and Alembic holds it under that name with one
    schema-level comparator, run after its own of the tables."""
    from alembic.autogenerate.compare import comparators
    from alembic.runtime.plugins import Plugin, _all_plugins
    from alembic.util import DispatchPriority

    from migration_runner.tools import model_parity

    assert model_parity.NAME in comparison.OPTIONS["autogenerate_plugins"]
    registered = _all_plugins[model_parity.NAME].autogenerate_comparators._registry
    assert dict(registered) == {
        ("schema", "default", DispatchPriority.LAST): [(model_parity.compare, "model_parity")]
    }
    dispatch = comparators.branch()  # as Alembic's AutogenContext populates its own
    Plugin.populate_autogenerate_priority_dispatch(
        dispatch, comparison.OPTIONS["autogenerate_plugins"]
    )
    tables = dispatch._registry[("schema", "default", DispatchPriority.MEDIUM)]
    assert [subgroup for _fn, subgroup in tables] == ["tables"]
    assert (model_parity.compare, "model_parity") in dispatch._registry[
        ("schema", "default", DispatchPriority.LAST)
    ]


def test_the_plugin_is_what_adds_ours(database_url):
    """A CHECK edited on one side is in comparison.differences() only through the plugin:
    Alembic's comparison with the same options less model_parity's name does not see it."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from migration_runner.tools import model_parity

    query(
        database_url,
        "CREATE TABLE test_only_things (name text,"
        " CONSTRAINT test_only_things_name_check CHECK (length(name) > 0))",
    )
    metadata = MetaData()
    Table(
        "test_only_things",
        metadata,
        Column("name", Text),
        CheckConstraint("length(name) > 1", name="test_only_things_name_check"),
    )
    without = {
        **comparison.OPTIONS,
        "autogenerate_plugins": [
            name for name in comparison.OPTIONS["autogenerate_plugins"] if name != model_parity.NAME
        ],
    }
    engine = engine_for(database_url)
    try:
        with engine.connect() as connection:
            found = comparison.differences(connection, metadata)
            context = MigrationContext.configure(connection, opts=without)
            alembic_only = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    edited = (
        "CHECK test_only_things_name_check on test_only_things differs: "
        "database CHECK ((length(name) > 0)) / models CHECK ((length(name) > 1))"
    )
    assert [comparison.in_words(diff) for diff in found] == [edited]
    assert alembic_only == []
    assert not hasattr(model_parity, "add_to_diff")  # no route of ours beside Alembic's


def words(url: str, metadata: MetaData) -> list[str]:
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            return [comparison.in_words(d) for d in comparison.differences(connection, metadata)]
    finally:
        engine.dispose()


def test_differences_in_words(database_url):
    query(
        database_url,
        "CREATE TABLE test_only_people (full_name text NOT NULL, nick varchar(20),"
        " note text, gone text); COMMENT ON COLUMN test_only_people.note IS 'old';"
        " CREATE INDEX test_only_people_gone_idx ON test_only_people (gone);"
        " CREATE TABLE test_only_old (id integer); CREATE TABLE migration_history (id integer)",
    )
    metadata = MetaData()
    Table(
        "test_only_people",
        metadata,
        Column("full_name", Text, nullable=False, server_default=text("'x'")),
        Column("nick", String(40)),
        Column("note", Text, nullable=False, comment="new"),
        Column("added", Text),
        Index("test_only_people_added_idx", "added"),
    )
    Table("test_only_new", metadata, Column("id", Text))
    found = words(database_url, metadata)
    joined = "\n".join(found)
    for phrase in (
        "test_only_people.full_name: server default differs (database: none, models: 'x')",
        "test_only_people.nick: type differs (database: VARCHAR(20), models: VARCHAR(40))",
        "test_only_people.note: nullability differs (database: nullable, models: NOT NULL)",
        "test_only_people.note: comment differs (database: 'old', models: 'new')",
        "column test_only_people.added is in the models only",
        "column test_only_people.gone is in the database only",
        "index test_only_people_added_idx on test_only_people is in the models only",
        "index test_only_people_gone_idx on test_only_people is in the database only",
        "table test_only_new is in the models only",
        "table test_only_old is in the database only",
        "INDEX test_only_people_added_idx on test_only_people is in the models only",
    ):
        assert phrase in joined, joined
    assert "migration_history" not in joined  # the runner's own tables: never compared
    assert "('" not in joined and "Clause" not in joined and "0x" not in joined  # no repr
