"""Autogenerate's files pass the project's lint for any valid model (sqlfluff with
.sqlfluff, squawk with .squawk.toml, as `make lint` runs them): it lints its draft before
writing anything. A squawk finding about a type the models chose is written with its
`-- squawk-ignore` under a line naming the column and its declared type; any other finding
(a lock hazard) is refused, the draft shown. Without sqlfluff or squawk it is one line."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlfluff
from sqlalchemy import Column, Integer, MetaData, Table
from sqlalchemy.engine import make_url
from sqlfluff.core import Linter
from test_autogenerate import edit, in_tree, lint, new_files, shims

import assessment_models
from migration_runner.errors import MigrationError
from migration_runner.tools.autogenerate import draft
from migration_runner.tools.autogenerate.plan import SPECIAL_NAMES_MEANT, Statement
from migration_runner.tools.schema_snapshot import snapshot
from support.database import query
from support.processes import run_alembic
from support.project import HEAD, ROOT, add_revision

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
def at_head(database_at_head, postgres_server, tree_copy):
    """A database at head, a tree whose models the test edits, and a server for scratch drafts."""
    database_url = database_at_head
    scratch = make_url(postgres_server.admin_url).render_as_string(hide_password=False)
    return database_url, tree_copy, scratch


def test_label_column_long_comment_and_varchar_to_text_are_lint_clean(at_head):
    """`label` (a keyword to sqlfluff) as a new table's and a new column's name, a comment
    longer than a line on each, and varchar(20) to text: lint-clean files that round-trip,
    the comments stored whole."""
    url, tree, scratch = at_head
    code = add_revision(
        tree,
        "test_only_code",
        "-- test-only: a varchar column the models make text.\n"
        "-- squawk-ignore prefer-text-field\n"
        "ALTER TABLE organizations ADD COLUMN test_only_code varchar(20);\n",
        "ALTER TABLE organizations DROP COLUMN test_only_code;\n",
    )
    assert run_alembic("upgrade", "head", url=url, tree=tree).returncode == 0
    edit(
        tree,
        "tenancy.py",
        """    plan: Mapped[str] = mapped_column(Text, server_default=text("'free'"))""",
        f"""    plan: Mapped[str] = mapped_column(Text, server_default=text("'free'"))
    label: Mapped[str | None] = mapped_column(Text, comment={LONG_COMMENT!r})
    test_only_code: Mapped[str | None] = mapped_column(Text)""",
    )
    edit(
        tree,
        "tenancy.py",
        "from sqlalchemy import CheckConstraint,",
        "from sqlalchemy import BigInteger\nfrom sqlalchemy import CheckConstraint,",
    )
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


TYPES_IMPORT = "from sqlalchemy import CHAR, BigInteger, DateTime, Identity, Integer, String\n"
PLAN_LINE = """    plan: Mapped[str] = mapped_column(Text, server_default=text("'free'"))"""
COUNTERS = """

class TestOnlyCounter(Base):
    __tablename__ = "test_only_counters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hits: Mapped[int | None] = mapped_column(Integer)
    seen_at: Mapped[datetime | None] = mapped_column(DateTime)
"""


def comments_joined(text: str) -> str:
    """text with each comment line joined to the line before it (a wrapped reason reads whole)."""
    return re.sub(r"\n[ ]*-- ", " ", text)


def test_type_choices_are_written_each_with_its_reason(at_head):
    """Integer, String(50), CHAR(2) and a BigInteger identity added to organizations, and a new
    table with an Integer serial key (two rules on one line), an Integer and a timestamp
    without time zone: written, not refused; each type finding carries its squawk-ignore under
    a line naming the column and its declared type, the files pass make lint's sqlfluff and
    squawk, and they round-trip."""
    url, tree, scratch = at_head
    edit(
        tree,
        "tenancy.py",
        PLAN_LINE,
        PLAN_LINE
        + """
    seats: Mapped[int | None] = mapped_column(Integer)
    code: Mapped[str | None] = mapped_column(String(50))
    country: Mapped[str | None] = mapped_column(CHAR(2))
    number: Mapped[int] = mapped_column(BigInteger, Identity())""",
    )
    edit(
        tree,
        "tenancy.py",
        "from sqlalchemy import CheckConstraint,",
        TYPES_IMPORT + "from sqlalchemy import CheckConstraint,",
    )
    path = tree / "assessment_models" / "tenancy.py"
    path.write_text(path.read_text() + COUNTERS)
    result = in_tree(tree, url, scratch, "revision", "--autogenerate", "-m", "add types")
    assert result.returncode == 0, result.stdout
    files = new_files(tree)
    lint(tree, files)  # sqlfluff on every file, squawk on the up files, as make lint runs them
    up = comments_joined("".join(f.read_text() for f in files if f.parent.name == "up"))
    for column, declared, rules, sql in (
        (
            "organizations.seats",
            "Integer",
            "prefer-bigint-over-int",
            "ALTER TABLE organizations ADD COLUMN seats integer;",
        ),
        (
            "organizations.code",
            "String(length=50)",
            "prefer-text-field",
            "ALTER TABLE organizations ADD COLUMN code varchar(50);",
        ),
        (
            "organizations.country",
            "CHAR(length=2)",
            "ban-char-field",
            "ALTER TABLE organizations ADD COLUMN country char(2);",
        ),
        (
            "test_only_counters.id",
            "Integer",
            "prefer-bigint-over-int, prefer-identity",
            "    id serial NOT NULL,",
        ),
        ("test_only_counters.hits", "Integer", "prefer-bigint-over-int", "    hits integer,"),
        (
            "test_only_counters.seen_at",
            "DateTime",
            "prefer-timestamp-tz",
            "    seen_at timestamp without time zone,",
        ),
    ):
        serial = ", without Identity() (serial)" if "prefer-identity" in rules else ""
        said = (
            f"{column} is declared {declared} in the models{serial}: a type choice, not a lock "
            f"hazard. squawk-ignore {rules}\n{sql}"
        )
        assert said in up, up
    assert up.count("squawk-ignore prefer-") + up.count("squawk-ignore ban-char") == 6, up
    assert "ALTER TABLE organizations ADD COLUMN number bigint;" in up  # bigint: no finding
    before = snapshot(url)
    upgraded = in_tree(tree, url, scratch, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stdout
    checked = in_tree(tree, url, scratch, "check")
    assert checked.returncode == 0, checked.stdout
    downgraded = in_tree(tree, url, scratch, "-x", "allow-data-loss=true", "downgrade", HEAD)
    assert downgraded.returncode == 0, downgraded.stdout
    assert snapshot(url) == before


def test_type_rule_joins_the_statements_own_squawk_ignore(at_head):
    """varchar(20) made String(50) is retyped in place (no rewrite), a statement that already
    ignores changing-column-type; prefer-text-field joins that same comment line (squawk reads
    one per line), the reason above it, and the file passes make lint's squawk."""
    url, tree, scratch = at_head
    add_revision(
        tree,
        "test_only_code",
        "-- test-only: a varchar column the models widen.\n"
        "-- squawk-ignore prefer-text-field\n"
        "ALTER TABLE organizations ADD COLUMN test_only_code varchar(20);\n",
        "ALTER TABLE organizations DROP COLUMN test_only_code;\n",
    )
    assert run_alembic("upgrade", "head", url=url, tree=tree).returncode == 0
    edit(
        tree,
        "tenancy.py",
        PLAN_LINE,
        PLAN_LINE + "\n    test_only_code: Mapped[str | None] = mapped_column(String(50))",
    )
    edit(
        tree,
        "tenancy.py",
        "from sqlalchemy import CheckConstraint,",
        TYPES_IMPORT + "from sqlalchemy import CheckConstraint,",
    )
    result = in_tree(tree, url, scratch, "revision", "--autogenerate", "-m", "widen code")
    assert result.returncode == 0, result.stdout
    files = new_files(tree)
    lint(tree, files)
    up = "".join(f.read_text() for f in files if f.parent.name == "up")
    assert (
        "\n-- squawk-ignore changing-column-type, prefer-text-field\n"
        "ALTER TABLE organizations ALTER COLUMN test_only_code TYPE varchar(50);"
    ) in up, up
    assert (
        "organizations.test_only_code is declared String(length=50) in the models: a type "
        "choice, not a lock hazard. squawk-ignore changing-column-type, prefer-text-field\n"
    ) in comments_joined(up), up


def test_volatile_default_is_written_without_the_lock_hazard(at_head):
    """A NOT NULL uuid column with a volatile default (gen_random_uuid()) would rewrite the
    table under its strongest lock (squawk's adding-field-with-default): it is written
    without that statement instead, lint-clean with no squawk-ignore: the column added
    nullable, SET DEFAULT, then the rows already there filled in batches and NOT NULL set by
    the CHECK route in the online steps."""
    url, tree, scratch = at_head
    edit(
        tree,
        "tenancy.py",
        PLAN_LINE,
        PLAN_LINE
        + """
    token: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), server_default=text("gen_random_uuid()")
    )""",
    )
    result = in_tree(tree, url, scratch, "revision", "--autogenerate", "-m", "add token")
    assert result.returncode == 0, result.stderr
    ups = [p.read_text() for p in new_files(tree) if p.parent.name == "up"]
    assert "ALTER TABLE organizations ADD COLUMN token uuid;" in ups[0]
    assert "ALTER COLUMN token SET DEFAULT gen_random_uuid();" in ups[0]
    assert "squawk-ignore" not in ups[0] and "DEFAULT gen_random_uuid() NOT NULL" not in ups[0]
    assert "SET token = gen_random_uuid()" in ups[1] and "SET NOT NULL" in ups[1]
    lint(tree, new_files(tree))


def test_type_finding_on_a_column_the_models_lack_is_refused(tree_copy):
    """A type finding is ignored only for a column the models declare: on any other it stays
    a finding, and the draft is refused in words."""
    up = "-- test-only\nCREATE TABLE test_only_elsewhere (\n    n integer\n);\n"
    item = draft.DraftRevision("003", "elsewhere", up, "-- test-only\n", True)
    with pytest.raises(MigrationError) as refusal:
        draft.check_lint(tree_copy, [item], assessment_models.metadata)
    assert "squawk prefer-bigint-over-int" in str(refusal.value)
    assert "squawk-ignore" not in (tree_copy / "drafts" / "003_elsewhere.up.sql").read_text()


def test_type_finding_on_a_name_beyond_ascii_is_ignored_for_its_column(tree_copy):
    """squawk places a finding by UTF-8 bytes: the column before the type is still found when
    a quoted name holds other characters, and its reason names it."""
    metadata = MetaData()
    Table("test_only_sizes", metadata, Column("Größe", Integer))
    up = (
        "-- test-only\n\n"
        + SPECIAL_NAMES_MEANT
        + 'ALTER TABLE test_only_sizes ADD COLUMN "Größe" integer;\n'
    )
    item = draft.DraftRevision("003", "sizes", up, "-- test-only\n", True)
    draft.check_lint(tree_copy, [item], metadata)  # no refusal: the finding is ignored
    assert (
        "-- test_only_sizes.Größe is declared Integer in the models: a type choice, not a lock "
        "hazard.\n-- squawk-ignore prefer-bigint-over-int\nALTER TABLE test_only_sizes"
    ) in item.up


def test_several_rules_ignored_on_one_statement_render_as_one_comment():
    """Statement.squawk_ignore takes a list (each rule once): sql_text writes one
    `-- squawk-ignore a, b` right above the statement, which sqlfluff and squawk accept."""
    statement = Statement(
        "CREATE TABLE test_only_t (id serial PRIMARY KEY)",
        "test-only: a serial key.",
        ["prefer-bigint-over-int", "prefer-identity", "prefer-bigint-over-int"],
    )
    assert statement.squawk_ignore == "prefer-bigint-over-int, prefer-identity"
    up = draft.sql_text(ROOT, ["test-only (up)."], [statement])
    assert "-- squawk-ignore prefer-bigint-over-int, prefer-identity\nCREATE TABLE" in up
    item = draft.DraftRevision("003", "several", up, "-- test-only\n", True)
    assert draft.lint_findings(ROOT, [item]) == []
    statement.squawk_ignore = ["prefer-identity"]  # a list set later is kept the same way
    assert statement.squawk_ignore == "prefer-identity"


def venv_without(tmp_path: Path, left_out: str) -> Path:
    """A venv holding the project's packages but left_out ("sqlfluff" or "squawk"): its
    site-packages links every package of this one but sqlfluff's; its bin has no squawk."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    ours = Path(next(p for p in sys.path if p.endswith("site-packages")))
    (theirs,) = (venv / "lib").glob("python3*/site-packages")
    for entry in ours.iterdir():
        if left_out == "sqlfluff" and entry.name.lower().startswith("sqlfluff"):
            continue
        (theirs / entry.name).symlink_to(entry)
    return venv


@pytest.mark.parametrize("missing", ["squawk", "sqlfluff"])
def test_missing_linter_is_one_failed_line_saying_how_to_install_it(at_head, tmp_path, missing):
    """Autogenerate run by a Python that lacks sqlfluff, or with no squawk beside it nor on
    PATH: one FAILED line that names the tool and says `make migrate` builds the venv with
    it; no traceback, nothing written."""
    url, tree, scratch = at_head
    venv = venv_without(tmp_path, missing)
    path = os.pathsep.join([str(venv / "bin"), "/usr/bin", "/bin"])
    assert shutil.which("squawk", path=path) is None
    edit(
        tree,
        "tenancy.py",
        PLAN_LINE,
        PLAN_LINE + "\n    region: Mapped[str | None] = mapped_column(Text)",
    )
    result = run_alembic(
        "revision",
        "--autogenerate",
        "-m",
        "add region",
        url=url,
        tree=tree,
        env={"SCHEMA_SCRATCH_URL": scratch, "PATH": path, "PYTHONPATH": str(tree)},
        python=venv / "bin" / "python",
        timeout=300,
    )
    output = result.stdout
    assert result.returncode != 0, output
    failed = [line for line in output.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1 and "Traceback" not in output, output
    assert failed[0].startswith(f"FAILED: {missing} is not installed where autogenerate runs")
    assert "Run `make migrate` (it builds .venv with sqlfluff and squawk-cli)" in failed[0]
    assert new_files(tree) == [] and shims(tree) == shims(ROOT)


def test_squawk_on_path_serves_when_none_is_beside_python(at_head, tmp_path):
    """A Python whose bin has no squawk uses the squawk on PATH: the change is written."""
    url, tree, scratch = at_head
    venv = venv_without(tmp_path, "squawk")
    path = os.pathsep.join([str(venv / "bin"), str(Path(sys.executable).parent), "/usr/bin"])
    assert not (venv / "bin" / "squawk").exists() and shutil.which("squawk", path=path)
    edit(
        tree,
        "tenancy.py",
        PLAN_LINE,
        PLAN_LINE + "\n    seats: Mapped[int | None] = mapped_column(Integer)",
    )
    edit(
        tree,
        "tenancy.py",
        "from sqlalchemy import CheckConstraint,",
        TYPES_IMPORT + "from sqlalchemy import CheckConstraint,",
    )
    result = run_alembic(
        "revision",
        "--autogenerate",
        "-m",
        "add seats",
        url=url,
        tree=tree,
        env={"SCHEMA_SCRATCH_URL": scratch, "PATH": path, "PYTHONPATH": str(tree)},
        python=venv / "bin" / "python",
        timeout=300,
    )
    assert result.returncode == 0, result.stdout
    (up,) = (f for f in new_files(tree) if f.parent.name == "up")
    assert "-- squawk-ignore prefer-bigint-over-int\n" in up.read_text()


def test_a_draft_its_fix_left_unchanged_is_parsed_once_and_found_as_lint_finds_it(monkeypatch):
    """sql_text's fix pass keeps what it found in a text it left as it was; lint_findings
    reports exactly that (what sqlfluff.lint finds) without a second pass. A text the fix
    changed is linted again, as written."""
    passes = []
    lint_string_wrapped = Linter.lint_string_wrapped

    def counted(self, text, *args, **kwargs):
        passes.append(text)
        return lint_string_wrapped(self, text, *args, **kwargs)

    monkeypatch.setattr(Linter, "lint_string_wrapped", counted)
    config = draft._config_of(*draft._config_source(ROOT))
    statements = {
        "clean": Statement("ALTER TABLE users ADD COLUMN nickname text", "A nullable column."),
        "unfixable": Statement("INSERT INTO users SELECT * FROM users", "Columns unnamed."),
        "unparsable": Statement("CREATE TABLE t (select text)", "Not a statement sqlfluff parses."),
        "fixed": Statement("alter table users add column nickname text", "Lower case."),
    }
    for name, statement in statements.items():
        passes.clear()
        text = draft.sql_text(ROOT, ["test-only (up)."], [statement])
        item = draft.DraftRevision("003", name, text, "-- test-only\n", True)
        found = draft.lint_findings(ROOT, [item])
        ups = [passed for passed in passes if passed != item.down]
        expected = sqlfluff.lint(text, config=config)
        sqlfluff_found = [finding for finding in found if ": sqlfluff " in finding]
        assert len(sqlfluff_found) == len(expected), (name, found, expected)
        assert [int(f.split(" line ")[1].split(":")[0]) for f in sqlfluff_found] == [
            violation["start_line_no"] for violation in expected
        ]
        assert len(ups) == (2 if name == "fixed" else 1), name
        if name in {"unfixable", "unparsable"}:
            assert {v["code"] for v in expected} == {"AM04" if name == "unfixable" else "PRS"}
        else:
            assert not expected, expected
        if name == "fixed":
            assert "ALTER TABLE users ADD COLUMN nickname text;" in text
