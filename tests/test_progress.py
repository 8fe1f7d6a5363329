"""A statement that runs longer than the progress interval reports from PostgreSQL's views."""

import threading

import psycopg2

from support.database import libpq_dsn
from support.processes import run_alembic, run_python
from support.project import add_revision

INDEX_UP = """-- test-only
-- Transaction: none
CREATE INDEX CONCURRENTLY test_only_organizations_name_idx ON organizations (name);
"""


def test_concurrent_index_build_reports_its_phase_while_it_waits(database_url, tree_copy):
    """An open snapshot keeps the build in a phase of pg_stat_progress_create_index for 1.5 s."""
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    added = add_revision(tree_copy, "index_name", INDEX_UP, "-- Transaction: none\nSELECT 1;\n")
    holder = psycopg2.connect(libpq_dsn(database_url))
    holder.set_session(isolation_level="REPEATABLE READ")
    holder.cursor().execute("SELECT 1")
    release = threading.Timer(1.5, holder.rollback)
    release.start()
    result = run_alembic(
        "-x", "progress-interval=0.3", "upgrade", "head", url=database_url, tree=tree_copy
    )
    release.join()
    holder.close()
    assert result.returncode == 0, result.stdout
    lines = [line for line in result.stdout.splitlines() if "building index" in line]
    assert lines, result.stdout
    assert (
        f"sql/up/{added}_index_name.sql line 3:"
        " building index test_only_organizations_name_idx (waiting for" in lines[0]
    )


# Runs `alembic upgrade head` in this interpreter, then names the modules it loaded of these.
LOADED_AT_HEAD = """
import sys
from alembic.config import main
main(argv=["upgrade", "head"], prog="alembic")
from migration_runner.steps.shims import template
steps = ("progress", "preflight", "backup")
print([name for name in steps if "migration_runner.steps." + name in sys.modules],
      template.cache_info().currsize)
"""


def test_a_run_at_head_loads_no_progress_monitor(database_url):
    """What a deploy pays at head: not the progress monitor, the preflight or the backup steps,
    and not the shim template's pattern."""
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    result = run_python(LOADED_AT_HEAD, url=database_url)
    assert result.returncode == 0, result.stderr
    assert "nothing to apply" in result.stderr
    assert result.stdout.split("\n")[-2] == "[] 0", result.stdout
