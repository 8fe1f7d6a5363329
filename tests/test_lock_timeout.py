"""A migration waiting for a lock gives way to the application and retries.

Without lock_timeout, an ALTER TABLE queued behind a long transaction makes
every later query on that table wait too: the classic migration outage.
"""

import re
import threading
import time

import psycopg2
import pytest

from support.database import current_version, libpq_dsn, query
from support.processes import run_alembic, start_alembic
from support.project import HEAD, add_revision

ADD_NOTE_UP = "-- test-only: needs ACCESS EXCLUSIVE on organizations.\nALTER TABLE organizations ADD COLUMN test_only_note text;\n"
ADD_NOTE_DOWN = "ALTER TABLE organizations DROP COLUMN test_only_note;\n"
HOLD_SECONDS = 1.5


class ApplicationLoad(threading.Thread):
    """Reads organizations every 20 ms and records how long each read took."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.dsn, self.latencies, self.stop = libpq_dsn(url), [], threading.Event()

    def run(self):
        connection = psycopg2.connect(self.dsn)
        connection.autocommit = True
        with connection.cursor() as cursor:
            while not self.stop.is_set():
                started = time.monotonic()
                cursor.execute("SELECT count(*) FROM organizations")
                self.latencies.append(time.monotonic() - started)
                time.sleep(0.02)
        connection.close()


def _hold_table(url):
    """A long transaction holding ACCESS SHARE on organizations until rolled back."""
    connection = psycopg2.connect(libpq_dsn(url))
    connection.cursor().execute("SELECT count(*) FROM organizations")
    return connection


def _wait_until_migration_queues(url):
    """Block until some session waits for a lock on organizations (the migration's ALTER)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        waiting = query(
            url,
            """
            SELECT count(*) FROM pg_locks
            WHERE NOT granted AND relation = to_regclass('organizations')""",
        )
        if waiting[0][0]:
            return
        time.sleep(0.02)
    raise AssertionError("the migration never queued for its lock")


@pytest.fixture
def migrated_with_pending(database_url, tree_copy):
    """A database at head, a tree with one test-only revision on top, and that revision's id."""
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    added = add_revision(tree_copy, "add_note", ADD_NOTE_UP, ADD_NOTE_DOWN)
    return database_url, tree_copy, added


def _migrate_under_load(url, tree, *x_options):
    """Run the migration while a transaction holds the table for HOLD_SECONDS after it queues."""
    load = ApplicationLoad(url)
    load.start()
    holder = _hold_table(url)
    migration = start_alembic(*x_options, "upgrade", "head", url=url, tree=tree)
    _wait_until_migration_queues(url)
    time.sleep(HOLD_SECONDS)  # measured from the first wait, whatever the machine's load
    holder.rollback()
    holder.close()
    output, _ = migration.communicate(timeout=120)
    time.sleep(0.1)
    load.stop.set()
    load.join()
    return migration.returncode, output, max(load.latencies)


def test_application_is_never_blocked_much_longer_than_the_lock_timeout(migrated_with_pending):
    url, tree, added = migrated_with_pending
    code, output, worst = _migrate_under_load(
        url, tree, "-x", "lock-timeout=200ms", "-x", "lock-retries=10"
    )
    assert code == 0, output
    assert "waited too long for a lock" in output  # at least one retry happened
    assert worst < 0.2 + 0.5, f"application blocked {worst:.2f}s"
    assert current_version(url) == added
    assert query(
        url, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'test_only_note'"
    ) == [(1,)]


def test_default_schedule_keeps_every_application_query_under_half_a_second(
    migrated_with_pending,
):
    """With no settings at all: short, growing lock timeouts; the migration still applies."""
    url, tree, added = migrated_with_pending
    code, output, worst = _migrate_under_load(url, tree)
    assert code == 0, output
    assert "(lock_timeout 100ms); rolled back, attempt 2" in output
    assert worst < 0.5, f"application blocked {worst:.2f}s"
    assert current_version(url) == added


def test_without_lock_timeout_the_application_queues_behind_the_migration(migrated_with_pending):
    """The outage the guard prevents, measured the same way, so the test above means something."""
    url, tree, _added = migrated_with_pending
    code, output, worst = _migrate_under_load(url, tree, "-x", "lock-timeout=0")
    assert code == 0, output
    assert worst > HOLD_SECONDS * 0.8, f"application blocked only {worst:.2f}s"


def found_by_hand(url: str, blockers: str, holder_pid: int) -> list[int]:
    """The pids the message's query finds, once the failed runner's own session has ended:
    its process has exited, but on a loaded machine the server may not have ended its
    session yet (still in its transaction, holding its locks), for a moment."""
    deadline = time.monotonic() + 10
    while True:
        found = [row[0] for row in query(url, blockers)]
        if found == [holder_pid] or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_migration_fails_cleanly_when_the_lock_never_comes(migrated_with_pending):
    url, tree, added = migrated_with_pending
    holder = _hold_table(url)
    try:
        result = run_alembic(
            "-x",
            "lock-timeout=100ms",
            "-x",
            "lock-retries=1",
            "upgrade",
            "head",
            url=url,
            tree=tree,
        )
        # The query the message gives to run by hand finds the same holder.
        by_hand = re.search(r"Find long transactions with `([^`]+)`", result.stdout)
        assert by_hand, result.stdout
        holder_pid = holder.get_backend_pid()
        assert found_by_hand(url, by_hand.group(1), holder_pid) == [holder_pid]
    finally:
        holder.rollback()
        holder.close()
    assert result.returncode != 0
    assert "Gave up after 2 attempts" in result.stdout
    assert f"Holding tables: pid {holder_pid} " in result.stdout  # the blocker, named
    assert "SELECT count(*) FROM organizations" in result.stdout
    assert "Traceback" not in result.stdout
    assert current_version(url) == HEAD
    assert query(
        url, "SELECT count(*) FROM migration_history WHERE revision = :added", added=added
    ) == [(0,)]


def test_lock_settings_are_transaction_scoped(database_url):
    """SET LOCAL, not SET: the timeouts never outlive the migration's transaction."""
    result = run_alembic("-x", "lock-timeout=1234ms", "upgrade", "head", "--sql")
    assert "SET LOCAL lock_timeout = '1234ms';" in result.stdout
    assert "SELECT pg_advisory_xact_lock(" in result.stdout
