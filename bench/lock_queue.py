"""Lock-queue impact: what the application feels while a migration waits for a lock.

A table is read by application threads at a steady rate. A long transaction
holds ACCESS SHARE on it (an open transaction that read it, as a report or an
idle-in-transaction session would). A migration then runs
`ALTER TABLE ... ADD COLUMN`, which needs ACCESS EXCLUSIVE: it queues behind
the holder, and every application query queues behind the migration.

With our runner's lock_timeout the migration gives up after the timeout, rolls
back (the queue drains) and retries later; a plain runner waits until the
holder ends, blocking the application all that time. Every loop here is
bounded in count and time and talks to the loopback server only.
"""

import random
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass

import psycopg2

TABLE = "app_items"
ROWS = 1000
APP_THREADS = 4
APP_INTERVAL = 0.02  # seconds between one thread's queries: 4 x 50 = 200 queries/s
HOLD_FROM = 1.0  # seconds after the start
HOLD_FOR = 8.0
MIGRATE_FROM = 1.5
TAIL = 2.0  # keep measuring after the migration ends and the holder is gone
HARD_LIMIT = 60.0  # no phase runs longer than this, whatever happens
UP = (
    "-- 0001_add_app_items_note (up): needs ACCESS EXCLUSIVE on app_items.\n"
    "-- Destructive: no\n"
    "-- Transaction: yes\n"
    f"ALTER TABLE {TABLE} ADD COLUMN note text;\n"
)
DOWN = (
    "-- 0001_add_app_items_note (down).\n"
    "-- Destructive: yes\n"
    "-- Transaction: yes\n"
    f"ALTER TABLE {TABLE} DROP COLUMN note;\n"
)


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
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(
            f"DROP TABLE IF EXISTS {TABLE};"
            f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, name text NOT NULL);"
            f"INSERT INTO {TABLE} SELECT i, 'item ' || i FROM generate_series(1, {ROWS}) AS i;"
            "DROP TABLE IF EXISTS alembic_version, migration_history;"
        )
    connection.close()


def _app(url: str, stop: threading.Event, latencies: list[float]) -> None:
    connection = psycopg2.connect(url)
    connection.autocommit = True
    cursor = connection.cursor()
    deadline = time.monotonic() + HARD_LIMIT
    next_at = time.monotonic()
    while not stop.is_set() and time.monotonic() < deadline:
        started = time.monotonic()
        cursor.execute(f"SELECT name FROM {TABLE} WHERE id = %s", (random.randint(1, ROWS),))
        cursor.fetchall()
        latencies.append(time.monotonic() - started)
        next_at = max(next_at + APP_INTERVAL, time.monotonic())
        time.sleep(max(0.0, next_at - time.monotonic()))
    connection.close()


def _holder(url: str) -> None:
    connection = psycopg2.connect(url)
    cursor = connection.cursor()
    cursor.execute(f"SELECT count(*) FROM {TABLE}")  # ACCESS SHARE until the transaction ends
    time.sleep(HOLD_FOR)
    connection.rollback()
    connection.close()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(runner: str, url: str, command: list[str], env: dict, cwd) -> Outcome:
    """Run the scenario once with `command` as the migration; the app's latencies."""
    prepare(url)
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(APP_THREADS)]
    apps = [
        threading.Thread(target=_app, args=(url, stop, latencies[i]), daemon=True)
        for i in range(APP_THREADS)
    ]
    for thread in apps:
        thread.start()
    time.sleep(HOLD_FROM)
    holder = threading.Thread(target=_holder, args=(url,), daemon=True)
    holder.start()
    time.sleep(MIGRATE_FROM - HOLD_FROM)
    started = time.monotonic()
    result = subprocess.run(
        command,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=HARD_LIMIT,
        check=False,
    )
    migration_seconds = time.monotonic() - started
    holder.join(HARD_LIMIT)
    time.sleep(TAIL)
    stop.set()
    for thread in apps:
        thread.join(HARD_LIMIT)
    every = [latency for per_thread in latencies for latency in per_thread]
    retries = result.stdout.count("attempt ")
    return Outcome(
        runner=runner,
        queries=len(every),
        worst=max(every),
        p99=_percentile(every, 0.99),
        p50=statistics.median(every),
        migration_seconds=migration_seconds,
        migration_ok=result.returncode == 0,
        attempts_note=f"{retries} retr{'y' if retries == 1 else 'ies'}" if retries else "waited",
    )
