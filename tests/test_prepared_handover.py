"""A direct run's bookkeeping between revisions, as two prepared statements (steps/prepared_handover.py).

The run writes what the text it replaces wrote, takes the lock back before it lets the bridge
go, and leaves no prepared statement on a caller's connection once it ends well; one that a
failed run left there does not stop the next run on that connection.
"""

import argparse
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from migration_runner.errors import MigrationError
from migration_runner.steps import prepared_handover
from migration_runner.steps.transaction import MIGRATION_LOCK_KEY, TRANSACTION_SETTINGS
from support.database import current_version, engine_for, fresh_database, query
from support.processes import run_alembic
from support.project import HEAD, add_revision

HISTORY = (
    "SELECT revision, direction, stamped, checksum, duration_ms >= 0, applied_by"
    " FROM migration_history ORDER BY id"
)
PREPARED = "SELECT name FROM pg_prepared_statements ORDER BY name"


def table_revision(tree: Path, slug: str, up_extra: str = "") -> str:
    return add_revision(
        tree,
        slug,
        f"-- test-only\nCREATE TABLE test_only_{slug} (id integer);\n{up_extra}",
        f"-- test-only\nDROP TABLE test_only_{slug};\n",
    )


def upgrade_over(connection: Connection, tree: Path) -> None:
    """`alembic upgrade head` in this interpreter, over a caller's connection."""
    config = Config(str(tree / "alembic.ini"))
    config.cmd_opts = argparse.Namespace(x=[])
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def test_prepared_and_text_bookkeeping_write_the_same_history(tree_copy, postgres_server):
    """POSTGRES_URL is a pooled URL: that run is one transaction and sends the text."""
    added = [table_revision(tree_copy, f"table_{i}") for i in range(3)]
    with fresh_database(postgres_server) as direct, fresh_database(postgres_server) as pooled:
        assert run_alembic("upgrade", "head", url=direct, tree=tree_copy).returncode == 0
        result = run_alembic("upgrade", "head", tree=tree_copy, env={"POSTGRES_URL": pooled})
        assert result.returncode == 0, result.stdout

        assert current_version(direct) == current_version(pooled) == added[-1]
        history = query(direct, HISTORY)
        assert [row[0] for row in history][-3:] == added
        assert all(row[4] for row in history), history  # every step has its duration
        assert history == query(pooled, HISTORY)


def test_a_run_leaves_no_prepared_statement_on_a_callers_connection(tree_copy, database_url):
    added = [table_revision(tree_copy, f"table_{i}") for i in range(2)]
    engine = engine_for(database_url)
    try:
        with engine.connect() as connection:
            upgrade_over(connection, tree_copy)
            connection.commit()
            assert connection.exec_driver_sql(PREPARED).all() == []
    finally:
        engine.dispose()
    assert current_version(database_url) == added[-1]


def test_statements_a_failed_run_left_do_not_stop_the_next_run_on_its_connection(
    tree_copy, database_url
):
    first = table_revision(tree_copy, "first")
    failing = table_revision(tree_copy, "failing", "SELECT 1 / 0;\n")
    engine = engine_for(database_url)
    try:
        with engine.connect() as connection:
            assert run_alembic("upgrade", HEAD, url=database_url, tree=tree_copy).returncode == 0
            with pytest.raises(MigrationError, match="division by zero"):
                upgrade_over(connection, tree_copy)
            connection.rollback()
            # Prepared with the first revision's commit; a rollback keeps them.
            assert connection.exec_driver_sql(PREPARED).all() == [
                (name,) for name in sorted(prepared_handover.NAMES)
            ]
            assert current_version(database_url) == first

            sql_file = next((tree_copy / "sql" / "up").glob(f"{failing}_*.sql"))
            sql_file.write_text(sql_file.read_text().replace("SELECT 1 / 0;\n", ""))
            table_revision(tree_copy, "after")  # the fixed revision's commit prepares again
            upgrade_over(connection, tree_copy)
            connection.commit()
            assert connection.exec_driver_sql(PREPARED).all() == []
    finally:
        engine.dispose()
    assert [row[0] for row in query(database_url, HISTORY)][-3:] == [
        first,
        failing,
        current_version(database_url),
    ]


def test_the_lock_is_taken_back_before_the_bridge_is_let_go(database_url):
    """Between a revision's COMMIT and the next one's work the run holds the migration lock:
    the bridge (a session lock) until the resume statement has taken it for the transaction."""
    other_session = f"SELECT pg_try_advisory_lock({MIGRATION_LOCK_KEY})"
    engine = engine_for(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as run, engine.connect() as other:
            run.exec_driver_sql("CREATE TABLE alembic_version (version_num varchar(32))")
            run.exec_driver_sql(
                "CREATE TABLE migration_history (revision text, direction text, stamped boolean,"
                " checksum text, duration_ms integer)"
            )
            run.exec_driver_sql(
                prepared_handover.preparation(
                    '"alembic_version"', MIGRATION_LOCK_KEY, TRANSACTION_SETTINGS
                )
            )
            plan = run.exec_driver_sql(
                f"EXPLAIN (VERBOSE, COSTS OFF) EXECUTE {prepared_handover.RESUME}('1s', '0', '')"
            ).all()
            assert any("Subquery Scan on taken_back" in line for (line,) in plan), plan

            run.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")  # the bridge
            run.exec_driver_sql(
                f"BEGIN; EXECUTE {prepared_handover.RESUME}('1s', '0', 'some_role')"
            )
            assert other.exec_driver_sql(other_session).scalar() is False  # still the run's
            assert run.exec_driver_sql("SHOW lock_timeout").scalar() == "1s"
            assert run.exec_driver_sql("SHOW migration.app_role").scalar() == "some_role"
            run.exec_driver_sql("COMMIT")
            assert other.exec_driver_sql(other_session).scalar() is True  # no bridge left
            assert run.exec_driver_sql("SHOW lock_timeout").scalar() == "0"  # SET LOCAL
    finally:
        engine.dispose()


def test_a_revision_that_deallocates_every_prepared_statement_still_applies(
    tree_copy, database_url
):
    """Its string fails at the EXECUTE after its file; the rerun of that revision, one
    statement at a time, sends the bookkeeping as text."""
    first = table_revision(tree_copy, "first")
    deallocating = table_revision(tree_copy, "deallocating", "DEALLOCATE ALL;\n")
    last = table_revision(tree_copy, "last")
    result = run_alembic("upgrade", "head", url=database_url, tree=tree_copy)

    assert result.returncode == 0, result.stdout
    assert "running again one statement at a time" in result.stdout, result.stdout
    assert current_version(database_url) == last
    assert [row[0] for row in query(database_url, HISTORY)][-3:] == [first, deallocating, last]
    assert query(
        database_url, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'test_only_%'"
    ) == [(3,)]
