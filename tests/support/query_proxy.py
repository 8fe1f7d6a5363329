"""A loopback proxy in front of PostgreSQL that records the query messages a client sends.

What a run costs in round trips, and what went in each, taken where the server would see
it: psycopg2 sends simple-query messages only, so its own BEGIN and COMMIT count too.
"""

import re
import socket
import struct
import sys
import threading
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url

from support.processes import run_alembic
from support.project import ROOT

sys.path.insert(0, str(ROOT))  # bench/ is a folder of the repository, not an installed package
from bench.network import LoopbackProxy

SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104


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


class Proxy(LoopbackProxy):
    """A loopback TCP proxy to PostgreSQL that records each query message a client sends."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.queries = Queries()
        super().__init__()

    def serve(self, client: socket.socket) -> None:
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


def proxied_alembic(
    url: str, tree, *arguments: str, variable: str = "DATABASE_URL_UNPOOLED"
) -> tuple[object, list[str]]:
    """`alembic <arguments>` through the proxy, its URL in variable (a direct URL's by
    default, as a deploy's): the finished process, and the queries it sent."""
    target = make_url(url)
    proxy = Proxy((target.host or "127.0.0.1", target.port or 5432))
    try:
        through = target.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False
        )
        result = run_alembic(*arguments, tree=tree, env={variable: through})
        return result, proxy.queries.taken()
    finally:
        proxy.close()


def counted_upgrade(url: str, tree, variable: str = "DATABASE_URL_UNPOOLED") -> list[str]:
    """`alembic upgrade head` through the proxy, which must succeed; the queries sent."""
    result, sent = proxied_alembic(url, tree, "upgrade", "head", variable=variable)
    assert result.returncode == 0, result.stdout
    return sent


def shown(queries: list[str]) -> str:
    """One line per round trip, its statements' starts joined by |."""
    return "\n".join(
        "  " + " | ".join(" ".join(part.split())[:60] for part in sql.split(";\n"))
        for sql in queries
    )


def carried(sql: str) -> list[str]:
    """The revisions whose commit strings a query message carried, in order (a direct run's
    prepared hand-over names each: steps/prepared_handover.py)."""
    return re.findall(r"EXECUTE migration_runner_commit\('(\w+)'", sql)
