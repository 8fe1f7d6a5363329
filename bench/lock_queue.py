"""Lock-queue impact: what the application feels while a migration waits for a lock.

A table is read by application threads at a steady rate. A long transaction
holds ACCESS SHARE on it (an open transaction that read it, as a report or an
idle-in-transaction session would). A migration then runs
`ALTER TABLE ... ADD COLUMN`, which needs ACCESS EXCLUSIVE: it queues behind
the holder, and every application query queues behind the migration.

With our runner's lock_timeout the migration gives up after the timeout, rolls
back (the queue drains) and retries later; a plain runner waits until the
holder ends, blocking the application all that time. Every loop here is
bounded in count and time and talks to the loopback server only. The
scenario's figures (threads, rates, timings, the migration) are
scenarios.LOCK_QUEUE.
"""

import random
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from bench import trees
from bench.measure import clean_env, median, percentile, run_quietly
from bench.scenarios import LOCK_QUEUE, OUR_LABEL, PLAIN_LABEL, alembic_upgrade

SCENARIO = LOCK_QUEUE


@dataclass
class Outcome:
    runner: str
    queries: int
    worst: float  # seconds
    p99: float
    p50: float
    migration_seconds: float
    migration_ok: bool
    attempts_note: str


def prepare(url: str) -> None:
    table, rows = SCENARIO.table, SCENARIO.rows
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(
            f"DROP TABLE IF EXISTS {table};"
            f"CREATE TABLE {table} (id integer PRIMARY KEY, name text NOT NULL);"
            f"INSERT INTO {table} SELECT i, 'item ' || i FROM generate_series(1, {rows}) AS i;"
            "DROP TABLE IF EXISTS alembic_version, migration_history;"
        )
    connection.close()


def _app(url: str, stop: threading.Event, latencies: list[float]) -> None:
    connection = psycopg2.connect(url)
    connection.autocommit = True
    cursor = connection.cursor()
    deadline = time.monotonic() + SCENARIO.hard_limit
    next_at = time.monotonic()
    while not stop.is_set() and time.monotonic() < deadline:
        started = time.monotonic()
        cursor.execute(
            f"SELECT name FROM {SCENARIO.table} WHERE id = %s", (random.randint(1, SCENARIO.rows),)
        )
        cursor.fetchall()
        latencies.append(time.monotonic() - started)
        next_at = max(next_at + SCENARIO.app_interval, time.monotonic())
        time.sleep(max(0.0, next_at - time.monotonic()))
    connection.close()


def _holder(url: str) -> None:
    connection = psycopg2.connect(url)
    cursor = connection.cursor()
    cursor.execute(f"SELECT count(*) FROM {SCENARIO.table}")  # ACCESS SHARE until it ends
    time.sleep(SCENARIO.hold_for)
    connection.rollback()
    connection.close()


def measure(runner: str, url: str, command: list[str], env: dict, cwd) -> Outcome:
    """Run the scenario once with `command` as the migration; the app's latencies."""
    prepare(url)
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(SCENARIO.app_threads)]
    apps = [
        threading.Thread(target=_app, args=(url, stop, latencies[i]), daemon=True)
        for i in range(SCENARIO.app_threads)
    ]
    for thread in apps:
        thread.start()
    time.sleep(SCENARIO.hold_from)
    holder = threading.Thread(target=_holder, args=(url,), daemon=True)
    holder.start()
    time.sleep(SCENARIO.migrate_from - SCENARIO.hold_from)
    started = time.monotonic()
    result = run_quietly(command, env, cwd, timeout=SCENARIO.hard_limit)
    migration_seconds = time.monotonic() - started
    holder.join(SCENARIO.hard_limit)
    time.sleep(SCENARIO.tail)
    stop.set()
    for thread in apps:
        thread.join(SCENARIO.hard_limit)
    every = [latency for per_thread in latencies for latency in per_thread]
    retries = result.stdout.count("attempt ")
    return Outcome(
        runner=runner,
        queries=len(every),
        worst=max(every),
        p99=percentile(every, 0.99),
        p50=median(every),
        migration_seconds=migration_seconds,
        migration_ok=result.returncode == 0,
        attempts_note=f"{retries} retr{'y' if retries == 1 else 'ies'}" if retries else "waited",
    )


def measure_runners(server, log) -> list[Outcome]:
    """The scenario with our runner (its default lock timeouts), then with plain Alembic."""
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="bench-lock-") as temp:
        url = server.fresh("bench_lock")
        up, down = (lambda i: SCENARIO.up), (lambda i: SCENARIO.down)
        ours = trees.ours(Path(temp) / "ours", 1, up, down)
        plain = trees.plain_alembic(Path(temp) / "plain", 1, url, up, down)
        for name, tree in ((OUR_LABEL, ours), (PLAIN_LABEL, plain)):
            outcome = measure(name, url, alembic_upgrade(tree), clean_env(DATABASE_URL=url), tree)
            log(
                f"lock queue, {name}: worst {outcome.worst:.2f}s, p99 {outcome.p99:.3f}s, "
                f"migration {outcome.migration_seconds:.1f}s ({outcome.attempts_note})"
            )
            outcomes.append(outcome)
        server.drop("bench_lock")
    return outcomes
