"""Measuring one migration under application load (`make bench-load`; load.py runs them all).

pgbench plays the application (scenarios.WORKLOAD at scenarios.RATE) for the whole of a
measure; a sampler reads pg_stat_activity for the longest lock wait of an application
session; the migration runs through our runner as a revision on top of the project's
head, then is undone outside the measure. A Run holds what one measure saw.
"""

import math
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

from bench.measure import clean_env, percentile
from bench.scenarios import CLIENTS, DATASET, FLUSH, RATE, ROOT, WORKLOAD, Variant
from migration_runner.pg_programs import find_client, libpq_arguments
from migration_runner.tools.scaffold import append_revision, revision_ids

# The revision the benchmark migrations go on top of: the project's head today.
HEAD = revision_ids(ROOT)[-1]


@dataclass
class Run:
    pair: str
    way: str
    seconds: float = 0.0
    wal_bytes: int = 0
    longest_lock_wait: float = 0.0
    failed: int = 0
    ok: bool = False
    window: list[float] = field(default_factory=list)  # latencies (ms) from start to end of tail
    timeline: list[tuple[float, float]] = field(default_factory=list)  # (s from start, ms)

    def per_second(self) -> list[tuple[int, int, float, float, float]]:
        """(second from the start, transactions, p50, p99, max ms) for each second."""
        seconds: dict[int, list[float]] = {}
        for moment, latency in self.timeline:
            seconds.setdefault(math.floor(moment), []).append(latency)
        return [
            (second, len(values), percentile(values, 0.5), percentile(values, 0.99), max(values))
            for second, values in sorted(seconds.items())
        ]

    def worst_second_p99(self) -> float:
        return max((p99 for second, _, _, p99, _ in self.per_second() if second >= 0), default=0)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class LockWatch(threading.Thread):
    """Samples how long application sessions have waited on a lock, every 50 ms.

    The waiting side, pgbench's sessions, not the sessions holding the lock: the
    runner's own query for those (steps/) names the holders in a failure message.
    """

    def __init__(self, dsn: str):
        super().__init__(daemon=True)
        self.dsn, self.stop, self.longest = dsn, threading.Event(), 0.0

    def run(self) -> None:
        connection = psycopg2.connect(self.dsn)
        connection.autocommit = True
        with connection.cursor() as cursor:
            while not self.stop.wait(0.05):
                cursor.execute(
                    "SELECT coalesce(max(extract(epoch FROM now() - state_change)), 0)"
                    " FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND application_name = 'pgbench'"
                )
                self.longest = max(self.longest, float(cursor.fetchone()[0]))
        connection.close()


def tree_for(base: Path, up: str, down: str, transactional: bool) -> Path:
    """The project's migration tree with one benchmark revision on top of its head."""
    tree = base / f"tree_{time.monotonic_ns()}"
    for name in ("alembic", "sql", "migration_runner"):
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "alembic.ini", tree / "alembic.ini")
    header = "-- bench: one migration measured under load\n"
    if not transactional and "-- Transaction: none" not in up:
        header += "-- Transaction: none\n"
    append_revision(tree, "bench", header + up + "\n", down + "\n")
    return tree


def alembic(tree: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(tree / "alembic.ini"), *args],
        env=clean_env(DATABASE_URL=url),
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )


def execute(dsn: str, sql: str):
    """Each statement in its own transaction; the last one's first value."""
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    value = None
    with connection.cursor() as cursor:
        for statement in filter(None, (part.strip() for part in sql.split(";\n"))):
            cursor.execute(statement)
            value = cursor.fetchone()[0] if cursor.description else None
    connection.close()
    return value


def generate_dataset(url: str, major: int, sizes: dict) -> None:
    """scenarios.DATASET at these sizes, through psql."""
    connection, environ = libpq_arguments(url)
    subprocess.run(
        [
            str(find_client("psql", major)),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
            "-",
            connection,
        ],
        input=DATASET.format(**sizes),
        env=environ,
        text=True,
        check=True,
    )


class Load:
    """One pgbench for the whole of a measure, stopped by SIGTERM once it is over.

    One run, not a series of short ones: a transaction a migration queued is
    followed by the ones scheduled behind it, each with its whole lag, where a
    short run would end and drop them. pgbench writes its log through a buffer
    a signal loses, a second's worth at most: the measure ends earlier than that.
    """

    def __init__(self, pgbench: Path, dsn: str, folder: Path, sizes: dict):
        self.folder = folder
        self.logged: list[str] = []  # pgbench's per-transaction log, read once it stopped
        scripts = []
        for name, (weight, text) in WORKLOAD.items():
            path = folder / f"{name}.sql"
            path.write_text(text)
            scripts += ["-f", f"{path}@{weight}"]
        connection, environ = libpq_arguments(dsn)  # the password in PGPASSWORD, not in argv
        self.process = subprocess.Popen(
            [str(pgbench), "-n", "-c", str(CLIENTS), "-j", "2", "-R", str(RATE), "-T", "86400",
             "-D", f"assessments={sizes['assessments']}",
             "-D", f"organizations={sizes['organizations']}",
             *scripts, "-l", f"--log-prefix={folder}/load", connection],
            cwd=folder, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip # argv: each option beside its value

    def stop(self) -> int:
        """Stop it; the number of transactions that failed or whose client gave up."""
        time.sleep(FLUSH)
        self.process.terminate()
        output, _ = self.process.communicate(timeout=30)
        self.logged = [
            line for path in self.folder.glob("load*") for line in path.read_text().splitlines()
        ]
        aborted = output.count(" aborted in command ")
        failed = sum(line.split()[2] == "failed" for line in self.logged if len(line.split()) > 2)
        return aborted + failed

    def transactions(self) -> list[tuple[float, float]]:
        """(scheduled start, latency ms) of every transaction that completed."""
        found = []
        for line in self.logged:
            fields = line.split()
            if len(fields) >= 6 and fields[2].isdigit():
                latency_ms = int(fields[2]) / 1000
                end = int(fields[4]) + int(fields[5]) / 1e6
                found.append((end - latency_ms / 1000, latency_ms))
        return sorted(found)


@dataclass(frozen=True)
class Bench:
    """One benchmark's server, data set and settings."""

    base: Path
    url: str
    pgbench: Path
    sizes: dict
    lead: float
    tail: float
    settings: dict | None  # None: a server of the user's (--url), settings as they are


def measure(run: Run, variant: Variant, undo: str, bench: Bench) -> None:
    """Load, then the migration through our runner, then a tail of load; then undo it."""
    tree = tree_for(bench.base, variant.up, undo, variant.transactional)
    folder = Path(tempfile.mkdtemp(dir=bench.base))
    load = Load(bench.pgbench, bench.url, folder, bench.sizes)
    watch = LockWatch(bench.url)
    time.sleep(bench.lead)
    watch.start()
    wal_before = execute(bench.url, "SELECT pg_current_wal_lsn()::text")
    started = time.time()
    result = alembic(tree, bench.url, *variant.options, "upgrade", "head")
    run.seconds = time.time() - started
    run.ok = result.returncode == 0
    run.wal_bytes = int(
        execute(bench.url, f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{wal_before}')")
    )
    time.sleep(bench.tail)
    watch.stop.set()
    watch.join()
    run.failed = load.stop()
    run.longest_lock_wait = watch.longest
    if not run.ok:
        log(f"  FAILED: {result.stdout[-400:]}")
    end = run.seconds + bench.tail
    for moment, latency in load.transactions():
        if -bench.lead <= moment - started <= end:
            run.timeline.append((moment - started, latency))
            if moment >= started:
                run.window.append(latency)
    # Not measured: put the table back as it was, without a backup of what goes.
    execute(bench.url, undo + "\nVACUUM (ANALYZE) responses;")
    stamped = alembic(tree, bench.url, "stamp", HEAD)
    if stamped.returncode != 0:
        raise SystemExit(f"could not undo {run.pair} ({run.way}): {stamped.stdout[-400:]}")
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(tree, ignore_errors=True)
