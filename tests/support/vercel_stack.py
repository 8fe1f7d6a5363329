"""The Vercel group's fixtures: one local Vercel-like stack per session, one database per test.

The stack (migration_runner.servers.vercel_local) is PostgreSQL TEST_POSTGRES_VERSION
accepting TLS + SCRAM only, a non-superuser owner `neondb_owner`, and PgBouncer
in transaction mode in front of it. Each test gets a database owned by that
role, and the environment Vercel would set for it. conftest.py imports the
fixtures so that the session fixture exists once.
"""

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

from migration_runner.servers import vercel_local
from migration_runner.servers.vercel_local import VercelStack
from migration_runner.steps import sql_files
from migration_runner.tools.scaffold import append_revision, revision_ids
from support.processes import run_alembic

VERSION = os.environ.get("TEST_POSTGRES_VERSION", "15")
# Vercel's variable for each way in: direct TLS to the server, or PgBouncer in transaction mode.
ENDPOINT_VARIABLES = {"direct": "POSTGRES_URL_NON_POOLING", "pooled": "POSTGRES_URL"}
ROOT = Path(__file__).resolve().parents[2]


def pooler_floor(tree: Path = ROOT) -> str | None:
    """The tree's last revision that a run through PgBouncer cannot take, up or down; None
    when every file runs in a transaction.

    A `-- Transaction: none` file (CREATE INDEX CONCURRENTLY) holds the migration lock
    across commits, which needs one server connection: the runner refuses it through a
    transaction pooler, by design. A deploy through the pooler therefore starts at or above
    this revision, brought there over the direct URL; the pooled tests do the same.
    """
    floor = None
    for shim in sorted((tree / "alembic" / "versions").glob("[0-9][0-9][0-9]_*.py")):
        files = (sql_files.for_revision(shim, direction) for direction in sql_files.DIRECTIONS)
        if not all(sql_file.transactional for sql_file in files):
            floor = shim.name[:3]
    return floor


REVISIONS = revision_ids(ROOT)
POOLER_FLOOR = pooler_floor()
# The revision a pooled run applies when the tree's head cannot go through the pooler: it
# changes organizations' comment only, and its down file restores the comment the tree
# gives it, so tables and schema at its head are the tree's.
PENDING_SLUG = "test_only_pooled_revision"
PENDING_UP = f"""\
-- {PENDING_SLUG} (up): test-only: a revision a pooled run can apply.
-- Destructive: no
-- Transaction: yes
COMMENT ON TABLE organizations IS 'test-only: a revision a pooled run can apply.';
"""
PENDING_DOWN = f"""\
-- {PENDING_SLUG} (down): test-only: restore organizations' comment.
-- Destructive: no
-- Transaction: yes
{{comment}}
"""
ORGANIZATIONS_COMMENT = re.compile(
    r"^COMMENT ON TABLE organizations IS\s+'(?:[^']|'')*';", re.MULTILINE
)


def organizations_comment(tree: Path) -> str:
    """The tree's last `COMMENT ON TABLE organizations IS '...';` (001's unless one changed it)."""
    found = [
        statement.group(0)
        for up in sorted((tree / "sql" / "up").glob("[0-9][0-9][0-9]_*.sql"))
        for statement in ORGANIZATIONS_COMMENT.finditer(up.read_text(encoding="utf-8"))
    ]
    assert found, f"no COMMENT ON TABLE organizations in {tree / 'sql' / 'up'}"
    return found[-1]


@dataclass(frozen=True)
class Run:
    """What a test's upgrade to head through one endpoint runs: the tree (alembic -c
    <tree>/alembic.ini), its revisions, base first, and the revision the database is at
    before the run (None: empty)."""

    tree: Path
    revisions: list[str]
    start: str | None

    @property
    def head(self) -> str:
        return self.revisions[-1]

    @property
    def applied(self) -> list[str]:
        """The revisions an upgrade from start to head applies, in order."""
        if self.start is None:
            return list(self.revisions)
        return self.revisions[self.revisions.index(self.start) + 1 :]


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

    @property
    def server_url(self) -> str:
        """The owner straight to the server, past both PgBouncers: for setting up only."""
        sslmode = "require" if self.stack.server_tls else "disable"
        return self.stack._url("postgres", self.stack.server_port, self.name, f"sslmode={sslmode}")

    def start_for(self, endpoint: str) -> str | None:
        """Ready this empty database for runs through endpoint; the revision it is then at.

        Through the pooler it is first migrated to POOLER_FLOOR, if the tree has one, as
        the owner straight on the server (no PgBouncer keeps a connection of it).
        """
        if endpoint != "pooled" or POOLER_FLOOR is None:
            return None
        setup = run_alembic("upgrade", POOLER_FLOOR, env={"DATABASE_URL": self.server_url})
        assert setup.returncode == 0, setup.stdout
        return POOLER_FLOOR

    def run_for(self, endpoint: str, tree_copy: Path) -> Run:
        """start_for, and a tree whose upgrade to head through endpoint applies at least one
        revision.

        That is this tree, unless its head itself cannot go through the pooler (POOLER_FLOOR
        is head, e.g. a CREATE INDEX CONCURRENTLY): then tree_copy, with one test-only
        transactional revision (PENDING_UP) on top of that head.
        """
        start = self.start_for(endpoint)
        if start is None or start != REVISIONS[-1]:
            return Run(ROOT, REVISIONS, start)
        down = PENDING_DOWN.format(comment=organizations_comment(tree_copy))
        append_revision(tree_copy, PENDING_SLUG, PENDING_UP, down)
        return Run(tree_copy, revision_ids(tree_copy), start)

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
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
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
