"""Bad connection input gets one clear line: what to fix, non-zero exit, no traceback, no password."""

import time

import pytest

from migration_runner.servers.local_postgres import free_port
from support.database import query
from support.processes import run_alembic
from support.project import HEAD

SECRET = "s3cr3t-Pa55"


def _assert_one_clear_failure(result, *expected):
    assert result.returncode != 0
    failures = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
    assert len(failures) == 1, result.stdout
    for text in expected:
        assert text in failures[0], failures[0]
    assert "Traceback" not in result.stdout
    assert SECRET not in result.stdout


def test_missing_url_says_which_variable_to_set():
    result = run_alembic("upgrade", "head")
    _assert_one_clear_failure(result, "No database URL", "DATABASE_URL")


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://app:{SECRET}@db.example.com/app",
        f"postgresql://app:{SECRET}@db.example.com:notaport/app",
        "just some words",
        f"postgresql://app:{SECRET}@db.example.com",
    ],
)
def test_malformed_url_is_refused_without_echoing_it(url):
    result = run_alembic("upgrade", "head", url=url)
    _assert_one_clear_failure(result, "DATABASE_URL is not a PostgreSQL URL")


def test_wrong_password_fails_at_once_naming_the_target(database_url, postgres_server):
    query(database_url, f"CREATE ROLE app_owner LOGIN PASSWORD 'right-{SECRET}'")
    try:
        url = postgres_server.url_for(
            database_url.rsplit("/", 1)[1], user="app_owner", password=SECRET
        )
        started = time.monotonic()
        result = run_alembic("upgrade", "head", url=url)
        elapsed = time.monotonic() - started
        _assert_one_clear_failure(
            result, "Cannot connect to", "app_owner:***@", "password authentication failed"
        )
        assert elapsed < 5, "a wrong password is not worth retrying"
    finally:
        query(database_url, "DROP ROLE app_owner")


def test_unreachable_host_fails_within_seconds():
    url = f"postgresql://app:{SECRET}@127.0.0.1:{free_port()}/app"
    started = time.monotonic()
    result = run_alembic("upgrade", "head", url=url, env={"MIGRATION_CONNECT_TIMEOUT": "1"})
    elapsed = time.monotonic() - started
    _assert_one_clear_failure(
        result, "Cannot connect to", "127.0.0.1", "gave up after retrying for 1s"
    )
    assert "retrying in" in result.stdout  # one line per retry
    assert elapsed < 10


def test_postgres_scheme_and_bare_url_use_psycopg2(database_url):
    url = database_url.replace("postgresql://", "postgres://", 1)
    result = run_alembic("upgrade", "head", url=url)
    assert result.returncode == 0, result.stdout
    assert query(database_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]


@pytest.mark.parametrize(
    "option, message",
    [
        ("lock-timeout=soon", "-x lock-timeout must be a duration"),
        ("lock-retries=-1", "-x lock-retries must be a whole number"),
        ("allow-data-loss=maybe", "-x allow-data-loss must be true or false"),
        ("lock-timout=2s", "Unknown -x option lock-timout"),
    ],
)
def test_bad_options_are_refused_before_connecting(option, message):
    result = run_alembic("-x", option, "upgrade", "head")
    _assert_one_clear_failure(result, message)
