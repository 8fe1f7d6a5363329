"""A draft SQL pair, proven lint-clean and on a scratch database before a single file is written.

The files must pass the project's lint as `make lint` runs it (sqlfluff with .sqlfluff on
up and down, squawk with .squawk.toml on up). squawk's rules split in two: those about a
type the models chose (TYPE_CHOICES: integer rather than bigint, varchar, char, serial,
timestamp without time zone) are the model author's decision, not a hazard the generator
could avoid, so the line carries a `-- squawk-ignore` under a line naming the model's column
and its declared type; any other finding (a lock hazard) refuses the draft. Without
sqlfluff or squawk it is one line saying how to get them. At head, the up files must bring
the database to the models exactly (Alembic's comparison and ours find nothing), and the
down files, run in reverse order, must give back the schema at head byte for byte (pg_dump
--schema-only, normalised). Whatever fails is named in one line, nothing is written to
sql/, and the draft goes to drafts/ (git-ignored) for the person who writes it by hand.
"""

import functools
import io
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

from alembic.migration import MigrationContext
from alembic.operations import Operations, ops
from sqlalchemy import MetaData, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from migration_runner.errors import MigrationError, reason_of
from migration_runner.steps.revision import set_batch_settings
from migration_runner.steps.settings import read_settings
from migration_runner.steps.sql_files import SqlFile
from migration_runner.tools import comparison, schema_snapshot, scratch
from migration_runner.tools.autogenerate.plan import Statement
from migration_runner.tools.autogenerate.statements import IDENTIFIER, unquoted
from migration_runner.tools.model_parity import ModelMismatch

DRAFTS = "drafts"  # a refused draft's folder in the tree (git-ignored)
BY_HAND = 'write this change by hand (alembic revision -m "...") starting from it'
MAX_LINE = 100  # .sqlfluff's max_line_length
# A plain string constant ('...', quotes doubled inside), not E'...', U&'...' or $$...$$.
LITERAL = re.compile(r"(?<![\w&$])'(?:[^']|'')*'")
LONG_LITERAL = 60  # a constant longer than this, on a line too long, is split in pieces
# squawk's rules about a type the models chose: the model is the source of truth, and its
# author chose the type; nothing the generator writes differently would avoid the finding.
TYPE_CHOICES = frozenset(
    {
        "prefer-bigint-over-int",
        "prefer-bigint-over-smallint",
        "prefer-identity",
        "prefer-text-field",
        "prefer-timestamp-tz",
        "ban-char-field",
    }
)
# The column a type is declared for, the text before that type on its line: `seats ` in
# `ADD COLUMN seats integer`, `    id ` in a CREATE TABLE, `x TYPE ` in `ALTER COLUMN x TYPE`.
COLUMN_BEFORE_TYPE = re.compile(rf"({IDENTIFIER})\s+(?:(?:SET\s+DATA\s+)?TYPE\s+)?$", re.IGNORECASE)
TABLE_OF_STATEMENT = re.compile(
    rf"\b(?:CREATE|ALTER)\s+TABLE\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(?:ONLY\s+)?({IDENTIFIER})",
    re.IGNORECASE,
)
IGNORE_LINE = "-- squawk-ignore "
# A one-line ALTER TABLE ending with a name: what comes before the name, and the name.
ALTER_TABLE_LAST_NAME = re.compile(rf"^(ALTER\s+TABLE\s+.*\S)\s+({IDENTIFIER})$")
# Where autogenerate runs without the linters make lint uses (a Python outside the venv).
MISSING_LINTER = (
    "{tool} is not installed where autogenerate runs ({where}): it lints its draft as `make "
    "lint` does before writing anything. Run `make migrate` (it builds .venv with sqlfluff and "
    "squawk-cli), then run this command with .venv/bin/alembic"
)


def stem_of(rev_id: str, message: str) -> str:
    """NNN_slug: a revision's file name without .sql."""
    slug = "_".join("".join(c if c.isalnum() else " " for c in message.lower()).split())[:60]
    return f"{rev_id}_{slug}"


@dataclass
class DraftRevision:
    rev_id: str
    message: str
    up: str
    down: str
    transactional: bool

    @property
    def stem(self) -> str:
        return stem_of(self.rev_id, self.message)


def _split_literal(match: re.Match) -> str:
    """'a long constant' as adjacent constants on lines of their own, which PostgreSQL joins
    into one (SQL's continuation: constants separated by a newline are one constant)."""
    words = [word for word in re.findall(r"\S*\s*", match.group(0)[1:-1]) if word]
    pieces, piece = [], ""
    for word in words:
        if piece and len(piece) + len(word) > MAX_LINE - 10:
            pieces.append(piece)
            piece = ""
        piece += word
    pieces.append(piece)
    return "\n" + "\n".join(f"'{piece}'" for piece in pieces)


def _short_line(line: str) -> str:
    """A line over MAX_LINE: its long string constants split; an ALTER TABLE's last name (a
    long constraint name) on a line of its own, where the statement still starts on the line
    a squawk-ignore above it covers (`ALTER TABLE t DROP CONSTRAINT IF EXISTS` then the name)."""
    line = LITERAL.sub(
        lambda m: _split_literal(m) if len(m.group(0)) > LONG_LITERAL else m.group(0), line
    )
    last = ALTER_TABLE_LAST_NAME.match(line)
    if last and len(line.split("\n")[0]) > MAX_LINE - 1:
        return f"{last.group(1)}\n    {last.group(2)}"
    return line


def _short_lines(sql: str) -> str:
    """sql with each line over MAX_LINE shortened (_short_line), so the file stays within
    sqlfluff's LT05 (a function body, between dollar quotes, is left as written)."""
    if re.search(r"\$\w*\$", sql):
        return sql
    return "\n".join(
        _short_line(line) if len(line) > MAX_LINE - 1 else line for line in sql.splitlines()
    )


def _sqlfluff():
    """sqlfluff, as `make lint` runs it; refused in one line when this Python lacks it."""
    try:
        import sqlfluff
        from tqdm import tqdm  # sqlfluff's own progress bars
    except ImportError:
        where = f"no sqlfluff package for {sys.executable}"
        raise MigrationError(MISSING_LINTER.format(tool="sqlfluff", where=where)) from None
    # Its bars are never shown here; their monitor would be a second thread for good, and a
    # run forks its scratch migrations only while it has one (tools/alembic_child.py).
    tqdm.monitor_interval = 0
    return sqlfluff


def _config_source(tree: Path) -> tuple[str, str]:
    """The path and text of tree's .sqlfluff; refused in one line without sqlfluff."""
    _sqlfluff()
    path = tree / ".sqlfluff"
    return str(path), path.read_text()


@functools.lru_cache(maxsize=4)
def _config_of(path: str, _text: str):
    """sqlfluff's configuration from the .sqlfluff at path, as sqlfluff.lint(config_path=)
    reads it, built once per text of the file (_config_source): loading the dialect costs
    more than linting a draft, and a run fixes and lints each draft file."""
    from sqlfluff.api.simple import get_simple_config

    return get_simple_config(config_path=path)


def sql_text(tree: Path, header: list[str], statements: list[Statement]) -> str:
    """A file in our style: header comments, then each statement under its comment (and its
    squawk-ignore line, all its rules in one), fixed by sqlfluff."""
    lines = [f"-- {part}" for line in header for part in textwrap.wrap(line, 96)]
    body = []
    for statement in statements:
        comment = [f"-- {line}" for line in textwrap.wrap(statement.comment, 96)]
        if statement.squawk_ignore:
            comment.append(f"-- squawk-ignore {statement.squawk_ignore}")
        body.append("\n".join(comment) + f"\n{_short_lines(statement.sql)};")
    text = "\n".join(lines) + "\n\n" + "\n\n".join(body) + "\n"
    return _fixed(tree, text)


# sqlfluff's findings on each text _fixed returned unchanged, by (.sqlfluff's path and text,
# the SQL): its fix pass linted that very text, so lint_findings need not parse it again.
_FINDINGS_OF_UNCHANGED: dict[tuple[str, str, str], list[dict]] = {}


def _fixed(tree: Path, text: str) -> str:
    """text as sqlfluff.fix gives it back (left as it is when it does not parse), in one
    pass of sqlfluff that also keeps what it found in a text it left unchanged."""
    source = _config_source(tree)
    config = _config_of(*source)
    from sqlfluff.core import Linter

    result = Linter(config=config).lint_string_wrapped(text, fix=True)
    fixed = text
    if not result.count_tmp_prs_errors()[1] or config.get("fix_even_unparsable"):
        fixed = result.paths[0].files[0].fix_string()[0]
    if fixed == text:
        if len(_FINDINGS_OF_UNCHANGED) >= 256:  # a long session (the tests') keeps the last few
            _FINDINGS_OF_UNCHANGED.clear()
        records = result.as_records()
        _FINDINGS_OF_UNCHANGED[(*source, text)] = records[0]["violations"] if records else []
    return fixed


def _sqlfluff_findings(source: tuple[str, str], text: str) -> list[dict]:
    """What sqlfluff.lint finds in text with the configuration source (_config_source): as
    _fixed found it, when it left text unchanged."""
    known = _FINDINGS_OF_UNCHANGED.get((*source, text))
    if known is not None:
        return known
    return _sqlfluff().lint(text, config=_config_of(*source))


def write_drafts(tree: Path, drafts: list[DraftRevision]) -> str:
    """Write each draft to drafts/NNN_slug.up.sql and .down.sql; the files, as a phrase."""
    folder = tree / DRAFTS
    folder.mkdir(exist_ok=True)
    for item in drafts:
        (folder / f"{item.stem}.up.sql").write_text(item.up)
        (folder / f"{item.stem}.down.sql").write_text(item.down)
    ups = ", ".join(f"{DRAFTS}/{item.stem}.up.sql" for item in drafts)
    return f"{ups} (and {'its' if len(drafts) == 1 else 'their'} .down.sql)"


def refused(reason: str, tree: Path, drafts: list[DraftRevision], plain: bool = False):
    """The one-line refusal of a draft: why, where the draft now is, what to do by hand.
    plain: the draft is Alembic's own SQL of a change autogenerate does not write (the
    reason already says to write it by hand)."""
    shown = write_drafts(tree, drafts)
    reason = " ".join(reason.split()).rstrip(".")
    if plain:
        return MigrationError(
            f"{reason}. Nothing was written to sql/; Alembic's own SQL of the change (not "
            f"online-safe) is in {shown}: to write this change by hand (alembic revision -m "
            '"..."), start from it.'
        )
    return MigrationError(
        f"{reason}. Nothing was written to sql/; the draft is in {shown}: {BY_HAND}."
    )


def _plain_sql(container, metadata: MetaData) -> str:
    """Alembic's own SQL of a diff's ops (its --sql mode), not online-safe; a difference only
    we see (a CHECK or index definition) as a comment naming it."""
    buffer = io.StringIO()
    context = MigrationContext.configure(
        dialect_name="postgresql",
        opts={
            "as_sql": True,
            "output_buffer": buffer,
            "literal_binds": True,
            "target_metadata": metadata,
        },
    )
    operations = Operations(context)

    def invoke(op) -> None:
        if isinstance(op, ops.OpContainer):
            for inner in op.ops:
                invoke(inner)
        elif isinstance(op, ModelMismatch):
            buffer.write(f"-- {op.message}\n\n")
        else:
            operations.invoke(op)

    invoke(container)
    return buffer.getvalue()


def alembic_draft(script, metadata: MetaData, rev_id: str, message: str) -> DraftRevision:
    """The draft of a change autogenerate does not write: Alembic's plain SQL of it, headed
    as what it is, for the revision written by hand."""
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)  # no "Context impl"
    header = (
        "-- Alembic's own SQL of this change: NOT online-safe, no lock comments, not proven.\n"
        "-- A start for the revision to write by hand; see MIGRATIONS.md.\n\n"
    )
    return DraftRevision(
        rev_id,
        message,
        header + _plain_sql(script.upgrade_ops, metadata),
        header + _plain_sql(script.downgrade_ops, metadata),
        True,
    )


def _squawk() -> str:
    """squawk as `make lint` runs it: the venv's own (squawk-cli), else the one on PATH;
    refused in one line when there is neither."""
    beside = Path(sys.executable).parent / "squawk"
    if beside.exists():
        return str(beside)
    on_path = shutil.which("squawk")
    if on_path is None:
        where = f"neither beside {sys.executable} nor on PATH"
        raise MigrationError(MISSING_LINTER.format(tool="squawk", where=where))
    return on_path


def _squawk_warnings(tree: Path, item: DraftRevision) -> list[dict]:
    """squawk's findings on item's up file, as make lint runs it (--no-assume-in-transaction
    for `-- Transaction: none`); each with its 0-based line and column."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{item.stem}.up.sql"
        path.write_text(item.up)
        options = [] if item.transactional else ["--no-assume-in-transaction"]
        squawk = subprocess.run(
            [
                _squawk(),
                "--config",
                str(tree / ".squawk.toml"),
                "--reporter",
                "json",
                *options,
                str(path),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    return json.loads(squawk.stdout or "[]")


def lint_findings(tree: Path, drafts: list[DraftRevision]) -> list[str]:
    """What `make lint` would say of the drafts: sqlfluff on up and down files, squawk on up
    files, each finding named by its drafts/ file and line."""
    found = []
    source = _config_source(tree)
    for item in drafts:
        for direction, text in (("up", item.up), ("down", item.down)):
            name = f"{DRAFTS}/{item.stem}.{direction}.sql"
            for violation in _sqlfluff_findings(source, text):
                found.append(
                    f"{name} line {violation['start_line_no']}: sqlfluff "
                    f"{violation['code']} {violation['description']}"
                )
        for warning in _squawk_warnings(tree, item):
            found.append(
                f"{DRAFTS}/{item.stem}.up.sql line {warning['line'] + 1}: squawk "
                f"{warning['rule_name']} {warning['message']}"
            )
    return found


def _model_column(metadata: MetaData, statement: str, before_type: str):
    """The models' (table name, Column) a statement declares a type for: its table is the
    one the statement creates or alters, its column the name just before the type; None
    when the models have no such column."""
    tables = TABLE_OF_STATEMENT.findall(statement)
    named = COLUMN_BEFORE_TYPE.search(before_type)
    if not tables or not named:
        return None
    table_name, column_name = unquoted(tables[-1]), unquoted(named.group(1))
    table = metadata.tables.get(table_name)
    if table is None:
        return None
    column = next((c for c in table.columns if c.name == column_name), None)
    if column is None:  # a retyped column's new column, `<column>__new`: the model's column
        from migration_runner.tools.autogenerate.expand_contract import STAGING

        model_name = column_name.removesuffix(STAGING)
        column = next((c for c in table.columns if c.name == model_name), None)
        if column_name == model_name:
            column = None
    return None if column is None else (table_name, column)


def _declared(column) -> str:
    """The column's type as the models write it: Integer, String(length=50), CHAR(length=2)."""
    return repr(column.type).removesuffix("()")


def _type_choices_ignored(tree: Path, item: DraftRevision, metadata: MetaData) -> str:
    """item's up file with each TYPE_CHOICES finding ignored on its line, under a line that
    names the model's column and declared type; a finding on a column the models do not
    declare is left for check_lint to refuse."""
    lines = item.up.split("\n")
    by_line: dict[int, dict[str, int]] = {}  # line -> {rule: the type's byte offset in it}
    for warning in _squawk_warnings(tree, item):
        if warning["rule_name"] in TYPE_CHOICES:
            by_line.setdefault(warning["line"], {})[warning["rule_name"]] = warning["column"]
    for number in sorted(by_line, reverse=True):  # from the end: earlier lines stay put
        rules = list(by_line[number])
        line = lines[number]
        # squawk's column counts UTF-8 bytes (a name may hold any character)
        before_type = line.encode()[: min(by_line[number].values())].decode(errors="ignore")
        code = [text for text in lines[:number] if not text.lstrip().startswith("--")]
        statement = "\n".join(code).rsplit(";", 1)[-1] + "\n" + before_type
        found = _model_column(metadata, statement, before_type)
        if found is None:
            continue
        table, column = found
        serial = ", without Identity() (serial)" if "prefer-identity" in rules else ""
        named = unquoted(COLUMN_BEFORE_TYPE.search(before_type).group(1))
        copy = f" (this is its new column {named}, of that type)" if named != column.name else ""
        reason = (
            f"{table}.{column.name} is declared {_declared(column)} in the models{serial}"
            f"{copy}: a type choice, not a lock hazard."
        )
        indent = line[: len(line) - len(line.lstrip())]
        above = number
        if number and lines[number - 1].strip().startswith(IGNORE_LINE):
            above = number - 1  # one squawk-ignore per line: its rules join this one's
            listed = lines[above].strip()[len(IGNORE_LINE) :].split("--")[0]
            rules = [rule.strip() for rule in listed.split(",") if rule.strip()] + rules
            del lines[above]
        ignore = f"{indent}{IGNORE_LINE}{', '.join(dict.fromkeys(rules))}"
        width = MAX_LINE - len(indent) - len("-- ")
        said = [f"{indent}-- {part}" for part in textwrap.wrap(reason, width)]
        lines[above:above] = [*said, ignore]
    return "\n".join(lines)


def check_lint(tree: Path, drafts: list[DraftRevision], metadata: MetaData) -> None:
    """Refuse, with the draft shown, unless every file passes make lint as written, once each
    finding about a type the models chose carries its squawk-ignore and reason."""
    for item in drafts:
        item.up = _type_choices_ignored(tree, item, metadata)
    found = lint_findings(tree, drafts)
    if found:
        raise refused("The draft does not pass make lint (" + "; ".join(found) + ")", tree, drafts)


def _engine(url: str):
    """psycopg2 whatever the URL's scheme (SQLAlchemy 2.1 would pick psycopg 3)."""
    return create_engine(make_url(url).set(drivername="postgresql+psycopg2"), poolclass=NullPool)


def _apply(url: str, text: str, transactional: bool) -> None:
    engine = _engine(url)
    try:
        if transactional:
            with engine.begin() as connection:
                connection.execution_options(no_parameters=True).exec_driver_sql(text)
            return
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            # What a batched backfill reads, as the runner sets it (here at the defaults).
            set_batch_settings(MigrationContext.configure(connection), read_settings({}, {}))
            for statement in SqlFile(Path("draft.sql"), text).statements:
                connection.execution_options(no_parameters=True).exec_driver_sql(statement.text)
    finally:
        engine.dispose()


def _left_over(url: str, metadata: MetaData) -> list[str]:
    """What still differs from the models, by the policy of `alembic check`, in words."""
    engine = _engine(url)
    try:
        with engine.connect() as connection, connection.begin():
            return [
                comparison.in_words(diff) for diff in comparison.differences(connection, metadata)
            ]
    finally:
        engine.dispose()


def same_but_column_order(expected: str, actual: str) -> bool:
    """Equal once each CREATE TABLE's column lines are sorted: a dropped column that the down
    file adds back can only come back as the table's last column (the column that was last
    before gains a comma)."""

    def columns_sorted(text: str) -> list[str]:
        return [
            "\n".join(sorted(line.removesuffix(",") for line in obj.text.splitlines()))
            if obj.kind == "TABLE"
            else obj.text
            for obj in schema_snapshot.parse_objects(text)
        ]

    return columns_sorted(expected) == columns_sorted(actual)


def _apply_or_refuse(
    url: str, draft: DraftRevision, direction: str, tree: Path, drafts: list[DraftRevision]
) -> None:
    """Apply draft's up or down file on the scratch database; refused, naming it, if it fails
    (an up file runs at head, a down file after every up file)."""
    try:
        _apply(url, getattr(draft, direction), draft.transactional)
    except DBAPIError as error:
        where = " at head" if direction == "up" else ""
        raise refused(
            f"The draft {direction} file of {draft.rev_id} fails{where}: {reason_of(error)}",
            tree,
            drafts,
        ) from None


def verify(
    drafts: list[DraftRevision],
    tree: Path,
    metadata: MetaData,
    server_url: str | None,
    columns_dropped: bool = False,
) -> None:
    """Raise, naming what fails, unless the drafts round-trip on a scratch database at head.

    When the change drops columns, the schema after the down files may differ from head's
    in column order only (PostgreSQL adds a column at the end); everything else must match.
    """
    with scratch.database_at(tree, "head", server_url) as url:
        at_head = schema_snapshot.snapshot(url)
        for draft in drafts:
            _apply_or_refuse(url, draft, "up", tree, drafts)
        left = _left_over(url, metadata)
        if left:
            raise refused(
                "The draft does not bring the database to the models; still different: "
                + "; ".join(left),
                tree,
                drafts,
            )
        for draft in reversed(drafts):
            _apply_or_refuse(url, draft, "down", tree, drafts)
        after = schema_snapshot.snapshot(url)
        if after != at_head and not (columns_dropped and same_but_column_order(at_head, after)):
            found = schema_snapshot.differences(at_head, after)
            raise refused(
                "The draft down file does not restore the schema at head ("
                + "; ".join(found)
                + ")",
                tree,
                drafts,
            )
