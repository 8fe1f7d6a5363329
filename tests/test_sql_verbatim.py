"""SQL files reach PostgreSQL exactly as written, online and in offline --sql scripts.

SQLAlchemy's text() reads `:name` as a bind parameter and psycopg2 reads `%`
as a placeholder when parameters are passed; neither may touch our files.
"""

import subprocess

import pytest
from sqlalchemy.exc import DBAPIError

from support.database import current_version, query
from support.processes import run_alembic
from support.project import add_revision

TRAPS_UP = """-- verbatim_traps (up): test-only. Colons, percent signs, casts, dollar quotes.
CREATE TABLE traps (id integer PRIMARY KEY, note text NOT NULL);
INSERT INTO traps VALUES (1, 'time: 12:30 :name :1 %s %(name)s 100%');
INSERT INTO traps VALUES (2, '2026-01-01'::date::text || '::text');
CREATE FUNCTION traps_check() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    IF NEW.note LIKE '%forbidden%' THEN
        RAISE EXCEPTION 'note % is forbidden: 100%%', NEW.id;
    END IF;
    RETURN NEW;
END;
$body$;
CREATE TRIGGER traps_check BEFORE INSERT ON traps FOR EACH ROW EXECUTE FUNCTION traps_check();
COMMENT ON TABLE traps IS 'ratio: 50% :ok';
"""
TRAPS_DOWN = """-- verbatim_traps (down): test-only.
DROP TABLE traps;
DROP FUNCTION traps_check();
"""
EXPECTED_ROWS = [(1, "time: 12:30 :name :1 %s %(name)s 100%"), (2, "2026-01-01::text")]


@pytest.fixture
def traps_tree(tree_copy):
    """The tree copy with the traps revision on top of head, and that revision's id."""
    return tree_copy, add_revision(tree_copy, "verbatim_traps", TRAPS_UP, TRAPS_DOWN)


def _assert_traps_intact(url):
    assert query(url, "SELECT id, note FROM traps ORDER BY id") == EXPECTED_ROWS
    assert query(url, "SELECT obj_description('traps'::regclass, 'pg_class')") == [
        ("ratio: 50% :ok",)
    ]
    with pytest.raises(DBAPIError, match="note 3 is forbidden: 100%"):
        query(url, "INSERT INTO traps VALUES (3, 'forbidden')")


def test_online_run_sends_colons_percents_casts_and_dollar_quotes_verbatim(
    database_url, traps_tree
):
    tree, _ = traps_tree
    result = run_alembic("upgrade", "head", url=database_url, tree=tree)
    assert result.returncode == 0, result.stdout
    _assert_traps_intact(database_url)


def test_offline_script_applies_with_psql_to_the_same_result(database_url, traps_tree):
    tree, traps = traps_tree
    script = run_alembic("upgrade", "head", "--sql", tree=tree)
    assert script.returncode == 0, script.stdout
    sql = "\n".join(line for line in script.stdout.splitlines() if not line.startswith("INFO "))
    assert "100%');" in sql and "%%(name)s" not in sql

    applied = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database_url],
        input=sql,
        capture_output=True,
        text=True,
        check=False,
    )

    assert applied.returncode == 0, applied.stderr
    assert current_version(database_url) == traps
    _assert_traps_intact(database_url)
