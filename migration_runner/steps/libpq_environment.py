"""A target from libpq's own variables when no URL variable is set, as psql would read them.

`PGSERVICE` names a section of the connection service file (PGSERVICEFILE,
else ~/.pg_service.conf, else pg_service.conf in PGSYSCONFDIR); the
service's settings come first and PGHOST, PGPORT, PGUSER, PGPASSWORD,
PGDATABASE and PGSSLMODE fill what it leaves unset, in libpq's order. The
result is an explicit URL, so every tool (pg_dump included) sees one target.
"""

import configparser
import getpass
import os
from pathlib import Path

from sqlalchemy.engine import URL

from migration_runner.errors import MigrationError

# libpq's variable for each connection keyword we turn into a URL part.
VARIABLES = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE",
}
# Debian's libpq is built with this PGSYSCONFDIR.
SYSTEM_CONFIG_DIR = "/etc/postgresql-common"


def libpq_variables_set(environ) -> list[str]:
    names = ["PGSERVICE", *VARIABLES.values()]
    return [name for name in names if environ.get(name, "").strip() and name != "PGPASSWORD"]


def _service_files(environ) -> list[Path]:
    if environ.get("PGSERVICEFILE"):
        user_file = Path(environ["PGSERVICEFILE"])
    else:
        user_file = Path(environ.get("HOME", "~")).expanduser() / ".pg_service.conf"
    system_dir = environ.get("PGSYSCONFDIR", SYSTEM_CONFIG_DIR)
    return [user_file, Path(system_dir) / "pg_service.conf"]


def _service_settings(name: str, environ) -> dict[str, str]:
    """The keywords of service `name`, from the first service file that defines it."""
    for path in _service_files(environ):
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path)
        except configparser.Error as error:
            raise MigrationError(f"Cannot read the service file {path}: {error}") from None
        if parser.has_section(name):
            return dict(parser.items(name))
    searched = " or ".join(str(path) for path in _service_files(environ))
    raise MigrationError(
        f"PGSERVICE={name}, but no service [{name}] is defined in {searched}: "
        "add it there or point PGSERVICEFILE at the file that has it."
    )


def libpq_url(driver: str, environ=os.environ) -> URL:
    """An explicit URL from PGSERVICE and the PG* variables."""
    settings = {}
    if environ.get("PGSERVICE", "").strip():
        settings = _service_settings(environ["PGSERVICE"].strip(), environ)
    for keyword, variable in VARIABLES.items():
        if keyword not in settings and environ.get(variable, "").strip():
            settings[keyword] = environ[variable].strip()
    user = settings.pop("user", None) or getpass.getuser()
    port = settings.pop("port", None)
    if port is not None and not port.isdigit():
        raise MigrationError(f"The port {port!r} from PGPORT or the service is not a number.")
    return URL.create(
        driver,
        username=user,
        password=settings.pop("password", None),
        host=settings.pop("host", None),
        port=int(port) if port else None,
        database=settings.pop("dbname", None) or user,  # libpq's default database is the user's
        query=settings,  # sslmode and any other libpq keyword the service sets
    )
