"""The story's core: upgrade builds the schema at head, downgrade removes it all, repeatably."""

from support.database import RUNNER_TABLES, current_version, public_tables, query
from support.processes import run_alembic
from support.project import HEAD, HEAD_TABLES, REVISIONS, ups

# Every object a migration can leave behind, by kind, outside the runner's own tables.
OBJECTS_SQL = """
SELECT 'relation', c.relname FROM pg_class AS c
INNER JOIN pg_namespace AS n ON c.relnamespace = n.oid
WHERE n.nspname = 'public'
  AND c.relname NOT LIKE ALL (ARRAY['alembic_version%', 'migration_history%', 'migration_statements%'])
UNION ALL
SELECT 'function', p.proname FROM pg_proc AS p
INNER JOIN pg_namespace AS n ON p.pronamespace = n.oid WHERE n.nspname = 'public'
UNION ALL
SELECT 'type', t.typname FROM pg_type AS t
INNER JOIN pg_namespace AS n ON t.typnamespace = n.oid
WHERE n.nspname = 'public'
  AND t.typname NOT LIKE ALL (ARRAY['%alembic_version', '%migration_history', '%migration_statements'])
UNION ALL
SELECT 'trigger', tgname FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'extension', extname FROM pg_extension WHERE extname <> 'plpgsql'
"""


def test_upgrade_head_on_empty_database_creates_the_tables_at_head(database_url):
    result = run_alembic("upgrade", "head", url=database_url)
    assert result.returncode == 0, result.stdout
    assert public_tables(database_url) == HEAD_TABLES | RUNNER_TABLES
    assert current_version(database_url) == HEAD


def test_downgrade_removes_every_object_of_v001(database_url):
    before = set(query(database_url, OBJECTS_SQL))
    assert run_alembic("upgrade", "001", url=database_url).returncode == 0
    assert len(set(query(database_url, OBJECTS_SQL)) - before) > 40

    result = run_alembic("downgrade", "-1", url=database_url)
    assert result.returncode == 0, result.stdout
    assert set(query(database_url, OBJECTS_SQL)) == before
    assert public_tables(database_url) == RUNNER_TABLES
    assert current_version(database_url) is None


def test_upgrade_after_downgrade_recreates_the_schema(database_url):
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    first = set(query(database_url, OBJECTS_SQL))
    assert run_alembic("downgrade", "base", url=database_url).returncode == 0
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    assert set(query(database_url, OBJECTS_SQL)) == first
    assert current_version(database_url) == HEAD
    steps = query(database_url, "SELECT revision, direction FROM migration_history ORDER BY id")
    downs = [(revision, "down") for revision in reversed(REVISIONS)]
    assert steps == ups(*REVISIONS) + downs + ups(*REVISIONS)


def test_second_upgrade_head_is_a_no_op(database_url):
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    result = run_alembic("upgrade", "head", url=database_url)
    assert result.returncode == 0, result.stdout
    assert "Running upgrade" not in result.stdout
    assert query(database_url, "SELECT count(*) FROM migration_history") == [(len(REVISIONS),)]
    assert query(database_url, "SELECT count(*) FROM alembic_version") == [(1,)]


def test_current_and_history_show_sequential_ids(database_url):
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    current = run_alembic("current", url=database_url)
    assert current.returncode == 0 and f"{HEAD} (head)" in current.stdout
    history = run_alembic("history")
    assert history.returncode == 0
    for parent, revision in zip(["<base>", *REVISIONS[:-1]], REVISIONS, strict=True):
        assert f"{parent} -> {revision}" in history.stdout
    assert f"-> {HEAD} (head)" in history.stdout
