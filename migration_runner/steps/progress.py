"""Progress of long statements, read from PostgreSQL itself, one log line per interval.

While a statement of a migration runs longer than the progress interval
(default 5 s), a thread on its own connection reports, every interval:
- a concurrent or plain index build: pg_stat_progress_create_index for the
  runner's backend (phase, blocks or tuples done of the total, percent);
- a batched backfill: the latest counters its batches published with
  pg_notify('migration_progress', '{"what": ..., "done": n, "total": t}') at
  each commit, with the rate and the time left computed here;
- anything else: how long it has run and what it waits on (wait_event).
"""

import json
import logging
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

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


def _percent(done: int, total: int) -> str:
    return f" ({100 * done // total}%)" if total else ""


class Monitor(threading.Thread):
    def __init__(self, url, pid: int, what: str, interval: float):
        super().__init__(daemon=True)
        self.url, self.pid, self.what, self.interval = url, pid, what, interval
        self.finished = threading.Event()
        self.started = time.monotonic()
        # (when, payload) of the first and the latest batch: enough for the rate.
        self.first_batch: tuple[float, dict] | None = None
        self.latest_batch: tuple[float, dict] | None = None

    def run(self) -> None:
        if self.finished.wait(self.interval):
            return  # a short statement: no connection, no line
        engine = create_engine(self.url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                raw = connection.connection.driver_connection
                raw.autocommit = True
                cursor = raw.cursor()
                cursor.execute(f"LISTEN {CHANNEL}")
                log.info("%s", self.line(cursor))
                next_report = self.started + 2 * self.interval
                while not self.finished.is_set():
                    if select.select([raw], [], [], 0.2)[0]:
                        raw.poll()
                        for notice in raw.notifies:
                            self.latest_batch = (time.monotonic(), json.loads(notice.payload))
                            self.first_batch = self.first_batch or self.latest_batch
                        raw.notifies.clear()
                    if time.monotonic() >= next_report and not self.finished.is_set():
                        log.info("%s", self.line(cursor))
                        next_report += self.interval
        except Exception as error:  # noqa: BLE001  (progress is an aid: never fail a run for it)
            log.debug("progress monitor stopped: %s", error)
        finally:
            engine.dispose()

    def line(self, cursor) -> str:
        elapsed = time.monotonic() - self.started
        cursor.execute(INDEX_BUILD, (self.pid,))
        build = cursor.fetchone()
        if build:
            phase, blocks, blocks_total, tuples, tuples_total, name = build
            done, total, unit = (
                (blocks, blocks_total, "blocks")
                if blocks_total
                else (tuples, tuples_total, "tuples")
            )
            return (f"{self.what}: building index {name or ''} ({phase}), {done:,} of {total:,} "
                    f"{unit}{_percent(done, total)}, {elapsed:.0f} s so far")  # fmt: skip
        if self.latest_batch:
            return self._backfill_line(elapsed)
        cursor.execute(WAITING, (self.pid,))
        wait = cursor.fetchone()
        waiting = f", waiting on {wait[0]} {wait[1]}" if wait and wait[0] else ""
        return f"{self.what}: still running, {elapsed:.0f} s so far{waiting}"

    def _backfill_line(self, elapsed: float) -> str:
        when, latest = self.latest_batch
        first_when, first = self.first_batch
        done, total = int(latest.get("done", 0)), int(latest.get("total", 0))
        span = when - first_when
        rate = (done - int(first.get("done", 0))) / span if span > 0 else done / max(elapsed, 1e-3)
        left = f", about {(total - done) / rate:.0f} s left" if rate > 0 and total > done else ""
        return (f"{latest.get('what', self.what)}: {done:,} of {total:,} rows{_percent(done, total)}, "
                f"{rate:,.0f} rows/s{left}")  # fmt: skip


@contextmanager
def reported(connection, what: str, interval: float) -> Iterator[None]:
    """Run the block; if it lasts longer than interval, log progress every interval.

    The monitor connects only once the interval has passed: short statements cost a thread.
    """
    if interval <= 0:
        yield
        return
    if "backend_pid" not in connection.info:  # one query per connection, not per statement
        connection.info["backend_pid"] = connection.exec_driver_sql(
            "SELECT pg_backend_pid()"
        ).scalar()
    pid = connection.info["backend_pid"]
    monitor = Monitor(connection.engine.url, pid, what, interval)
    monitor.start()
    try:
        yield
    finally:
        monitor.finished.set()
        monitor.join()
