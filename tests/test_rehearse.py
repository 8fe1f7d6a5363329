"""`make rehearse` runs the pending revisions on a copy of the target and never on the target.

A revision that passes on an empty test database can still fail on production's
rows; rehearsal finds that out first, reports what each revision costs, and
leaves the target and the server as they were.
"""

import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from migration_runner.tools.schema_snapshot import snapshot
from support.database import admin, current_version, engine_for, query
from support.processes import clean_environ, run_alembic
from support.project import HEAD, add_revision

ROW_COUNTS = "SELECT (SELECT count(*) FROM organizations), (SELECT count(*) FROM users)"
# The rehearsal's copy, the drift check's database at head, and the one its first run at
# these migrations builds to keep as a template (migration_runner/tools/scratch.py).
SCRATCH_DATABASES = (
    "SELECT count(*) FROM pg_database WHERE starts_with(datname, 'rehearsal_')"
    " OR starts_with(datname, 'scratch_') OR starts_with(datname, 'migrated_building_')"
)
# Client sessions on the target other than the test's own, and the locks they hold.
SESSIONS_ON_TARGET = (
    "SELECT pid, application_name, wait_event_type FROM pg_stat_activity"
    " WHERE datname = current_database() AND backend_type = 'client backend'"
    " AND pid <> pg_backend_pid() AND pid <> :keep"
)
LOCKS_ON_TARGET = (
    "SELECT l.pid, l.relation::regclass::text, l.mode FROM pg_locks AS l"
    " JOIN pg_stat_activity AS a ON a.pid = l.pid"
    " WHERE a.datname = current_database() AND a.backend_type = 'client backend'"
    " AND l.pid <> pg_backend_pid() AND l.pid <> :keep"
)
REHEARSAL_SESSIONS = (
    "SELECT datname, application_name FROM pg_stat_activity"
    " WHERE starts_with(application_name, 'rehearsal_')"
    " OR application_name IN ('pg_dump', 'pg_restore')"
)
# A revision that sleeps only in the rehearsal's copy, keeping the copy in use for a while.
SLEEP_IN_THE_COPY = (
    "-- test-only\n"
    "SELECT pg_sleep(CASE WHEN starts_with(current_database(), 'rehearsal_') THEN 3 ELSE 0 END);\n"
)


@pytest.fixture
def target(database_url, tree_copy):
    """A database at head holding organizations, some of them with over-long names."""
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    query(
        database_url,
        "INSERT INTO organizations (name, slug) SELECT repeat('n', 10 * i), 'org-' || i"
        " FROM generate_series(1, 20) AS i",
    )
    return database_url, tree_copy


def rehearse(url, tree) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "migration_runner.cli", "rehearse", "--tree", str(tree)],
        env=clean_environ(DATABASE_URL=url),
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_good_revision_is_reported_and_the_target_is_left_identical(target):
    url, tree = target
    added = add_revision(
        tree,
        "add_test_only_country",
        "-- test-only\nALTER TABLE organizations ADD COLUMN test_only_country text;\n"
        "UPDATE organizations SET test_only_country = 'NZ';\n",
        "ALTER TABLE organizations DROP COLUMN test_only_country;\n",
    )
    schema_before, rows_before = snapshot(url), query(url, ROW_COUNTS)
    result = rehearse(url, tree)
    assert result.returncode == 0, result.stdout + result.stderr
    report = result.stdout
    assert f"{added}: applied in" in report
    assert "public.organizations AccessExclusiveLock" in report
    assert "rows written: public.organizations 20" in report
    assert "rehearsal passed: 1 revision(s) applied" in report and "no drift" in report
    assert snapshot(url) == schema_before
    assert query(url, ROW_COUNTS) == rows_before
    assert current_version(url) == HEAD
    assert query(url, SCRATCH_DATABASES) == [(0,)]


def test_revision_failing_on_the_targets_rows_fails_the_rehearsal_naming_it(target):
    url, tree = target
    added = add_revision(
        tree,
        "short_names",
        "-- test-only: rows with long names violate it.\n"
        "ALTER TABLE organizations ADD CONSTRAINT organizations_test_only_short_name_check"
        " CHECK (length(name) <= 100);\n",
        "ALTER TABLE organizations DROP CONSTRAINT organizations_test_only_short_name_check;\n",
    )
    schema_before = snapshot(url)
    result = rehearse(url, tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"REHEARSAL FAILED at {added}" in result.stdout
    assert "is violated by some row" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert snapshot(url) == schema_before and current_version(url) == HEAD
    assert query(url, SCRATCH_DATABASES) == [(0,)]


def test_copy_falls_back_to_pg_dump_while_someone_is_connected_to_the_target(target):
    """CREATE DATABASE ... TEMPLATE needs the target to itself; an open session must not stop us."""
    url, tree = target
    add_revision(
        tree,
        "add_test_only_country",
        "ALTER TABLE organizations ADD COLUMN test_only_country text;\n",
        "ALTER TABLE organizations DROP COLUMN test_only_country;\n",
    )
    engine = engine_for(url)
    with engine.connect():
        result = rehearse(url, tree)
    engine.dispose()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pg_dump | pg_restore" in result.stderr
    assert query(url, SCRATCH_DATABASES) == [(0,)]


def start_rehearsal(url, tree) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "migration_runner.cli", "rehearse", "--tree", str(tree)],
        env=clean_environ(DATABASE_URL=url),
        cwd=tree,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(rehearsal: subprocess.Popen, url: str, sql: str, what: str) -> None:
    """Until sql's first value is true, failing if the rehearsal ends or a minute passes."""
    deadline = time.monotonic() + 60
    while not query(url, sql)[0][0]:
        if rehearsal.poll() is not None:
            pytest.fail(f"the rehearsal ended before {what}:\n{rehearsal.communicate()[0]}")
        assert time.monotonic() < deadline, f"the rehearsal never reached {what}"
        time.sleep(0.05)


def descendants(pid: int) -> set[int]:
    """The processes pid started, and theirs, as /proc shows them now."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError):
            continue  # ended while we looked
    found, generation = set(), {pid}
    while generation:
        generation = {child for child, parent in parents.items() if parent in generation}
        found |= generation
    return found


def programs(pids: set[int]) -> set[str]:
    names = set()
    for pid in pids:
        try:
            names.add(Path(f"/proc/{pid}/comm").read_text().strip())
        except OSError:
            continue
    return names


def still_running(pids: set[int]) -> set[int]:
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.add(pid)
    return running


def interrupt(rehearsal: subprocess.Popen, signum: signal.Signals) -> tuple[str, float]:
    """Send signum; the rehearsal's output and how long it took to exit."""
    sent = time.monotonic()
    rehearsal.send_signal(signum)
    output, _ = rehearsal.communicate(timeout=60)
    return output, time.monotonic() - sent


def assert_nothing_left(url: str, children: set[int], keep: int = 0) -> None:
    """No program of the rehearsal runs, no copy exists, and within a few seconds no session of
    it remains anywhere and nothing but the session `keep` holds a lock on the target."""
    assert children, "the rehearsal had started no program when it was interrupted"
    assert still_running(children) == set()
    assert query(url, SCRATCH_DATABASES) == [(0,)]
    deadline = time.monotonic() + 3
    while True:
        left = (
            query(url, SESSIONS_ON_TARGET, keep=keep),
            query(url, LOCKS_ON_TARGET, keep=keep),
            query(url, REHEARSAL_SESSIONS),
        )
        if left == ([], [], []) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert left == ([], [], [])


def test_sigterm_during_the_copy_stops_pg_dump_and_releases_the_targets_tables(target):
    """A pg_dump left waiting for a table lock keeps ACCESS SHARE on every table it locked
    before: a deploy started meanwhile would time out behind it."""
    url, tree = target
    add_revision(
        tree,
        "add_test_only_country",
        "ALTER TABLE organizations ADD COLUMN test_only_country text;\n",
        "ALTER TABLE organizations DROP COLUMN test_only_country;\n",
    )
    engine = engine_for(url)
    with engine.connect() as holder:
        holder.execute(text("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"))  # pg_dump waits
        holder_pid = holder.execute(text("SELECT pg_backend_pid()")).scalar()
        rehearsal = start_rehearsal(url, tree)
        wait_for(
            rehearsal,
            url,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND wait_event_type = 'Lock'",
            "pg_dump waiting for the locked table",
        )
        children = descendants(rehearsal.pid)
        assert {"pg_dump", "pg_restore"} <= programs(children)
        output, seconds = interrupt(rehearsal, signal.SIGTERM)
        assert rehearsal.returncode == 130, output
        assert seconds < 10, output
        assert "FAILED: interrupted (SIGTERM); the target was not changed" in output
        assert "Traceback" not in output
        assert_nothing_left(url, children, keep=holder_pid)
        holder.rollback()
    engine.dispose()
    assert current_version(url) == HEAD


def test_sigint_during_a_revision_stops_it_and_drops_the_copy(target):
    """Ctrl-C in the middle of a slow revision: its program and its session end, the copy goes."""
    url, tree = target
    add_revision(tree, "slow", "-- test-only\nSELECT pg_sleep(30);\n", "SELECT 1;\n")
    rehearsal = start_rehearsal(url, tree)
    wait_for(
        rehearsal,
        url,
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
        " AND pid <> pg_backend_pid() AND wait_event = 'PgSleep'",
        "the slow revision",
    )
    children = descendants(rehearsal.pid)
    output, seconds = interrupt(rehearsal, signal.SIGINT)
    assert rehearsal.returncode == 130, output
    assert seconds < 10, output
    assert "FAILED: interrupted (SIGINT)" in output and "scratch database" in output
    assert_nothing_left(url, children)
    assert current_version(url) == HEAD


def test_sigterm_during_the_drift_check_drops_both_scratch_databases(target):
    url, tree = target
    add_revision(
        tree,
        "slow_in_the_drift_check",
        "-- test-only: slow only where the drift check builds head's schema.\n"
        "SELECT pg_sleep(CASE WHEN starts_with(current_database(), 'migrated_building_')"
        " THEN 30 ELSE 0 END);\n",
        "SELECT 1;\n",
    )
    rehearsal = start_rehearsal(url, tree)
    wait_for(
        rehearsal,
        url,
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
        " AND starts_with(datname, 'migrated_building_') AND wait_event = 'PgSleep'",
        "the drift check",
    )
    children = descendants(rehearsal.pid)
    output, seconds = interrupt(rehearsal, signal.SIGTERM)
    assert rehearsal.returncode == 130, output
    assert seconds < 10, output
    assert "applied in" in output  # the revision passed on the copy before the drift check
    assert_nothing_left(url, children)


def as_role(postgres_server, url: str, role: str, password: str) -> str:
    return postgres_server.url_for(make_url(url).database, role, password)


@pytest.fixture
def owned_target(postgres_server, tree_copy, make_role):
    """A database at head that a non-superuser role with CREATEDB owns and migrated, as a
    deploy's migration role does: (its URL as that role, the tree)."""
    role, password = make_role("CREATEDB")
    query(postgres_server.admin_url, f"GRANT pg_read_all_data TO {role}")  # a copy reads all
    name = f"test_{uuid.uuid4().hex[:12]}"
    engine = admin(postgres_server)
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" OWNER {role} TEMPLATE template0'))
        if connection.execute(text("SELECT to_regrole('assessment_app')")).scalar() is None:
            connection.execute(text("CREATE ROLE assessment_app NOLOGIN"))  # 002 needs CREATEROLE
    engine.dispose()
    url = postgres_server.url_for(name, role, password)
    upgraded = run_alembic("upgrade", "head", url=url)
    assert upgraded.returncode == 0, upgraded.stdout
    return url, tree_copy


def hold_a_session_in_the_copy(rehearsal, server):
    """A superuser's session in the rehearsal's copy, once its slow revision runs: one that
    the rehearsal's role may not terminate, as autovacuum's."""
    wait_for(
        rehearsal,
        server.admin_url,
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
        " AND starts_with(datname, 'rehearsal_') AND wait_event = 'PgSleep'",
        "the slow revision",
    )
    copy = query(
        server.admin_url, "SELECT datname FROM pg_database WHERE starts_with(datname, 'rehearsal_')"
    )
    engine = engine_for(server.url_for(copy[0][0]))
    return engine, engine.connect()


def test_copy_is_dropped_without_force_once_another_roles_session_leaves(
    owned_target, postgres_server
):
    """DROP DATABASE WITH (FORCE) refuses a role that may not terminate every session there
    (autovacuum's included); the plain DROP waits for them instead."""
    url, tree = owned_target
    add_revision(tree, "slow_in_the_copy", SLEEP_IN_THE_COPY, "SELECT 1;\n")
    rehearsal = start_rehearsal(url, tree)
    engine, session = hold_a_session_in_the_copy(rehearsal, postgres_server)
    wait_for(
        rehearsal,
        postgres_server.admin_url,
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'DROP DATABASE \"rehearsal\\_%'",
        "dropping its copy",
    )
    session.close()
    engine.dispose()
    output, _ = rehearsal.communicate(timeout=60)
    assert rehearsal.returncode == 0, output
    assert "rehearsal passed" in output
    assert re.search(r"scratch database rehearsal_\w+ dropped", output), output
    assert "must be a member" not in output
    assert query(postgres_server.admin_url, SCRATCH_DATABASES) == [(0,)]


def test_copy_another_role_keeps_open_is_left_with_one_line_saying_how_to_drop_it(
    owned_target, postgres_server
):
    """Cleanup alone never fails a rehearsal that passed."""
    url, tree = owned_target
    add_revision(tree, "slow_in_the_copy", SLEEP_IN_THE_COPY, "SELECT 1;\n")
    rehearsal = start_rehearsal(url, tree)
    engine, session = hold_a_session_in_the_copy(rehearsal, postgres_server)
    with session:
        output, _ = rehearsal.communicate(timeout=60)
    engine.dispose()
    assert rehearsal.returncode == 0, output
    assert "rehearsal passed" in output
    left = [line for line in output.splitlines() if " left " in line]
    assert len(left) == 1, output
    assert "sessions of postgres are still connected" in left[0]
    assert query(postgres_server.admin_url, SCRATCH_DATABASES) == [(1,)]
    drop = re.search(r"drop it later with: (DROP DATABASE \"rehearsal_\w+\";)", left[0])
    assert drop, left[0]
    as_owner = engine_for(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with as_owner.connect() as connection:
        connection.execute(text(drop.group(1)))  # as the line says, by the rehearsal's own role
    as_owner.dispose()
    assert query(postgres_server.admin_url, SCRATCH_DATABASES) == [(0,)]


def test_role_without_createdb_gets_one_failed_line_with_the_fix(
    target, postgres_server, make_role
):
    url, tree = target
    role, password = make_role()
    query(postgres_server.admin_url, f"GRANT pg_read_all_data TO {role}")
    add_revision(
        tree,
        "add_test_only_country",
        "ALTER TABLE organizations ADD COLUMN test_only_country text;\n",
        "ALTER TABLE organizations DROP COLUMN test_only_country;\n",
    )
    result = rehearse(as_role(postgres_server, url, role, password), tree)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    failed = [line for line in output.splitlines() if "FAILED" in line]
    assert len(failed) == 1, output
    assert f"ALTER ROLE {role} CREATEDB" in failed[0] and "SCHEMA_SCRATCH_URL" in failed[0]
    assert "drop" not in output.lower()
    assert query(url, SCRATCH_DATABASES) == [(0,)]


def test_expand_phase_rehearses_the_revisions_before_the_first_contract_one(target):
    url, tree = target
    expand = add_revision(
        tree,
        "add_test_only_short_name",
        "ALTER TABLE organizations ADD COLUMN test_only_short_name text;\n",
        "-- Destructive: yes\nALTER TABLE organizations DROP COLUMN test_only_short_name;\n",
    )
    contract = add_revision(
        tree,
        "drop_test_only_short_name",
        "-- Phase: contract\n-- Destructive: yes\n"
        "ALTER TABLE organizations DROP COLUMN test_only_short_name;\n",
        "ALTER TABLE organizations ADD COLUMN test_only_short_name text;\n",
    )
    result = subprocess.run(
        [sys.executable, "-m", "migration_runner.cli", "rehearse", "--tree", str(tree)],
        env=clean_environ(DATABASE_URL=url, MIGRATION_PHASE="expand"),
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{expand}: applied in" in result.stdout and f"{contract}: applied" not in result.stdout
    assert f"held back {contract}" in result.stderr
    assert "rehearsal passed: 1 revision(s) applied" in result.stdout
    assert current_version(url) == HEAD
