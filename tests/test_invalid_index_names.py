"""An index left INVALID is found and built again whatever its name: spaced, capitals."""

from contextlib import closing

import psycopg2

from support.database import libpq_dsn, query
from support.processes import run_alembic
from support.project import add_revision

VALIDITY = "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('\"Score idx\"')"
BUILD = 'CREATE UNIQUE INDEX CONCURRENTLY {} "Score idx" ON public."foobar fk" ("Score")'


def error_of(url: str, sql: str) -> str | None:
    """sql run outside a transaction on a connection of its own: PostgreSQL's error, or None."""
    with closing(psycopg2.connect(libpq_dsn(url))) as connection:
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
        except psycopg2.Error as error:
            return str(error)
    return None


def test_an_invalid_index_whose_name_needs_quotes_is_dropped_and_built_again(
    database_url, tree_copy
):
    url = database_url
    assert run_alembic("upgrade", "head", url=url).returncode == 0
    query(url, 'CREATE TABLE "foobar fk" (id integer PRIMARY KEY, "Score" integer)')
    query(url, 'INSERT INTO "foobar fk" VALUES (1, 7), (2, 7)')
    # A unique build that meets duplicates fails and leaves its index INVALID, as an
    # interrupted build does.
    assert "could not create unique index" in (error_of(url, BUILD.format("")) or "")
    assert query(url, VALIDITY) == [(False,)]
    query(url, 'UPDATE "foobar fk" SET "Score" = id')
    add_revision(
        tree_copy,
        "index_score",
        "-- test-only: builds the index.\n-- Transaction: none\n"
        + BUILD.format("IF NOT EXISTS")
        + ";\n",
        '-- Transaction: none\nDROP INDEX CONCURRENTLY IF EXISTS "Score idx";\n',
    )
    result = run_alembic("upgrade", "head", url=url, tree=tree_copy)
    assert result.returncode == 0, result.stdout
    assert 'index "public"."Score idx" was left INVALID by an interrupted build' in result.stdout
    assert query(url, VALIDITY) == [(True,)]
