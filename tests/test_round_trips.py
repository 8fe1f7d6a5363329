"""What a run costs in round trips: each revision's, the run's own, a no-op's.

On a fast server a revision's SQL takes a millisecond or two, so every round
trip the runner adds around it shows in a deploy's time (ISSUE 20: with a
commit per revision taking eleven round trips, a run cost 2x psql's time). The
count is taken where the server would see it: a proxy
between the runner and PostgreSQL counts the client's simple-query messages
(psycopg2 sends nothing else), so psycopg2's own BEGIN and COMMIT count too.
A run of N revisions on top of head is measured at two sizes; the difference
is the cost of a revision, the rest the fixed cost of a run.
"""

import socket
import struct
import threading
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url

from support.database import current_version, query
from support.processes import run_alembic
from support.project import HEAD, add_revision

# What a transactional revision costs besides the round trip that carries its SQL file:
# nothing. The file, its history row, Alembic's alembic_version UPDATE, the commit, the lock
# hand-over and the next transaction's timeouts are one string. It was 11 before ISSUE 20,
# then 2 (the version UPDATE, and the rest as one string after the file).
PER_REVISION = 0
# The statements of a revision's string besides its file's: the prepared history row, version
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
SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104


def up(slug: str) -> str:
    return (
        f"-- test-only: a table with a GIN index, as the benchmark's revisions.\n"
        f"CREATE TABLE test_only_{slug} (doc jsonb NOT NULL DEFAULT '{{}}');\n"
        f"CREATE INDEX test_only_{slug}_doc_idx ON test_only_{slug} USING gin (doc);\n"
    )


def down(slug: str) -> str:
    return f"-- test-only\nDROP TABLE test_only_{slug};\n"


@dataclass
class Queries:
    """The simple-query messages clients sent through the proxy, in order."""

    sent: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, text: str) -> None:
        with self.lock:
            self.sent.append(text)

    def taken(self) -> list[str]:
        with self.lock:
            sent, self.sent = self.sent, []
        return sent


class Proxy:
    """A loopback TCP proxy to PostgreSQL that records each query message a client sends."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.queries = Queries()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.upstream) as server:
            startup = self._startup(client)
            if startup is None:
                return
            server.sendall(startup)
            threading.Thread(target=_pump, args=(server, client), daemon=True).start()
            pending = b""
            while chunk := client.recv(65536):
                server.sendall(chunk)
                pending += chunk
                while len(pending) >= 5:
                    kind, length = pending[:1], struct.unpack("!i", pending[1:5])[0]
                    if len(pending) < 1 + length:
                        break
                    if kind == b"Q":
                        self.queries.add(pending[5 : 1 + length].rstrip(b"\0").decode())
                    pending = pending[1 + length :]

    @staticmethod
    def _startup(client: socket.socket) -> bytes | None:
        """The startup message, after refusing SSL and GSS encryption (loopback, plain text)."""
        while True:
            head = _exactly(client, 8)
            if head is None:
                return None
            length, code = struct.unpack("!ii", head)
            if code not in (SSL_REQUEST, GSSENC_REQUEST):
                rest = _exactly(client, length - 8)
                return None if rest is None else head + rest
            client.sendall(b"N")


def _exactly(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        try:
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def counted_upgrade(url: str, tree, variable: str = "DATABASE_URL_UNPOOLED") -> list[str]:
    """`alembic upgrade head` through the proxy, its URL in variable (a direct URL's by
    default, as a deploy's); the queries sent."""
    target = make_url(url)
    proxy = Proxy((target.host or "127.0.0.1", target.port or 5432))
    try:
        through = target.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False
        )
        result = run_alembic("upgrade", "head", tree=tree, env={variable: through})
        assert result.returncode == 0, result.stdout
        return proxy.queries.taken()
    finally:
        proxy.close()


def shown(queries: list[str]) -> str:
    """One line per round trip, its statements' starts joined by |."""
    return "\n".join(
        "  " + " | ".join(" ".join(part.split())[:60] for part in sql.split(";\n"))
        for sql in queries
    )


def add_revisions(tree, count: int, start: int) -> list[str]:
    """count transactional revisions on top of the tree's head, each a table and its index."""
    return [
        add_revision(tree, f"table_{i}", up(f"table_{i}"), down(f"table_{i}"))
        for i in range(start, start + count)
    ]


def test_a_revision_costs_one_round_trip(database_url, tree_copy):
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    add_revisions(tree_copy, 2, start=1)
    two = counted_upgrade(database_url, tree_copy)
    added = add_revisions(tree_copy, 4, start=3)
    four = counted_upgrade(database_url, tree_copy)
    assert current_version(database_url) == added[-1]

    per_revision = (len(four) - len(two)) / 2 - 1  # less the revision's own file
    fixed = len(two) - 2 * (per_revision + 1)
    assert per_revision <= PER_REVISION, (
        f"{per_revision:g} round trips per revision besides its file (at most {PER_REVISION});"
        f" a run of 4 revisions sent:\n{shown(four)}"
    )
    last = four[-3]  # before the DEALLOCATE and the run's COMMIT
    assert last.startswith("-- test-only"), shown(four)
    statements = last.split("\n;\n", 1)[1].count(";\n")  # after the file's end
    assert statements <= PER_REVISION_STATEMENTS, (
        f"{statements} statements after a revision's file (at most {PER_REVISION_STATEMENTS}):"
        f"\n{last}"
    )
    assert fixed <= PER_RUN, (
        f"{fixed:g} round trips for a run besides its revisions' (at most {PER_RUN}); a run of 2"
        f" revisions sent:\n{shown(two)}"
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
