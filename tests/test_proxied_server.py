"""A plain TCP proxy in front of PostgreSQL (a Docker port mapping, an SSH tunnel) is not a
pooler: the runner asks PgBouncer's console database, and PostgreSQL's answer (`database
"pgbouncer" does not exist`) makes the run a direct one (migration_runner/steps/pooler.py).
It used to be read as PgBouncer's, so such a run went as one transaction and refused every
`-- Transaction: none` revision."""

from support.database import current_version, query
from support.processes import run_alembic
from support.project import add_revision
from support.query_proxy import carried, proxied_alembic

CONCURRENT_UP = (
    "-- Transaction: none\n"
    "CREATE INDEX CONCURRENTLY organizations_test_only_name_idx ON organizations (name);\n"
)
CONCURRENT_DOWN = (
    "-- Transaction: none\nDROP INDEX CONCURRENTLY organizations_test_only_name_idx;\n"
)
TABLE_UP = "-- test-only\nCREATE TABLE test_only_after_proxy (id integer);\n"


def test_a_run_through_a_plain_proxy_is_direct(database_url, tree_copy):
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    add_revision(tree_copy, "index_organizations_name", CONCURRENT_UP, CONCURRENT_DOWN)
    table = add_revision(tree_copy, "after_proxy", TABLE_UP, "DROP TABLE test_only_after_proxy;")
    result, sent = proxied_alembic(
        database_url, tree_copy, "upgrade", "head", variable="DATABASE_URL"
    )
    assert result.returncode == 0, result.stdout
    assert current_version(database_url) == table
    assert query(
        database_url,
        "SELECT indisvalid FROM pg_index"
        " WHERE indexrelid = to_regclass('organizations_test_only_name_idx')",
    ) == [(True,)]
    # Direct: each revision commits with the prepared hand-over, which a pooled run never sends.
    assert any(table in carried(sql) for sql in sent), sent
