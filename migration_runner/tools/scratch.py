"""Scratch databases: an empty one, and one at a revision, copied from a template kept on
the scratch server when the same migrations built one before.

Autogenerate proves each draft on a scratch database at head, `alembic check` with no
database compares the models with one, `make schema` dumps one. Each used to run every
migration from base into an empty database: at 300 revisions that is most of the wait.
On a named scratch server (SCHEMA_SCRATCH_URL, --scratch-url) the first of them migrates a
database of its own and keeps it as a template; every later one at the same migrations is
a copy of it (CREATE DATABASE ... TEMPLATE copies the files: milliseconds for a schema).

The template's name is `migrated_` and a digest of what decides the database a run
produces: the revision asked for, the alembic options, and every file of the tree that the
run reads (alembic.ini, alembic/, sql/, and the migration_runner package the tree runs);
and of the role that connects: only a database's owner may copy it, so each role keeps
templates of its own. An edited or added revision, or a new runner, is another name: a
template is never stale, only unused. A role's newest KEPT templates stay on the server;
its older ones are dropped when it keeps a new one. Drop any of them at will: the next run
builds it again. A template accepts no connection (ALLOW_CONNECTIONS false): nobody can
change it, and a copy never fails because someone is connected to it.

A database's own settings (ALTER DATABASE ... SET) are not copied: when the migrations
give it some, no template is kept and every run migrates, as without a scratch server.

Runs at the same time are safe: each builds under a name of its own and renames it into
place; the loser of a race drops its copy and uses the winner's. A copy whose template was
dropped meanwhile is built from the migrations, as without a template.

With no scratch server the scratch database is on a throwaway server that lives for one
command, so there is nothing to keep: the migrations run every time.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from migration_runner.errors import MigrationError
from migration_runner.servers import local_postgres
from migration_runner.steps.database_url import URL_VARIABLES
from migration_runner.tools import alembic_child
from migration_runner.tools.alembic_child import runner_folder

PREFIX = "migrated_"
KEPT = 4
# What the tree's run reads: its configuration, env.py and shims, and its SQL files.
TREE_PARTS = ("alembic.ini", "alembic", "sql")
# Settings a database was given (ALTER DATABASE ... SET): CREATE DATABASE does not copy them.
OWN_SETTINGS = (
    "SELECT count(*) FROM pg_db_role_setting AS s"
    " JOIN pg_database AS d ON d.oid = s.setdatabase WHERE d.datname = :name"
)


@contextmanager
def scratch_database(server_url: str | None = None) -> Iterator[str]:
    """An empty database, dropped afterwards: on server_url if given, else a throwaway server."""
    if server_url is None:
        server = local_postgres.start_throwaway(local_postgres.default_version())
        try:
            yield server.url()
        finally:
            local_postgres.remove_throwaway(server)
        return
    with _named_on(server_url) as (engine, url_of, name):
        _create(engine, name, "template0")
        yield url_of(name)


@contextmanager
def _named_on(server_url: str) -> Iterator[tuple]:
    """(an AUTOCOMMIT engine on server_url, the URL of a database of it by name, a new scratch
    database name): the caller creates the database, which is dropped when the block ends."""
    admin_url = make_url(server_url).set(drivername="postgresql+psycopg2")
    engine = create_engine(admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    name = f"scratch_{uuid.uuid4().hex[:12]}"

    def url_of(database: str) -> str:
        return admin_url.set(database=database).render_as_string(hide_password=False)

    try:
        yield engine, url_of, name
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def migrate(tree: Path, url: str, revision: str, *options: str) -> None:
    """`alembic [options] upgrade <revision>` of the tree on url, in its own process
    (alembic_child: forked from this one where that is safe)."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in URL_VARIABLES and not key.startswith("MIGRATION_")
    }
    environ["DATABASE_URL"] = url
    result = alembic_child.run(tree, [*options, "upgrade", revision], environ)
    if result.returncode != 0:
        raise MigrationError(f"alembic upgrade {revision} failed:\n{result.output}")


def template_name(tree: Path, revision: str, options: tuple[str, ...], role: str) -> str:
    """The template for a run of tree to revision with options, kept by role: named by a
    digest of these and of every file that decides the run's result."""
    digest = hashlib.sha256()
    digest.update(repr((revision, options, role)).encode())
    roots = [(name, tree / name) for name in TREE_PARTS]
    roots.append(("migration_runner", runner_folder(tree)))
    for label, root in roots:
        alembic_child.add_files(digest, label, root)
    return PREFIX + digest.hexdigest()[:40]


@contextmanager
def database_at(tree: Path, revision: str, server_url: str | None, *options: str) -> Iterator[str]:
    """The URL of a scratch database at revision, dropped afterwards (options: alembic's,
    such as -x name=value)."""
    if server_url is None:
        with scratch_database(None) as url:
            migrate(tree, url, revision, *options)
            yield url
        return
    with _named_on(server_url) as (engine, url_of, name):
        with engine.connect() as connection:  # each role its own: only an owner may copy one
            role = connection.execute(text("SELECT current_user")).scalar_one()
        template = template_name(tree, revision, options, role)
        if not _copied(engine, name, template):
            kept = _keep_template(engine, url_of, tree, revision, options, template, name)
            if kept and not _copied(engine, name, template):  # dropped by another's pruning
                _create(engine, name, "template0")
                migrate(tree, url_of(name), revision, *options)
        yield url_of(name)


def _create(engine, name: str, template: str) -> None:
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))


def _copied(engine, name: str, template: str) -> bool:
    """Whether name was created as a copy of template; False when there is no such template."""
    try:
        _create(engine, name, template)
    except DBAPIError as error:
        if getattr(error.orig, "pgcode", None) == "3D000":  # invalid_catalog_name
            return False
        raise
    return True


def _keep_template(
    engine,
    url_of,
    tree: Path,
    revision: str,
    options: tuple[str, ...],
    template: str,
    scratch: str,
) -> bool:
    """Migrate a database of this run's own and rename it to template (unless another run
    did first), then drop the templates beyond the newest KEPT.

    False when the migrations gave the database settings of its own (ALTER DATABASE ... SET):
    a copy would not have them, so none is kept and the database becomes scratch itself.
    """
    building = f"{PREFIX}building_{uuid.uuid4().hex[:12]}"
    _create(engine, building, "template0")
    try:
        migrate(tree, url_of(building), revision, *options)
        with engine.connect() as connection:
            if connection.execute(text(OWN_SETTINGS), {"name": building}).scalar_one():
                connection.execute(text(f'ALTER DATABASE "{building}" RENAME TO "{scratch}"'))
                return False
            connection.execute(text(f'ALTER DATABASE "{building}" WITH ALLOW_CONNECTIONS false'))
            try:
                connection.execute(text(f'ALTER DATABASE "{building}" RENAME TO "{template}"'))
            except DBAPIError as error:
                if getattr(error.orig, "pgcode", None) != "42P04":  # duplicate_database
                    raise
                return True  # another run kept the same template first: ours is dropped
            _prune(connection, template)
            return True
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)'))


def _prune(connection: Connection, kept: str) -> None:
    """Drop this role's templates older than its newest KEPT (database oids grow with
    creation; a rename keeps the oid of the database built, so the newest is the latest
    built). Other roles' templates are theirs to keep."""
    names = connection.execute(
        text(
            "SELECT datname FROM pg_database"
            " WHERE starts_with(datname, :prefix) AND NOT starts_with(datname, :building)"
            " AND datname <> :kept AND datdba = (SELECT oid FROM pg_roles WHERE rolname ="
            " current_user) ORDER BY oid DESC"
        ),
        {"prefix": PREFIX, "building": f"{PREFIX}building_", "kept": kept},
    ).scalars()
    for name in list(names)[KEPT - 1 :]:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
