"""A refusal of autogenerate is one line that says why and what to write by hand, and it
shows the SQL it had drafted: the files go to drafts/ (git-ignored), named in the line;
nothing goes to sql/ or alembic/versions."""

import re

import pytest
from sqlalchemy import MetaData
from sqlalchemy.engine import make_url
from test_autogenerate import edit, in_tree, new_files, next_ids, shims

import assessment_models
from migration_runner.errors import MigrationError
from migration_runner.tools.autogenerate import draft
from support.project import ROOT


@pytest.fixture
def at_head(database_at_head, postgres_server, tree_copy):
    """A database at head, a tree whose models the test edits, and a server for scratch drafts."""
    database_url = database_at_head
    scratch = make_url(postgres_server.admin_url).render_as_string(hide_password=False)
    return database_url, tree_copy, scratch


def assert_refused(result, tree, slug: str, *named: str):
    """One FAILED: line holding named, no traceback nor repr, nothing written but drafts/;
    the line and the draft files it names (up files, then down files)."""
    assert result.returncode != 0, result.stdout
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1, result.stdout
    line = failed[0]
    for text in named:
        assert text in line, line
    assert "Traceback" not in result.stdout and " object at 0x" not in line and "('" not in line
    assert new_files(tree) == [] and shims(tree) == shims(ROOT)
    (first,) = next_ids(tree, 1)
    ups = re.findall(r"drafts/(\w+)\.up\.sql", line)
    assert ups and ups[0] == f"{first}_{slug}", line
    assert "write this change by hand" in line, line
    drafts = [tree / "drafts" / f"{stem}.{d}.sql" for d in ("up", "down") for stem in ups]
    assert all(path.exists() for path in drafts), line
    return line, drafts


def test_change_it_does_not_write_shows_alembics_sql(at_head):
    """renamed_from naming a column the database does not have: refused before any draft
    of ours; Alembic's plain SQL of the change is the start shown."""
    url, tree, scratch = at_head
    edit(
        tree,
        "tenancy.py",
        "    full_name: Mapped[str | None] = mapped_column(Text)\n",
        "    full_name: Mapped[str | None] = mapped_column(Text)\n"
        '    test_only_nick: Mapped[str | None] = mapped_column(Text, info={"renamed_from": "nick"})\n',
    )
    result = in_tree(tree, url, scratch, "revision", "--autogenerate", "-m", "add nick")
    line, (up, down) = assert_refused(result, tree, "add_nick", "says renamed_from nick")
    assert "Alembic's own SQL of the change (not online-safe)" in line
    assert "ALTER TABLE users ADD COLUMN test_only_nick TEXT" in up.read_text()
    assert "ALTER TABLE users DROP COLUMN test_only_nick" in down.read_text()
    assert "NOT online-safe" in up.read_text()


def test_draft_that_does_not_reach_the_models_is_refused_in_words(
    database_url, postgres_server, tree_copy
):
    """draft.verify on a draft that adds a column the models lack: the difference in words,
    the draft in drafts/, nothing else written."""
    scratch = make_url(postgres_server.admin_url).render_as_string(hide_password=False)
    wrong = draft.DraftRevision(
        "900",
        "add extra",
        "ALTER TABLE users ADD COLUMN test_only_extra text;\n",
        "ALTER TABLE users DROP COLUMN test_only_extra;\n",
        True,
    )
    metadata: MetaData = assessment_models.metadata
    try:
        draft.verify([wrong], tree_copy, metadata, scratch)
    except MigrationError as refusal:
        message = str(refusal)
    else:
        raise AssertionError("verify accepted a draft the models do not have")
    assert "still different: column users.test_only_extra is in the database only" in message
    assert "drafts/900_add_extra.up.sql (and its .down.sql)" in message
    assert "write this change by hand" in message and "\n" not in message
    assert (tree_copy / "drafts" / "900_add_extra.up.sql").read_text() == wrong.up
    assert (tree_copy / "drafts" / "900_add_extra.down.sql").read_text() == wrong.down
    assert not (tree_copy / "sql" / "up" / "900_add_extra.sql").exists()


def test_drafts_folder_is_ignored_by_git():
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "drafts/" in ignored
