"""The test server and what the tests do on it: databases, engines, queries."""

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from migration_runner import bookkeeping

VERSION = os.environ.get("TEST_POSTGRES_VERSION", "15")
# The test server's superuser connects without a password; every other role
# needs one, so tests can check authentication errors and least privilege.
TEST_HBA = "host all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
# The suite creates and drops databases by the hundred; autovacuum's workers would visit
# each in turn. No test relies on them: the ones that need statistics run ANALYZE.
TEST_SETTINGS = {"autovacuum": "off"}
RUNNER_TABLES = set(bookkeeping.RUNNER_TABLES)


@dataclass
class Server:
    admin_url: str
    version: str

    def url_for(self, database: str, user: str | None = None, password: str | None = None) -> str:
        url = make_url(self.admin_url).set(database=database)
        if user is not None:
            url = url.set(username=user, password=password)
        return url.render_as_string(hide_password=False)


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
        return info.returncode == 0
    except subprocess.TimeoutExpired:
        return False


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
def fresh_database(server: Server, template: str = "template0") -> Iterator[str]:
    """A new database on server, a copy of template (empty by default), dropped when the
    block ends."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    engine = admin(server)
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield server.url_for(name)
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


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
