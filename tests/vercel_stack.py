"""The Vercel group's fixtures: one local Vercel-like stack per session, one database per test.

The stack (migration_runner.servers.vercel_local) is PostgreSQL TEST_POSTGRES_VERSION
accepting TLS + SCRAM only, a non-superuser owner `neondb_owner`, and PgBouncer
in transaction mode in front of it. Each test gets a database owned by that
role, and the environment Vercel would set for it. conftest.py imports the
fixtures so that the session fixture exists once.
"""

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg2
import pytest

from migration_runner.servers import vercel_local
from migration_runner.servers.vercel_local import VercelStack

VERSION = os.environ.get("TEST_POSTGRES_VERSION", "15")
# Vercel's variable for each way in: direct TLS to the server, or PgBouncer in transaction mode.
ENDPOINT_VARIABLES = {"direct": "POSTGRES_URL_NON_POOLING", "pooled": "POSTGRES_URL"}


@pytest.fixture(scope="session")
def vercel_stack() -> Iterator[VercelStack]:
    stack = vercel_local.start_stack(VERSION)
    try:
        yield stack
    finally:
        stack.stop()


@dataclass
class VercelDatabase:
    """One test's database on the stack, with its URLs and Vercel's variables."""

    stack: VercelStack
    name: str

    @property
    def environment(self) -> dict[str, str]:
        return self.stack.vercel_environment(self.name)

    @property
    def direct_url(self) -> str:
        return self.environment["POSTGRES_URL_NON_POOLING"]

    @property
    def pooled_url(self) -> str:
        return self.environment["POSTGRES_URL"]

    def superuser_query(self, sql: str) -> list[tuple]:
        """Rows of sql run by the server's superuser straight on the server (for checks)."""
        return _rows(self.stack.superuser_url(self.name), sql)

    def owner_query(self, sql: str, url: str | None = None) -> list[tuple]:
        """Rows of sql run as the owner role, by default over the direct URL."""
        return _rows(url or self.direct_url, sql)

    def pool_stats(self) -> dict:
        """PgBouncer's SHOW STATS row for this database (transactions it carried)."""
        return next(
            (row for row in console(self.stack, "SHOW STATS") if row["database"] == self.name), {}
        )

    def server_connections(self) -> list[dict]:
        """PgBouncer's SHOW SERVERS rows for this database: its server connections."""
        return [row for row in console(self.stack, "SHOW SERVERS") if row["database"] == self.name]


def _rows(url: str, sql: str) -> list[tuple]:
    connection = psycopg2.connect(url)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def console(stack: VercelStack, command: str) -> list[dict]:
    """A PgBouncer admin console command (SHOW POOLS, SHOW SERVERS, ...) as dicts."""
    connection = psycopg2.connect(stack.console_dsn())
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(command)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        connection.close()


@pytest.fixture
def vercel_database(vercel_stack: VercelStack) -> Iterator[VercelDatabase]:
    """A fresh database owned by neondb_owner, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    vercel_stack.create_database(name)
    try:
        yield VercelDatabase(vercel_stack, name)
    finally:
        vercel_stack.drop_database(name)
