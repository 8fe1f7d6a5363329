"""A scratch database at a revision is a copy of a template the same migrations built once."""

import threading
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from migration_runner.tools import scratch
from support.database import admin, current_version, query
from support.project import add_revision

HISTORY = "SELECT revision, applied_at FROM migration_history ORDER BY id"


def unique_revision(tree, note: str = "") -> str:
    """A test-only revision no other test's tree has: its templates are this test's own."""
    tag = uuid.uuid4().hex[:8]
    return add_revision(
        tree,
        f"template test {tag}",
        f"-- test-only (up) {tag}{note}.\nCREATE TABLE template_test_{tag} (id integer);\n",
        f"-- test-only (down) {tag}.\nDROP TABLE template_test_{tag};\n",
    )


def templates(admin_url: str) -> dict[str, bool]:
    """Each template the admin role keeps, and whether it accepts connections."""
    rows = query(
        admin_url,
        "SELECT datname, datallowconn FROM pg_database"
        " WHERE starts_with(datname, :prefix) AND datdba = to_regrole(current_user)",
        prefix=scratch.PREFIX,
    )
    return dict(rows)


def scratch_databases(admin_url: str) -> list[str]:
    rows = query(
        admin_url, "SELECT datname FROM pg_database WHERE starts_with(datname, 'scratch_')"
    )
    return [name for (name,) in rows]


def test_a_second_database_at_the_same_migrations_is_copied_not_migrated(
    tree_copy, postgres_server
):
    admin_url = postgres_server.admin_url
    head = unique_revision(tree_copy)
    template = scratch.template_name(tree_copy, "head", (), "postgres")
    with scratch.database_at(tree_copy, "head", admin_url) as first:
        assert current_version(first) == head
        first_history = query(first, HISTORY)
    assert templates(admin_url)[template] is False  # kept, and accepts no connection
    with pytest.raises(OperationalError, match="not currently accepting connections"):
        query(postgres_server.url_for(template), "SELECT 1")

    with scratch.database_at(tree_copy, "head", admin_url) as second:
        assert second != first
        assert current_version(second) == head
        # The rows the template's own run wrote, to the microsecond: nothing ran again.
        assert query(second, HISTORY) == first_history
    assert scratch_databases(admin_url) == []


def test_an_edited_revision_gets_a_template_of_its_own(tree_copy, postgres_server):
    admin_url = postgres_server.admin_url
    head = unique_revision(tree_copy)
    with scratch.database_at(tree_copy, "head", admin_url):
        pass
    before = scratch.template_name(tree_copy, "head", (), "postgres")
    up = next((tree_copy / "sql" / "up").glob(f"{head}_*.sql"))
    up.write_text(up.read_text() + "ALTER TABLE organizations ADD COLUMN template_note text;\n")
    after = scratch.template_name(tree_copy, "head", (), "postgres")
    assert after != before
    with scratch.database_at(tree_copy, "head", admin_url) as url:
        columns = query(
            url,
            "SELECT count(*) FROM information_schema.columns WHERE column_name = 'template_note'",
        )
        assert columns == [(1,)]
    assert {before, after} <= set(templates(admin_url))


def test_only_the_newest_templates_are_kept(tree_copy, postgres_server):
    admin_url = postgres_server.admin_url
    head = unique_revision(tree_copy)
    up = next((tree_copy / "sql" / "up").glob(f"{head}_*.sql"))
    built = []
    for number in range(scratch.KEPT + 2):
        up.write_text(up.read_text() + f"-- edit {number}\n")
        with scratch.database_at(tree_copy, "head", admin_url):
            built.append(scratch.template_name(tree_copy, "head", (), "postgres"))
    kept = set(templates(admin_url))
    assert len(kept) == scratch.KEPT
    assert kept == set(built[-scratch.KEPT :])


def test_runs_at_the_same_time_keep_one_template_and_each_gets_its_database(
    tree_copy, postgres_server
):
    admin_url = postgres_server.admin_url
    head = unique_revision(tree_copy)
    found, failed = [], []

    def run() -> None:
        try:
            with scratch.database_at(tree_copy, "head", admin_url) as url:
                found.append((url, current_version(url)))
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            failed.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failed == []
    assert sorted(version for _, version in found) == [head] * 3
    assert len({url for url, _ in found}) == 3
    template = scratch.template_name(tree_copy, "head", (), "postgres")
    names = set(templates(admin_url))
    assert template in names
    assert not [name for name in names if name.startswith(f"{scratch.PREFIX}building_")]
    assert scratch_databases(admin_url) == []


def test_a_template_dropped_meanwhile_is_built_again(tree_copy, postgres_server):
    admin_url = postgres_server.admin_url
    head = unique_revision(tree_copy)
    template = scratch.template_name(tree_copy, "head", (), "postgres")
    with scratch.database_at(tree_copy, "head", admin_url):
        pass
    engine = admin(postgres_server)
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{template}"'))
    engine.dispose()
    with scratch.database_at(tree_copy, "head", admin_url) as url:
        assert current_version(url) == head
    assert template in templates(admin_url)


def test_each_role_keeps_templates_of_its_own(tree_copy, postgres_server, make_role):
    """Only a database's owner may copy it: a role's run never uses another role's template,
    and never drops one."""
    admin_url = postgres_server.admin_url
    head = unique_revision(tree_copy)
    with scratch.database_at(tree_copy, "head", admin_url):
        pass
    theirs = scratch.template_name(tree_copy, "head", (), "postgres")
    role, password = make_role("CREATEDB")
    role_url = postgres_server.url_for("postgres", role, password)
    for _ in range(scratch.KEPT + 1):  # more than its own templates it keeps
        with scratch.database_at(tree_copy, "head", role_url) as url:
            assert current_version(url) == head
        up = next((tree_copy / "sql" / "up").glob(f"{head}_*.sql"))
        up.write_text(up.read_text() + "-- another edit\n")
    owners = dict(
        query(
            admin_url,
            "SELECT datname, pg_get_userbyid(datdba) FROM pg_database"
            " WHERE starts_with(datname, :prefix)",
            prefix=scratch.PREFIX,
        )
    )
    assert owners[theirs] == "postgres"
    assert list(owners.values()).count(role) == scratch.KEPT


def test_migrations_that_set_database_settings_keep_no_template(tree_copy, postgres_server):
    """CREATE DATABASE does not copy ALTER DATABASE ... SET: such migrations run every time."""
    admin_url = postgres_server.admin_url
    unique_revision(tree_copy)
    add_revision(
        tree_copy,
        "database setting",
        "-- test-only (up).\nDO $$ BEGIN EXECUTE format("
        "'ALTER DATABASE %I SET work_mem = %L', current_database(), '7MB'); END $$;\n",
        "-- test-only (down).\nDO $$ BEGIN EXECUTE format("
        "'ALTER DATABASE %I RESET work_mem', current_database()); END $$;\n",
    )
    template = scratch.template_name(tree_copy, "head", (), "postgres")
    for _ in range(2):
        with scratch.database_at(tree_copy, "head", admin_url) as url:
            assert query(url, "SHOW work_mem") == [("7MB",)]
        assert template not in templates(admin_url)
    assert scratch_databases(admin_url) == []


def test_the_name_changes_with_the_runner_the_options_and_the_role(tree_copy):
    """A new runner, other alembic options or another role never meet an old template."""
    first = scratch.template_name(tree_copy, "head", (), "postgres")
    assert scratch.template_name(tree_copy, "head", ("-x", "phase=expand"), "postgres") != first
    assert scratch.template_name(tree_copy, "head", (), "deployer") != first
    emit = tree_copy / "migration_runner" / "steps" / "emit.py"
    emit.write_text(emit.read_text() + "# an edit of the runner\n")
    assert scratch.template_name(tree_copy, "head", (), "postgres") != first
