"""What a run costs in round trips and in statements: each revision's, the run's own, a no-op's.

On a fast server a revision's SQL takes a millisecond or two, so every round
trip the runner adds around it shows in a deploy's time (ISSUE 20: with a
commit per revision taking eleven round trips, a run cost 2x psql's time). The
count is taken where the server would see it: a proxy
between the runner and PostgreSQL records the client's simple-query messages
(tests/support/query_proxy.py), so psycopg2's own BEGIN and COMMIT count too.
A run of N revisions on top of head is measured at two sizes; the difference
is the cost of a revision, the rest the fixed cost of a run. Revisions waiting
for the server go together in one round trip (steps/revision_sender.py), so how
many do depends on the server's speed: a revision's round trips are bounded
(at most its one string), its statements counted exactly.
"""

import pglast

from support.database import current_version, query
from support.processes import run_alembic
from support.project import HEAD, add_revision
from support.query_proxy import counted_upgrade, shown

# What a transactional revision costs besides the round trip that carries its SQL file:
# nothing. The file, its history row, Alembic's alembic_version UPDATE, the commit, the lock
# hand-over and the next transaction's timeouts are one string, which may share its round
# trip with the revisions after it. It was 11 before ISSUE 20, then 2 (the version UPDATE,
# and the rest as one string after the file).
PER_REVISION = 0
# The statements a revision sends besides its file's: the prepared history row, version
# UPDATE, its check and the bridge; COMMIT; BEGIN; the prepared lock and timeouts. It was 11
# as text (steps/prepared_handover.py).
PER_REVISION_STATEMENTS = 4
# A run that applies revisions, besides them: connecting (6: SQLAlchemy's first-connect
# queries in their own transaction), BEGIN, the lock with the timeouts, the at-head check (2),
# the checksums (2), the preflight's and Alembic's reads of alembic_version (2 each), the
# prepared statements' DEALLOCATE, the last COMMIT. It was 21 with psycopg2's hstore probe (3)
# and a query for the backend's pid.
PER_RUN = 18
# A run with nothing to apply: connecting (6), BEGIN, the lock with the timeouts, the at-head
# check (2), the checksums (2), COMMIT. It was 16 with the hstore probe.
NO_OP = 13
# The statements of each test revision's file (up()).
FILE_STATEMENTS = 2


def up(slug: str) -> str:
    return (
        f"-- test-only: a table with a GIN index, as the benchmark's revisions.\n"
        f"CREATE TABLE test_only_{slug} (doc jsonb NOT NULL DEFAULT '{{}}');\n"
        f"CREATE INDEX test_only_{slug}_doc_idx ON test_only_{slug} USING gin (doc);\n"
    )


def down(slug: str) -> str:
    return f"-- test-only\nDROP TABLE test_only_{slug};\n"


def add_revisions(tree, count: int, start: int) -> list[str]:
    """count transactional revisions on top of the tree's head, each a table and its index."""
    return [
        add_revision(tree, f"table_{i}", up(f"table_{i}"), down(f"table_{i}"))
        for i in range(start, start + count)
    ]


def statements(queries: list[str]) -> int:
    """How many statements the server parsed from these messages (empty ones aside)."""
    return sum(len(pglast.split(sql)) for sql in queries)


def test_a_revision_costs_one_round_trip_at_most_and_four_statements(database_url, tree_copy):
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    add_revisions(tree_copy, 2, start=1)
    two = counted_upgrade(database_url, tree_copy)
    added = add_revisions(tree_copy, 4, start=3)
    four = counted_upgrade(database_url, tree_copy)
    assert current_version(database_url) == added[-1]

    for sent, revisions in ((two, 2), (four, 4)):
        most = PER_RUN + revisions * (PER_REVISION + 1)
        assert len(sent) <= most, (
            f"{len(sent)} round trips for a run of {revisions} revisions (at most {most}: "
            f"{PER_RUN} for the run, {PER_REVISION + 1} for each revision's string):\n{shown(sent)}"
        )
    per_revision = (statements(four) - statements(two)) / 2 - FILE_STATEMENTS
    assert per_revision <= PER_REVISION_STATEMENTS, (
        f"{per_revision:g} statements per revision besides its file's (at most"
        f" {PER_REVISION_STATEMENTS}); a run of 4 revisions sent:\n" + "\n".join(four)
    )


def test_a_run_with_nothing_to_apply_costs_a_few_round_trips(database_url, tree_copy):
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    sent = counted_upgrade(database_url, tree_copy)
    assert current_version(database_url) == HEAD
    assert len(sent) <= NO_OP, f"{len(sent)} round trips (at most {NO_OP}):\n{shown(sent)}"


def test_through_a_pooler_a_revision_costs_one_round_trip(database_url, tree_copy):
    """POSTGRES_URL is Vercel's pooled URL: the run is one transaction, a revision one string
    (its file, its history row and its version UPDATE), the run one COMMIT."""
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    add_revisions(tree_copy, 2, start=1)
    two = counted_upgrade(database_url, tree_copy, "POSTGRES_URL")
    added = add_revisions(tree_copy, 4, start=3)
    four = counted_upgrade(database_url, tree_copy, "POSTGRES_URL")
    assert current_version(database_url) == added[-1]

    per_revision = (len(four) - len(two)) / 2 - 1
    assert per_revision == 0, (
        f"{per_revision:g} round trips per revision besides its file:\n{shown(four)}"
    )
    assert sum("COMMIT" in sent for sent in four) == 1, shown(four)
    # + 1: the progress monitor asks a pooled server for its backend's pid (libpq's is the pooler's)
    assert len(two) - 2 * (per_revision + 1) <= PER_RUN + 1, shown(two)
    history = query(database_url, "SELECT revision FROM migration_history ORDER BY id")
    assert [row[0] for row in history][-4:] == added
