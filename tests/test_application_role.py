"""The application's role can only do what the application needs: append-only is real.

Revision 002 makes a NOLOGIN role (assessment_app, or `-x app-role=NAME`) with
rights on rows and no ownership. The application logs in as a member of it.
Every way the owner could switch audit_logs' guard off fails for it.
"""

import uuid

import psycopg2
import pytest
from sqlalchemy import text

from conftest import HEAD, admin, libpq_dsn, query, run_alembic

PASSWORD = "app-Secr3t"
BYPASSES = {
    "ALTER TABLE audit_logs DISABLE TRIGGER USER": "must be owner of table audit_logs",
    "TRUNCATE audit_logs": "permission denied for table audit_logs",
    "DROP TRIGGER audit_logs_reject_update_delete ON audit_logs": "must be owner",
    (
        "CREATE OR REPLACE FUNCTION audit_logs_reject_change() RETURNS trigger"
        " LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$"
    ): "",  # must be owner, or no CREATE on public (PostgreSQL 15+): refused either way
    "DROP TABLE audit_logs": "must be owner of table audit_logs",
    "UPDATE audit_logs SET action = action": "permission denied for table audit_logs",
    "DELETE FROM audit_logs": "permission denied for table audit_logs",
}


@pytest.fixture
def login_role(postgres_server):
    """A login role for the application's connections; dropped afterwards."""
    name = f"app_login_{uuid.uuid4().hex[:8]}"
    engine = admin(postgres_server)
    with engine.connect() as connection:
        connection.execute(text(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'"))
    yield name
    with engine.connect() as connection:
        connection.execute(text(f"DROP ROLE {name}"))
    engine.dispose()


def connect_as(postgres_server, url: str, role: str):
    database = url.rsplit("/", 1)[1]
    return psycopg2.connect(libpq_dsn(postgres_server.url_for(database, role, PASSWORD)))


def test_application_role_writes_rows_but_cannot_bypass_the_audit_guard(
    postgres_server, database_url, login_role
):
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    query(database_url, f"GRANT assessment_app TO {login_role}")
    app = connect_as(postgres_server, database_url, login_role)
    try:
        with app, app.cursor() as cursor:  # what the application does: it works
            cursor.execute(
                "INSERT INTO organizations (name, slug) VALUES ('Acme', 'acme') RETURNING id"
            )
            organization = cursor.fetchone()[0]
            cursor.execute("UPDATE organizations SET plan = 'team' WHERE id = %s", (organization,))
            cursor.execute(
                "INSERT INTO audit_logs (organization_id, action, entity_type, entity_id)"
                " VALUES (%s, 'create', 'organization', %s)",
                (organization, organization),
            )
            cursor.execute("SELECT count(*) FROM audit_logs")
            assert cursor.fetchone() == (1,)
        refused = {}
        for statement, expected in BYPASSES.items():
            with pytest.raises(psycopg2.Error) as error, app, app.cursor() as cursor:
                cursor.execute(statement)
            refused[statement] = error.value.pgcode, expected in str(error.value)
        assert all(code == "42501" and matched for code, matched in refused.values()), refused
    finally:
        app.close()
    assert query(database_url, "SELECT count(*) FROM audit_logs") == [(1,)]
    assert query(
        database_url,
        "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'audit_logs_reject_%'"
        " AND tgenabled = 'O'",
    ) == [(2,)]


def test_migrations_run_as_a_non_superuser_owner_with_a_configured_role_name(
    postgres_server, database_url
):
    owner, app_role = f"owner_{uuid.uuid4().hex[:8]}", f"custom_app_{uuid.uuid4().hex[:8]}"
    database = database_url.rsplit("/", 1)[1]
    query(database_url, f"CREATE ROLE {owner} LOGIN CREATEROLE PASSWORD '{PASSWORD}'")
    query(database_url, f'ALTER DATABASE "{database}" OWNER TO {owner}')
    query(database_url, f"ALTER SCHEMA public OWNER TO {owner}")
    try:
        as_owner = postgres_server.url_for(database, owner, PASSWORD)
        result = run_alembic("-x", f"app-role={app_role}", "upgrade", "head", url=as_owner)
        assert result.returncode == 0, result.stdout
        assert query(database_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
        assert query(
            database_url,
            f"SELECT has_table_privilege('{app_role}', 'audit_logs', 'INSERT'),"
            f" has_table_privilege('{app_role}', 'audit_logs', 'UPDATE'),"
            f" has_table_privilege('{app_role}', 'users', 'DELETE'),"
            f" (SELECT rolcanlogin FROM pg_roles WHERE rolname = '{app_role}'),"
            " (SELECT tableowner FROM pg_tables WHERE tablename = 'audit_logs')",
        ) == [(True, False, True, False, owner)]
        down = run_alembic("-x", f"app-role={app_role}", "downgrade", "001", url=as_owner)
        assert down.returncode == 0, down.stdout
        assert query(
            database_url, f"SELECT has_table_privilege('{app_role}', 'users', 'SELECT')"
        ) == [(False,)]
    finally:
        query(database_url, f"DROP OWNED BY {app_role}, {owner}")
        query(database_url, f'ALTER DATABASE "{database}" OWNER TO postgres')
        query(database_url, f"DROP ROLE {app_role}, {owner}")


def test_an_owner_that_may_not_create_the_role_gets_one_line_with_the_fix(
    postgres_server, database_url
):
    owner = f"owner_{uuid.uuid4().hex[:8]}"
    database = database_url.rsplit("/", 1)[1]
    query(database_url, f"CREATE ROLE {owner} LOGIN PASSWORD '{PASSWORD}'")
    query(database_url, f'ALTER DATABASE "{database}" OWNER TO {owner}')
    query(database_url, f"ALTER SCHEMA public OWNER TO {owner}")
    try:
        as_owner = postgres_server.url_for(database, owner, PASSWORD)
        missing = f"missing_app_{uuid.uuid4().hex[:8]}"
        result = run_alembic("-x", f"app-role={missing}", "upgrade", "head", url=as_owner)
        assert result.returncode != 0
        assert f"role {missing} does not exist and {owner} may not create it" in result.stdout
        assert "Traceback" not in result.stdout
        assert query(database_url, "SELECT version_num FROM alembic_version") == [("001",)]
    finally:
        query(database_url, f"DROP OWNED BY {owner}")
        query(database_url, f'ALTER DATABASE "{database}" OWNER TO postgres')
        query(database_url, f"DROP ROLE {owner}")
