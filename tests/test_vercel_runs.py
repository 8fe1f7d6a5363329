"""Vercel group: the whole story over Vercel's direct TLS URL and through PgBouncer (pooled).

Each test runs `alembic` as a deploy would, with only the Vercel variable
under test set, as the non-superuser owner neondb_owner, then checks the
database itself (catalog, pg_locks, pg_stat_activity, PgBouncer's console).
"""

import psycopg2
import pytest

from migration_runner.servers.vercel_local import OWNER
from support.database import RUNNER_TABLES, current_version, public_tables
from support.processes import run_alembic, run_alembic_concurrently
from support.project import HEAD, HEAD_TABLES, REVISIONS, add_revision
from support.vercel_stack import ENDPOINT_VARIABLES

VARIABLES = ENDPOINT_VARIABLES
RUNNERS = 4  # the suite's own test runs eight; four show the lock through each endpoint
FAILING_UP = """-- half_done (up): test-only revision that fails after doing some work.
CREATE TABLE half_done (id integer);
INSERT INTO half_done VALUES (1);
ALTER TABLE organizations ADD COLUMN half_done integer;
SELECT 1 / 0;
"""
CONCURRENT_INDEX_UP = """-- index_organizations_name (up): test-only.
-- Destructive: no
-- Transaction: none
CREATE INDEX CONCURRENTLY organizations_test_only_name_idx ON organizations (name);
"""
CONCURRENT_INDEX_DOWN = """-- index_organizations_name (down): test-only.
-- Transaction: none
DROP INDEX CONCURRENTLY organizations_test_only_name_idx;
"""


@pytest.fixture(params=list(VARIABLES))
def endpoint(request) -> str:
    return request.param


def _only(database, endpoint: str, **extra: str) -> dict[str, str]:
    """The environment of a deploy that has just this one Vercel variable."""
    variable = VARIABLES[endpoint]
    return {variable: database.environment[variable], **extra}


def _assert_went_through(database, endpoint: str) -> None:
    transactions = database.pool_stats().get("total_xact_count", 0)
    assert (transactions > 0) if endpoint == "pooled" else (transactions == 0), transactions


def _tables(database) -> set[str]:
    return public_tables(database.stack.superuser_url(database.name))


def test_upgrade_downgrade_upgrade_over_vercel_url(vercel_database, endpoint, tree_copy):
    environment = _only(vercel_database, endpoint)
    assert environment[VARIABLES[endpoint]].startswith("postgres://")
    assert "sslmode=require" in environment[VARIABLES[endpoint]]
    run = vercel_database.run_for(endpoint, tree_copy)  # from the pooler's floor, if any
    start_tables = _tables(vercel_database) | RUNNER_TABLES

    upgrade = run_alembic("upgrade", "head", env=environment, tree=run.tree)
    assert upgrade.returncode == 0, upgrade.stdout
    assert f"(from {VARIABLES[endpoint]})" in upgrade.stdout
    assert _tables(vercel_database) == HEAD_TABLES | RUNNER_TABLES

    downgrade = run_alembic("downgrade", run.start or "base", env=environment, tree=run.tree)
    assert downgrade.returncode == 0, downgrade.stdout
    assert _tables(vercel_database) == start_tables

    again = run_alembic("upgrade", "head", env=environment, tree=run.tree)
    assert again.returncode == 0, again.stdout
    assert _tables(vercel_database) == HEAD_TABLES | RUNNER_TABLES
    assert run.applied  # a run that applies nothing would prove nothing
    assert vercel_database.superuser_query(
        "SELECT revision, direction, applied_by FROM migration_history ORDER BY id"
    ) == (
        [(revision, "up", OWNER) for revision in run.revisions]
        + [(revision, "down", OWNER) for revision in reversed(run.applied)]
        + [(revision, "up", OWNER) for revision in run.applied]
    )
    assert vercel_database.superuser_query("SELECT version_num FROM alembic_version") == [
        (run.head,)
    ]
    _assert_went_through(vercel_database, endpoint)


def test_concurrent_upgrades_over_vercel_url_apply_the_schema_once(
    vercel_database, endpoint, tree_copy
):
    run = vercel_database.run_for(endpoint, tree_copy)
    results = run_alembic_concurrently(
        RUNNERS, "upgrade", "head", env=_only(vercel_database, endpoint), tree=run.tree
    )

    assert [result.returncode for result in results] == [0] * RUNNERS, [r.stdout for r in results]
    assert sum("Running upgrade" in result.stdout for result in results) == 1
    assert _tables(vercel_database) == HEAD_TABLES | RUNNER_TABLES
    assert vercel_database.superuser_query(
        "SELECT revision FROM migration_history ORDER BY id"
    ) == [(revision,) for revision in run.revisions]
    _assert_went_through(vercel_database, endpoint)


def test_failing_revision_over_vercel_url_rolls_back_everything(
    vercel_database, endpoint, tree_copy
):
    environment = _only(vercel_database, endpoint)
    vercel_database.start_for(endpoint)
    assert run_alembic("upgrade", "head", env=environment, tree=tree_copy).returncode == 0
    added = add_revision(tree_copy, "half_done", FAILING_UP, "DROP TABLE half_done;\n")

    result = run_alembic("upgrade", "head", env=environment, tree=tree_copy)

    assert result.returncode != 0
    assert f"sql/up/{added}_half_done.sql line 5 failed" in result.stdout
    assert "half_done" not in _tables(vercel_database)
    assert vercel_database.superuser_query(
        "SELECT count(*) FROM information_schema.columns WHERE column_name = 'half_done'"
    ) == [(0,)]
    assert vercel_database.superuser_query("SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert vercel_database.superuser_query("SELECT count(*) FROM migration_history") == [
        (len(REVISIONS),)
    ]


def test_pooled_url_run_leaves_no_advisory_lock_or_session_setting_on_server_connections(
    vercel_database, tree_copy
):
    environment = _only(vercel_database, "pooled")
    run = vercel_database.run_for("pooled", tree_copy)
    results = run_alembic_concurrently(4, "upgrade", "head", env=environment, tree=run.tree)
    assert [result.returncode for result in results] == [0] * 4, [r.stdout for r in results]
    assert sum("Running upgrade" in result.stdout for result in results) == 1
    downgrade = run_alembic("downgrade", run.start or "base", env=environment, tree=run.tree)
    assert downgrade.returncode == 0, downgrade.stdout

    # The server connections PgBouncer keeps for this database after the runs.
    servers = vercel_database.server_connections()
    server_pids = {
        pid
        for (pid,) in vercel_database.superuser_query(
            "SELECT pid FROM pg_stat_activity "
            f"WHERE datname = current_database() AND usename = '{OWNER}'"
        )
    }
    assert len(servers) == len(server_pids) >= 1
    assert vercel_database.superuser_query(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
    ) == [(0,)]
    assert vercel_database.superuser_query(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
    ) == [(0,)]

    # Hold one transaction per server connection, so PgBouncer hands each client a
    # different one, and read the settings a later client of each connection gets.
    clients = [psycopg2.connect(vercel_database.pooled_url) for _ in server_pids]
    try:
        seen = {}
        for client in clients:
            with client.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_backend_pid(), current_setting('lock_timeout'), "
                    "current_setting('statement_timeout'), "
                    "(SELECT count(*) FROM pg_locks "
                    " WHERE locktype = 'advisory' AND pid = pg_backend_pid())"
                )
                pid, lock_timeout, statement_timeout, advisory = cursor.fetchone()
                seen[pid] = (lock_timeout, statement_timeout, advisory)
    finally:
        for client in clients:
            client.close()
    assert set(seen) == server_pids
    assert set(seen.values()) == {("0", "0", 0)}


def test_non_transactional_revision_is_refused_over_the_pooled_url(vercel_database, tree_copy):
    start = vercel_database.start_for("pooled")  # the tree's own are above it
    tables = _tables(vercel_database)
    added = add_revision(
        tree_copy, "index_organizations_name", CONCURRENT_INDEX_UP, CONCURRENT_INDEX_DOWN
    )
    result = run_alembic("upgrade", "head", env=_only(vercel_database, "pooled"), tree=tree_copy)

    assert result.returncode != 0
    assert f"sql/up/{added}_index_organizations_name.sql" in result.stdout
    assert "Transaction: none" in result.stdout and "POSTGRES_URL_NON_POOLING" in result.stdout
    # Nothing of the run was applied, the revisions before this one included.
    assert _tables(vercel_database) == tables
    assert current_version(vercel_database.stack.superuser_url(vercel_database.name)) == start
    assert vercel_database.superuser_query(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
    ) == [(0,)]

    direct = run_alembic("upgrade", "head", env=_only(vercel_database, "direct"), tree=tree_copy)
    assert direct.returncode == 0, direct.stdout
    assert vercel_database.superuser_query(
        "SELECT indisvalid FROM pg_index"
        " WHERE indexrelid = to_regclass('organizations_test_only_name_idx')"
    ) == [(True,)]


def test_pooled_url_under_another_name_is_recognised_by_asking_pgbouncer(
    vercel_database, tree_copy
):
    """A Neon integration's DATABASE_URL is pooled, and its name does not say so: the runner
    asks the server (its port, then PgBouncer's console) before a `Transaction: none` file."""
    start = vercel_database.start_for("pooled")
    added = add_revision(
        tree_copy, "index_organizations_name", CONCURRENT_INDEX_UP, CONCURRENT_INDEX_DOWN
    )
    pooled_as_database_url = {"DATABASE_URL": vercel_database.pooled_url}

    result = run_alembic("upgrade", "head", env=pooled_as_database_url, tree=tree_copy)

    assert result.returncode != 0
    assert f"FAILED: sql/up/{added}_index_organizations_name.sql is headed" in result.stdout
    assert "goes through a pooler (PgBouncer)" in result.stdout
    assert current_version(vercel_database.stack.superuser_url(vercel_database.name)) == start
    assert vercel_database.superuser_query(
        "SELECT count(*) FROM pg_indexes WHERE indexname = 'organizations_test_only_name_idx'"
    ) == [(0,)]
    direct = run_alembic("upgrade", "head", env=_only(vercel_database, "direct"), tree=tree_copy)
    assert direct.returncode == 0, direct.stdout  # the same server, directly: no refusal
