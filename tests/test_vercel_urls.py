"""Vercel group: which URL the runner takes, TLS without fallback, the owner's least privilege."""

import time

import psycopg2
import pytest

from migration_runner.servers.vercel_local import OWNER
from migration_runner.steps.database_url import resolve_target
from support.database import public_tables
from support.processes import run_alembic
from support.project import HEAD, REVISIONS


def _chosen(result) -> str:
    lines = [line for line in result.stdout.splitlines() if "] target " in line]
    assert len(lines) == 1, result.stdout
    return lines[0].rsplit("(from ", 1)[1].rstrip(")")


def test_all_vercel_variables_set_migrates_over_the_direct_url(vercel_database):
    environment = vercel_database.environment  # pooled, Prisma, no-SSL, direct, Neon's two
    result = run_alembic("upgrade", "head", env=environment)

    assert result.returncode == 0, result.stdout
    assert _chosen(result) == "POSTGRES_URL_NON_POOLING"
    assert environment["POSTGRES_PASSWORD"] not in result.stdout
    assert f"{OWNER}:***@" in result.stdout
    assert vercel_database.owner_query("SELECT version_num FROM alembic_version") == [(HEAD,)]
    # Not one transaction of the run went through PgBouncer.
    assert vercel_database.pool_stats().get("total_xact_count", 0) == 0


def test_neon_integration_variables_prefer_the_unpooled_url(vercel_database):
    environment = vercel_database.environment
    neon = {name: environment[name] for name in ("DATABASE_URL", "DATABASE_URL_UNPOOLED")}
    result = run_alembic("upgrade", "head", env=neon)

    assert result.returncode == 0, result.stdout
    assert _chosen(result) == "DATABASE_URL_UNPOOLED"
    assert vercel_database.pool_stats().get("total_xact_count", 0) == 0
    assert vercel_database.owner_query("SELECT applied_by FROM migration_history") == [
        (OWNER,)
    ] * len(REVISIONS)


def test_pooled_variables_only_use_postgres_url_never_the_prisma_url(vercel_database):
    environment = vercel_database.environment
    pooled = {name: environment[name] for name in ("POSTGRES_URL", "POSTGRES_PRISMA_URL")}
    vercel_database.start_for("pooled")
    result = run_alembic("upgrade", "head", env=pooled)

    assert result.returncode == 0, result.stdout
    assert _chosen(result) == "POSTGRES_URL"
    assert "goes through the pooler" in result.stdout
    assert "ignored pgbouncer" not in result.stdout  # the Prisma URL's parameter: not read
    assert vercel_database.pool_stats()["total_xact_count"] > 0
    assert vercel_database.owner_query("SELECT version_num FROM alembic_version") == [(HEAD,)]


def test_prisma_url_alone_is_never_used(vercel_database):
    prisma = {"POSTGRES_PRISMA_URL": vercel_database.environment["POSTGRES_PRISMA_URL"]}
    result = run_alembic("upgrade", "head", env=prisma)

    assert result.returncode != 0
    assert "No database URL" in result.stdout
    assert "POSTGRES_PRISMA_URL is set but never used" in result.stdout
    assert public_tables(vercel_database.stack.superuser_url(vercel_database.name)) == set()


def test_pgbouncer_parameter_is_dropped_with_a_visible_note(vercel_database):
    url = vercel_database.stack.pooled_url(
        vercel_database.name, "pgbouncer=true&connect_timeout=15&sslmode=require"
    )
    vercel_database.start_for("pooled")
    result = run_alembic("upgrade", "head", env={"DATABASE_URL": url})

    assert result.returncode == 0, result.stdout
    assert "ignored pgbouncer from DATABASE_URL: libpq does not accept them" in result.stdout
    assert vercel_database.owner_query("SELECT version_num FROM alembic_version") == [(HEAD,)]


def test_sslmode_require_against_a_server_without_tls_fails_without_fallback(database_url):
    # The suite's plain server has no TLS at all: libpq must refuse, not talk in clear.
    url = database_url.replace("postgresql://", "postgres://", 1) + "?sslmode=require"
    started = time.monotonic()
    result = run_alembic(
        "upgrade", "head", env={"POSTGRES_URL_NON_POOLING": url, "MIGRATION_CONNECT_TIMEOUT": "30"}
    )
    elapsed = time.monotonic() - started

    assert result.returncode != 0
    assert "server does not support SSL, but SSL was required" in result.stdout
    assert "retrying in" not in result.stdout  # permanent: no retry, no fallback
    assert elapsed < 10
    assert public_tables(database_url) == set()


@pytest.mark.parametrize("endpoint", ["direct", "pooled"])
def test_stack_endpoints_refuse_unencrypted_connections(vercel_database, endpoint):
    stack = vercel_database.stack
    port = stack.direct_port if endpoint == "direct" else stack.pooled_port
    url = stack._url("postgres", port, vercel_database.name, "sslmode=disable")
    with pytest.raises(psycopg2.OperationalError) as refused:
        psycopg2.connect(url)
    assert "no encryption" in str(refused.value) or "SSL required" in str(refused.value)
    rows = vercel_database.owner_query(
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        url=stack._url("postgres", port, vercel_database.name, "sslmode=require"),
    )
    # Through the TLS-terminating proxy (binaries without TLS) the last hop is loopback.
    assert rows == [(stack.server_tls,)]


def test_stack_owner_is_no_superuser_and_the_server_allows_only_tls_scram(vercel_database):
    assert vercel_database.superuser_query(
        f"SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = '{OWNER}'"
    ) == [(False, True, True)]
    rules = vercel_database.superuser_query(
        "SELECT type, auth_method FROM pg_hba_file_rules WHERE error IS NULL"
    )
    expected_type = "hostssl" if vercel_database.stack.server_tls else "host"
    assert rules == [(expected_type, "scram-sha-256")]


def test_v001_needs_no_superuser_and_no_extension(vercel_database):
    result = run_alembic("upgrade", "001", env={"DATABASE_URL": vercel_database.direct_url})
    assert result.returncode == 0, result.stdout
    assert vercel_database.owner_query(
        "SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql'"
    ) == [(0,)]
    assert vercel_database.owner_query(
        "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class "
        "WHERE relnamespace = 'public'::regnamespace"
    ) == [(OWNER,)]


def test_resolution_order_is_non_pooling_unpooled_database_url_postgres_url():
    urls = {
        "POSTGRES_URL": "postgres://u:p@ep-a-pooler.eu.example/db?sslmode=require",
        "DATABASE_URL": "postgresql://u:p@ep-b-pooler.eu.example/db?sslmode=require",
        "DATABASE_URL_UNPOOLED": "postgresql://u:p@ep-c.eu.example/db?sslmode=require",
        "POSTGRES_URL_NON_POOLING": "postgres://u:p@ep-d.eu.example/db?sslmode=require",
        "POSTGRES_PRISMA_URL": "postgres://u:p@ep-e-pooler.eu.example/db?pgbouncer=true",
    }
    order = ["POSTGRES_URL_NON_POOLING", "DATABASE_URL_UNPOOLED", "DATABASE_URL", "POSTGRES_URL"]
    for variable in order:
        target = resolve_target(urls)
        assert target.variable == variable
        assert target.pooled == (variable in ("DATABASE_URL", "POSTGRES_URL"))
        del urls[variable]


def test_query_string_is_kept_including_channel_binding():
    target = resolve_target(
        {
            "DATABASE_URL_UNPOOLED": "postgresql://neondb_owner:pw@ep-x.eu.example/neondb"
            "?sslmode=require&channel_binding=require&connect_timeout=15&pgbouncer=true"
        }
    )
    assert dict(target.url.query) == {
        "sslmode": "require",
        "channel_binding": "require",
        "connect_timeout": "15",
    }
    assert target.shown == (
        "postgresql://neondb_owner:***@ep-x.eu.example/neondb"
        "?channel_binding=require&connect_timeout=15&sslmode=require"
    )


@pytest.mark.parametrize(
    "query, warned",
    [
        ("", "sets no sslmode"),
        ("?sslmode=prefer", "sslmode=prefer, which may send data unencrypted"),
        ("?sslmode=require", None),
    ],
)
def test_remote_host_without_required_tls_gets_a_warning(query, warned):
    target = resolve_target({"DATABASE_URL": f"postgresql://u:p@db.eu.example/app{query}"})
    warnings = [note for note in target.notes if note.startswith("warning:")]
    assert warnings == ([] if warned is None else [warnings[0]])
    if warned:
        assert warned in warnings[0]


def test_remote_warning_is_printed_by_alembic():
    # 127.0.0.2 counts as remote; nothing listens there, so the run fails at once after warning.
    result = run_alembic(
        "current",
        env={"DATABASE_URL": "postgresql://u:p@127.0.0.2:1/app", "MIGRATION_CONNECT_TIMEOUT": "0"},
    )
    assert result.returncode != 0
    assert (
        "WARNI [migration_runner] warning: 127.0.0.2 is remote and DATABASE_URL sets no sslmode"
        in (result.stdout)
    )
