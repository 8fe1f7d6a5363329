"""`alembic revision --autogenerate` turns a model change into a reviewed, online-safe SQL pair.

For each kind of change: the files are written only after the draft was proven
on a scratch database; they lint (sqlfluff, squawk) as written; they apply;
`alembic check` is then clean; and the downgrade restores the schema exactly.
"""

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlfluff.core import FluffConfig, Linter

from migration_runner.tools.autogenerate.draft import same_but_column_order
from migration_runner.tools.scaffold import revision_ids
from migration_runner.tools.schema_snapshot import snapshot
from support.database import query
from support.processes import run_alembic
from support.project import HEAD, REVISIONS, ROOT

# The venv running the suite (not necessarily ROOT's: a copy of the project may have none).
VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def at_head(database_at_head, postgres_server, tree_copy):
    """A database at head, a tree whose models the test edits, and a server for scratch drafts."""
    database_url = database_at_head
    scratch = make_url(postgres_server.admin_url).render_as_string(hide_password=False)
    return database_url, tree_copy, scratch


def edit(tree, module: str, old: str, new: str) -> None:
    path = tree / "assessment_models" / module
    source = path.read_text()
    assert old in source, old
    path.write_text(source.replace(old, new, 1))


def slug_check_renamed_handle(tree) -> None:
    """organizations' slug CHECK as the models say it once the column is renamed handle."""
    edit(
        tree,
        "tenancy.py",
        'slug ~ \'^[a-z0-9]+(-[a-z0-9]+)*$\' AND char_length(slug) <= 63", name="slug"',
        'handle ~ \'^[a-z0-9]+(-[a-z0-9]+)*$\' AND char_length(handle) <= 63", name="handle"',
    )


def in_tree(tree, url, scratch, *args):
    """alembic in the tree copy, importing the copy's own models (support/forked_alembic.py)."""
    return run_alembic(
        *args, url=url, tree=tree, env={"SCHEMA_SCRATCH_URL": scratch}, own_modules=True
    )


def new_files(tree) -> list:
    """The SQL files of revisions the test made: the tree's own revisions are REVISIONS."""
    return sorted(p for p in (tree / "sql").glob("*/*.sql") if p.name[:3] not in REVISIONS)


def shims(tree) -> list[str]:
    return sorted(p.name for p in (tree / "alembic" / "versions").glob("*.py"))


def next_ids(tree, count: int) -> list[str]:
    """The ids the tree's next count revisions get: its head's number plus 1, 2, ..."""
    head = int(revision_ids(tree)[-1])
    return [f"{head + n:03d}" for n in range(1, count + 1)]


def lint(tree, files) -> None:
    """sqlfluff on every new file (in this process, with the tree's .sqlfluff, as `sqlfluff
    lint` run in the tree reads it); squawk on the up files as the project runs it."""
    linted = Linter(config=FluffConfig.from_path(str(tree))).lint_paths([str(f) for f in files])
    found = [
        f"{path['filepath']}:{violation['start_line_no']}: {violation['code']} "
        f"{violation['description']}"
        for path in linted.as_records()
        for violation in path["violations"]
    ]
    linted_files = sum(len(path.files) for path in linted.paths)
    assert linted_files == len(files) and found == [], "\n".join(found)
    for up in (f for f in files if f.parent.name == "up"):
        options = ["--no-assume-in-transaction"] if "-- Transaction: none" in up.read_text() else []
        squawk = subprocess.run(
            [str(VENV_BIN / "squawk"), *options, str(up)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert squawk.returncode == 0, squawk.stdout


def round_trip(tree, url, scratch, columns_dropped: bool = False) -> None:
    """Upgrade, check clean, downgrade to head as it was: the schema is exactly what it was (a
    dropped column comes back as its table's last column: PostgreSQL cannot insert one)."""
    before = snapshot(url)
    upgraded = in_tree(tree, url, scratch, "-x", "allow-data-loss=true", "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stdout
    checked = in_tree(tree, url, scratch, "check")
    assert checked.returncode == 0, checked.stdout
    downgraded = in_tree(tree, url, scratch, "downgrade", HEAD)
    assert downgraded.returncode == 0, downgraded.stdout
    if columns_dropped:
        assert same_but_column_order(before, snapshot(url))
    else:
        assert snapshot(url) == before


def test_additions_become_an_online_safe_pair_that_round_trips(at_head):
    """A column with an index, a NOT NULL on an existing column, a CHECK, a new table with a
    foreign key, and a foreign key column on an existing table, in one model change."""
    url, tree, scratch = at_head
    first, second, third = next_ids(tree, 3)
    edit(
        tree,
        "tenancy.py",
        """    plan: Mapped[str] = mapped_column(Text, server_default=text("'free'"))""",
        """    plan: Mapped[str] = mapped_column(Text, server_default=text("'free'"))
    test_only_country: Mapped[str | None] = mapped_column(Text, index=True)""",
    )
    edit(
        tree,
        "tenancy.py",
        "full_name: Mapped[str | None] = mapped_column(Text)",
        "full_name: Mapped[str] = mapped_column(Text)",
    )
    edit(
        tree,
        "assessments.py",
        """        CheckConstraint("char_length(btrim(version)) BETWEEN 1 AND 50", name="version"),""",
        """        CheckConstraint("char_length(btrim(version)) BETWEEN 1 AND 50", name="version"),
        CheckConstraint("char_length(description) <= 2000", name="test_only_description"),""",
    )
    edit(
        tree,
        "assessments.py",
        """    title: Mapped[str] = mapped_column(Text)""",
        """    title: Mapped[str] = mapped_column(Text)
    test_only_reviewed_by: Mapped[uuid.UUID | None] = _fk("users.id", "SET NULL", index=True)""",
    )
    (tree / "assessment_models" / "test_only_tags.py").write_text(
        "import uuid\n\nfrom sqlalchemy import ForeignKey, Text\n"
        "from sqlalchemy.dialects.postgresql import UUID\n"
        "from sqlalchemy.orm import Mapped, mapped_column\n\n"
        "from assessment_models.base import Base, uuid_key\n\n\n"
        "class TestOnlyTag(Base):\n"
        '    __tablename__ = "test_only_tags"\n'
        '    __table_args__ = {"comment": "Labels an organization puts on its assessments."}\n\n'
        "    id: Mapped[uuid.UUID] = uuid_key()\n"
        "    organization_id: Mapped[uuid.UUID] = mapped_column(\n"
        '        UUID(as_uuid=True), ForeignKey("organizations.id", ondelete="CASCADE"), index=True\n'
        "    )\n"
        "    name: Mapped[str] = mapped_column(Text)\n"
    )
    edit(
        tree,
        "__init__.py",
        "from assessment_models.base import Base\n",
        "from assessment_models.base import Base\n"
        "from assessment_models.test_only_tags import TestOnlyTag  # noqa: F401\n",
    )

    result = in_tree(tree, url, scratch, "revision", "--autogenerate", "-m", "add country and tags")
    assert result.returncode == 0, result.stdout
    files = new_files(tree)
    names = [
        f"{d}/{n}"
        for n in (
            f"{first}_add_country_and_tags.sql",
            f"{second}_add_country_and_tags_online_steps.sql",
            f"{third}_add_country_and_tags_contract_online_steps.sql",
        )
        for d in ("down", "up")
    ]
    assert [f"{f.parent.name}/{f.name}" for f in files] == sorted(names)
    up = (tree / f"sql/up/{first}_add_country_and_tags.sql").read_text()
    assert "-- Phase: expand" in up
    assert "-- Destructive: no" in up and "-- Transaction: yes" in up
    assert "CREATE TABLE test_only_tags" in up and "ADD COLUMN test_only_reviewed_by uuid" in up
    assert (
        "-- Warning: users.full_name becomes NOT NULL with nothing to fill the rows left NULL" in up
    )
    online = (tree / f"sql/up/{second}_add_country_and_tags_online_steps.sql").read_text()
    assert "-- Phase: expand" in online and "-- Transaction: none" in online
    assert "full_name" not in online  # the old code may still leave it NULL: contract
    assert "ADD CONSTRAINT frameworks_test_only_description_check" in online
    assert (
        "ALTER TABLE assessments VALIDATE CONSTRAINT assessments_test_only_reviewed_by_fkey"
        in online
    )
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS organizations_test_only_country_idx" in online
    # Each lock named as lock_facts proves it (docs/autogenerate.md shows these comments).
    assert (
        "-- Add organizations.test_only_country: takes ACCESS EXCLUSIVE on organizations "
        "(blocks reads and\n-- writes), briefly: no rewrite, no scan\n"
    ) in up
    assert (
        "-- Build organizations_test_only_country_idx without blocking writes: takes SHARE UPDATE "
        "EXCLUSIVE\n-- on organizations (blocks neither reads nor writes), and reads every row of "
        "organizations while\n-- it holds it; if it is interrupted, drop the INVALID index and rerun.\n"
    ) in online
    contract = (tree / f"sql/up/{third}_add_country_and_tags_contract_online_steps.sql").read_text()
    assert "-- Phase: contract" in contract and "-- Transaction: none" in contract
    assert "'users.full_name is NULL in some rows (" in contract  # refused while a NULL is left
    assert "ADD CONSTRAINT users_full_name_not_null_check" in contract
    assert "full_name IS NOT NULL" in contract and "NOT VALID" in contract
    assert "ALTER COLUMN full_name SET NOT NULL" in contract
    down = (tree / f"sql/down/{first}_add_country_and_tags.sql").read_text()
    assert "-- Destructive: yes" in down
    lint(tree, files)
    round_trip(tree, url, scratch)
    assert query(url, "SELECT to_regclass('test_only_tags')") == [(None,)]


def test_dropped_column_is_a_destructive_contract_and_a_likely_rename_is_flagged(at_head):
    """The old code may still read the column: its drop waits for the contract phase."""
    url, tree, scratch = at_head
    added, dropped = next_ids(tree, 2)
    edit(
        tree,
        "tenancy.py",
        "    full_name: Mapped[str | None] = mapped_column(Text)\n",
        "    test_only_display_name: Mapped[str | None] = mapped_column(Text)\n",
    )
    result = in_tree(tree, url, scratch, "revision", "--autogenerate", "-m", "rename full name")
    assert result.returncode == 0, result.stdout
    assert "if this is a rename" in result.stdout and '"renamed_from": "full_name"' in result.stdout
    up = (tree / f"sql/up/{added}_rename_full_name.sql").read_text()
    assert "-- Phase: expand" in up and "-- Destructive: no" in up
    assert (
        "-- Warning: users.full_name is dropped" in up and "ADD COLUMN test_only_display_name" in up
    )
    contract = (tree / f"sql/up/{dropped}_rename_full_name_contract.sql").read_text()
    assert "-- Phase: contract" in contract and "-- Destructive: yes" in contract
    assert "Hazard: deletes every value of users.full_name" in contract
    lint(tree, new_files(tree))
    round_trip(tree, url, scratch, columns_dropped=True)


def test_no_model_change_writes_nothing(at_head):
    url, tree, scratch = at_head
    result = in_tree(tree, url, scratch, "revision", "--autogenerate", "-m", "nothing")
    assert result.returncode == 0, result.stdout
    assert "No changes: the models and the database at head agree" in result.stdout
    assert new_files(tree) == []
    assert shims(tree) == shims(ROOT)


def test_unreachable_database_is_one_failed_line(tree_copy):
    result = run_alembic(
        "revision",
        "--autogenerate",
        "-m",
        "x",
        url="postgresql://nobody:secret@127.0.0.1:9/none",
        tree=tree_copy,
        env={"MIGRATION_CONNECT_TIMEOUT": "1"},
    )
    assert result.returncode != 0
    assert len([line for line in result.stdout.splitlines() if line.startswith("FAILED:")]) == 1
    assert "Traceback" not in result.stdout and "secret" not in result.stdout
    assert new_files(tree_copy) == []


def test_without_a_database_url_it_compares_a_scratch_database_at_head(at_head):
    """No URL set: a scratch database migrated to head stands for the schema; nothing to do."""
    _url, tree, scratch = at_head
    result = run_alembic(
        "revision",
        "--autogenerate",
        "-m",
        "nothing",
        tree=tree,
        env={"SCHEMA_SCRATCH_URL": scratch},
        own_modules=True,
    )
    assert result.returncode == 0, result.stdout
    assert "No changes: the models and the database at head agree" in result.stdout
    assert query(scratch, "SELECT count(*) FROM pg_database WHERE datname LIKE 'scratch%'") == [
        (0,)
    ]
