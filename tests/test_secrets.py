"""No password on any command line, in any output, in any file: backups, rehearse and drift.

A command line is readable by every user of the machine (`ps -eo args`, /proc/PID/cmdline),
an environment only by the process's owner: pg_dump and pg_restore get the password in
PGPASSWORD. Each run below connects as a role that is no superuser, with a SCRAM password full
of characters a URL reserves, given in the URL's user info, as ?password=, or in PGPASSWORD;
a thread reads the command line of every process the run starts, every few ms.
"""

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from migration_runner.errors import MigrationError
from migration_runner.pg_programs import libpq_arguments
from migration_runner.steps.database_url import resolve_target
from support.database import Server, admin, current_version, engine_for, query
from support.processes import clean_environ, run_alembic
from support.project import HEAD, ROOT, add_revision

PASSWORD = "Zx9@Secr3t:/?#%&+ 'x\""
# Every form the password could take on its way: as typed, percent-encoded for a URL's user
# info and for its query, and its core (any other escaping of it still holds that).
LEAKS = (PASSWORD, quote(PASSWORD, safe=""), quote_plus(PASSWORD), "Secr3t")
FORMS = ("user-info", "query", "PGPASSWORD")
NOTES = "CREATE TABLE test_only_notes (id integer PRIMARY KEY, body text NOT NULL);\n"
DROP_NOTES = "-- test-only: drops a table.\n-- Destructive: yes\nDROP TABLE test_only_notes;\n"
APP_ROLE = """DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'assessment_app') THEN
        CREATE ROLE assessment_app NOLOGIN;
    END IF;
END $$"""
ADD_COUNTRY = "-- test-only\nALTER TABLE organizations ADD COLUMN test_only_country text;\n"
DROP_COUNTRY = "ALTER TABLE organizations DROP COLUMN test_only_country;\n"


class CommandLines(threading.Thread):
    """Every few ms, the command line of each process descended from this one, noted."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: set[str] = set()
        self.finished = threading.Event()

    def run(self) -> None:
        while not self.finished.is_set():
            for pid in _descendants(os.getpid()):
                try:
                    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:  # it exited between the two reads
                    continue
                if raw:
                    self.seen.add(raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace"))
            self.finished.wait(0.002)


def _descendants(root: int) -> set[int]:
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        try:  # any of them may exit while it is read
            threads = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for thread in threads:
            try:
                todo += map(int, Path(f"/proc/{pid}/task/{thread}/children").read_text().split())
            except OSError:
                continue
    return found - {root}


@contextmanager
def watched() -> Iterator[CommandLines]:
    watch = CommandLines()
    watch.start()
    try:
        yield watch
    finally:
        watch.finished.set()
        watch.join()


def assert_no_secret(*texts: str) -> None:
    for shown in texts:
        for leak in LEAKS:
            assert leak not in shown, f"{leak!r} in {shown[:2000]!r}"


def assert_no_secret_in_files(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for leak in LEAKS:
                assert leak.encode() not in content, f"{leak!r} in {path}"


@dataclass(frozen=True)
class Target:
    """A database owned by a role that is no superuser, and how a user would name it."""

    environ: dict[str, str]  # the variables that name it, the password in one form
    admin_url: str  # the same database as the superuser, to look at it from outside


def naming(host: str, port: int, role: str, database: str, form: str, password: str) -> dict:
    """The variables a user sets to reach database as role, with the password in form."""
    if form == "PGPASSWORD":
        return {
            "PGHOST": host,
            "PGPORT": str(port),
            "PGUSER": role,
            "PGDATABASE": database,
            "PGPASSWORD": password,
        }
    address, encoded = f"{host}:{port}/{database}", quote(password, safe="")
    if form == "user-info":
        return {"DATABASE_URL": f"postgresql://{role}:{encoded}@{address}"}
    return {"DATABASE_URL": f"postgresql://{role}@{address}?password={encoded}"}


def naming_on(server: Server, role: str, database: str, form: str, password: str) -> dict:
    parts = make_url(server.admin_url)
    return naming(parts.host, parts.port, role, database, form, password)


@contextmanager
def owned_database(server: Server) -> Iterator[tuple[str, str]]:
    """(role, database): a role with PASSWORD that may create databases, and one it owns."""
    role, database = f"app_{uuid.uuid4().hex[:8]}", f"test_{uuid.uuid4().hex[:12]}"
    engine = admin(server)
    with engine.connect() as connection:
        connection.execute(
            text(f'CREATE ROLE "{role}" LOGIN CREATEDB PASSWORD :password'), {"password": PASSWORD}
        )
        connection.execute(text(f'CREATE DATABASE "{database}" OWNER "{role}" TEMPLATE template0'))
        # The application's role, made once by an administrator as the revision that grants
        # to it asks (a role that may not create roles cannot make it).
        connection.execute(text(APP_ROLE))
    try:
        yield role, database
    finally:
        with engine.connect() as connection:
            owned = connection.execute(
                text("SELECT datname FROM pg_database WHERE datdba = to_regrole(:role)"),
                {"role": role},
            )
            for name in owned.scalars().all():  # a scratch database a failed run left, too
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'DROP ROLE "{role}"'))
        engine.dispose()


@pytest.fixture(params=FORMS)
def target(request, postgres_server) -> Iterator[Target]:
    """The role's database at head, with six organizations, named with the password in one form."""
    with owned_database(postgres_server) as (role, database):
        found = Target(
            naming_on(postgres_server, role, database, request.param, PASSWORD),
            postgres_server.url_for(database),
        )
        setup = run_alembic("upgrade", "head", env=found.environ)
        assert setup.returncode == 0, setup.stdout
        query(
            found.admin_url,
            "INSERT INTO organizations (name, slug) SELECT 'Org', 'org-' || i"
            " FROM generate_series(1, 6) AS i",
        )
        yield found


def tool(module: str, target: Target, tree: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """`migrations <command>` on target, its temporary files in tmp_path."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "migration_runner.cli", module, "--tree", str(tree)],
        env=clean_environ(**target.environ, TMPDIR=str(tmp_path / "tmp")),
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def assert_ran(watch: CommandLines, *programs: str) -> None:
    """The watch saw each program run: what it proves is not proven by missing them."""
    for program in programs:
        assert any(program in line for line in watch.seen), (program, watch.seen)


def test_backup_before_data_loss_shows_the_password_nowhere(target, tree_copy, tmp_path):
    created = add_revision(tree_copy, "create_notes", f"-- test-only\n{NOTES}", DROP_NOTES)
    add_revision(tree_copy, "drop_notes", DROP_NOTES, NOTES)
    setup = run_alembic("upgrade", created, tree=tree_copy, env=target.environ)
    assert setup.returncode == 0, setup.stdout
    query(target.admin_url, "INSERT INTO test_only_notes VALUES (1, 'kept in the backup')")
    backups = tmp_path / "backups"
    with watched() as watch:
        result = run_alembic(
            "-x",
            "allow-data-loss=true",
            "upgrade",
            "head",
            tree=tree_copy,
            env={**target.environ, "MIGRATION_BACKUP_DIR": str(backups)},
            fresh_interpreter=True,  # no fork of a process whose watch thread is running
        )
    assert result.returncode == 0, result.stdout
    assert [dump.name.endswith("test_only_notes.dump") for dump in backups.glob("*.dump")] == [True]
    assert len(list(backups.glob("*.json"))) == 1
    assert_ran(watch, "pg_dump")
    assert_no_secret(result.stdout, *watch.seen)
    assert_no_secret_in_files(tmp_path)


def test_rehearsal_copy_shows_the_password_nowhere(target, tree_copy, tmp_path):
    add_revision(tree_copy, "add_test_only_country", ADD_COUNTRY, DROP_COUNTRY)
    engine = engine_for(target.admin_url)
    # Someone connected to the target: the copy is pg_dump | pg_restore, not TEMPLATE.
    with engine.connect(), watched() as watch:
        result = tool("rehearse", target, tree_copy, tmp_path)
    engine.dispose()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pg_dump | pg_restore" in result.stderr and "rehearsal passed" in result.stdout
    assert_ran(watch, "pg_dump", "pg_restore", "alembic")
    assert_no_secret(result.stdout, result.stderr, *watch.seen)
    assert_no_secret_in_files(tmp_path)
    assert current_version(target.admin_url) == HEAD


def test_drift_check_shows_the_password_nowhere(target, tmp_path):
    with watched() as watch:
        result = tool("drift", target, ROOT, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no drift" in result.stdout
    assert_ran(watch, "pg_dump")
    assert_no_secret(result.stdout, result.stderr, *watch.seen)
    assert_no_secret_in_files(tmp_path)


@pytest.mark.parametrize("form", ["user-info", "query"])
def test_wrong_password_is_masked_in_the_one_failed_line(postgres_server, form):
    with owned_database(postgres_server) as (role, database):
        wrong = PASSWORD.replace("Zx9", "Wr0ng")
        environ = naming_on(postgres_server, role, database, form, wrong)
        result = run_alembic("upgrade", "head", env=environ)
    assert result.returncode != 0
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1 and "password authentication failed" in failed[0], result.stdout
    assert "***" in failed[0] and "Traceback" not in result.stdout
    assert_no_secret(result.stdout)


@pytest.mark.parametrize("form", ["user-info", "query"])
def test_libpq_arguments_put_the_password_in_the_environment_only(form):
    url = naming("127.0.0.1", 5432, "app", "db", form, PASSWORD)["DATABASE_URL"]
    conninfo, environ = libpq_arguments(resolve_target({"DATABASE_URL": url}).url)
    assert_no_secret(conninfo)
    assert environ["PGPASSWORD"] == PASSWORD
    assert "user='app'" in conninfo and "dbname='db'" in conninfo


def test_libpq_arguments_keep_this_process_pgpassword_for_a_url_without_one(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    monkeypatch.setenv("PGDATABASE", "some_other_database")
    conninfo, environ = libpq_arguments("postgresql://app@127.0.0.1:5432/db")
    assert environ["PGPASSWORD"] == PASSWORD and "PGDATABASE" not in environ
    assert_no_secret(conninfo)


def test_libpq_arguments_take_a_service_files_password_into_the_environment(tmp_path):
    service_file = tmp_path / "pg_service.conf"
    service_file.write_text(f"[app]\nhost=127.0.0.1\nuser=app\ndbname=db\npassword={PASSWORD}\n")
    target = resolve_target({"PGSERVICE": "app", "PGSERVICEFILE": str(service_file)})
    conninfo, environ = libpq_arguments(target.url)
    assert environ["PGPASSWORD"] == PASSWORD
    assert_no_secret(conninfo, target.shown, target.variable)


def test_libpq_arguments_refuse_a_secret_libpq_reads_from_no_variable():
    url = f"postgresql://app@127.0.0.1/db?sslpassword={quote(PASSWORD, safe='')}"
    with pytest.raises(MigrationError, match="sslpassword") as refused:
        libpq_arguments(url)
    assert_no_secret(str(refused.value))


def test_shown_url_masks_every_secret_parameter():
    encoded = quote(PASSWORD, safe="")
    url = (
        f"postgresql://app:{encoded}@db.example.com/app?sslmode=require&password={encoded}"
        f"&sslpassword={encoded}&client_secret={encoded}"
    )
    shown = resolve_target({"DATABASE_URL": url}).shown
    assert_no_secret(shown)
    assert shown == (
        "postgresql://app:***@db.example.com/app"
        "?client_secret=***&password=***&sslmode=require&sslpassword=***"
    )
