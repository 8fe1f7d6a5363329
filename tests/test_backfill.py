"""A batched backfill in plain SQL (docs/templates/batched_backfill.sql) through the runner.

Keyset batches, a commit per batch, each batch under short lock and statement
timeouts, progress with rows, rate and time left, resumable after an
interruption, under the migration lock the whole time.
"""

import threading
import time

import psycopg2
import pytest

from support.database import current_version, libpq_dsn, query, seed_organizations
from support.processes import run_alembic
from support.project import ROOT, add_revision

ROWS = 5000
# The template fills organizations.score; here the column has a name no real revision will use.
COLUMN = "test_only_score"
TEMPLATE = (ROOT / "docs" / "templates" / "batched_backfill.sql").read_text()
BACKFILL = TEMPLATE.replace("score", COLUMN)
ADD_SCORE_UP = f"-- test-only\nALTER TABLE organizations ADD COLUMN {COLUMN} integer;\n"
ADD_SCORE_DOWN = f"ALTER TABLE organizations DROP COLUMN {COLUMN};\n"
FILLED = f"SELECT count(*) FILTER (WHERE {COLUMN} IS NOT NULL), count(*) FROM organizations"


@pytest.fixture
def pending_backfill(database_url, tree_copy):
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    seed_organizations(database_url, ROWS)
    add_revision(tree_copy, "add_score", ADD_SCORE_UP, ADD_SCORE_DOWN)
    backfill = add_revision(
        tree_copy, "backfill_score", BACKFILL, "-- Transaction: none\nSELECT 1;\n"
    )
    return database_url, tree_copy, backfill


def test_backfill_fills_every_row_in_batches_and_reports_progress(pending_backfill):
    url, tree, backfill = pending_backfill
    result = run_alembic(
        "-x",
        "batch-size=250",
        "-x",
        "batch-pause=20ms",
        "-x",
        "progress-interval=0.1",
        "upgrade",
        "head",
        url=url,
        tree=tree,
    )
    assert result.returncode == 0, result.stdout
    assert query(url, FILLED) == [(ROWS, ROWS)]
    assert current_version(url) == backfill
    progress = [
        line for line in result.stdout.splitlines() if f"backfill organizations.{COLUMN}:" in line
    ]
    assert progress, result.stdout
    assert " of 5,000 rows (" in progress[-1] and "rows/s" in progress[-1]


def test_batch_blocked_by_a_row_lock_gives_way_and_the_rerun_resumes(pending_backfill):
    """A row held by the application: that batch's lock_timeout fires, the revision is retried
    and resumes where the committed batches stopped, once the row is free."""
    url, tree, _ = pending_backfill
    holder = psycopg2.connect(libpq_dsn(url))
    holder.cursor().execute(
        "SELECT id FROM organizations ORDER BY id OFFSET 3000 LIMIT 1 FOR UPDATE"
    )
    release = threading.Timer(2.0, holder.rollback)
    release.start()
    started = time.monotonic()
    result = run_alembic(
        "-x", "batch-size=500", "-x", "batch-pause=10ms", "upgrade", "head", url=url, tree=tree
    )
    release.join()
    holder.close()
    assert result.returncode == 0, result.stdout
    assert "waited too long for a lock" in result.stdout  # the batch gave way, then retried
    assert query(url, FILLED) == [(ROWS, ROWS)]
    assert time.monotonic() - started < 60
