"""Common migrations on a big `responses` table under application load, naive and safe.

    python -m bench.load             # 10 million responses (make bench-load)
    python -m bench.load --quick     # 1 million (make bench-load QUICK=1)
    python -m bench.load --version 18

A throwaway PostgreSQL gets the schema at head (our runner, the tree's head) and a
generated data set: organizations, users, one framework of 100 questions,
assessments of 100 responses each. `pgbench` plays the application at a fixed
rate (reads of an assessment's answers, answer updates, organization reads,
audit inserts) for the whole time. Each migration runs twice through our runner,
written naively (plain DDL, no lock timeout: what a tool without our steps
does) and the safe way (MIGRATIONS.md, docs/production.md), then is undone
outside the measure. Per run: the application's p50/p99/max latency and worst
one-second p99 from the migration's start to a few seconds after its end,
against a baseline (the runner applying an empty revision under the same load),
failed transactions, the longest lock wait seen in pg_stat_activity, the
migration's duration and the WAL it wrote. Results go to a run folder, bench/runs/<time>/ (with --commit, make COMMIT=1: to
bench/results.md, a section per PostgreSQL major, and bench/load_latency_pg<major>.png).
"""

import argparse
import csv
import datetime
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

from bench.output import LOAD_SECTION, output_folder, require_matplotlib
from migration_runner.errors import interrupt_on_sigterm
from migration_runner.pg_programs import find_client, libpq_arguments
from migration_runner.servers import local_postgres
from migration_runner.tools.scaffold import append_revision, revision_ids

ROOT = Path(__file__).resolve().parents[1]
# The revision the benchmark migrations go on top of: the project's head today.
HEAD = revision_ids(ROOT)[-1]
SECTION = LOAD_SECTION
QUESTIONS = 100
RATE = 200  # application transactions per second
CLIENTS = 4
LEAD = 3.0  # seconds of load before each migration
TAIL = 3.0  # and after it: transactions it queued finish then, so they count
FLUSH = 2.0  # more load after the measure: what the stopped pgbench loses is not in it
# The baseline: the same load while the runner applies a revision that changes
# nothing, so the runner's own start (Python on 2 cores) is in both.
NO_MIGRATION = "SELECT 1;"
# For the benchmark server only; the values are reported with the results.
SERVER_SETTINGS = {
    "shared_buffers": "1GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "maintenance_work_mem": "256MB",
}
# The application: ids are md5 of a number, so pgbench can name rows.
WORKLOAD = {
    "read_answers": (
        5,
        (
            "\\set a random(1, :assessments)\n"
            "SELECT question_id, answer FROM responses"
            " WHERE assessment_id = md5('a' || :a)::uuid;\n"
        ),
    ),
    "update_answer": (
        2,
        (
            "\\set a random(1, :assessments)\n\\set q random(1, 100)\n"
            "UPDATE responses SET answer = '{\"value\": 3}', updated_at = now()"
            " WHERE assessment_id = md5('a' || :a)::uuid AND question_id = md5('q' || :q)::uuid;\n"
        ),
    ),
    "read_organization": (
        2,
        (
            "\\set o random(1, :organizations)\n"
            "SELECT name, plan FROM organizations WHERE id = md5('o' || :o)::uuid;\n"
        ),
    ),
    "audit": (
        1,
        (
            "\\set o random(1, :organizations)\n"
            "INSERT INTO audit_logs (organization_id, action, entity_type)"
            " VALUES (md5('o' || :o)::uuid, 'response.updated', 'response');\n"
        ),
    ),
}
DATASET = """
SET session_replication_role = replica;  -- load without per-row foreign key checks
INSERT INTO organizations (id, name, slug)
SELECT md5('o' || i)::uuid, 'Organization ' || i, 'org-' || i FROM generate_series(1, {organizations}) AS i;
INSERT INTO users (id, organization_id, email, role)
SELECT md5('u' || i)::uuid, md5('o' || (1 + i % {organizations}))::uuid, 'user' || i || '@example.com', 'member'
FROM generate_series(1, {users}) AS i;
INSERT INTO frameworks (id, key, name, version) VALUES (md5('f1')::uuid, 'iso-27001', 'ISO 27001', '2022');
INSERT INTO questions (id, framework_id, code, prompt, category, position, answer_type)
SELECT md5('q' || i)::uuid, md5('f1')::uuid, 'Q' || i, 'Question ' || i, 'category ' || i % 10, i, 'scale'
FROM generate_series(1, {questions}) AS i;
INSERT INTO assessments (id, organization_id, framework_id, title, status, started_at)
SELECT md5('a' || i)::uuid, md5('o' || (1 + i % {organizations}))::uuid, md5('f1')::uuid,
       'Assessment ' || i, 'in_progress', now()
FROM generate_series(1, {assessments}) AS i;
INSERT INTO responses (assessment_id, question_id, answer, answered_by)
SELECT md5('a' || a)::uuid, md5('q' || q)::uuid, jsonb_build_object('value', (a + q) % 5),
       md5('u' || (1 + (a * 7 + q) % {users}))::uuid
FROM generate_series(1, {assessments}) AS a, generate_series(1, {questions}) AS q;
RESET session_replication_role;
-- Setup for the pairs below: a foreign key to add back, a column to backfill.
ALTER TABLE responses DROP CONSTRAINT responses_answered_by_fkey;
ALTER TABLE responses ADD COLUMN score integer;
VACUUM ANALYZE;
"""
BACKFILL_SAFE = (ROOT / "docs" / "templates" / "batched_backfill.sql").read_text()
BACKFILL_SAFE = (
    BACKFILL_SAFE.replace("organizations.score", "responses.score")
    .replace("FROM organizations", "FROM responses")
    .replace("UPDATE organizations AS o", "UPDATE responses AS o")
    .replace("SET score = length(o.slug)", "SET score = (o.answer ->> 'value')::integer")
)


@dataclass(frozen=True)
class Variant:
    up: str
    transactional: bool = True
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pair:
    naive: Variant
    safe: Variant
    undo: str  # run directly between the measured runs, then `alembic stamp` back to the head
    more: tuple[tuple[str, Variant], ...] = ()  # other safe forms, measured beside the first

    def ways(self) -> list[tuple[str, Variant]]:
        return [("naive", self.naive), ("safe", self.safe), *self.more]


NAIVE = ("-x", "lock-timeout=0")  # what a runner without our steps does: wait, however long
NEW_CONSTRAINT = "ALTER TABLE responses DROP CONSTRAINT IF EXISTS {};"
PAIRS = {
    # Safe: the column without a default, then the default for new rows; existing
    # rows are filled by a batched backfill (the last pair), not by a table rewrite.
    "add column, volatile default": Pair(
        Variant("ALTER TABLE responses ADD COLUMN token uuid DEFAULT gen_random_uuid();", options=NAIVE),
        Variant("ALTER TABLE responses ADD COLUMN token uuid;\n"
                "ALTER TABLE responses ALTER COLUMN token SET DEFAULT gen_random_uuid();"),
        "ALTER TABLE responses DROP COLUMN IF EXISTS token;",
    ),
    # Safe: a NOT VALID CHECK validated without blocking writes lets SET NOT NULL skip its scan.
    "SET NOT NULL": Pair(
        Variant("ALTER TABLE responses ALTER COLUMN answered_by SET NOT NULL;", options=NAIVE),
        Variant("ALTER TABLE responses ADD CONSTRAINT responses_answered_by_not_null"
                " CHECK (answered_by IS NOT NULL) NOT VALID;\n"
                "ALTER TABLE responses VALIDATE CONSTRAINT responses_answered_by_not_null;\n"
                "ALTER TABLE responses ALTER COLUMN answered_by SET NOT NULL;\n"
                "ALTER TABLE responses DROP CONSTRAINT responses_answered_by_not_null;", False),
        "ALTER TABLE responses ALTER COLUMN answered_by DROP NOT NULL;\n"
        + NEW_CONSTRAINT.format("responses_answered_by_not_null"),
    ),
    "foreign key": Pair(
        Variant("ALTER TABLE responses ADD CONSTRAINT responses_answered_by_fkey FOREIGN KEY"
                " (answered_by) REFERENCES users (id) ON DELETE SET NULL;", options=NAIVE),
        Variant("ALTER TABLE responses ADD CONSTRAINT responses_answered_by_fkey FOREIGN KEY"
                " (answered_by) REFERENCES users (id) ON DELETE SET NULL NOT VALID;\n"
                "ALTER TABLE responses VALIDATE CONSTRAINT responses_answered_by_fkey;", False),
        NEW_CONSTRAINT.format("responses_answered_by_fkey"),
    ),
    "CHECK": Pair(
        Variant("ALTER TABLE responses ADD CONSTRAINT responses_answer_check"
                " CHECK (jsonb_typeof(answer) = 'object');", options=NAIVE),
        Variant("ALTER TABLE responses ADD CONSTRAINT responses_answer_check"
                " CHECK (jsonb_typeof(answer) = 'object') NOT VALID;\n"
                "ALTER TABLE responses VALIDATE CONSTRAINT responses_answer_check;", False),
        NEW_CONSTRAINT.format("responses_answer_check"),
    ),
    "index": Pair(
        Variant("CREATE INDEX responses_answered_at_idx ON responses (answered_at);", options=NAIVE),
        Variant("CREATE INDEX CONCURRENTLY responses_answered_at_idx ON responses (answered_at);",
                False),
        "DROP INDEX IF EXISTS responses_answered_at_idx;",
        # On a server with few cores: a build without parallel workers leaves the
        # application a core (PostgreSQL 11+ builds B-trees in parallel by default).
        (("safe, one core", Variant(
            "SET max_parallel_maintenance_workers = 0;\n"
            "CREATE INDEX CONCURRENTLY responses_answered_at_idx ON responses (answered_at);",
            False)),),
    ),
    "backfill a new column": Pair(
        Variant("UPDATE responses SET score = (answer ->> 'value')::integer;", options=NAIVE),
        Variant(BACKFILL_SAFE, False, ("-x", "batch-size=5000", "-x", "batch-pause=20ms")),
        "ALTER TABLE responses DROP COLUMN score;\nALTER TABLE responses ADD COLUMN score integer;",
    ),
}  # fmt: skip


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

    def summary(self) -> str:
        return (
            f"{self.pair}, {self.way}: {self.seconds:.1f} s, p50/p99/max"
            f" {percentile(self.window, 0.5):.0f}/{percentile(self.window, 0.99):.0f}/"
            f"{max(self.window, default=0):.0f} ms, lock wait {self.longest_lock_wait:.2f} s,"
            f" failed {self.failed}, WAL {self.wal_bytes / 2**20:,.0f} MB"
        )  # fmt: skip


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class LockWatch(threading.Thread):
    """Samples how long application sessions have waited on a lock, every 50 ms."""

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
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MIGRATION_", "PG"))}
    environ["DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(tree / "alembic.ini"), *args],
        env=environ, cwd=tree, capture_output=True, text=True, check=False,
    )  # fmt: skip


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
        )  # fmt: skip

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


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


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


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 million responses, not 10")
    parser.add_argument("--responses", type=int, help="rows of responses (overrides --quick)")
    parser.add_argument("--version", default="15", help="PostgreSQL 15 (Debian) or 18 (wheel)")
    parser.add_argument("--only", help="run only the pairs whose name contains this")
    parser.add_argument(
        "--url",
        help="an empty database to use instead of a throwaway server (or BENCH_URL, "
        "which keeps a password off this command line)",
        default=os.environ.get("BENCH_URL"),
    )
    parser.add_argument("--lead", type=float, default=LEAD, help="seconds of load before each")
    parser.add_argument("--tail", type=float, default=TAIL, help="seconds of load after")
    parser.add_argument(
        "--commit",
        action="store_true",
        help="update bench/results.md and its plots (else a run folder)",
    )
    parser.add_argument("--no-plot", action="store_true", help="write no PNG or CSV")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = arguments(argv)
    if not options.no_plot:
        require_matplotlib()  # before the data set is generated, not after
    folder = output_folder(options.commit)
    interrupt_on_sigterm()  # stopped: the throwaway server goes too
    responses = options.responses or (1_000_000 if options.quick else 10_000_000)
    assessments = max(1, responses // QUESTIONS)
    sizes = {"assessments": assessments, "organizations": max(10, assessments // 50),
             "users": max(20, assessments // 10), "questions": QUESTIONS}  # fmt: skip
    began = time.monotonic()
    server = None
    if options.url is None:
        server = local_postgres.start_throwaway(options.version, settings=SERVER_SETTINGS)
        execute(server.url(), "CREATE DATABASE bench_load")
    url = options.url or server.url("bench_load")
    base = Path(tempfile.mkdtemp(prefix="bench-load-"))
    try:
        major = int(execute(url, "SHOW server_version_num")) // 10000
        bench = Bench(base, url, find_client("pgbench", major, same_major=True), sizes,
                      options.lead, options.tail, None if server is None else SERVER_SETTINGS)  # fmt: skip
        schema = alembic(tree_for(base, "SELECT 1;", "SELECT 1;", True), url, "upgrade", HEAD)
        if schema.returncode != 0:
            raise SystemExit(f"could not create the schema: {schema.stdout[-400:]}")
        log(f"PostgreSQL {major}: generating {responses:,} responses ({assessments:,} assessments)")
        started = time.monotonic()
        connection, environ = libpq_arguments(url)
        subprocess.run(
            [str(find_client("psql", major)), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-",
             connection],
            input=DATASET.format(**sizes), env=environ, text=True, check=True,
        )  # fmt: skip
        generation = time.monotonic() - started
        size = execute(url, "SELECT pg_size_pretty(pg_total_relation_size('responses'))")
        log(f"data set ready in {generation:.0f} s; responses is {size} with its indexes")
        baseline = Run("no migration (an empty revision)", "baseline")
        measure(baseline, Variant(NO_MIGRATION), "", bench)
        log(baseline.summary())
        runs = [baseline]
        for name, pair in PAIRS.items():
            if options.only and options.only not in name:
                continue
            for way, variant in pair.ways():
                run = Run(name, way)
                measure(run, variant, pair.undo, bench)
                log(run.summary())
                runs.append(run)
        minutes = (time.monotonic() - began) / 60
        write_results(
            folder / "results.md", runs, responses, major, generation, size, minutes, bench
        )
        if not options.no_plot:
            plot(folder / plot_name(major), runs, major)
            write_per_second(folder / csv_name(major), runs)
        log(f"done in {minutes:.1f} min: {folder / 'results.md'}")
    finally:
        if server is not None:
            local_postgres.remove_throwaway(server)
        shutil.rmtree(base, ignore_errors=True)
    return 0


def plot_name(major: int) -> str:
    return f"load_latency_pg{major}.png"


def csv_name(major: int) -> str:
    return f"load_latency_pg{major}.csv"


def ms(value: float) -> str:
    """Milliseconds as the report shows them: a decimal below 10."""
    return f"{value:.1f}" if value < 10 else f"{value:,.0f}"


def p99_ratio(run: Run, baseline: Run) -> float:
    """The run's p99 against the baseline's (at least 1 ms: below, it is timer noise)."""
    return percentile(run.window, 0.99) / max(percentile(baseline.window, 0.99), 1.0)


def goals_missed(run: Run, baseline: Run) -> list[str]:
    """Which of the issue's goals for a migration under load a run misses."""
    ratio = p99_ratio(run, baseline)
    checks = {
        "it failed": not run.ok,
        f"{run.failed} failed transactions": run.failed > 0,
        f"a lock wait of {run.longest_lock_wait:.2f} s": run.longest_lock_wait > 0.5,
        f"a {ms(max(run.window, default=0))} ms transaction": max(run.window, default=0) > 500,
        f"p99 {ratio:.1f}x the baseline's": ratio > 2,
    }
    return [reason for reason, missed in checks.items() if missed]


def write_results(
    target: Path, runs: list[Run], responses: int, major: int, generation: float,
    size: str, minutes: float, bench: Bench,
) -> None:  # fmt: skip
    today = datetime.date.today().isoformat()
    mode = "" if responses >= 10_000_000 else ", quick mode"
    settings = bench.settings or {}
    lines = [
        f"{SECTION} (PostgreSQL {major}, {responses:,} responses{mode})",
        "",
        f"`make bench-load` on {today}: {minutes:.0f} min in all; the data set was generated in"
        f" {generation:.0f} s (`responses` {size} with its indexes). pgbench plays the application"
        f" at a fixed {RATE} transactions/s on {CLIENTS} connections (reads of an assessment's"
        " answers, answer updates, organization reads, audit inserts). Each migration runs"
        f" through our runner with {bench.lead:.0f} s of load before it; latencies count from its"
        f" start to {bench.tail:.0f} s after its end, so transactions it queued are in, and from"
        " each transaction's scheduled start, so time queued is in. The baseline is the same"
        " measure while the runner applies an empty revision. Naive is the plain DDL with no lock"
        " timeout; safe is the pattern in docs/production.md with the runner's defaults (the"
        " backfill with 5,000-row batches and 20 ms pauses); safe, one core is the index built"
        " without parallel workers. A naive run's figures are a floor: transactions it queued"
        " that had not finished 5 s after it are not counted."
        " Server settings: "
        + (", ".join(f"{k}={v}" for k, v in settings.items()) or "as found (--url)")
        + ".",
        "",
        (
            "| migration | way | duration | p50 / p99 / max | worst 1-s p99 | p99 vs baseline"
            " | longest lock wait | failed | WAL | goals |"
        ),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    baseline = runs[0]
    safe, misses = 0, []
    for run in runs:
        window = run.window
        missed = goals_missed(run, baseline)
        goals = "" if run is baseline else ("missed" if missed else "met")
        if run.way.startswith("safe"):
            safe += 1
            if missed:
                misses.append(f"{run.pair} ({run.way}): {', '.join(missed)}")
        lines.append(
            f"| {run.pair} | {run.way}{'' if run.ok else ' (FAILED)'} | {run.seconds:.1f} s"
            f" | {ms(percentile(window, 0.5))} / {ms(percentile(window, 0.99))} /"
            f" {ms(max(window, default=0))} ms | {ms(run.worst_second_p99())} ms | {p99_ratio(run, baseline):,.1f}x"
            f" | {run.longest_lock_wait:.2f} s | {run.failed} | {run.wal_bytes / 2**20:,.0f} MB"
            f" | {goals} |"
        )  # fmt: skip
    verdict = "; ".join(misses) if misses else "none"
    lines += [
        "",
        (
            "Goals for the safe forms: p99 within 2x the baseline's, no transaction waiting over"
            f" 0.5 s, no failed transaction. Met by {safe - len(misses)} of {safe};"
            f" missed: {verdict}. Latency over time: [{plot_name(major)}]({plot_name(major)});"
            f" second by second (p50, p99, max): [{csv_name(major)}]({csv_name(major)})."
        ),
        "",
    ]
    text = target.read_text() if target.exists() else ""
    heading = lines[0].split(" (")[0] + f" (PostgreSQL {major},"
    kept = [block for block in text.split("\n## ") if not ("## " + block).startswith(heading)]
    target.write_text("\n## ".join(kept).rstrip() + "\n\n" + "\n".join(lines))


def write_per_second(target: Path, runs: list[Run]) -> None:
    """Every run's latency second by second (negative seconds: before the migration)."""
    with target.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(
            ["migration", "way", "second", "transactions", "p50_ms", "p99_ms", "max_ms"]
        )
        for run in runs:
            for second, count, p50, p99, worst in run.per_second():
                writer.writerow([run.pair, run.way, second, count, f"{p50:.2f}", f"{p99:.2f}",
                                 f"{worst:.2f}"])  # fmt: skip


def plot(target: Path, runs: list[Run], major: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [run for run in runs if run.way != "baseline"]
    pairs = list(dict.fromkeys(run.pair for run in runs))
    figure, axes = plt.subplots(len(pairs), 1, figsize=(10, 2.4 * len(pairs)), squeeze=False)
    for axis, pair in zip(axes[:, 0], pairs, strict=True):
        for run in (r for r in runs if r.pair == pair):
            color = {"naive": "tab:red", "safe": "tab:green"}.get(run.way, "tab:blue")
            seconds, _, p50, p99, worst = zip(*run.per_second(), strict=True)
            axis.plot(seconds, p99, label=f"{run.way} p99", color=color)
            axis.plot(seconds, worst, label=f"{run.way} max", color=color, linestyle=":",
                      linewidth=0.8)  # fmt: skip
            axis.plot(seconds, p50, label=f"{run.way} p50", color=color, linestyle="--",
                      linewidth=0.6, alpha=0.6)  # fmt: skip
            axis.axvspan(0, run.seconds, alpha=0.08, color=color)
        axis.axhline(500, color="grey", linewidth=0.6, linestyle="--")
        axis.set_yscale("log")
        axis.set_title(pair, fontsize=9)
        axis.set_ylabel("ms")
        axis.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel(
        "seconds from the migration's start (shaded: migration running; dashed: 500 ms)"
    )
    figure.suptitle(f"Application latency per second, naive vs safe (PostgreSQL {major})")
    figure.tight_layout()
    figure.savefig(target, dpi=90)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: the benchmark's server and files are removed", file=sys.stderr)
        sys.exit(130)
