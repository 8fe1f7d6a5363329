"""A run's state lives on its Run (steps/run.py): two runs in one interpreter share none of it.

Tools and pytest-alembic call `alembic.command.upgrade` in their own process, over a
connection passed in `config.attributes["connection"]`, as often as they like. Each run
builds its own Run in env.py, so what one run decided (to send each statement alone after
a failed file, which revisions it backed up) does not carry into the next. Before the Run,
module globals held both: a run after a failed one sent every statement on a round trip of
its own, and skipped the backup of a revision an earlier run had backed up elsewhere; and a
process-wide cache of the SQL files hid an edit made between two runs from the second.
"""

import argparse
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import event

from migration_runner.errors import MigrationError
from support.database import current_version, engine_for, fresh_database, query
from support.processes import run_alembic
from support.project import add_revision

# A table with rows, a revision that drops it (a data loss, backed up first), and a revision
# whose file fails on its second statement, so its run tries again one statement at a time.
ROWS = (
    "-- test-only\nCREATE TABLE test_only_rows (id integer PRIMARY KEY);\n"
    "INSERT INTO test_only_rows VALUES (1), (2), (3);\n"
)
DROP = "-- test-only\nDROP TABLE test_only_rows;\nCREATE TABLE test_only_after (id integer);\n"
FAILS = "-- test-only\nCREATE TABLE test_only_failing (id integer);\nSELECT 1 / 0;\n"


def upgrade_in_process(tree: Path, url: str, target: str, *x: str) -> list[str]:
    """`alembic -x X... upgrade target` in this interpreter over a connection passed in;
    the statement strings the run sent, one per round trip."""
    config = Config(str(tree / "alembic.ini"))
    config.cmd_opts = argparse.Namespace(x=list(x))
    sent: list[str] = []
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            event.listen(
                connection, "before_cursor_execute", lambda _c, _r, sql, *_: sent.append(sql)
            )
            config.attributes["connection"] = connection
            command.upgrade(config, target)
    finally:
        engine.dispose()
    return sent


@pytest.fixture
def two_databases_with_rows(tree_copy, postgres_server):
    """The tree with the three revisions, and two databases at the first (rows in its table)."""
    rows = add_revision(tree_copy, "rows", ROWS, "-- test-only\nDROP TABLE test_only_rows;\n")
    drop = add_revision(tree_copy, "drop", DROP, "-- test-only\nDROP TABLE test_only_after;\n")
    add_revision(tree_copy, "fails", FAILS, "-- test-only\nDROP TABLE test_only_failing;\n")
    with fresh_database(postgres_server) as first, fresh_database(postgres_server) as second:
        for url in (first, second):
            assert run_alembic("upgrade", rows, url=url, tree=tree_copy).returncode == 0
        yield tree_copy, first, second, drop


@pytest.fixture
def after_a_failed_run(two_databases_with_rows, tmp_path):
    """The first run, in this interpreter: it backs up and applies the drop, then the failing
    file fails whole and is sent again one statement at a time, which names the line."""
    tree, first, second, drop = two_databases_with_rows
    backups = tmp_path / "first"
    with pytest.raises(MigrationError, match=r"sql/up/\d+_fails\.sql line 3"):
        upgrade_in_process(tree, first, "head", "allow-data-loss=true", f"backup-dir={backups}")
    assert current_version(first) == drop
    assert len(list(backups.glob(f"{drop}-*.dump"))) == 1
    return tree, second, drop


def test_a_later_run_backs_up_a_revision_an_earlier_run_backed_up(after_a_failed_run, tmp_path):
    """Backups taken are the run's (Run.backed_up): another database, other settings, its own."""
    tree, second, drop = after_a_failed_run
    backups = tmp_path / "second"
    upgrade_in_process(tree, second, drop, "allow-data-loss=true", f"backup-dir={backups}")
    assert current_version(second) == drop
    assert query(second, "SELECT to_regclass('test_only_rows') IS NULL") == [(True,)]
    assert len(list(backups.glob(f"{drop}-*.dump"))) == 1


def test_a_run_after_a_failed_one_sends_each_file_whole_with_its_commit(after_a_failed_run):
    """One statement at a time was the failed run's fallback (Run.one_statement_at_a_time):
    the next run sends the drop's file whole, with its history row and commit."""
    tree, second, drop = after_a_failed_run
    sent = upgrade_in_process(tree, second, drop, "allow-data-loss=true")
    assert current_version(second) == drop
    (carrying,) = [sql for sql in sent if "DROP TABLE test_only_rows" in sql]
    assert "CREATE TABLE test_only_after" in carrying
    assert "INSERT INTO migration_history" in carrying and "COMMIT;" in carrying


def test_a_later_run_in_the_same_process_reads_a_file_edited_since(tree_copy, database_url):
    """The SQL files a run read are read again once edited (sql_files.load): a later run sees
    an applied file's edit and refuses it, as a run in a new process does."""
    revision = add_revision(tree_copy, "rows", ROWS, "-- test-only\nDROP TABLE test_only_rows;\n")
    upgrade_in_process(tree_copy, database_url, "head")
    assert current_version(database_url) == revision
    (up,) = (tree_copy / "sql" / "up").glob(f"{revision}_rows.sql")
    up.write_text(up.read_text() + "-- edited after it ran\n")
    with pytest.raises(MigrationError, match=rf"Applied migration\(s\) {revision} .* were edited"):
        upgrade_in_process(tree_copy, database_url, "head")
