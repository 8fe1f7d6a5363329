"""Alembic prepares the next revision while the server runs this one, and nothing else changes.

Each revision's string (its file, its history row, its version change, the commit) is sent
from a thread of the run's own (migration_runner/steps/revision_sender.py), and the strings
waiting when the server answers go in one round trip. These prove that the overlap happens,
and that the server still runs one revision at a time, each in its own transaction: a
failure stops the run before the next revision runs, whatever kind it is, and names its own
file, also inside a round trip shared with the revisions around it.
"""

import threading
import time

import pytest
from sqlalchemy.engine import make_url

from support.database import current_version, public_tables, query
from support.processes import run_alembic, run_python, start_alembic
from support.project import HEAD, add_revision
from support.query_proxy import carried, proxied_alembic

SLOW = "-- test-only: a revision the server takes two seconds over.\nSELECT pg_sleep(2);\n"
NEXT_TABLE = "CREATE TABLE test_only_after (id integer);\n"
THIRD_TABLE = "CREATE TABLE test_only_third (id integer);\n"
NEXT_KINDS = {
    "transactional": NEXT_TABLE,
    "non-transactional": "-- Transaction: none\n" + NEXT_TABLE,
}


def _sleeping(url: str) -> bool:
    """Whether a backend other than ours runs the slow revision's string right now."""
    rows = query(
        url,
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(2)%'"
        " AND pid <> pg_backend_pid() AND state = 'active'",
    )
    return rows[0][0] > 0


def test_alembic_reaches_the_next_revisions_while_the_server_runs_this_one(database_url, tree_copy):
    """Several strings wait or run at once (revision_sender.DEPTH): while the slow revision
    runs, the next one's string is handed over and Alembic goes on to the one after it."""
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    add_revision(tree_copy, "slow", SLOW, "SELECT 1;\n")
    after = add_revision(tree_copy, "after", NEXT_TABLE, "DROP TABLE test_only_after;\n")
    third = add_revision(tree_copy, "third", THIRD_TABLE, "DROP TABLE test_only_third;\n")
    # A new interpreter: its output can be read line by line as it comes.
    migration = start_alembic(
        "upgrade", "head", url=database_url, tree=tree_copy, fresh_interpreter=True
    )
    seen, output = None, []
    deadline = time.monotonic() + 60
    while seen is None and time.monotonic() < deadline:
        line = migration.stdout.readline()
        if not line:
            break
        output.append(line)
        if f"Running upgrade {after} -> {third}" in line:
            seen = _sleeping(database_url)  # the slow string, still on the server
    rest, _ = migration.communicate(timeout=60)
    assert migration.returncode == 0, "".join(output) + rest
    assert seen is True, "Alembic reached the revisions after the slow one only once it ended"
    assert current_version(database_url) == third
    assert {"test_only_after", "test_only_third"} <= public_tables(database_url)


@pytest.mark.parametrize("kind", sorted(NEXT_KINDS))
def test_a_failed_revision_stops_the_run_before_the_next_is_sent(database_url, tree_copy, kind):
    """The slow revision fails on the server (statement_timeout, not retried) while Alembic
    already prepares the next two: the run fails with its message, and neither ran."""
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    slow = add_revision(tree_copy, "slow", SLOW, "SELECT 1;\n")
    add_revision(tree_copy, "after", NEXT_KINDS[kind], "DROP TABLE test_only_after;\n")
    add_revision(tree_copy, "third", THIRD_TABLE, "DROP TABLE test_only_third;\n")
    result = run_alembic(
        "-x", "statement-timeout=500ms", "upgrade", "head", url=database_url, tree=tree_copy
    )
    assert result.returncode != 0
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1, result.stdout
    assert failed[0].startswith(f"FAILED: sql/up/{slow}_slow.sql failed: "), failed[0]
    assert "canceling statement due to statement timeout" in failed[0]
    assert "Traceback" not in result.stdout
    assert current_version(database_url) == HEAD
    assert not {"test_only_after", "test_only_third"} & public_tables(database_url)
    assert query(
        database_url, "SELECT count(*) FROM migration_history WHERE revision > :head", head=HEAD
    ) == [(0,)]


def test_the_run_ends_its_sender_thread(database_url, tree_copy):
    """A program that migrates from Python keeps no thread of the run's."""
    add_revision(tree_copy, "after", NEXT_TABLE, "DROP TABLE test_only_after;\n")
    script = (
        "import threading\nfrom alembic import command\nfrom alembic.config import Config\n"
        "before = threading.active_count()\n"
        f"command.upgrade(Config({str(tree_copy / 'alembic.ini')!r}), 'head')\n"
        "print('threads', before, threading.active_count())\n"
    )
    result = run_python(script, tree=tree_copy, url=database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "threads 1 1" in result.stdout, result.stdout + result.stderr
    assert "test_only_after" in public_tables(database_url)


# A revision the server takes a second over: the revisions after it wait for it together.
FIRST_SLOW = "-- test-only: the revisions after this one wait for it.\nSELECT pg_sleep(1);\n"
QUICK = "-- test-only\nCREATE TABLE test_only_{name} (id integer);\n"


SLUGS = ("first_slow", "before", "middle", "behind")


def _waiting_revisions(tree, middle: str) -> list[str]:
    """On top of head: a slow revision, then a quick one, middle, and another quick one. The
    sender takes what was handed over when it first runs, and the rest waits for the slow
    one to end: middle goes in a round trip with the revision before it, after it, or both."""
    return [
        add_revision(tree, "first_slow", FIRST_SLOW, "SELECT 1;\n"),
        add_revision(tree, "before", QUICK.format(name="before"), "DROP TABLE test_only_before;"),
        add_revision(tree, "middle", middle, "SELECT 1;\n"),
        add_revision(tree, "behind", QUICK.format(name="behind"), "DROP TABLE test_only_behind;"),
    ]


def _up_file(revisions: list[str], revision: str) -> str:
    return f"sql/up/{revision}_{SLUGS[revisions.index(revision)]}.sql"


def _round_trip_of(sent: list[str], revision: str) -> list[str]:
    """The revisions whose strings went in the round trip that carried revision's, in order
    (its first try's: a rerun sends each statement alone)."""
    for sql in sent:
        if revision in (revisions := carried(sql)):
            return revisions
    return []


def _shares_a_round_trip(sent: list[str], revision: str) -> list[str]:
    trip = _round_trip_of(sent, revision)
    assert len(trip) > 1, f"{revision} went alone:\n" + "\n---\n".join(sent)
    return trip


def test_revisions_waiting_for_the_server_share_a_round_trip_and_commit_one_by_one(
    database_url, tree_copy
):
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    revisions = _waiting_revisions(tree_copy, QUICK.format(name="middle"))
    result, sent = proxied_alembic(database_url, tree_copy, "upgrade", "head")
    assert result.returncode == 0, result.stdout
    _shares_a_round_trip(sent, revisions[2])
    assert current_version(database_url) == revisions[-1]
    rows = query(
        database_url,
        "SELECT revision, xmin::text FROM migration_history WHERE revision > :head ORDER BY id",
        head=HEAD,
    )
    assert [revision for revision, _ in rows] == revisions
    assert len({transaction for _, transaction in rows}) == 4, rows  # a commit each
    assert {f"test_only_{name}" for name in ("before", "middle", "behind")} <= public_tables(
        database_url
    )


def _failed_line(output: str) -> str:
    failed = [line for line in output.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1, output
    assert "Traceback" not in output, output
    return failed[0]


def _applied_through(url: str, revision: str) -> None:
    """The run stopped after revision: its history and tables, nothing of the ones after."""
    assert current_version(url) == revision
    tables = public_tables(url)
    assert "test_only_before" in tables
    assert not {"test_only_middle", "test_only_behind"} & tables
    assert [row[0] for row in query(url, "SELECT revision FROM migration_history ORDER BY id")][
        -1
    ] == revision


def test_a_revision_failing_inside_a_shared_round_trip_is_named(database_url, tree_copy):
    """statement_timeout is not retried, so its message is the run's: it names the middle
    file, which PostgreSQL does not say; the revisions before it stay committed."""
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    revisions = _waiting_revisions(tree_copy, "-- test-only\nSELECT pg_sleep(3);\n")
    result, sent = proxied_alembic(
        database_url, tree_copy, "-x", "statement-timeout=2s", "upgrade", "head"
    )
    assert result.returncode != 0
    _shares_a_round_trip(sent, revisions[2])
    failed = _failed_line(result.stdout)
    assert failed.startswith(f"FAILED: sql/up/{revisions[2]}_middle.sql failed: "), failed
    assert "canceling statement due to statement timeout" in failed
    _applied_through(database_url, revisions[1])


def test_an_unknown_name_inside_a_shared_round_trip_is_named_before_the_rerun(
    database_url, tree_copy
):
    """PostgreSQL places an unknown column in the string it was sent, which names the file;
    the rerun one statement at a time starts after the revision before it and names the line."""
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    revisions = _waiting_revisions(
        tree_copy, "-- test-only\nSELECT 1;\nSELECT test_only_missing FROM organizations;\n"
    )
    result, sent = proxied_alembic(database_url, tree_copy, "upgrade", "head")
    assert result.returncode != 0
    _shares_a_round_trip(sent, revisions[2])
    middle = f"sql/up/{revisions[2]}_middle.sql"
    unknown = 'column "test_only_missing" does not exist'
    first_try = [line for line in result.stdout.splitlines() if "one statement at a time" in line]
    assert len(first_try) == 1 and f"{middle} failed: " in first_try[0], result.stdout
    assert unknown in first_try[0]
    failed = _failed_line(result.stdout)
    assert failed.startswith(f"FAILED: {middle} line 3 failed: ") and unknown in failed, failed
    _applied_through(database_url, revisions[1])


@pytest.mark.parametrize("reachable", [True, False], ids=["server-reachable", "database-closed"])
def test_a_connection_lost_inside_a_shared_round_trip_names_what_it_can(
    postgres_server, database_url, tree_copy, reachable
):
    """The run's backend is ended while the middle revision sleeps. A connection of its own
    reads which revisions committed, so the message names the middle file; when the database
    takes no connections either, it names the span of files the round trip carried. While it
    sleeps, pg_stat_activity shows the start of the string: the span's first file."""
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    middle = "-- test-only\nSELECT pg_sleep(30);\n"
    revisions = _waiting_revisions(tree_copy, middle)
    name = make_url(database_url).database
    # Found by what it waits on: pg_stat_activity keeps only the start of a long string.
    sleeping = (
        "SELECT pid, query FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
        " AND datname = current_database() AND pid <> pg_backend_pid()"
    )
    seen = []

    def end_the_run() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the middle revision sleeps, the one before it done
            if current_version(database_url) == revisions[1]:
                if pids := query(database_url, sleeping):
                    break
            time.sleep(0.05)
        if not reachable:
            query(postgres_server.admin_url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        for pid, text in pids:
            seen.append(text)
            query(postgres_server.admin_url, "SELECT pg_terminate_backend(:pid)", pid=pid)

    ender = threading.Thread(target=end_the_run)
    ender.start()
    try:
        result, sent = proxied_alembic(database_url, tree_copy, "upgrade", "head")
    finally:
        ender.join()
        query(postgres_server.admin_url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert result.returncode != 0
    failed = _failed_line(result.stdout)
    trip = _shares_a_round_trip(sent, revisions[2])
    if reachable:
        where = _up_file(revisions, revisions[2])
    else:
        where = f"one of {_up_file(revisions, trip[0])} to {_up_file(revisions, trip[-1])}"
    assert failed.startswith(f"FAILED: {where} failed: "), failed
    _applied_through(database_url, revisions[1])
    # What a DBA sees meanwhile: the start of the string, the first file the round trip carried.
    files = [FIRST_SLOW, QUICK.format(name="before"), middle, QUICK.format(name="behind")]
    assert len(seen) == 1 and seen[0].startswith(files[revisions.index(trip[0])]), seen
