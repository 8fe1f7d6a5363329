"""Eight `alembic upgrade head` at once: all succeed, the schema is applied once; a runner
waiting for another holds no transaction open."""

import time

import psycopg2

from migration_runner.steps.transaction import MIGRATION_LOCK_KEY
from support.database import RUNNER_TABLES, libpq_dsn, public_tables, query
from support.processes import run_alembic_concurrently, start_alembic
from support.project import HEAD, HEAD_TABLES, REVISIONS, ups

RUNNERS = 8
# The other sessions on the test's database (the runner's): state, last query, xmin, when
# not in the middle of a statement (a poll's own statement is a transaction while it runs).
# A waiting runner's poll: a statement of its own (in its transaction it sends its timeouts too).
POLL = f"SELECT pg_try_advisory_xact_lock({MIGRATION_LOCK_KEY})"
RUNNER_SESSION = """
SELECT state, query, backend_xmin FROM pg_stat_activity
WHERE datname = current_database() AND pid <> %s AND backend_type = 'client backend'
AND state <> 'active'"""


def test_eight_concurrent_upgrades_apply_the_schema_exactly_once(database_url):
    results = run_alembic_concurrently(RUNNERS, "upgrade", "head", url=database_url)

    assert [result.returncode for result in results] == [0] * RUNNERS, [r.stdout for r in results]
    assert sum("Running upgrade" in result.stdout for result in results) == 1
    assert public_tables(database_url) == HEAD_TABLES | RUNNER_TABLES
    assert query(
        database_url, "SELECT revision, direction FROM migration_history ORDER BY id"
    ) == ups(*REVISIONS)
    assert query(database_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]


def test_a_runner_waiting_for_the_lock_holds_no_transaction_open(database_url):
    """A waiting runner polls outside any transaction, so a CREATE INDEX CONCURRENTLY in the
    run holding the lock never waits for it (steps/transaction.py): sampled from
    pg_stat_activity once it polls, its session is never idle inside a transaction, and
    holds no xmin. (Before its first poll it connects and tries once in its transaction.)"""
    holder = psycopg2.connect(libpq_dsn(database_url))
    holder.autocommit = True
    with holder.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        runner = start_alembic("upgrade", "head", url=database_url)
        states = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            cursor.execute(RUNNER_SESSION, (holder.get_backend_pid(),))
            states += cursor.fetchall()
            time.sleep(0.02)
        cursor.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    holder.close()
    output, _ = runner.communicate(timeout=60)

    polls = [n for n, (_state, text, _xmin) in enumerate(states) if text.strip() == POLL]
    assert runner.returncode == 0, output
    assert "another migration run holds the lock" in output
    assert len(polls) > 10, states  # it was seen waiting, polling alone, many times
    waiting = states[polls[0] :]
    assert [s for s in waiting if s[0] == "idle in transaction" or s[2] is not None] == [], states
    assert query(database_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
