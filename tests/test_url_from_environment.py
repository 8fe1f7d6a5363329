"""Targets as users write them: a URL with an unencoded password, or libpq's own variables."""

from sqlalchemy.engine import make_url

from support.database import public_tables
from support.processes import run_alembic
from support.project import HEAD_TABLES


def test_password_with_unencoded_at_sign_is_refused_with_how_to_encode_it(database_url):
    """`p@ss` would make libpq connect to a host named `ss@...`: say to write %40 instead."""
    parts = make_url(database_url)
    raw = f"postgresql://postgres:s3cr@t/x@{parts.host}:{parts.port}/{parts.database}"
    result = run_alembic("upgrade", "head", url=raw)
    assert result.returncode != 0
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1 and "percent-encoded" in failed[0] and "%40" in failed[0]
    assert "s3cr" not in result.stdout and "Traceback" not in result.stdout
    assert public_tables(database_url) == set()


def test_libpq_variables_alone_name_the_target_as_for_psql(database_url):
    parts = make_url(database_url)
    environ = {
        "PGHOST": parts.host,
        "PGPORT": str(parts.port),
        "PGUSER": parts.username,
        "PGDATABASE": parts.database,
    }
    result = run_alembic("upgrade", "head", env=environ)
    assert result.returncode == 0, result.stdout
    assert "as psql reads them" in result.stdout
    assert HEAD_TABLES <= public_tables(database_url)


def test_pgservice_names_a_service_file_section(database_url, tmp_path):
    """The service's settings win over PG* variables, as in libpq: PGDATABASE here is a decoy."""
    parts = make_url(database_url)
    service_file = tmp_path / "pg_service.conf"
    service_file.write_text(
        f"[assessment]\nhost={parts.host}\nport={parts.port}\n"
        f"user={parts.username}\ndbname={parts.database}\n"
    )
    environ = {
        "PGSERVICE": "assessment",
        "PGSERVICEFILE": str(service_file),
        "PGDATABASE": "no_such_database",
    }
    result = run_alembic("upgrade", "head", env=environ)
    assert result.returncode == 0, result.stdout
    assert HEAD_TABLES <= public_tables(database_url)
