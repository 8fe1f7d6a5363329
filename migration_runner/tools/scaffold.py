"""`alembic revision -m "add widgets"`: the next number and an empty, valid SQL pair.

    alembic/versions/002_add_widgets.py   the shim, from alembic/script.py.mako
    sql/up/002_add_widgets.sql            a header comment, nothing to run yet
    sql/down/002_add_widgets.sql

env.py hands `number_revision` to Alembic as process_revision_directives: the
id becomes max(existing) + 1, zero-padded to three digits, and down_revision is
the current head as usual. The SQL pair is written by the `sql_pair` post-write
hook (alembic.ini), which knows the shim's final file name. A fresh scaffold
lints clean and applies as it is: its files hold only comments.
"""

import re
import textwrap
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import write_hooks
from alembic.util import CommandError

NUMBER = re.compile(r"^\d{3}$")
# Revision id -> (up, down) SQL that `revision --autogenerate` drafted and proved;
# the post-write hook writes these instead of an empty pair.
GENERATED: dict[str, tuple[str, str]] = {}
# Alembic commands that only read or write files, never a database.
FILE_ONLY_COMMANDS = {"revision", "merge"}

UP_TEMPLATE = """\
{title}
-- Say here what this migration does and why.
-- Destructive: no
-- Transaction: yes
--
-- Plain PostgreSQL, no BEGIN or COMMIT (the runner owns the transaction).
-- Set Destructive to yes when it drops a table or column or deletes rows,
-- Transaction to none for CREATE INDEX CONCURRENTLY. See MIGRATIONS.md.
"""

DOWN_TEMPLATE = """\
{title}
-- Undoes the up file exactly: its statements reversed, in reverse order.
-- Destructive: no
-- Transaction: yes
--
-- A down file usually drops what the up file made: then set Destructive to yes
-- (make lint checks that it says so).
"""
# The SQL linter's line length (.sqlfluff): a header comment wraps before it.
MAX_LINE = 100


def title(stem: str, direction: str, message: str) -> str:
    """The file's first comment, `-- NNN_slug (up): message.`, wrapped to lint for any message."""
    text = f"{stem} ({direction}): {'undo ' if direction == 'down' else ''}{message}."
    lines = textwrap.wrap(text, MAX_LINE - len("-- "), break_long_words=True)
    return "\n".join(f"-- {line}" for line in lines)


def runs_without_database(config) -> bool:
    """True for `alembic revision`, `merge` and `history` (unless -i asks for the current one).

    Alembic runs env.py for them only because alembic.ini sets revision_environment. The
    command is read from what alembic.command hands to env.py (model_compare.command_name),
    so `command.revision(config, message=...)` from Python scaffolds without a database as
    the command line does. history is file-only when a command line leaves out -i.
    """
    from migration_runner.tools.model_compare import command_name, compares_models

    if compares_models(config):
        return False  # revision --autogenerate compares the models with a database
    name = command_name()
    options = config.cmd_opts
    return name in FILE_ONLY_COMMANDS or (
        name == "history" and options is not None and not options.indicate_current
    )


def next_number(revisions) -> str:
    """One more than the highest three-digit revision id, zero-padded: 001 when there is none."""
    numbers = [int(rev) for rev in revisions if NUMBER.match(rev)]
    return f"{max(numbers, default=0) + 1:03d}"


def revision_ids(tree: Path) -> list[str]:
    """The tree's revision ids, base first, read from the shims' file names (no import)."""
    shims = (tree / "alembic" / "versions").glob("[0-9][0-9][0-9]_*.py")
    return sorted(shim.name[:3] for shim in shims)


def render_shim(mako: str, revision: str, down_revision: str | None, message: str) -> str:
    """alembic/script.py.mako filled in as `alembic revision` fills it, without Mako."""
    lines = [line for line in mako.splitlines(keepends=True) if not line.startswith("##")]
    down = f'"{down_revision}"' if down_revision else "None"
    return (
        "".join(lines)  # a line starting with ## is a Mako comment
        .replace("${message}", message)
        .replace("${up_revision}", revision)
        .replace("${down_revision | comma,n}", down_revision or "")
        .replace("${create_date}", "generated")
        .replace("""${repr(down_revision).replace("'", '"')}""", down)
    )


def append_revision(tree: Path, slug: str, up: str, down: str) -> str:
    """Write revision head + 1 (shim and SQL pair) into tree, on top of its head; its id.

    For tests and benchmarks that build on whatever the tree's head is today.
    """
    existing = revision_ids(tree)
    number = next_number(existing)
    stem = f"{number}_{slug}"
    mako = (tree / "alembic" / "script.py.mako").read_text(encoding="utf-8")
    shim = render_shim(mako, number, existing[-1] if existing else None, slug.replace("_", " "))
    (tree / "alembic" / "versions" / f"{stem}.py").write_text(shim, encoding="utf-8")
    (tree / "sql" / "up" / f"{stem}.sql").write_text(up, encoding="utf-8")
    (tree / "sql" / "down" / f"{stem}.sql").write_text(down, encoding="utf-8")
    return number


def number_revision(context: MigrationContext, revision, directives) -> None:
    """process_revision_directives: give the new revision the next sequential id.

    `--rev-id` is accepted only when it is that number: any other id would leave a
    gap or a duplicate that the linear-history check then refuses.
    """
    script = context.script
    expected = next_number(rev.revision for rev in script.walk_revisions())
    asked = getattr(context.config.cmd_opts, "rev_id", None) if context.config else None
    for directive in directives:
        if not (directive.message or "").strip():
            raise CommandError('Give the migration a message: alembic revision -m "add widgets"')
        if asked is not None and asked != expected:
            raise CommandError(
                f"--rev-id {asked} is not the next revision number: revisions are numbered in "
                f"sequence, and the next is {expected}. Leave out --rev-id."
            )
        directive.rev_id = expected


@write_hooks.register("sql_pair")
def write_sql_pair(path: str, options: dict) -> None:
    """Post-write hook: create sql/up and sql/down files named after the new shim."""
    shim = Path(path)
    message = shim.read_text(encoding="utf-8").splitlines()[0].strip('"').strip().rstrip(".")
    tree = shim.parents[2]
    drafted = GENERATED.pop(shim.stem.split("_", 1)[0], None)
    for index, (direction, template) in enumerate((("up", UP_TEMPLATE), ("down", DOWN_TEMPLATE))):
        target = tree / "sql" / direction / f"{shim.stem}.sql"
        if target.exists():
            raise CommandError(f"{target} exists already; not overwriting it")
        target.parent.mkdir(parents=True, exist_ok=True)
        content = (
            drafted[index]
            if drafted
            else template.format(title=title(shim.stem, direction, message))
        )
        target.write_text(content, encoding="utf-8")
        print(f"  Generating {target} ...  done")
