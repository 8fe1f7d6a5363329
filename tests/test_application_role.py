"""The application's role can only do what the application needs: append-only is real.

Revision 002 makes a NOLOGIN role (assessment_app, or `-x app-role=NAME`) with
rights on rows and no ownership. The application logs in as a member of it.
Every way the owner could switch audit_logs' guard off fails for it.
"""

import uuid

import psycopg2
import pytest
from sqlalchemy import text

from support.database import admin, libpq_dsn, query
from support.processes import run_alembic
from support.project import HEAD

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


def connect_as(postgres_server, url: str, role: str, password: str):
    database = url.rsplit("/", 1)[1]
    return psycopg2.connect(libpq_dsn(postgres_server.url_for(database, role, password)))


def test_application_role_writes_rows_but_cannot_bypass_the_audit_guard(
    postgres_server, database_url, make_role
):
    login_role, password = make_role()  # the application's login, a member of assessment_app
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    query(database_url, f"GRANT assessment_app TO {login_role}")
    app = connect_as(postgres_server, database_url, login_role, password)
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


def owned_database(postgres_server, owner: str, password: str) -> str:
    """A new database the owner role owns, schema public included: its URL as that role.
    (make_role drops it with the role.)"""
    name = f"test_{uuid.uuid4().hex[:12]}"
    engine = admin(postgres_server)  # CREATE DATABASE runs outside a transaction
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" OWNER {owner} TEMPLATE template0'))
    engine.dispose()
    query(postgres_server.url_for(name), f"ALTER SCHEMA public OWNER TO {owner}")
    return postgres_server.url_for(name, owner, password)


def test_migrations_run_as_a_non_superuser_owner_with_a_configured_role_name(
    postgres_server, make_role
):
    owner, password = make_role("CREATEROLE")
    as_owner = owned_database(postgres_server, owner, password)
    app_role = f"custom_app_{uuid.uuid4().hex[:8]}"
    try:
        result = run_alembic("-x", f"app-role={app_role}", "upgrade", "head", url=as_owner)
        assert result.returncode == 0, result.stdout
        assert query(as_owner, "SELECT version_num FROM alembic_version") == [(HEAD,)]
        assert query(
            as_owner,
            f"SELECT has_table_privilege('{app_role}', 'audit_logs', 'INSERT'),"
            f" has_table_privilege('{app_role}', 'audit_logs', 'UPDATE'),"
            f" has_table_privilege('{app_role}', 'users', 'DELETE'),"
            f" (SELECT rolcanlogin FROM pg_roles WHERE rolname = '{app_role}'),"
            " (SELECT tableowner FROM pg_tables WHERE tablename = 'audit_logs')",
        ) == [(True, False, True, False, owner)]
        down = run_alembic("-x", f"app-role={app_role}", "downgrade", "001", url=as_owner)
        assert down.returncode == 0, down.stdout
        assert query(as_owner, f"SELECT has_table_privilege('{app_role}', 'users', 'SELECT')") == [
            (False,)
        ]
    finally:
        query(postgres_server.admin_url, f"DROP ROLE IF EXISTS {app_role}")


def test_an_owner_that_may_not_create_the_role_gets_one_line_with_the_fix(
    postgres_server, make_role
):
    owner, password = make_role()
    as_owner = owned_database(postgres_server, owner, password)
    missing = f"missing_app_{uuid.uuid4().hex[:8]}"

    result = run_alembic("-x", f"app-role={missing}", "upgrade", "head", url=as_owner)

    assert result.returncode != 0
    assert f"role {missing} does not exist and {owner} may not create it" in result.stdout
    assert "Traceback" not in result.stdout
    assert query(as_owner, "SELECT version_num FROM alembic_version") == [("001",)]
