"""The run every deploy makes, with nothing to apply, without importing every shim.

`alembic upgrade head` builds Alembic's revision map by importing every file in
alembic/versions (compiling each one in a fresh checkout), only to find that
the database is already at head: at 300 revisions that was most of a no-op
run's own cost. Our shims are data, ids and a call (README, "Layout"), so
their ids can be read as text. When this run is `upgrade head`, every shim
states its ids as plain literals, the history is one straight line, and
alembic_version holds exactly its head, the run verifies the checksums of the
applied files as usual and ends there, with no shim imported.

Anything else (another command or target, --sql, several version locations,
a shim whose ids are not plain literals, branches or merges, a database not at
head) takes Alembic's normal path: this only skips work whose outcome is known.
"""

import re
from dataclasses import dataclass

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from migration_runner.steps.emit import fetch, literal
from migration_runner.steps.revision_map import shim_files
from migration_runner.steps.transaction import version_table

# Any top-level assignment to one of the ids, annotated or not, to the end of its line.
ASSIGNED = re.compile(
    r"^(revision|down_revision|branch_labels|depends_on)\b(\s*[:=][^\n]*)", re.MULTILINE
)
# The only form we read: a string literal or None, optionally annotated, optionally commented.
PLAIN = re.compile(r"(?:\s*:[^=\n]*)?\s*=\s*(None|\"([\w.-]*)\"|'([\w.-]*)')\s*(?:#.*)?")


@dataclass(frozen=True)
class LinearTree:
    head: str
    shims: dict[str, str]  # revision id -> its shim's path, resolved as Alembic resolves it


def _ids(text: str) -> tuple[str, str | None] | None:
    """(revision, down_revision) when the shim states them plainly, with no branch or dependency."""
    values: dict[str, str | None] = {}
    for assignment in ASSIGNED.finditer(text):
        name, value = assignment.group(1), PLAIN.fullmatch(assignment.group(2))
        if value is None or name in values:
            return None  # computed, a tuple, or assigned twice: Alembic's loading decides
        values[name] = None if value.group(1) == "None" else (value.group(2) or value.group(3))
    if not values.get("revision") or "down_revision" not in values:
        return None
    if values.get("branch_labels") is not None or values.get("depends_on") is not None:
        return None
    return values["revision"], values["down_revision"]


def read_linear_tree(script: ScriptDirectory) -> LinearTree | None:
    """The head and the shims, read as text; None whenever Alembic's own loading is needed."""
    paths = shim_files(script)
    if paths is None:
        return None
    downs: dict[str, str | None] = {}
    shims: dict[str, str] = {}  # plain strings: 300 Path objects cost more than the reads
    for path in paths:
        with open(path, encoding="utf-8") as shim:
            ids = _ids(shim.read())
        if ids is None or ids[0] in downs:
            return None
        downs[ids[0]], shims[ids[0]] = ids[1], path
    referenced = [down for down in downs.values() if down is not None]
    heads = set(downs) - set(referenced)
    bases = [rev for rev, down in downs.items() if down is None]
    linear = len(referenced) == len(set(referenced)) and set(referenced) <= set(downs)
    if len(heads) != 1 or len(bases) != 1 or not linear:
        return None
    return LinearTree(head=heads.pop(), shims=shims)


def _is_upgrade_to_head(ctx: MigrationContext) -> bool:
    """This run is `alembic upgrade head` (or heads), online, with no explicit start revision."""
    fn = ctx.opts.get("fn")
    return (
        not ctx.as_sql
        and getattr(fn, "__module__", None) == "alembic.command"
        and getattr(fn, "__name__", None) == "upgrade"
        and ctx.opts.get("destination_rev") in ("head", "heads")
        and ctx.opts.get("starting_rev") is None
    )


def _current_versions(ctx: MigrationContext) -> list[str] | None:
    table = version_table(ctx)
    if not fetch(ctx, f"SELECT to_regclass({literal(table)}) IS NOT NULL")[0][0]:
        return None
    return [row[0] for row in fetch(ctx, f"SELECT version_num FROM {table}")]


def nothing_to_apply(ctx: MigrationContext) -> LinearTree | None:
    """The tree when this `upgrade head` finds the database at head already; else None."""
    if not _is_upgrade_to_head(ctx) or ctx.script is None:
        return None
    current = _current_versions(ctx)
    if not current or len(current) != 1:
        return None  # a fresh database or branches: no need to read the shims
    tree = read_linear_tree(ctx.script)
    if tree is None or current != [tree.head]:
        return None
    return tree
