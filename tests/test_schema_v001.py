"""v001 is designed as a DBA would: the database itself enforces the rules."""

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from support.database import query
from support.processes import run_alembic
from support.project import V001_TABLES


@pytest.fixture
def migrated(database_url):
    """A database at 001, whatever revisions the tree has on top of it."""
    assert run_alembic("upgrade", "001", url=database_url).returncode == 0
    return database_url


def _organization(url, slug="acme"):
    return query(
        url, "INSERT INTO organizations (name, slug) VALUES ('Acme', :slug) RETURNING id", slug=slug
    )[0][0]


def test_every_foreign_key_is_backed_by_an_index(migrated):
    unindexed = query(
        migrated,
        """
        SELECT c.conname FROM pg_constraint AS c
        WHERE c.contype = 'f' AND NOT EXISTS (
            SELECT FROM pg_index AS i
            WHERE i.indrelid = c.conrelid
              AND (i.indkey::int2[])[0:array_length(c.conkey, 1) - 1] = c.conkey
        )""",
    )
    assert unindexed == []


def test_every_table_has_a_comment_and_named_constraints(migrated):
    comments = dict(
        query(
            migrated,
            """
        SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class AS c
        WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace""",
        )
    )
    assert {name for name, comment in comments.items() if comment} >= V001_TABLES
    names = [
        row[0]
        for row in query(
            migrated,
            # PostgreSQL 18 catalogs NOT NULL as constraints (contype 'n') with
            # generated <table>_<column>_not_null names; the naming rule is about the rest.
            "SELECT conname FROM pg_constraint"
            " WHERE conrelid::regclass::text = ANY(:tables) AND contype <> 'n'",
            tables=sorted(V001_TABLES),
        )
    ]
    assert all(name.endswith(("_pkey", "_fkey", "_key", "_check")) for name in names), names


def test_audit_logs_reject_update_delete_and_truncate(migrated):
    query(
        migrated,
        "INSERT INTO audit_logs (action, entity_type, metadata) VALUES ('framework.created', 'framework', '{}')",
    )
    for statement in (
        "UPDATE audit_logs SET action = 'x.y'",
        "DELETE FROM audit_logs",
        "TRUNCATE audit_logs",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            query(migrated, statement)
    assert query(migrated, "SELECT action FROM audit_logs") == [("framework.created",)]


def test_user_email_is_unique_whatever_its_case(migrated):
    org = _organization(migrated)
    query(
        migrated,
        "INSERT INTO users (organization_id, email) VALUES (:org, 'Ann@Example.com')",
        org=org,
    )
    with pytest.raises(IntegrityError, match="users_email_key"):
        query(
            migrated,
            "INSERT INTO users (organization_id, email) VALUES (:org, 'ann@example.COM')",
            org=org,
        )


@pytest.mark.parametrize(
    "statement, constraint",
    [
        (
            "INSERT INTO organizations (name, slug) VALUES ('A', 'Not A Slug')",
            "organizations_slug_check",
        ),
        (
            "INSERT INTO organizations (name, slug, plan) VALUES ('A', 'a', 'gold')",
            "organizations_plan_check",
        ),
    ],
)
def test_check_constraints_reject_bad_values(migrated, statement, constraint):
    with pytest.raises(IntegrityError, match=constraint):
        query(migrated, statement)


def test_assessment_status_needs_consistent_timestamps(migrated):
    org = _organization(migrated)
    framework = query(
        migrated,
        "INSERT INTO frameworks (key, name, version) VALUES ('iso-27001', 'ISO', '2022') RETURNING id",
    )[0][0]
    insert = "INSERT INTO assessments (organization_id, framework_id, title, status, started_at, submitted_at) VALUES (:org, :fw, 'Q1', :status, :started, :submitted)"
    with pytest.raises(IntegrityError, match="assessments_status_timestamps_check"):
        query(
            migrated,
            insert,
            org=org,
            fw=framework,
            status="submitted",
            started=None,
            submitted=None,
        )
    with pytest.raises(IntegrityError, match="assessments_timestamp_order_check"):
        query(
            migrated,
            insert,
            org=org,
            fw=framework,
            status="submitted",
            started="2026-02-01",
            submitted="2026-01-01",
        )
    query(
        migrated,
        insert,
        org=org,
        fw=framework,
        status="submitted",
        started="2026-01-01",
        submitted="2026-02-01",
    )


def test_updated_at_is_kept_by_a_trigger(migrated):
    org = _organization(migrated)
    query(migrated, "UPDATE organizations SET updated_at = '2000-01-01' WHERE id = :org", org=org)
    ((updated_at_year,),) = query(
        migrated, "SELECT extract(year FROM updated_at) FROM organizations"
    )
    assert updated_at_year > 2000
