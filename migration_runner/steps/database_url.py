"""Which database to migrate: the URL from the environment, made safe to use and to show.

Vercel Postgres (run by Neon) sets several variables at once. Migrations take
the direct (non-pooled) URL first, as Neon advises, then the pooled ones.
With none of them set, libpq's own PGSERVICE and PG* variables name the
target, as for psql (libpq_environment.py).
"""

import os
from dataclasses import dataclass, field

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from migration_runner.errors import MigrationError
from migration_runner.steps.libpq_environment import libpq_url, libpq_variables_set

# First set wins. Direct URLs before pooled ones.
URL_VARIABLES = (
    "POSTGRES_URL_NON_POOLING",  # Vercel Postgres, direct
    "DATABASE_URL_UNPOOLED",  # Neon integration, direct
    "DATABASE_URL",  # Neon integration (pooled) or any other host
    "POSTGRES_URL",  # Vercel Postgres, pooled
)

# Query parameters that Prisma and other clients add but libpq rejects.
CLIENT_ONLY_PARAMETERS = (
    "pgbouncer",
    "schema",
    "connection_limit",
    "pool_timeout",
    "socket_timeout",
)
# Vercel sets these too, but migrations never use them: the Prisma URL is pooled
# and made for Prisma, the other one is unencrypted.
NEVER_USED = ("POSTGRES_PRISMA_URL", "POSTGRES_URL_NO_SSL")
# sslmodes with which libpq may talk in clear text (prefer is libpq's default).
FALLBACK_SSLMODES = {"disable", "allow", "prefer"}
# Vercel's and Neon's pooled variables; Neon's pooled hosts are ep-NAME-pooler.REGION...
POOLED_VARIABLES = {"POSTGRES_URL"}
# Vercel's and Neon's names for the URL that reaches the server without a pooler.
DIRECT_VARIABLES = {"POSTGRES_URL_NON_POOLING", "DATABASE_URL_UNPOOLED"}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", ""}
DRIVER = "postgresql+psycopg2"
SCHEMES = {"postgres", "postgresql", "postgresql+psycopg2"}
# A query parameter whose name holds one of these carries a secret (password, sslpassword, ...).
SECRET_WORDS = ("password", "secret")
MASK = "***"


def is_secret(parameter: str) -> bool:
    return any(word in parameter.lower() for word in SECRET_WORDS)


def masked(url: URL) -> str:
    """url as text for a log or a message: the password and every secret parameter as ***."""
    secrets = {name: MASK for name in url.query if is_secret(name)}
    text = url.update_query_dict(secrets).render_as_string(hide_password=True)
    return text.replace("%2A%2A%2A", MASK)  # SQLAlchemy percent-encodes the query's mask


@dataclass(frozen=True)
class DatabaseTarget:
    url: URL
    variable: str
    notes: list[str] = field(default_factory=list)
    # True when the URL goes through a pooler (PgBouncer in transaction mode):
    # Vercel's POSTGRES_URL, a Neon `-pooler` host, or a URL marked pgbouncer=true.
    # False for the variables named direct; None when only the server can tell
    # (steps/pooler.py asks it before a `-- Transaction: none` file).
    pooled: bool | None = None

    @property
    def shown(self) -> str:
        """Host, port and database with the password masked: safe for logs."""
        return masked(self.url.set(drivername="postgresql"))


def _unescaped_userinfo(raw: str) -> bool:
    """True when the user or password holds a character a URL reserves there."""
    rest = raw.strip().split("://", 1)[-1]
    if "@" not in rest:
        return False
    userinfo = rest[: rest.rindex("@")]
    _user, _, password = userinfo.partition(":")
    return any(char in userinfo for char in "@/?#") or ":" in password


def _parse(raw: str, variable: str) -> URL:
    if _unescaped_userinfo(raw):
        # Never echo the value: it holds the password.
        raise MigrationError(
            f"The password (or user name) in {variable} has a character that must be "
            "percent-encoded in a URL: write @ as %40, : as %3A, / as %2F, ? as %3F, # as %23 "
            '(python3 -c "import urllib.parse, getpass; '
            "print(urllib.parse.quote(getpass.getpass(), safe=''))\" prints it encoded)."
        )
    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        url = None
    if url is None or url.drivername not in SCHEMES or not url.database:
        # Never echo the value: it may hold a password.
        raise MigrationError(
            f"{variable} is not a PostgreSQL URL. Set it to the form "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE (postgres:// is accepted too)."
        )
    return url.set(drivername=DRIVER)


def resolve_target(environ=os.environ) -> DatabaseTarget:
    """The first URL variable that is set, parsed, with libpq-incompatible parameters dropped."""
    variable = next((name for name in URL_VARIABLES if environ.get(name, "").strip()), None)
    if variable is None and libpq_variables_set(environ):
        used = ", ".join(libpq_variables_set(environ))
        return DatabaseTarget(
            url=libpq_url(DRIVER, environ), variable=f"{used}, as psql reads them"
        )
    if variable is None:
        unused = [name for name in NEVER_USED if environ.get(name, "").strip()]
        raise MigrationError(
            "No database URL: set DATABASE_URL (or Vercel's POSTGRES_URL_NON_POOLING) to "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE, or run `make migrate` for a local database."
            + (
                f" ({' and '.join(unused)} {'is' if len(unused) == 1 else 'are'} set but never "
                "used for migrations: Prisma's pooled URL and the unencrypted one.)"
                if unused
                else ""
            )
        )
    url = _parse(environ[variable], variable)
    notes = []
    host = url.host or ""
    pooled = (
        variable in POOLED_VARIABLES
        or host.split(".")[0].endswith("-pooler")
        or "pgbouncer" in url.query
        or (False if variable in DIRECT_VARIABLES else None)
    )
    dropped = [name for name in CLIENT_ONLY_PARAMETERS if name in url.query]
    if dropped:
        url = url.difference_update_query(dropped)
        notes.append(f"ignored {', '.join(dropped)} from {variable}: libpq does not accept them")
    if pooled:
        notes.append(
            f"{variable} goes through the pooler; Neon advises the direct URL for migrations "
            "(POSTGRES_URL_NON_POOLING or DATABASE_URL_UNPOOLED)"
        )
    sslmode = url.query.get("sslmode") or environ.get("PGSSLMODE")
    if isinstance(sslmode, tuple):
        sslmode = sslmode[-1]
    if host not in LOCAL_HOSTS and not sslmode:
        notes.append(
            f"warning: {host} is remote and {variable} sets no sslmode; "
            "add ?sslmode=require so the connection is encrypted"
        )
    elif host not in LOCAL_HOSTS and sslmode in FALLBACK_SSLMODES:
        notes.append(
            f"warning: {host} is remote and {variable} has sslmode={sslmode}, which may send "
            "data unencrypted; use sslmode=require"
        )
    return DatabaseTarget(url=url, variable=variable, notes=notes, pooled=pooled)
