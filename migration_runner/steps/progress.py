"""Progress of long statements, read from PostgreSQL itself, one log line per interval.

While a statement of a migration runs longer than the progress interval
(default 5 s), the run's monitor reports, on a connection of its own, every
interval:
- a concurrent or plain index build: pg_stat_progress_create_index for the
  runner's backend (phase, blocks or tuples done of the total, percent);
- a batched backfill: the latest counters its batches published with
  pg_notify('migration_progress', '{"what": ..., "done": n, "total": t}') at
  each commit, with the rate and the time left computed here;
- anything else: how long it has run and what it waits on (wait_event).

A run of 300 small revisions must not pay for this: the run has one monitor
thread (progress_reports), started by its first statement, and a statement
that ends within its interval costs it a lock taken twice, no thread and no
connection.
"""

import json
import logging
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

log = logging.getLogger("migration_runner")
CHANNEL = "migration_progress"
INDEX_BUILD = """
SELECT p.phase, p.blocks_done, p.blocks_total, p.tuples_done, p.tuples_total,
       i.relname AS index_name
FROM pg_stat_progress_create_index AS p
LEFT JOIN pg_class AS i ON i.oid = p.index_relid
WHERE p.pid = %s
"""
WAITING = "SELECT wait_event_type, wait_event FROM pg_stat_activity WHERE pid = %s"
# Where a run's connection keeps its monitor (SQLAlchemy's Connection.info).
MONITOR = "migration_progress_monitor"
# Whether that connection goes through a pooler (its login's backend is not the server's).
POOLED = "migration_progress_pooled"
# How often a report's loop looks for notifications and for its statement's end.
POLL = 0.2


def _percent(done: int, total: int) -> str:
    return f" ({100 * done // total}%)" if total else ""


@dataclass(eq=False)
class Watched:
    """A statement being run, and what its report has heard of its batches."""

    what: str
    started: float
    interval: float
    reported: bool = False
    # (when, payload) of the first and the latest batch: enough for the rate.
    first_batch: tuple[float, dict] | None = None
    latest_batch: tuple[float, dict] | None = None


class Monitor(threading.Thread):
    """The run's one watcher: reports the running statement once it outlasts its interval.

    It sleeps until the running statement's interval is over, then looks again: a
    statement started since has a later deadline. watch() wakes it only when it sleeps
    with nothing to watch; done() waits only for a report in progress, so that no line
    about a statement comes after it ended.
    """

    def __init__(self, url, pid: int) -> None:
        super().__init__(daemon=True, name="migration-progress")
        self.url, self.pid = url, pid
        self.changed = threading.Condition()
        self.running: Watched | None = None
        self.reporting: Watched | None = None
        self.idle = False
        self.stopping = False

    def watch(self, what: str, interval: float) -> Watched:
        watched = Watched(what, time.monotonic(), interval)
        with self.changed:
            self.running = watched
            if self.idle:
                self.changed.notify_all()
        return watched

    def done(self, watched: Watched) -> None:
        with self.changed:
            self.running = None
            while self.reporting is watched:
                self.changed.wait()

    def stop(self) -> None:
        with self.changed:
            self.stopping = True
            self.changed.notify_all()
        self.join()

    def run(self) -> None:
        with self.changed:
            while not self.stopping:
                watched = self.running
                self.idle = watched is None or watched.reported
                if self.idle:
                    self.changed.wait()
                    continue
                left = watched.started + watched.interval - time.monotonic()
                if left > 0:
                    self.changed.wait(left)
                    continue
                watched.reported, self.reporting = True, watched
                self.changed.release()
                try:
                    self._report(watched)
                finally:
                    self.changed.acquire()
                    self.reporting = None
                    self.changed.notify_all()

    def _still_running(self, watched: Watched) -> bool:
        return self.running is watched and not self.stopping

    def _report(self, watched: Watched) -> None:
        """A line now and every interval while the statement runs, on a connection of its own."""
        engine = create_engine(self.url, poolclass=NullPool, use_native_hstore=False)
        try:
            with engine.connect() as connection:
                raw = connection.connection.driver_connection
                raw.autocommit = True
                cursor = raw.cursor()
                cursor.execute(f"LISTEN {CHANNEL}")
                log.info("%s", self.line(cursor, watched))
                next_report = watched.started + 2 * watched.interval
                while self._still_running(watched):
                    if select.select([raw], [], [], POLL)[0]:
                        raw.poll()
                        for notice in raw.notifies:
                            watched.latest_batch = (time.monotonic(), json.loads(notice.payload))
                            watched.first_batch = watched.first_batch or watched.latest_batch
                        raw.notifies.clear()
                    if time.monotonic() >= next_report and self._still_running(watched):
                        log.info("%s", self.line(cursor, watched))
                        next_report += watched.interval
        except Exception as error:  # noqa: BLE001  (progress is an aid: never fail a run for it)
            log.debug("progress monitor stopped: %s", error)
        finally:
            engine.dispose()

    def line(self, cursor, watched: Watched) -> str:
        elapsed = time.monotonic() - watched.started
        cursor.execute(INDEX_BUILD, (self.pid,))
        build = cursor.fetchone()
        if build:
            phase, blocks, blocks_total, tuples, tuples_total, name = build
            done, total, unit = (
                (blocks, blocks_total, "blocks")
                if blocks_total
                else (tuples, tuples_total, "tuples")
            )
            return (
                f"{watched.what}: building index {name or ''} ({phase}), {done:,} of {total:,} "
                f"{unit}{_percent(done, total)}, {elapsed:.0f} s so far"
            )
        if watched.latest_batch:
            return self._backfill_line(watched, elapsed)
        cursor.execute(WAITING, (self.pid,))
        wait = cursor.fetchone()
        waiting = f", waiting on {wait[0]} {wait[1]}" if wait and wait[0] else ""
        return f"{watched.what}: still running, {elapsed:.0f} s so far{waiting}"

    @staticmethod
    def _backfill_line(watched: Watched, elapsed: float) -> str:
        when, latest = watched.latest_batch
        first_when, first = watched.first_batch
        done, total = int(latest.get("done", 0)), int(latest.get("total", 0))
        span = when - first_when
        rate = (done - int(first.get("done", 0))) / span if span > 0 else done / max(elapsed, 1e-3)
        left = f", about {(total - done) / rate:.0f} s left" if rate > 0 and total > done else ""
        return (
            f"{latest.get('what', watched.what)}: {done:,} of {total:,} rows{_percent(done, total)}, "
            f"{rate:,.0f} rows/s{left}"
        )


@contextmanager
def progress_reports(ctx: MigrationContext, pooled: bool | None) -> Iterator[None]:
    """For a run's migrations: the monitor their long statements report through, stopped at
    the end. Its thread starts with the first statement; an offline script has none. pooled:
    the run goes through a pooler, whose login's backend is not the server's."""
    if ctx.as_sql:
        yield
        return
    info = ctx.connection.info
    info[MONITOR] = None
    info[POOLED] = bool(pooled)
    try:
        yield
    finally:
        info.pop(POOLED, None)
        monitor = info.pop(MONITOR, None)
        if monitor is not None:
            monitor.stop()


def _backend_pid(connection) -> int:
    """The server process running the migration: libpq knows it from the login (no round
    trip), but through a pooler that is the pooler's, so there the server is asked."""
    if connection.info.get(POOLED, True):
        return connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    return connection.connection.driver_connection.info.backend_pid


def monitor_of(connection) -> "Monitor | None":
    """The run's monitor (None outside progress_reports), started on first use: the first
    asks for the run's backend (a query through a pooler), then starts the thread."""
    if MONITOR not in connection.info:
        return None
    monitor = connection.info[MONITOR]
    if monitor is None:
        pid = _backend_pid(connection)
        monitor = connection.info[MONITOR] = Monitor(connection.engine.url, pid)
        monitor.start()
    return monitor


@contextmanager
def reported(connection, what: str, interval: float) -> Iterator[None]:
    """Run the block; if it lasts longer than interval, log progress every interval.

    Only inside progress_reports (env.py wraps Alembic's run in it); elsewhere the block just
    runs.
    """
    monitor = monitor_of(connection) if interval > 0 else None
    if monitor is None:
        yield
        return
    watched = monitor.watch(what, interval)
    try:
        yield
    finally:
        monitor.done(watched)
