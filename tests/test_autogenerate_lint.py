"""Autogenerate's files pass the project's lint for any valid model (sqlfluff with
.sqlfluff, squawk with .squawk.toml, as `make lint` runs them): it lints its draft before
writing anything, and what it cannot write lint-clean is refused, the draft shown."""

import pytest
from sqlalchemy.engine import make_url
from test_autogenerate import edit, in_tree, lint, new_files
from test_autogenerate_refusals import assert_refused

from conftest import add_revision, query, run_alembic
from migration_runner.tools.schema_snapshot import snapshot

LONG_COMMENT = (
    "What the organization calls itself on printed reports and in the exports it sends to "
    "auditors; it may differ from its legal name, and it is shown next to the logo."
)
BADGES = f"""

class TestOnlyBadge(Base):
    __tablename__ = "test_only_badges"
    __table_args__ = {{"comment": {LONG_COMMENT!r}}}

    id: Mapped[uuid.UUID] = uuid_key()
    label: Mapped[str] = mapped_column(Text)
    position: Mapped[int | None] = mapped_column(BigInteger)
"""


@pytest.fixture
def at_head(database_url, postgres_server, tree_copy):
    """A database at head, a tree whose models the test edits, and a server for scratch drafts."""
    assert run_alembic("upgrade", "head", url=database_url).returncode == 0
    scratch = make_url(postgres_server.admin_url).render_as_string(hide_password=False)
    return database_url, tree_copy, scratch


def test_label_column_long_comment_and_varchar_to_text_are_lint_clean(at_head):
    """`label` (a keyword to sqlfluff) as a new table's and a new column's name, a comment
    longer than a line on each, and varchar(20) to text: lint-clean files that round-trip,
    the comments stored whole."""
    url, tree, scratch = at_head
    code = add_revision(
        tree, "test_only_code",
        "-- test-only: a varchar column the models make text.\n"
        "-- squawk-ignore prefer-text-field\n"
        "ALTER TABLE organizations ADD COLUMN test_only_code varchar(20);\n",
        "ALTER TABLE organizations DROP COLUMN test_only_code;\n",
    )  # fmt: skip
    assert run_alembic("upgrade", "head", url=url, tree=tree).returncode == 0
    edit(tree, "tenancy.py", '''    plan: Mapped[str] = mapped_column(Text, server_default=text("'free'"))''',
         f'''    plan: Mapped[str] = mapped_column(Text, server_default=text("'free'"))
    label: Mapped[str | None] = mapped_column(Text, comment={LONG_COMMENT!r})
    test_only_code: Mapped[str | None] = mapped_column(Text)''')  # fmt: skip
    edit(tree, "tenancy.py", "from sqlalchemy import CheckConstraint,",
         "from sqlalchemy import BigInteger\nfrom sqlalchemy import CheckConstraint,")  # fmt: skip
    path = tree / "assessment_models" / "tenancy.py"
    path.write_text(path.read_text() + BADGES)
    result = in_tree(tree, url, scratch, "revision", "--autogenerate", "-m", "add label")
    assert result.returncode == 0, result.stdout
    files = new_files(tree)
    text = "".join(f.read_text() for f in files)
    assert "CREATE TABLE test_only_badges" in text and "ADD COLUMN label text" in text
    assert "TYPE text" in text
    # squawk's rule does not apply to a change without a rewrite: ignored, the reason above it
    assert "(no rewrite, no scan)" in text and "-- squawk-ignore changing-column-type\n" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    lint(tree, files)
    before = snapshot(url)
    upgraded = in_tree(tree, url, scratch, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stdout
    checked = in_tree(tree, url, scratch, "check")  # the comments are the models', whole
    assert checked.returncode == 0, checked.stdout
    assert query(
        url,
        "SELECT col_description(attrelid, attnum) FROM pg_attribute"
        " WHERE attrelid = 'organizations'::regclass AND attname = 'label'",
    ) == [(LONG_COMMENT,)]
    assert query(url, "SELECT obj_description('test_only_badges'::regclass)") == [(LONG_COMMENT,)]
    downgraded = in_tree(tree, url, scratch, "downgrade", code)
    assert downgraded.returncode == 0, downgraded.stdout
    assert snapshot(url) == before


def test_lint_finding_it_cannot_avoid_is_refused_with_the_draft(at_head):
    """A char(2) column is what the model asks for, and what squawk's ban-char-field refuses:
    nothing is written to sql/, the draft is in drafts/, the line names the finding."""
    url, tree, scratch = at_head
    edit(tree, "tenancy.py", '''    plan: Mapped[str] = mapped_column(Text, server_default=text("'free'"))''',
         '''    plan: Mapped[str] = mapped_column(Text, server_default=text("'free'"))
    test_only_country: Mapped[str | None] = mapped_column(CHAR(2))''')  # fmt: skip
    edit(tree, "tenancy.py", "from sqlalchemy import CheckConstraint,",
         "from sqlalchemy import CHAR\nfrom sqlalchemy import CheckConstraint,")  # fmt: skip
    result = in_tree(tree, url, scratch, "revision", "--autogenerate", "-m", "add country")
    line, drafts = assert_refused(result, tree, "add_country", "does not pass make lint")
    assert "squawk ban-char-field" in line
    assert "ADD COLUMN test_only_country char(2)" in drafts[0].read_text()
