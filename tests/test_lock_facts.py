"""Every row of lock_facts.FACTS holds on this PostgreSQL: its locks, rewrite and scan.

Each kind runs on the fixture tables (lock_facts.FIXTURE, ROWS rows each) in a
database of its own. Session 1 runs the statement; session 2 reads session 1's
granted locks from pg_locks while they are held: inside session 1's open
transaction, or, for a statement that cannot run in a transaction
(CONCURRENTLY), while it waits behind session 3's open write transaction on
the table. Each locked relation or object is mapped back to its role, and the
strongest mode per role must be the fact's. The table's relfilenode must
change if and only if the fact says it rewrites; the rows PostgreSQL counts
as read from the table (seq_tup_read, flushed with pg_stat_force_next_flush)
must be all of them if it scans and none if not; and where the fact has a
violating row, that row must make the statement fail if and only if it scans.
"""

import threading
import time
from contextlib import closing
from dataclasses import dataclass

import psycopg2
import pytest
from sqlalchemy import Column, DateTime, Text, Uuid
from sqlalchemy import text as sql_text

from migration_runner.tools.autogenerate.lock_facts import (
    BLOCKS,
    FACTS,
    FIXTURE,
    MODES,
    ROWS,
    add_column_kind,
    add_column_rewrites,
    added_column_rewrites,
)
from migration_runner.tools.autogenerate.lock_facts import describe as described
from support.database import engine_for, fresh_database, libpq_dsn

# On both versions in make test: each version's own lock levels and rewrites are the facts proven.
pytestmark = pytest.mark.every_version

NAMES = {
    "table": "facts_child",
    "referenced": "facts_parent",
    "index": "facts_child_idx",
    "sequence": "facts_seq",
    "view": "facts_view",
    "type": "facts_mood",
    "function": "facts_touch",
}
ALWAYS_CHECKED = {"table", "referenced"}
ADD_COLUMN = "ALTER TABLE {table} ADD COLUMN "
RELATIONS = ("table", "referenced", "index", "sequence", "view")
# Each role's object after setup, found by name: (locktype, class of object, oid) as pg_locks
# writes it (a relation's class is NULL there).
OBJECTS = """
SELECT role, locktype, classid, oid FROM (VALUES
    ('table', 'relation', NULL::oid, to_regclass(%(table)s)::oid),
    ('referenced', 'relation', NULL, to_regclass(%(referenced)s)::oid),
    ('index', 'relation', NULL, to_regclass(%(index)s)::oid),
    ('sequence', 'relation', NULL, to_regclass(%(sequence)s)::oid),
    ('view', 'relation', NULL, to_regclass(%(view)s)::oid),
    ('type', 'object', 'pg_type'::regclass::oid, to_regtype(%(type)s)::oid),
    ('function', 'object', 'pg_proc'::regclass::oid, to_regprocedure(%(function)s || '()')::oid)
) AS roles (role, locktype, classid, oid)
WHERE oid IS NOT NULL
"""
HELD = """
SELECT locktype, classid, coalesce(relation, objid), mode FROM pg_locks
WHERE pid = %s AND granted AND locktype IN ('relation', 'object')
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
WAITING = "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted"


def filled(sql: str) -> str:
    return sql.format(**NAMES)


def connect(url: str):
    connection = psycopg2.connect(libpq_dsn(url))
    connection.autocommit = True
    return connection


def run(connection, sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def mode_name(pg_mode: str) -> str:
    """PostgreSQL's AccessExclusiveLock as the docs write it: ACCESS EXCLUSIVE."""
    words, word = [], ""
    for character in pg_mode.removesuffix("Lock"):
        if character.isupper() and word:
            words.append(word)
            word = ""
        word += character
    return " ".join([*words, word]).upper()


def rows_read(connection) -> dict[int, int]:
    """seq_tup_read of every user table, as flushed (pg_stat_force_next_flush)."""
    run(connection, "SELECT pg_stat_clear_snapshot()")
    return dict(run(connection, "SELECT relid, seq_tup_read FROM pg_stat_user_tables"))


def flush_stats(connection) -> None:
    """The session's pending statistics are in the shared ones when this returns: the backend
    flushes them, forced, before it reports being idle."""
    run(connection, "SELECT pg_stat_force_next_flush()")


def relfilenodes(connection, oids: list[int]) -> dict[int, int]:
    return dict(
        run(connection, "SELECT oid, relfilenode FROM pg_class WHERE oid = ANY(%s)", (oids,))
    )


@dataclass
class Observed:
    locks: dict[str, str]  # role -> strongest mode held
    rewritten: dict[str, bool]  # relation role -> relfilenode changed
    read: int  # rows of {table} read by the statement


def observe(url: str, kind: str) -> Observed:
    fact = FACTS[kind]
    with closing(connect(url)) as one, closing(connect(url)) as two, closing(connect(url)) as three:
        for sql in [*FIXTURE, *fact.setup]:
            run(one, filled(sql))
        roles = {
            (locktype, classid, oid): role
            for role, locktype, classid, oid in run(two, OBJECTS, NAMES)
        }
        relations = {role: oid for (_, _, oid), role in roles.items() if role in RELATIONS}
        before = relfilenodes(two, list(relations.values()))
        flush_stats(one)
        read_before = rows_read(two).get(relations["table"], 0)
        pid = one.get_backend_pid()
        if fact.transactional:
            run(one, "BEGIN")
            run(one, filled(fact.example))
            held = run(two, HELD, (pid,))
            after = relfilenodes(one, list(relations.values()))  # its own transaction's view
            run(one, "COMMIT")
        else:
            held = held_while_waiting(one, two, three, fact.example)
            after = relfilenodes(one, list(relations.values()))
        flush_stats(one)
        read = rows_read(two).get(relations["table"], read_before) - read_before
    strongest: dict[str, str] = {}
    for locktype, classid, oid, pg_mode in held:
        role = roles.get((locktype, classid if locktype == "object" else None, oid))
        mode = mode_name(pg_mode)
        if role and MODES.index(mode) >= MODES.index(strongest.get(role, mode)):
            strongest[role] = mode
    rewritten = {
        role: after.get(oid) is not None and after[oid] != before[oid]
        for role, oid in relations.items()
    }
    return Observed(strongest, rewritten, read)


def held_while_waiting(one, two, three, example: str) -> list[tuple]:
    """Session 1's locks while its statement waits behind session 3's open write transaction
    on the table (CREATE INDEX CONCURRENTLY waits for writers, DROP INDEX CONCURRENTLY for
    every transaction that uses the table); then session 3 ends and the statement finishes."""
    run(three, "BEGIN")
    run(three, filled("LOCK TABLE {table} IN ROW EXCLUSIVE MODE"))
    failure: list[BaseException] = []

    def statement() -> None:
        try:
            run(one, filled(example))
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            failure.append(error)

    thread = threading.Thread(target=statement)
    thread.start()
    pid = one.get_backend_pid()
    deadline = time.monotonic() + 30
    while run(two, WAITING, (pid,))[0][0] == 0:
        assert thread.is_alive() and time.monotonic() < deadline, (
            f"{example} never waited on the open transaction ({failure})"
        )
        time.sleep(0.02)
    held = run(two, HELD, (pid,))
    run(three, "COMMIT")
    thread.join(60)
    assert not failure, failure
    return held


@pytest.mark.parametrize("kind", sorted(FACTS))
def test_fact_holds(postgres_server, kind):
    fact = FACTS[kind]
    with fresh_database(postgres_server) as url:
        observed = observe(url, kind)
    checked = ALWAYS_CHECKED | set(fact.locks)
    assert {r: m for r, m in observed.locks.items() if r in checked} == fact.locks
    assert observed.rewritten["table"] is fact.rewrites
    assert not observed.rewritten["referenced"]
    if fact.scans:
        assert observed.read >= ROWS
    else:
        assert observed.read == 0


VIOLATED = sorted(kind for kind, fact in FACTS.items() if fact.violation)


@pytest.mark.parametrize("kind", VIOLATED)
def test_a_violating_row_fails_the_statement_iff_it_scans(postgres_server, kind):
    fact = FACTS[kind]
    with fresh_database(postgres_server) as url, closing(connect(url)) as one:
        for sql in [*FIXTURE, fact.violation, *fact.setup]:
            run(one, filled(sql))
        try:
            run(one, filled(fact.example))
        except psycopg2.Error as error:
            failed = error.pgcode
        else:
            failed = None
    if fact.scans:
        assert failed in {"23502", "23503", "23505", "23514"}  # not-null, FK, unique, check
    else:
        assert failed is None


def test_set_not_null_skips_its_scan_when_a_valid_check_proves_it(postgres_server):
    """PostgreSQL says so at DEBUG1 when a CHECK proves the column has no NULL; the plain
    SET NOT NULL, without one, does not."""
    said = {}
    for kind in ("set_not_null", "set_not_null_proven_by_check"):
        fact = FACTS[kind]
        with fresh_database(postgres_server) as url, closing(connect(url)) as one:
            for sql in [*FIXTURE, *fact.setup]:
                run(one, filled(sql))
            run(one, "SET client_min_messages = debug1")
            del one.notices[:]
            run(one, filled(fact.example))
            said[kind] = " ".join(one.notices)
    proven = "are sufficient to prove that it does not contain nulls"
    assert proven in said["set_not_null_proven_by_check"]
    assert proven not in said["set_not_null"]


@pytest.mark.parametrize("mode", MODES)
def test_what_each_mode_blocks(postgres_server, mode):
    """BLOCKS, which describe() quotes, against a second session's SELECT and INSERT."""
    with (
        fresh_database(postgres_server) as url,
        closing(connect(url)) as one,
        closing(connect(url)) as two,
    ):
        run(one, filled(FIXTURE[2]))
        run(one, "BEGIN")
        run(one, filled(f"LOCK TABLE {{table}} IN {mode} MODE"))
        run(two, "SET lock_timeout = '200ms'")
        blocked = set()
        for action, sql in (
            ("reads", "SELECT count(*) FROM {table}"),
            ("writes", "INSERT INTO {table} (id) VALUES (1)"),
        ):
            try:
                run(two, filled(sql))
            except psycopg2.errors.LockNotAvailable:
                blocked.add(action)
        run(one, "ROLLBACK")
    expected = {
        "blocks neither reads nor writes": set(),
        "blocks writes, not reads": {"writes"},
        "blocks reads and writes": {"reads", "writes"},
    }[BLOCKS[mode]]
    assert blocked == expected


def test_rewriting_means_reading_every_row():
    assert all(fact.scans for fact in FACTS.values() if fact.rewrites)


def test_describe_says_the_locks_rewrite_and_scan():
    assert described("comment_on_column", "users") == (
        "takes SHARE UPDATE EXCLUSIVE on users (blocks neither reads nor writes), briefly: "
        "no rewrite, no scan"
    )
    assert described("add_foreign_key_not_valid", "users", "organizations") == (
        "takes SHARE ROW EXCLUSIVE on users (blocks writes, not reads) and SHARE ROW EXCLUSIVE "
        "on organizations (blocks writes, not reads), briefly: no rewrite, no scan"
    )
    assert described("add_column_identity", "users") == (
        "takes ACCESS EXCLUSIVE on users (blocks reads and writes), and rewrites users while "
        "it holds it"
    )
    assert described("validate_check", "users") == (
        "takes SHARE UPDATE EXCLUSIVE on users (blocks neither reads nor writes), and reads "
        "every row of users while it holds it"
    )
    assert described("rename_index", "users", index="users_email_idx").startswith(
        "takes SHARE UPDATE EXCLUSIVE on users_email_idx"
    )
    assert (
        described("create_enum", "users") == "locks no existing table, rewrites and reads nothing"
    )


def test_add_column_kind_names_the_fact_of_each_column():
    """Each answer is a row test_fact_holds proves: a volatile default, identity, generated
    and serial columns rewrite; a constant or stable default does not."""
    assert add_column_kind() == "add_column_nullable"
    assert add_column_kind(default="constant") == "add_column_constant_default"
    assert add_column_kind(default="constant", not_null=True) == "add_column_not_null_default"
    assert add_column_kind(default="volatile") == "add_column_volatile_default"
    assert add_column_kind(identity=True, not_null=True) == "add_column_identity"
    assert add_column_kind(generated=True) == "add_column_generated_stored"
    assert add_column_kind(serial=True) == "add_column_serial"
    rewriting = {
        "add_column_volatile_default",
        "add_column_random_uuid_default",
        "add_column_identity",
        "add_column_generated_stored",
        "add_column_serial",
    }
    assert {kind for kind in FACTS if kind.startswith("add_column") and FACTS[kind].rewrites} == (
        rewriting
    )


ADDED = sorted(kind for kind in FACTS if FACTS[kind].example.startswith(ADD_COLUMN))


@pytest.mark.parametrize("kind", ADDED)
def test_postgresql_says_which_added_columns_rewrite_as_the_facts_prove(postgres_server, kind):
    """add_column_rewrites, asked on an empty probe table, agrees with the relfilenode of the
    fixture table with its rows (test_fact_holds) for every ADD COLUMN kind."""
    with fresh_database(postgres_server) as url:
        with closing(connect(url)) as one:
            for sql in FIXTURE:
                run(one, filled(sql))
        engine = engine_for(url)
        try:
            with engine.begin() as connection:
                ddl = filled(FACTS[kind].example).removeprefix(filled(ADD_COLUMN))
                answer = add_column_rewrites(connection, "added", ddl, like=NAMES["table"])
                # Rolled back: the probe left nothing behind, and the transaction goes on.
                assert (
                    connection.exec_driver_sql(
                        "SELECT to_regclass('pg_temp.lock_facts_probe')"
                    ).scalar()
                    is None
                )
        finally:
            engine.dispose()
    assert answer is FACTS[kind].rewrites


def test_a_column_postgresql_cannot_add_to_the_probe_is_not_answered(database_url):
    engine = engine_for(database_url)
    try:
        with engine.begin() as connection:
            assert add_column_rewrites(connection, "mood", "mood not_yet_created_type") is None
            assert connection.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        engine.dispose()


def test_a_models_column_is_asked_as_autogenerate_adds_it(database_url):
    """The column as the models declare it (a server default, a name that needs quotes, a
    table whose name needs quotes): PostgreSQL's answer for each default the facts prove."""
    columns = {
        Column("Plan", Text, server_default="free", nullable=False): False,
        Column("seen at", DateTime(timezone=True), server_default=sql_text("now()")): False,
        Column(
            "seen at", DateTime(timezone=True), server_default=sql_text("clock_timestamp()")
        ): True,
        Column("key", Uuid, server_default=sql_text("gen_random_uuid()")): True,
        Column("note", Text): False,
    }
    engine = engine_for(database_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql('CREATE TABLE "foobar fk" (id integer)')
            answers = {
                column: added_column_rewrites(connection, "foobar fk", column) for column in columns
            }
    finally:
        engine.dispose()
    assert answers == columns
