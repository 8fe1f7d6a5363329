"""Rehearse the pending revisions on a copy of the target, never on the target itself.

    make rehearse          # or: migrations rehearse

The target is the database `alembic upgrade` would migrate (same variables).
It is copied into a scratch database: on the same server with
`CREATE DATABASE ... TEMPLATE` when nobody else is connected to it, otherwise
by `pg_dump | pg_restore`; on the server of SCHEMA_SCRATCH_URL when that is set
(on Neon/Vercel: a branch's URL, see docs/rehearse-and-backup.md). The pending
revisions then run there one at a time with the normal runner, each reported
with its duration, the table locks it held and the rows it wrote, and the
result is checked for drift. The scratch database is dropped at the end,
whatever happens: on Ctrl-C or SIGTERM pg_dump, pg_restore and the revision
in progress are stopped first, and nothing of the rehearsal keeps a session or
a lock on the target.

Exit 0: every revision applied and the schema is exactly head's. 1: a revision
failed or drift was found. 2: the rehearsal could not be set up. 130: interrupted
(migration_runner/cli.py prints the FAILED line).
"""

import json
import logging
import os
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from migration_runner.bookkeeping import RUNNER_TABLES_SQL
from migration_runner.errors import MigrationError
from migration_runner.pg_programs import find_client, libpq_arguments
from migration_runner.steps.database_url import URL_VARIABLES, resolve_target
from migration_runner.steps.phases import EXPAND, first_contract
from migration_runner.steps.settings import read_settings
from migration_runner.tools import alembic_child, drift

log = logging.getLogger("migration_runner")
# Rough copy rates, to say how long the copy will take before it starts.
TEMPLATE_RATE = 200e6  # bytes per second: a file-level copy
DUMP_RATE = 20e6  # bytes per second: pg_dump | pg_restore through one client
PROGRESS_EVERY = 5.0  # seconds between progress lines
STOP_GRACE = 2.0  # seconds pg_dump and pg_restore get to exit on SIGTERM before SIGKILL
# DROP DATABASE itself waits up to 5 s for other sessions to leave (and ends autovacuum's at
# once); it is retried until this many seconds have passed, then the copy is left, and said so.
# Short, so that an interrupted rehearsal still reports before CI kills it (SIGKILL 10 s after
# SIGINT).
DROP_PATIENCE = 5.0
OBJECT_IN_USE = "55006"  # DROP DATABASE: other sessions are connected to it
EXISTS = "SELECT 1 FROM pg_database WHERE datname = :n"
TERMINATE_OWN_SESSIONS = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE datname = :n AND usename = current_user"
)
CONNECTED_ROLES = (
    "SELECT string_agg(DISTINCT coalesce(usename, backend_type), ', ')"
    " FROM pg_stat_activity WHERE datname = :n"
)
ROWS_WRITTEN = (
    "SELECT format('%I.%I', schemaname, relname), n_tup_ins, n_tup_upd, n_tup_del"
    " FROM pg_stat_user_tables WHERE relname NOT IN"
    f" ({RUNNER_TABLES_SQL})"
)


@dataclass
class Step:
    revision: str
    seconds: float = 0.0
    ok: bool = False
    locks: list[tuple[str, str]] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    message: str = ""


def _admin(url: URL):
    return create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


def _scalar(url: URL, sql: str, **params):
    """The one value of a query, or None for a statement that returns no rows."""
    engine = _admin(url)
    try:
        with engine.connect() as connection:
            result = connection.execute(text(sql), params)
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def pending_revisions(tree: Path, current: str | None, phase: str) -> list[str]:
    """Revisions after current up to head, oldest first; in the expand phase (MIGRATION_PHASE,
    make rehearse PHASE=expand), those before the first contract revision, as the deploy's
    `alembic -x phase=expand upgrade head` will apply them."""
    script = ScriptDirectory.from_config(Config(str(tree / "alembic.ini")))
    pending = list(reversed(list(script.iterate_revisions("heads", current))))
    found = first_contract(pending) if phase == EXPAND else None
    if found is not None:
        index, up = found
        held = ", ".join(rev.revision for rev in pending[index:])
        log.info(
            "phase expand: rehearsing up to %s; held back %s (%s is a contract revision)",
            pending[index - 1].revision if index else current,
            held,
            up.shown,
        )
        pending = pending[:index]
    return [rev.revision for rev in pending]


@contextmanager
def _progress(server: URL, name: str, total: int):
    """A thread that logs how far the scratch copy has grown, every few seconds."""
    stop = threading.Event()

    def report() -> None:
        while not stop.wait(PROGRESS_EVERY):
            try:
                size = _scalar(server, "SELECT pg_database_size(:n)", n=name) or 0
            except DBAPIError:
                continue
            log.info(
                "copying: %s of %s MB (%d%%)", size >> 20, total >> 20, 100 * size // max(total, 1)
            )

    thread = threading.Thread(target=report, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _stop(*processes: subprocess.Popen) -> None:
    """End the programs still running: SIGTERM first (pg_dump and pg_restore then cancel their
    queries on the server), SIGKILL for any still there after a short grace."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + STOP_GRACE
    for process in running:
        try:
            process.wait(max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _end_sessions(url: URL, application_name: str) -> None:
    """Terminate the sessions of application_name on url's database and wait until they end.

    A pg_dump killed while it waits for a table lock leaves its backend queued for that lock
    and holding ACCESS SHARE on every table it locked before: a deploy's ALTER TABLE would
    wait behind it until someone ends it.
    """
    try:
        _scalar(
            url,
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = :name",
            name=application_name,
        )
    except DBAPIError as error:
        log.warning(
            "could not end %s's session on the target (%s): look for application_name = '%s'"
            " in pg_stat_activity",
            application_name,
            str(error.orig).strip(),
            application_name,
        )


def scratch_server_of(target: URL, scratch_server: URL | None) -> URL:
    """Where the scratch database goes, as a URL of that server's maintenance database."""
    return (scratch_server or target).set(drivername=target.drivername, database="postgres")


def copy_target(target: URL, scratch_server: URL | None, name: str) -> URL:
    """Create the scratch database `name` and fill it from target; return its URL."""
    size = _scalar(target, "SELECT pg_database_size(current_database())")
    server = scratch_server_of(target, scratch_server)
    same_server = scratch_server is None
    if same_server:
        others = _scalar(
            target,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()",
        )
        if not others:
            log.info(
                "copying %s MB with CREATE DATABASE ... TEMPLATE (about %.0f s)",
                size >> 20,
                size / TEMPLATE_RATE,
            )
            try:
                _scalar(server, f'CREATE DATABASE "{name}" TEMPLATE "{target.database}"')
                return server.set(database=name)
            except DBAPIError as error:
                log.info("TEMPLATE copy not possible (%s); using pg_dump", str(error.orig).strip())
    log.info("copying %s MB with pg_dump | pg_restore (about %.0f s)", size >> 20, size / DUMP_RATE)
    _scalar(server, f'CREATE DATABASE "{name}"')
    scratch = server.set(database=name)
    major = int(_scalar(target, "SHOW server_version_num")) // 10000
    source_uri, source_env = libpq_arguments(target)
    scratch_uri, scratch_env = libpq_arguments(scratch)
    # Named in pg_stat_activity, so that an interrupted copy finds pg_dump's session.
    source_env["PGAPPNAME"], scratch_env["PGAPPNAME"] = f"{name} pg_dump", f"{name} pg_restore"
    dump_client = find_client("pg_dump", major, same_major=True)
    restore_client = find_client("pg_restore", major, same_major=True)
    pg_dump = [str(dump_client), "--format=custom", "--no-owner", f"--dbname={source_uri}"]
    pg_restore = [str(restore_client), "--no-owner", "--exit-on-error", f"--dbname={scratch_uri}"]
    with _progress(server, name, size), tempfile.TemporaryFile() as errors:
        started = []
        try:
            dump = subprocess.Popen(pg_dump, env=source_env, stdout=subprocess.PIPE, stderr=errors)
            started.append(dump)
            load = subprocess.Popen(
                pg_restore, env=scratch_env, stdin=dump.stdout, stderr=subprocess.PIPE, text=True
            )
            started.append(load)
            dump.stdout.close()  # pg_restore holds the only read end: pg_dump stops when it does
            load_errors = load.communicate()[1]
            dump.wait()
        except BaseException:  # Ctrl-C and SIGTERM included
            _stop(*started)
            _end_sessions(target, source_env["PGAPPNAME"])
            raise
        if dump.returncode != 0 or load.returncode != 0:
            errors.seek(0)
            reason = (errors.read().decode() + load_errors).strip().splitlines()
            raise MigrationError(
                f"Copying the target failed: {reason[-1] if reason else 'no message'}"
            )
    return scratch


def _rows_written(url: URL) -> dict[str, tuple[int, int, int]]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return {row[0]: tuple(row[1:]) for row in connection.execute(text(ROWS_WRITTEN))}
    finally:
        engine.dispose()


def rehearse_revision(tree: Path, scratch: URL, revision: str) -> Step:
    """`alembic upgrade <revision>` on the scratch database, as a deploy would run it."""
    step = Step(revision)
    before = _rows_written(scratch)
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        environ = {key: value for key, value in os.environ.items() if key not in URL_VARIABLES}
        environ.update(
            DATABASE_URL=scratch.render_as_string(hide_password=False),
            MIGRATION_LOCK_REPORT=report.name,
            MIGRATION_PHASE="all",  # the revision is named: the phase was applied choosing it
        )
        started = time.monotonic()
        run = alembic_child.run(tree, ["upgrade", revision], environ)  # forked where safe
        step.seconds = time.monotonic() - started
        step.ok = run.returncode == 0
        failed = [line for line in run.output.splitlines() if line.startswith("FAILED:")]
        step.message = failed[-1] if failed else run.output.strip()[-500:]
        text_report = Path(report.name).read_text()
        step.locks = [tuple(lock) for lock in json.loads(text_report)] if text_report else []
    after = _rows_written(scratch)  # a backend's counters reach the view when it exits
    for table, counts in after.items():
        old = before.get(table, (0, 0, 0))
        written = sum(new - was for new, was in zip(counts, old, strict=True))
        if written:
            step.rows[table] = written
    return step


def _describe(step: Step) -> str:
    result = "applied" if step.ok else "FAILED"
    locks = ", ".join(f"{table} {mode}" for table, mode in step.locks) or "none held to commit"
    rows = ", ".join(f"{table} {count:,}" for table, count in step.rows.items()) or "none"
    return (
        f"{step.revision}: {result} in {step.seconds:.2f} s; locks: {locks}; rows written: {rows}"
    )


def require_createdb(server: URL) -> None:
    """Refuse, before anything is created, a role that may not create the scratch database."""
    role = _scalar(
        server,
        "SELECT quote_ident(rolname) FROM pg_roles"
        " WHERE rolname = current_user AND NOT (rolcreatedb OR rolsuper)",
    )
    if role:
        raise MigrationError(
            f"Role {role} may not create databases, and the rehearsal copies the target into one: "
            f"ALTER ROLE {role} CREATEDB (as a superuser), or set SCHEMA_SCRATCH_URL to a server "
            "where databases may be created."
        )


def drop_scratch(server: URL, name: str) -> None:
    """Drop the scratch database if it was created; log that, or what was left and how to drop it.

    Plain DROP DATABASE, never WITH (FORCE): FORCE refuses unless this role may terminate
    every session there, autovacuum's and other roles' included, which only a superuser or a
    member of pg_signal_backend may. Plain DROP ends autovacuum by itself; this role's own
    sessions (a killed revision's, pg_restore's) are terminated here; new ones are refused.
    """
    engine = _admin(server)
    try:
        with engine.connect() as connection:
            left = _drop_when_free(connection, name)
    except DBAPIError as error:
        left = str(error.orig).strip().splitlines()[0]
    finally:
        engine.dispose()
    if left:
        log.warning(
            'scratch database %s left (%s); drop it later with: DROP DATABASE "%s";',
            name,
            left,
            name,
        )


def _drop_when_free(connection: Connection, name: str) -> str | None:
    """DROP DATABASE, retried for a few seconds while other sessions are connected; None once
    dropped (or never created), otherwise who is still connected."""
    if not connection.execute(text(EXISTS), {"n": name}).scalar():
        return None
    connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
    connection.execute(text(TERMINATE_OWN_SESSIONS), {"n": name})
    deadline = time.monotonic() + DROP_PATIENCE
    while True:
        try:
            connection.execute(text(f'DROP DATABASE "{name}"'))
            log.info("scratch database %s dropped", name)
            return None
        except DBAPIError as error:
            if error.orig.pgcode != OBJECT_IN_USE:
                raise
        if time.monotonic() > deadline:
            who = connection.execute(text(CONNECTED_ROLES), {"n": name}).scalar()
            if who:  # otherwise they left just now: one more try
                return f"sessions of {who} are still connected"
        time.sleep(0.5)


def rehearse(tree: Path, scratch_server: URL | None) -> int:
    target = resolve_target()
    log.info(
        "rehearsing on a copy of %s (from %s); the target is only read",
        target.shown,
        target.variable,
    )
    has_version = _scalar(target.url, "SELECT to_regclass('alembic_version') IS NOT NULL")
    current = (
        _scalar(target.url, "SELECT version_num FROM alembic_version") if has_version else None
    )
    revisions = pending_revisions(tree, current, read_settings({}).phase)
    if not revisions:
        print(f"nothing to rehearse: {target.shown} is at head {current}")
        return 0
    server = scratch_server_of(target.url, scratch_server)
    require_createdb(server)
    name = f"rehearsal_{uuid.uuid4().hex[:10]}"
    try:
        scratch = copy_target(target.url, scratch_server, name)
        steps = []
        for revision in revisions:
            steps.append(rehearse_revision(tree, scratch, revision))
            print(_describe(steps[-1]), flush=True)
            if not steps[-1].ok:
                print(f"REHEARSAL FAILED at {revision}: {steps[-1].message}")
                return 1
        scratch_target = resolve_target({"DATABASE_URL": scratch.render_as_string(False)})
        found = drift.compare(
            tree,
            revisions[-1],
            scratch_target,
            server.render_as_string(hide_password=False),
            from_migrations=True,  # what a fresh database gets from the same files
        )
        if found:
            print(
                f"REHEARSAL FAILED: after {revisions[-1]} the copy differs from head's schema in {len(found)} object(s)"
            )
            return 1
        total = sum(step.seconds for step in steps)
        print(
            f"rehearsal passed: {len(steps)} revision(s) applied in {total:.2f} s, no drift; "
            f"{target.shown} was not changed"
        )
        return 0
    finally:
        _ignore_signals()  # the outcome is decided: a late Ctrl-C must not leave the copy behind
        drop_scratch(server, name)


def _stop_on_signal(signum, _frame) -> None:
    """Ctrl-C or SIGTERM stops the rehearsal; later ones are ignored, so that none cuts short
    the cleanup the first one started (a cancelled GitHub Actions job sends SIGINT, then
    SIGTERM 7.5 s later)."""
    _ignore_signals()
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _ignore_signals() -> None:
    for each in (signal.SIGINT, signal.SIGTERM):
        signal.signal(each, signal.SIG_IGN)


def run(tree: Path) -> int:
    """`migrations rehearse`: 0 rehearsed, 1 a revision failed or drift; raises when the
    rehearsal cannot be set up, KeyboardInterrupt on Ctrl-C or SIGTERM once cleaned up."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)-5.5s [%(name)s] %(message)s")
    for each in (signal.SIGINT, signal.SIGTERM):  # a cancelled CI job cleans up like Ctrl-C
        signal.signal(each, _stop_on_signal)
    scratch_server = os.environ.get("SCHEMA_SCRATCH_URL")
    server = resolve_target({"DATABASE_URL": scratch_server}).url if scratch_server else None
    return rehearse(tree, server)
