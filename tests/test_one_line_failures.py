"""Every failure is one line a DBA can act on: `FAILED: ...` naming the file or option, a
non-zero exit, no traceback, and the database exactly as it was.

A traceback tells a DBA neither what is wrong nor whether the database changed; each case
below once gave one (or ran on with a value nothing checked).
"""

from pathlib import Path

import pytest

from migration_runner.tools.schema_snapshot import snapshot
from support.database import current_version, public_tables, query
from support.processes import run_alembic
from support.project import HEAD, REVISIONS, ROOT, add_revision

ADD_COUNTRY = "-- test-only\nALTER TABLE organizations ADD COLUMN test_only_country text;\n"
DROP_COUNTRY = "ALTER TABLE organizations DROP COLUMN test_only_country;\n"
DROP_PLAN = (
    "-- test-only: drops a column.\n-- Destructive: yes\n"
    "ALTER TABLE organizations DROP COLUMN plan;\n"
)
ADD_PLAN = "ALTER TABLE organizations ADD COLUMN plan text NOT NULL DEFAULT 'free';\n"
HISTORY_ROWS = "SELECT count(*) FROM migration_history"


def assert_one_failed_line(result, *named: str) -> str:
    """The run failed with exactly one FAILED: line, holding every text in named; that line."""
    assert result.returncode != 0, result.stdout
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1, result.stdout
    for text in named:
        assert text in failed[0], failed[0]
    assert "Traceback" not in result.stdout
    return failed[0]


class Unchanged:
    """The database's revision, schema and history rows, to compare after a failed run."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.state = self.read()

    def read(self) -> tuple:
        return current_version(self.url), snapshot(self.url), query(self.url, HISTORY_ROWS)

    def check(self) -> None:
        assert self.read() == self.state


@pytest.fixture
def at_head(database_url):
    """A database at head with six organizations."""
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    assert current_version(database_url) == HEAD
    query(
        database_url,
        "INSERT INTO organizations (name, slug) SELECT 'Org', 'org-' || i"
        " FROM generate_series(1, 6) AS i",
    )
    return database_url


def spoil(path: Path) -> None:
    """Add a comment saved as Latin-1 (café) to a SQL file: no longer UTF-8."""
    path.write_bytes(path.read_bytes() + "-- café\n".encode("latin-1"))


@pytest.mark.parametrize("command", [("current",), ("upgrade", "head")])
def test_pending_sql_file_not_in_utf8_is_named(at_head, tree_copy, command):
    added = add_revision(tree_copy, "add_test_only_country", ADD_COUNTRY, DROP_COUNTRY)
    shown = f"sql/up/{added}_add_test_only_country.sql"
    spoil(tree_copy / shown)
    before = Unchanged(at_head)
    result = run_alembic(*command, url=at_head, tree=tree_copy)
    assert_one_failed_line(result, shown, "not valid UTF-8", "line 3")
    before.check()


def test_applied_sql_file_not_in_utf8_is_named(at_head, tree_copy):
    """An applied file's checksum is verified on every run: a re-saved file stops it, named."""
    shown = next(f"sql/up/{path.name}" for path in sorted((tree_copy / "sql" / "up").glob("*.sql")))
    spoil(tree_copy / shown)
    before = Unchanged(at_head)
    result = run_alembic("upgrade", "head", url=at_head, tree=tree_copy)
    assert_one_failed_line(result, shown, "not valid UTF-8")
    before.check()


@pytest.fixture
def dropping_plan(at_head, tree_copy):
    """at_head, and a pending test-only revision that drops organizations.plan (six rows)."""
    add_revision(tree_copy, "drop_plan", DROP_PLAN, ADD_PLAN)
    return at_head, tree_copy


@pytest.mark.parametrize(
    "folder",
    [
        "/sys/kernel/migration-backups",  # cannot be made: sysfs takes no new folder, even root's
        "/sys/kernel",  # exists, but no file can be created in it
        "/proc/self/migration-backups",
    ],
)
def test_backup_folder_that_cannot_be_written_is_named(dropping_plan, folder):
    url, tree = dropping_plan
    before = Unchanged(url)
    result = run_alembic(
        "-x",
        "allow-data-loss=true",
        "upgrade",
        "head",
        url=url,
        tree=tree,
        env={"MIGRATION_BACKUP_DIR": folder},
    )
    assert_one_failed_line(result, folder, "nothing was changed")
    before.check()
    assert query(url, "SELECT count(*) FROM organizations WHERE plan IS NOT NULL") == [(6,)]


@pytest.mark.parametrize(
    "content",
    [
        "this is no JSON",
        '{"public.organizations": "AccessExclusiveLock"}',  # JSON, not [[table, mode], ...]
        "[[1, 2]]",
    ],
)
def test_lock_report_that_is_no_report_is_refused_before_connecting(
    at_head, tree_copy, tmp_path, content
):
    add_revision(tree_copy, "add_test_only_country", ADD_COUNTRY, DROP_COUNTRY)
    report = tmp_path / "locks.json"
    report.write_text(content)
    before = Unchanged(at_head)
    result = run_alembic(
        "-x", f"lock-report={report}", "upgrade", "head", url=at_head, tree=tree_copy
    )
    assert_one_failed_line(result, str(report), "-x lock-report")
    before.check()
    assert report.read_text() == content


@pytest.mark.parametrize(
    "where",
    ["folder", "missing-folder"],
)
def test_lock_report_that_cannot_be_a_file_is_refused_before_connecting(at_head, tmp_path, where):
    report = tmp_path if where == "folder" else tmp_path / "no-such-folder" / "locks.json"
    before = Unchanged(at_head)
    result = run_alembic("-x", f"lock-report={report}", "upgrade", "head", url=at_head)
    assert_one_failed_line(result, str(report), "-x lock-report")
    before.check()


@pytest.mark.parametrize(
    "arguments, named",
    [
        (
            ("-x", "lock-retries=1751", "upgrade", "head", "--sql"),
            "-x lock-retries must be from 0 to 1,000",
        ),
        (
            ("-x", "connect-timeout=99999999999999999999", "upgrade", "head"),
            "-x connect-timeout must be from 0 s to 3,600 s",
        ),
        (
            ("-x", "lock-timeout=30d", "upgrade", "head"),
            "-x lock-timeout must be from 0ms to 2,147,483,647ms",
        ),
        (
            ("-x", "statement-timeout=3000000000", "upgrade", "head"),
            "-x statement-timeout must be from",
        ),
        (("-x", "batch-size=0", "upgrade", "head"), "-x batch-size must be from 1 to 1,000,000"),
        (
            ("-x", "progress-interval=0", "upgrade", "head"),
            "-x progress-interval must be from 0.1 s",
        ),
        (("-x", "lock-retries=2²", "upgrade", "head"), "-x lock-retries must be a whole number"),
    ],
)
def test_option_out_of_range_is_refused_naming_the_range(database_url, arguments, named):
    result = run_alembic(*arguments, url=database_url)
    line = assert_one_failed_line(result, named)
    assert "CREATE TABLE" not in result.stdout, line  # --sql wrote no script either
    assert public_tables(database_url) == set()


def test_variable_out_of_range_is_refused_naming_the_variable(database_url):
    result = run_alembic(
        "upgrade", "head", url=database_url, env={"MIGRATION_LOCK_RETRIES": "5000"}
    )
    assert_one_failed_line(result, "MIGRATION_LOCK_RETRIES must be from 0 to 1,000")
    assert public_tables(database_url) == set()


@pytest.mark.parametrize("command", [("check",), ("revision", "--autogenerate", "-m", "x")])
def test_database_behind_head_is_named_with_its_revision_and_the_command(
    database_url, tree_copy, command
):
    """Alembic's `Target database is not up to date.` names the database's revision, head's,
    and what to run."""
    first = REVISIONS[0]
    assert run_alembic("upgrade", first, url=database_url).returncode == 0
    result = run_alembic(*command, url=database_url, tree=tree_copy)
    assert_one_failed_line(
        result,
        "Target database is not up to date",
        f"it is at revision {first}, head is {HEAD}",
        "run `alembic upgrade head`",
    )
    assert current_version(database_url) == first
    assert sorted(p.name for p in (tree_copy / "sql" / "up").glob("*.sql")) == sorted(
        p.name for p in (ROOT / "sql" / "up").glob("*.sql")
    )


def test_empty_database_is_named_as_having_no_revision(database_url):
    result = run_alembic("check", url=database_url)
    assert_one_failed_line(result, "it is at revision none (no revision applied)")


def test_duplicate_key_of_a_concurrent_unique_index_is_named(at_head, tree_copy):
    """CREATE UNIQUE INDEX CONCURRENTLY on values that repeat: PostgreSQL's DETAIL, which
    names the key, is in the line."""
    added = add_revision(
        tree_copy,
        "test_only_unique_name",
        "-- Transaction: none\n"
        "CREATE UNIQUE INDEX CONCURRENTLY test_only_organizations_name_key"
        " ON organizations (name);\n",
        "DROP INDEX CONCURRENTLY IF EXISTS test_only_organizations_name_key;\n",
    )
    result = run_alembic("upgrade", "head", url=at_head, tree=tree_copy)
    assert_one_failed_line(
        result,
        f"sql/up/{added}_test_only_unique_name.sql",
        "DETAIL: Key (name)=(Org) is duplicated",
    )
    assert current_version(at_head) == HEAD
