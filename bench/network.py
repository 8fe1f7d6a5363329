"""A run from base over a network, where every round trip costs (section 6 of `make bench`).

Sections 1 and 2 talk to a server on loopback, where a round trip costs a few tens of
microseconds. A deploy reaches Vercel Postgres, or any managed server, over a network:
from a function or a CI runner in the same region a round trip takes about a millisecond
or two, from farther away tens. Here each tool's connection goes through a loopback proxy
that holds every chunk of bytes DELAY before passing it on, each way, so a round trip
costs 2 x DELAY more; what a tool's run pays for its round trips shows beside psql's.
"""

import queue
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from bench import scenarios
from bench.measure import clean_env, median, timed

DELAY = 0.001  # each way: a round trip 2 ms longer, a server in the same region
SIZE = 300
TOOLS = ("psql", "ours", "plain", "dbmate")


class LoopbackProxy:
    """A listener on a free loopback port that hands each client it accepts to serve(), in a
    thread of its own, until close()."""

    def __init__(self) -> None:
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
            threading.Thread(target=self.serve, args=(client,), daemon=True).start()

    def serve(self, client: socket.socket) -> None:
        raise NotImplementedError


class DelayingProxy(LoopbackProxy):
    """A loopback TCP proxy to a port on 127.0.0.1 that delays every chunk by delay, each way;
    bytes keep their order and nothing waits for anything else (a chunk due later queues)."""

    def __init__(self, upstream_port: int, delay: float) -> None:
        self.upstream, self.delay = upstream_port, delay
        super().__init__()

    def serve(self, client: socket.socket) -> None:
        server = socket.create_connection(("127.0.0.1", self.upstream))
        for end in (client, server):
            end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._relay(client, server)
        self._relay(server, client)

    def _relay(self, source: socket.socket, target: socket.socket) -> None:
        due: queue.Queue = queue.Queue()

        def read() -> None:
            try:
                while chunk := source.recv(65536):
                    due.put((time.monotonic() + self.delay, chunk))
            except OSError:
                pass
            due.put((time.monotonic() + self.delay, b""))

        def write() -> None:
            while True:
                when, chunk = due.get()
                time.sleep(max(0.0, when - time.monotonic()))
                try:
                    if not chunk:
                        target.shutdown(socket.SHUT_WR)
                        return
                    target.sendall(chunk)
                except OSError:
                    return

        threading.Thread(target=read, daemon=True).start()
        threading.Thread(target=write, daemon=True).start()


@dataclass
class Proxied:
    """What scenarios.build_tools reads of a bench Server, with URLs through the proxy."""

    server: object
    port: int

    @property
    def local(self):
        return self.server.local

    def url(self, database: str) -> str:
        direct = make_url(self.server.url(database))
        return direct.set(port=self.port).render_as_string(hide_password=False)


@dataclass
class Network:
    """Seconds of each tool's runs from base at size through the proxy, and their labels."""

    size: int
    delay: float
    times: dict[str, list[float]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    def median(self, name: str) -> float | None:
        return median(self.times[name]) if self.times.get(name) else None


def chosen(tools: list, only: set[str] | None) -> list:
    """The tools this section runs: those of TOOLS that `--tools` (only) selects."""
    return scenarios.selected([tool for tool in tools if tool.name in TOOLS], only)


def measure(server, sizes, repeats: int, log, only: set[str] | None = None) -> Network:
    """Runs from base of min(SIZE, the largest size) revisions, the tools interleaved; only:
    the tools `--tools` named (psql, the floor, always runs)."""
    size = min(SIZE, max(sizes))
    proxy = DelayingProxy(server.local.port, DELAY)
    found = Network(size, DELAY)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-network-") as temp:
            proxied = Proxied(server, proxy.port)
            tools = scenarios.build_tools(proxied, Path(temp), size, [])
            tools = chosen(tools, only)
            found.labels = {tool.name: tool.label for tool in tools}
            for number in range(repeats):
                for tool in tools:
                    database = f"bench_{tool.name}"
                    server.fresh(database)
                    env = clean_env(DATABASE_URL=proxied.url(database))
                    found.times.setdefault(tool.name, []).append(timed(tool.command, env, tool.cwd))
                    server.drop(database)
                log(f"  network N={size} round {number + 1}/{repeats} done")
    finally:
        proxy.close()
    return found
