"""Constraint changes autogenerate writes are rerunnable and never leave a table without them.

On a database with rows: a changed foreign key (its ON DELETE), an edited CHECK
and a changed unique constraint keep the old constraint in place, validated,
at every statement boundary of their `-- Transaction: none` revision, and end
with the new definition under the old name; rows that would fail a new
constraint (a CHECK, a foreign key, a unique constraint, a NOT NULL) stop the
run before any NOT VALID constraint or index exists, with a message naming
how many, a few keys and the fix, and a plain rerun finishes once the rows are
fixed; a run stopped after any statement, recorded or not, finishes on a rerun
at the models' schema; a CHECK whose text only changes because its column's
type does is not dropped.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from test_autogenerate import edit, in_tree, lint, new_files

from migration_runner.steps.sql_files import SqlFile
from migration_runner.tools.autogenerate.constraints import Wanted, added
from support.database import admin, libpq_dsn, query
from support.processes import run_alembic

FK, CHECK, UNIQUE = "assessments_created_by_fkey", "organizations_name_check", "frameworks_key_key"
NEW_FK = "FOREIGN KEY (created_by) REFERENCES users(id) ON DELETE CASCADE"
NEW_CHECK = "CHECK (((char_length(btrim(name)) >= 1) AND (char_length(btrim(name)) <= 150)))"
NEW_UNIQUE = "UNIQUE (key, version)"
SEED = """
INSERT INTO organizations (name, slug)
    SELECT 'Org ' || i, 'org-' || i FROM generate_series(1, 20) AS i;
INSERT INTO users (organization_id, email, full_name)
    SELECT id, slug || '@example.com', 'Person ' || slug FROM organizations;
INSERT INTO frameworks (key, name, version) VALUES ('iso', 'ISO', '1'), ('soc', 'SOC', '2');
INSERT INTO assessments (organization_id, framework_id, created_by, title)
    SELECT u.organization_id, f.id, u.id, 'Assessment' FROM users AS u, frameworks AS f;
"""
# Writes that break both the old and the new constraint: refused at every moment.
VIOLATIONS = {
    FK: (
        "INSERT INTO assessments (organization_id, framework_id, created_by, title)"
        " SELECT organization_id, framework_id, gen_random_uuid(), 't' FROM assessments LIMIT 1"
    ),
    CHECK: "INSERT INTO organizations (name, slug) VALUES ('', 'empty-name')",
    UNIQUE: "INSERT INTO frameworks (key, name, version) VALUES ('iso', 'ISO again', '1')",
}


@pytest.fixture
def seeded(database_at_head, postgres_server, tree_copy):
    """A database at head with organizations, users, frameworks and assessments."""
    database_url = database_at_head
    query(database_url, SEED)
    scratch = make_url(postgres_server.admin_url).render_as_string(hide_password=False)
    return database_url, tree_copy, scratch


@contextmanager
def copy_of(server, url: str) -> Iterator[str]:
    """A new database made from url's (CREATE DATABASE ... TEMPLATE), dropped afterwards."""
    name = f"test_copy_{uuid.uuid4().hex[:8]}"
    engine = admin(server)
    try:
        with engine.connect() as connection:
            template = make_url(url).database
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        yield server.url_for(name)
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def generate(tree, url, scratch, message: str) -> list:
    result = in_tree(tree, url, scratch, "revision", "--autogenerate", "-m", message)
    assert result.returncode == 0, result.stdout
    files = new_files(tree)
    lint(tree, files)
    return files


def change_three_constraints(tree) -> None:
    """ON DELETE SET NULL becomes CASCADE; a CHECK's bound 200 becomes 150; frameworks' unique
    key becomes unique with its version, under the same name."""
    edit(
        tree,
        "assessments.py",
        '_fk("users.id", "SET NULL", index=True)\n    title',
        '_fk("users.id", "CASCADE", index=True)\n    title',
    )
    edit(
        tree,
        "tenancy.py",
        '"char_length(btrim(name)) BETWEEN 1 AND 200", name="name"',
        '"char_length(btrim(name)) BETWEEN 1 AND 150", name="name"',
    )
    edit(
        tree,
        "assessments.py",
        "    key: Mapped[str] = mapped_column(Text, unique=True)",
        "    key: Mapped[str] = mapped_column(Text)",
    )
    edit(
        tree,
        "assessments.py",
        '        CheckConstraint("char_length(btrim(version)) BETWEEN 1 AND 50", name="version"),',
        '        CheckConstraint("char_length(btrim(version)) BETWEEN 1 AND 50", name="version"),\n'
        '        UniqueConstraint("key", "version", name="frameworks_key_key"),',
    )


def online_up(files) -> SqlFile:
    (path,) = [f for f in files if f.parent.name == "up" and "Transaction: none" in f.read_text()]
    return SqlFile(path, path.read_text())


def constraints(url: str) -> dict[str, tuple[bool, str]]:
    """Every constraint of the three tables: name -> (validated, definition)."""
    rows = query(
        url,
        "SELECT conname, convalidated, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid IN ('assessments'::regclass, 'organizations'::regclass,"
        " 'frameworks'::regclass)",
    )
    return {name: (valid, definition) for name, valid, definition in rows}


def refused(url: str, sql: str) -> str:
    """The SQLSTATE PostgreSQL refuses sql with ('' if it is accepted, then rolled back)."""
    connection = psycopg2.connect(libpq_dsn(url))
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
        return ""
    except psycopg2.Error as error:
        return error.pgcode
    finally:
        connection.rollback()
        connection.close()


def apply(
    url: str, statements, recorded: SqlFile | None = None, last_recorded: bool = True
) -> None:
    """Statements as the runner sends them in a `-- Transaction: none` file: each alone, in
    autocommit mode, recorded in migration_statements as it commits when recorded names the
    file (the last one not, unless last_recorded: a runner killed between a DO block or a
    CONCURRENTLY build and its record)."""
    connection = psycopg2.connect(libpq_dsn(url))
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET migration.lock_timeout = '5s'")
            for n, statement in enumerate(statements, 1):
                cursor.execute(statement.text)
                if recorded and (last_recorded or n < len(statements)):
                    cursor.execute(
                        "INSERT INTO migration_statements (sql_file, checksum, statement_line)"
                        " VALUES (%s, %s, %s)",
                        (recorded.shown, recorded.checksum, statement.line),
                    )
    finally:
        connection.close()


def leftovers(url: str) -> list:
    """What a refusal must not leave: a NOT VALID constraint, a staged name, an INVALID index."""
    return query(
        url,
        "SELECT conname FROM pg_constraint WHERE NOT convalidated OR conname LIKE '%\\_\\_new'"
        " UNION ALL SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid"
        " UNION ALL SELECT relname FROM pg_class WHERE relname LIKE '%\\_\\_new'",
    )


def assert_at_models(tree, url, scratch) -> None:
    upgraded = run_alembic("upgrade", "head", url=url, tree=tree)  # the runner needs no models
    assert upgraded.returncode == 0, upgraded.stdout
    checked = in_tree(tree, url, scratch, "check")
    assert checked.returncode == 0, checked.stdout
    found = constraints(url)
    assert found[FK] == (True, NEW_FK)
    assert found[CHECK] == (True, NEW_CHECK)
    assert found[UNIQUE] == (True, NEW_UNIQUE)
    assert leftovers(url) == []


def test_changed_constraints_hold_at_every_statement_and_end_under_their_names(seeded):
    url, tree, scratch = seeded
    change_three_constraints(tree)
    files = generate(tree, url, scratch, "change three constraints")
    text = "".join(f.read_text() for f in files if f.parent.name == "up")
    # No revision drops one of them outside the online steps' swap.
    assert "DROP CONSTRAINT" not in text.split("-- Transaction: none")[0]
    online = online_up(files)
    before = constraints(url)
    for done in range(len(online.statements) + 1):
        apply(url, online.statements[done - 1 : done] if done else [], online)
        found = constraints(url)
        for name in (FK, CHECK, UNIQUE):  # the old one, or the new one, never neither
            assert found[name][0], (done, name)
            assert found[name][1] in (
                before[name][1],
                {FK: NEW_FK, CHECK: NEW_CHECK, UNIQUE: NEW_UNIQUE}[name],
            ), done
        assert refused(url, VIOLATIONS[FK]) == "23503", done
        assert refused(url, VIOLATIONS[CHECK]) == "23514", done
        assert refused(url, VIOLATIONS[UNIQUE]) == "23505", done
    # The runner finds every statement recorded: the revision completes.
    assert_at_models(tree, url, scratch)
    # The down file puts the old definitions back, online the same way.
    downgraded = in_tree(tree, url, scratch, "downgrade", "-1")
    assert downgraded.returncode == 0, downgraded.stdout
    assert {name: constraints(url)[name] for name in (FK, CHECK, UNIQUE)} == {
        name: before[name] for name in (FK, CHECK, UNIQUE)
    }


@pytest.mark.parametrize(
    "last_recorded", [False, True], ids=["killed-before-record", "failed-after"]
)
def test_a_run_stopped_after_any_statement_finishes_on_a_rerun(
    seeded, postgres_server, last_recorded
):
    """For each statement of the online steps: a database where it and the statements before it
    committed, each recorded in migration_statements as the runner does, the last one recorded
    (the next statement failed) or not (a runner killed between a DO block or a CONCURRENTLY
    build and its record, which then runs again); a plain rerun ends at the models."""
    url, tree, scratch = seeded
    change_three_constraints(tree)
    online = online_up(generate(tree, url, scratch, "change three constraints"))
    for done in range(1, len(online.statements) + 1):
        with copy_of(postgres_server, url) as database:  # at head, seeded
            apply(database, online.statements[:done], online, last_recorded)
            assert_at_models(tree, database, scratch)


def test_offending_rows_stop_the_run_before_anything_exists_and_a_rerun_finishes(seeded):
    """A CHECK, a foreign key, a unique constraint and a NOT NULL, each with rows that fail it:
    each refusal names the count, the first keys and the fix, and leaves nothing behind."""
    url, tree, scratch = seeded
    edit(
        tree,
        "tenancy.py",
        '"char_length(btrim(name)) BETWEEN 1 AND 200", name="name"',
        '"char_length(btrim(name)) BETWEEN 1 AND 150", name="name"',
    )
    edit(
        tree,
        "assessments.py",
        '        CheckConstraint("char_length(btrim(version)) BETWEEN 1 AND 50", name="version"),',
        '        CheckConstraint("char_length(btrim(version)) BETWEEN 1 AND 50", name="version"),\n'
        '        UniqueConstraint("name", "version"),',
    )
    edit(
        tree,
        "tenancy.py",
        "full_name: Mapped[str | None] = mapped_column(Text)",
        "full_name: Mapped[str] = mapped_column(Text)",
    )
    # A new foreign key on a column that had none: two audit entries name no assessment.
    edit(
        tree,
        "audit.py",
        "    entity_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))",
        "    entity_id: Mapped[uuid.UUID | None] = mapped_column(\n"
        '        UUID(as_uuid=True), ForeignKey("assessments.id", ondelete="RESTRICT")\n    )',
    )
    long_name = query(
        url,
        "INSERT INTO organizations (name, slug) VALUES (repeat('x', 180), 'long') RETURNING id",
    )[0][0]
    astray = query(
        url,
        "INSERT INTO audit_logs (action, entity_type, entity_id)"
        " SELECT 'assessment.created', 'assessment', gen_random_uuid()"
        " FROM generate_series(1, 2) RETURNING id, entity_id",
    )
    query(url, "INSERT INTO frameworks (key, name, version) VALUES ('iso-2', 'ISO', '1')")
    nameless = query(
        url, "UPDATE users SET full_name = NULL WHERE email LIKE 'org-1%' RETURNING id"
    )
    generate(tree, url, scratch, "tighten")
    cases = {
        "violate organizations_name_check (1 in all; the first by id: "
        f"{long_name}): update or delete them so that the check holds": (
            f"UPDATE organizations SET name = 'Short' WHERE id = '{long_name}'"
        ),
        "some rows of audit_logs have a entity_id that assessments lacks "
        "(audit_logs_entity_id_fkey) (2 in all; the first by id: "
        f"{', '.join(sorted(str(i) for i, _ in astray))}): point them at existing assessments "
        "rows, set them to NULL or delete them": (
            # audit_logs is append-only: the assessments they name are made instead.
            "INSERT INTO assessments (id, organization_id, framework_id, title)"
            " SELECT e.id, a.organization_id, a.framework_id, 'restored'"
            " FROM (SELECT entity_id AS id FROM audit_logs) AS e,"
            " (SELECT * FROM assessments LIMIT 1) AS a"
        ),
        "some values of name, version are in more than one row of frameworks, which "
        "frameworks_name_version_key forbids (1 in all; the first: (ISO,1) (2 rows)): change or "
        "delete the duplicates": "UPDATE frameworks SET name = 'ISO 2' WHERE key = 'iso-2'",
        f"users.full_name is NULL in some rows ({len(nameless)} in all; the first by id: "
        f"{', '.join(sorted(str(n) for (n,) in nameless)[:5])}): give them a value": (
            "UPDATE users SET full_name = 'Someone' WHERE full_name IS NULL"
        ),
    }
    while cases:
        run = in_tree(tree, url, scratch, "upgrade", "head")
        assert run.returncode != 0, run.stdout
        failed = [line for line in run.stdout.splitlines() if line.startswith("FAILED:")]
        assert len(failed) == 1 and "Traceback" not in run.stdout, run.stdout
        (message,) = [m for m in cases if m in failed[0]] or [failed[0]]
        assert "then run the migration again" in failed[0]
        assert leftovers(url) == []
        query(url, cases.pop(message))
    assert_at_models_tightened(tree, url, scratch)


def assert_at_models_tightened(tree, url, scratch) -> None:
    upgraded = in_tree(tree, url, scratch, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stdout
    checked = in_tree(tree, url, scratch, "check")
    assert checked.returncode == 0, checked.stdout
    assert leftovers(url) == []
    found = query(
        url,
        "SELECT convalidated FROM pg_constraint WHERE conname = :n",
        n="audit_logs_entity_id_fkey",
    )
    assert found == [(True,)]


def test_a_row_written_after_the_refusal_step_drops_the_new_constraint_again(seeded):
    """The race the refusal step cannot see: a row that breaks the new CHECK, written after
    the refusal and before the NOT VALID constraint. VALIDATE fails; the step drops its NOT
    VALID constraint (the old one still holds) and names the row; fixed, a rerun finishes."""
    url, tree, scratch = seeded
    change_three_constraints(tree)
    online = online_up(generate(tree, url, scratch, "change three constraints"))
    check_steps = [s for s in online.statements if f"{CHECK}__new" in s.text]
    refusal = online.statements[online.statements.index(check_steps[0]) - 1]
    apply(url, [refusal])
    late = query(
        url,
        "INSERT INTO organizations (name, slug) VALUES (repeat('y', 170), 'late') RETURNING id",
    )[0][0]
    run = in_tree(tree, url, scratch, "upgrade", "head")
    assert run.returncode != 0
    assert f"(1 in all; the first by id: {late})" in run.stdout, run.stdout
    assert f"{CHECK}__new" not in constraints(url)
    assert constraints(url)[CHECK][0]  # the old CHECK, validated, all along
    query(url, f"UPDATE organizations SET name = 'Late' WHERE id = '{late}'")
    assert_at_models(tree, url, scratch)


def test_a_check_whose_text_changes_only_with_its_columns_type_is_not_dropped(seeded):
    """text to varchar needs no rewrite; PostgreSQL then prints the CHECK on the column with a
    cast (btrim((name)::text)), as the models' does: the constraint stays as it is."""
    url, tree, scratch = seeded
    edit(
        tree,
        "tenancy.py",
        "    name: Mapped[str] = mapped_column(Text)\n    slug",
        "    name: Mapped[str] = mapped_column(String)\n    slug",
    )
    edit(
        tree,
        "tenancy.py",
        "from sqlalchemy import CheckConstraint,",
        "from sqlalchemy import CheckConstraint, String,",
    )
    before = query(
        url, f"SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = '{CHECK}'"
    )
    files = generate(tree, url, scratch, "organization name varchar")
    assert all(CHECK not in f.read_text() for f in files)
    upgraded = in_tree(tree, url, scratch, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stdout
    checked = in_tree(tree, url, scratch, "check")
    assert checked.returncode == 0, checked.stdout
    after = query(
        url, f"SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = '{CHECK}'"
    )
    assert before != after and "btrim((name)::text)" in after[0][0]


def test_dropped_constraints_come_back_online_in_the_down_file(seeded):
    """A CHECK, a foreign key and a unique constraint the models no longer declare: dropped in
    the online steps; their down adds them back with the same refusal, NOT VALID and VALIDATE
    steps (a unique one on an index built CONCURRENTLY), no plain ADD CONSTRAINT."""
    url, tree, scratch = seeded
    edit(
        tree,
        "tenancy.py",
        """        CheckConstraint("plan IN ('free', 'team', 'enterprise')", name="plan"),\n""",
        "",
    )
    edit(
        tree,
        "assessments.py",
        "    key: Mapped[str] = mapped_column(Text, unique=True)",
        "    key: Mapped[str] = mapped_column(Text)",
    )
    edit(
        tree,
        "assessments.py",
        '_fk("users.id", "SET NULL", index=True)\n    title',
        "mapped_column(UUID(as_uuid=True), index=True)\n    title",
    )
    before = constraints(url)
    files = generate(tree, url, scratch, "drop three constraints")
    online = online_up(files)
    dropped = [s.text for s in online.statements if "DROP CONSTRAINT IF EXISTS" in s.text]
    assert len(dropped) == 3 and all(not s.startswith("DO") for s in dropped)
    (down,) = [f for f in files if f.parent.name == "down" and f.name == online.path.name]
    for statement in SqlFile(down, down.read_text()).statements:  # no plain ADD CONSTRAINT
        assert statement.keyword == "DO" or statement.text.startswith(
            "CREATE UNIQUE INDEX CONCURRENTLY"
        ), statement.text
    upgraded = in_tree(tree, url, scratch, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stdout
    assert {FK, UNIQUE, "organizations_plan_check"}.isdisjoint(constraints(url))
    downgraded = in_tree(tree, url, scratch, "downgrade", "-1")
    assert downgraded.returncode == 0, downgraded.stdout
    assert constraints(url) == before


def test_a_duplicate_written_after_the_refusal_step_leaves_no_index_behind(seeded):
    """A new unique constraint; a duplicate written after its refusal step makes CREATE UNIQUE
    INDEX CONCURRENTLY fail. The runner drops the INVALID index at once (PostgreSQL would
    check every write against it), so the running code's duplicates are accepted as before;
    once they are fixed, a rerun finishes."""
    url, tree, scratch = seeded
    edit(
        tree,
        "assessments.py",
        '        CheckConstraint("char_length(btrim(version)) BETWEEN 1 AND 50", name="version"),',
        '        CheckConstraint("char_length(btrim(version)) BETWEEN 1 AND 50", name="version"),\n'
        '        UniqueConstraint("name", "version"),',
    )
    online = online_up(generate(tree, url, scratch, "unique framework names"))
    apply(url, online.statements[:1], online)  # the refusal step: no duplicate yet
    duplicate = "INSERT INTO frameworks (key, name, version) VALUES ('iso-{}', 'ISO', '1')"
    query(url, duplicate.format(2))
    run = in_tree(tree, url, scratch, "upgrade", "head")
    assert run.returncode != 0
    assert 'could not create unique index "frameworks_name_version_key"' in run.stdout, run.stdout
    assert 'frameworks_name_version_key" was left INVALID' in run.stdout, run.stdout
    assert "Key (name, version)=(ISO, 1) is duplicated" in run.stdout
    assert leftovers(url) == []
    assert refused(url, duplicate.format(3)) == ""  # nothing live refuses the old code's rows
    query(url, "UPDATE frameworks SET name = 'ISO ' || key WHERE key LIKE 'iso-%'")
    upgraded = in_tree(tree, url, scratch, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stdout
    checked = in_tree(tree, url, scratch, "check")
    assert checked.returncode == 0, checked.stdout
    assert constraints(url)["frameworks_name_version_key"] == (True, "UNIQUE (name, version)")


def test_a_new_column_with_unique_gets_its_constraint_on_an_index_built_concurrently(seeded):
    url, tree, scratch = seeded
    edit(
        tree,
        "tenancy.py",
        "    plan: Mapped[str] = mapped_column(Text, server_default",
        "    test_only_domain: Mapped[str | None] = mapped_column(Text, unique=True)\n"
        "    plan: Mapped[str] = mapped_column(Text, server_default",
    )
    online = online_up(generate(tree, url, scratch, "organization domain"))
    texts = [s.text for s in online.statements]
    assert any(
        t.startswith("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS organizations_test_only")
        for t in texts
    )
    assert any("UNIQUE USING INDEX organizations_test_only_domain_key" in t for t in texts)
    upgraded = in_tree(tree, url, scratch, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stdout
    checked = in_tree(tree, url, scratch, "check")
    assert checked.returncode == 0, checked.stdout
    found = constraints(url)["organizations_test_only_domain_key"]
    assert found == (True, "UNIQUE (test_only_domain)")


def test_a_replacement_without_its_settled_definition_is_refused():
    """Without pg_get_constraintdef's text of the new constraint, the old one would pass for it
    in every step's catalog check: refused when the steps are written."""
    with pytest.raises(ValueError, match="settled definition"):
        added(Wanted("organizations", CHECK, "CHECK (char_length(name) <= 150)"), replacing=True)
