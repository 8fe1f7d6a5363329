"""A draft SQL pair, proven on a scratch database before a single file is written.

At head, the up files must bring the database to the models exactly (Alembic's
comparison and ours find nothing), and the down files, run in reverse order,
must give back the schema at head byte for byte (pg_dump --schema-only,
normalised). Whatever fails is named, and nothing is written.
"""

import textwrap
from dataclasses import dataclass
from pathlib import Path

import sqlfluff
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from migration_runner.errors import MigrationError
from migration_runner.steps.revision import set_batch_settings
from migration_runner.steps.settings import read_settings
from migration_runner.steps.sql_files import SqlFile
from migration_runner.tools import comparison, schema_snapshot
from migration_runner.tools.autogenerate.plan import Statement


@dataclass
class DraftRevision:
    rev_id: str
    message: str
    up: str
    down: str
    transactional: bool


def sql_text(tree: Path, header: list[str], statements: list[Statement]) -> str:
    """A file in our style: header comments, then each statement under its comment, linted."""
    lines = [f"-- {part}" for line in header for part in textwrap.wrap(line, 96)]
    body = []
    for statement in statements:
        comment = [f"-- {line}" for line in textwrap.wrap(statement.comment, 96)]
        if statement.squawk_ignore:
            comment.append(f"-- squawk-ignore {statement.squawk_ignore}")
        body.append("\n".join(comment) + f"\n{statement.sql};")
    text = "\n".join(lines) + "\n\n" + "\n\n".join(body) + "\n"
    return sqlfluff.fix(text, config_path=str(tree / ".sqlfluff"))


def _engine(url: str):
    """psycopg2 whatever the URL's scheme (SQLAlchemy 2.1 would pick psycopg 3)."""
    return create_engine(make_url(url).set(drivername="postgresql+psycopg2"), poolclass=NullPool)


def _apply(url: str, text: str, transactional: bool) -> None:
    engine = _engine(url)
    try:
        if transactional:
            with engine.begin() as connection:
                connection.execution_options(no_parameters=True).exec_driver_sql(text)
            return
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            # What a batched backfill reads, as the runner sets it (here at the defaults).
            set_batch_settings(MigrationContext.configure(connection), read_settings({}, {}))
            for statement in SqlFile(Path("draft.sql"), text).statements:
                connection.execution_options(no_parameters=True).exec_driver_sql(statement.text)
    finally:
        engine.dispose()


def _left_over(url: str, metadata: MetaData) -> list[str]:
    """What still differs from the models, by the policy of `alembic check`, in words."""
    engine = _engine(url)
    try:
        with engine.connect() as connection, connection.begin():
            return [
                comparison.in_words(diff) for diff in comparison.differences(connection, metadata)
            ]
    finally:
        engine.dispose()


def same_but_column_order(expected: str, actual: str) -> bool:
    """Equal once each CREATE TABLE's column lines are sorted: a dropped column that the down
    file adds back can only come back as the table's last column."""

    def columns_sorted(text: str) -> list[str]:
        return [
            "\n".join(sorted(obj.text.splitlines())) if obj.kind == "TABLE" else obj.text
            for obj in schema_snapshot.parse_objects(text)
        ]

    return columns_sorted(expected) == columns_sorted(actual)


def verify(
    drafts: list[DraftRevision],
    tree: Path,
    metadata: MetaData,
    server_url: str | None,
    columns_dropped: bool = False,
) -> None:
    """Raise, naming what fails, unless the drafts round-trip on a scratch database at head.

    When the change drops columns, the schema after the down files may differ from head's
    in column order only (PostgreSQL adds a column at the end); everything else must match.
    """
    with schema_snapshot.scratch_database(server_url) as url:
        schema_snapshot.migrate(tree, url, "head")
        at_head = schema_snapshot.snapshot(url)
        for draft in drafts:
            try:
                _apply(url, draft.up, draft.transactional)
            except DBAPIError as error:
                raise MigrationError(
                    f"The draft up file of {draft.rev_id} fails at head: {getattr(error, 'orig', error)}".strip()
                ) from None
        left = _left_over(url, metadata)
        if left:
            raise MigrationError(
                "The draft does not bring the database to the models; still different: "
                + "; ".join(left)
                + ". Nothing was written: write this change by hand (alembic revision -m ...)."
            )
        for draft in reversed(drafts):
            _apply(url, draft.down, draft.transactional)
        after = schema_snapshot.snapshot(url)
        if after != at_head and not (columns_dropped and same_but_column_order(at_head, after)):
            found = schema_snapshot.differences(at_head, after)
            raise MigrationError(
                "The draft down file does not restore the schema at head ("
                + "; ".join(found)
                + "). Nothing was written."
            )
