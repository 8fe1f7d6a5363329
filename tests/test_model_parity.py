"""The models (assessment_models) are proven equal to the SQL, in both directions.

`alembic check` compares them with a database at head: Alembic's own comparison
(columns, types, defaults, keys, foreign keys, indexes, comments) plus ours for
what Alembic does not compare (CHECK expressions, index expressions and
predicates). A change on either side alone fails with the object's name.
"""

import pytest

from support.database import query
from support.processes import run_alembic


@pytest.fixture
def at_head(database_url):
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    return database_url


def check(url, tree=None, **options):
    if tree is None:
        return run_alembic("check", url=url, **options)
    # The copy's own (edited) models, as alembic -c copy/alembic.ini imports them.
    return run_alembic("check", url=url, tree=tree, own_modules=True)


def test_models_equal_the_schema_at_head(at_head):
    result = check(at_head)
    assert result.returncode == 0, result.stdout
    assert "No new upgrade operations detected." in result.stdout


def test_check_edited_in_the_sql_alone_fails_naming_it(at_head):
    query(
        at_head,
        "ALTER TABLE users DROP CONSTRAINT users_role_check;"
        " ALTER TABLE users ADD CONSTRAINT users_role_check"
        " CHECK (role IN ('owner', 'admin', 'member', 'viewer', 'guest'))",
    )
    result = check(at_head)
    assert result.returncode != 0
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
    assert line.startswith(
        "FAILED: New upgrade operations detected: CHECK users_role_check on users differs:"
        " database CHECK ((role = ANY (ARRAY['owner'::text,"
    )
    assert "'guest'" in line and "Traceback" not in result.stdout and "('" not in line


def test_check_edited_in_the_models_alone_fails_naming_it(at_head, tree_copy):
    tenancy = tree_copy / "assessment_models" / "tenancy.py"
    source = tenancy.read_text()
    assert "'member', 'viewer')" in source
    tenancy.write_text(source.replace("'member', 'viewer')", "'member', 'viewer', 'guest')"))
    result = check(at_head, tree=tree_copy)
    assert result.returncode != 0
    assert "CHECK users_role_check on users differs" in result.stdout


def test_index_expression_changed_in_the_sql_alone_fails_naming_it(at_head):
    """Alembic does not compare expressions: `lower(email)` against `email` is ours to catch."""
    query(
        at_head,
        "DROP INDEX users_email_key; CREATE UNIQUE INDEX users_email_key ON users (email)",
    )
    result = check(at_head)
    assert result.returncode != 0
    assert "INDEX users_email_key on users differs" in result.stdout


def test_index_predicate_only_in_the_sql_fails_naming_it(at_head):
    query(
        at_head,
        "CREATE INDEX test_only_assessments_open_idx ON assessments (organization_id)"
        " WHERE status <> 'archived'",
    )
    result = check(at_head)
    assert result.returncode != 0
    assert "test_only_assessments_open_idx" in result.stdout


def test_foreign_key_action_changed_in_the_models_alone_fails(at_head, tree_copy):
    """Alembic's own comparison: ON DELETE of users.organization_id."""
    tenancy = tree_copy / "assessment_models" / "tenancy.py"
    source = tenancy.read_text()
    tenancy.write_text(
        source.replace(
            'ForeignKey("organizations.id", ondelete="CASCADE")',
            'ForeignKey("organizations.id", ondelete="RESTRICT")',
        )
    )
    result = check(at_head, tree=tree_copy)
    assert result.returncode != 0
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
    # In words, each side's foreign key as it reads: no tuple, no repr.
    fkey = "foreign key users_organization_id_fkey on users (organization_id) REFERENCES"
    assert f"{fkey} organizations (id) ON DELETE CASCADE is in the database only" in line
    assert f"{fkey} organizations (id) ON DELETE RESTRICT is in the models only" in line
    assert "('" not in line and "Constraint(" not in line
