"""Eight `alembic upgrade head` at once: all succeed, the schema is applied once."""

from support.database import RUNNER_TABLES, public_tables, query
from support.processes import run_alembic_concurrently
from support.project import HEAD, HEAD_TABLES, REVISIONS, ups

RUNNERS = 8


def test_eight_concurrent_upgrades_apply_the_schema_exactly_once(database_url):
    results = run_alembic_concurrently(RUNNERS, "upgrade", "head", url=database_url)

    assert [result.returncode for result in results] == [0] * RUNNERS, [r.stdout for r in results]
    assert sum("Running upgrade" in result.stdout for result in results) == 1
    assert public_tables(database_url) == HEAD_TABLES | RUNNER_TABLES
    assert query(
        database_url, "SELECT revision, direction FROM migration_history ORDER BY id"
    ) == ups(*REVISIONS)
    assert query(database_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
