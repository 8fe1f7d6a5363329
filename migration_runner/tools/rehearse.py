"""Rehearse the pending revisions on a copy of the target, never on the target itself.

    make rehearse          # or: python -m migration_runner.tools.rehearse

The target is the database `alembic upgrade` would migrate (same variables).
It is copied into a scratch database: on the same server with
`CREATE DATABASE ... TEMPLATE` when nobody else is connected to it, otherwise
by `pg_dump | pg_restore`; on the server of SCHEMA_SCRATCH_URL when that is set
(on Neon/Vercel: a branch's URL, see docs/rehearse-and-backup.md). The pending
revisions then run there one at a time with the normal runner, each reported
with its duration, the table locks it held and the rows it wrote, and the
result is checked for drift. The scratch database is dropped at the end,
whatever happens, Ctrl-C included.

Exit 0: every revision applied and the schema is exactly head's. 1: a revision
failed or drift was found. 2: the rehearsal could not be set up.
"""

import argparse
import json
import logging
import os
import subprocess
import sys
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
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from migration_runner.errors import MigrationError, interrupt_on_sigterm
from migration_runner.pg_programs import find_client, libpq_arguments
from migration_runner.steps.database_url import URL_VARIABLES, resolve_target
from migration_runner.tools import drift

log = logging.getLogger("migration_runner")
# Rough copy rates, to say how long the copy will take before it starts.
TEMPLATE_RATE = 200e6  # bytes per second: a file-level copy
DUMP_RATE = 20e6  # bytes per second: pg_dump | pg_restore through one client
PROGRESS_EVERY = 5.0  # seconds between progress lines
ROWS_WRITTEN = (
    "SELECT format('%I.%I', schemaname, relname), n_tup_ins, n_tup_upd, n_tup_del"
    " FROM pg_stat_user_tables WHERE relname NOT IN ('alembic_version', 'migration_history')"
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


def pending_revisions(tree: Path, current: str | None) -> list[str]:
    """Revisions after current up to head, oldest first."""
    script = ScriptDirectory.from_config(Config(str(tree / "alembic.ini")))
    return [rev.revision for rev in reversed(list(script.iterate_revisions("heads", current)))]


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
            log.info("copying %s MB with CREATE DATABASE ... TEMPLATE (about %.0f s)",
                     size >> 20, size / TEMPLATE_RATE)  # fmt: skip
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
    with _progress(server, name, size), tempfile.TemporaryFile() as errors:
        dump = subprocess.Popen(
            [str(find_client("pg_dump", major, same_major=True)), "--format=custom", "--no-owner", f"--dbname={source_uri}"],
            env=source_env, stdout=subprocess.PIPE, stderr=errors,
        )  # fmt: skip
        load = subprocess.run(
            [str(find_client("pg_restore", major, same_major=True)), "--no-owner", "--exit-on-error", f"--dbname={scratch_uri}"],
            env=scratch_env, stdin=dump.stdout, stderr=subprocess.PIPE, text=True, check=False,
        )  # fmt: skip
        dump.stdout.close()
        if dump.wait() != 0 or load.returncode != 0:
            errors.seek(0)
            reason = (errors.read().decode() + load.stderr).strip().splitlines()
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
        )
        started = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-m", "alembic", "-c", str(tree / "alembic.ini"), "upgrade", revision],
            env=environ, cwd=tree, capture_output=True, text=True, check=False,
        )  # fmt: skip
        step.seconds = time.monotonic() - started
        step.ok = run.returncode == 0
        failed = [line for line in run.stdout.splitlines() if line.startswith("FAILED:")]
        step.message = failed[-1] if failed else (run.stdout + run.stderr).strip()[-500:]
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
    return (f"{step.revision}: {result} in {step.seconds:.2f} s; locks: {locks}; "
            f"rows written: {rows}")  # fmt: skip


def _drop(server: URL, name: str) -> None:
    _scalar(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
    revisions = pending_revisions(tree, current)
    if not revisions:
        print(f"nothing to rehearse: {target.shown} is at head {current}")
        return 0
    name = f"rehearsal_{uuid.uuid4().hex[:10]}"
    server = scratch_server_of(target.url, scratch_server)
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
        print(f"rehearsal passed: {len(steps)} revision(s) applied in {total:.2f} s, no drift; "
              f"{target.shown} was not changed")  # fmt: skip
        return 0
    finally:
        _drop(server, name)
        log.info("scratch database %s dropped", name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=Path.cwd(), help="the migration tree")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)-5.5s [%(name)s] %(message)s")
    interrupt_on_sigterm()  # a CI cancel drops the scratch database like Ctrl-C
    scratch_server = os.environ.get("SCHEMA_SCRATCH_URL")
    try:
        server = resolve_target({"DATABASE_URL": scratch_server}).url if scratch_server else None
        return rehearse(options.tree.resolve(), server)
    except MigrationError as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 2
    except DBAPIError as error:
        print(f"FAILED: {str(error.orig).strip()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("FAILED: interrupted; the scratch database was dropped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
