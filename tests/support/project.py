"""The migration tree the tests run: its root, its revisions, its tables."""

import re
from pathlib import Path

from migration_runner.tools.scaffold import append_revision, revision_ids

ROOT = Path(__file__).resolve().parents[2]
# The tree's revisions, base first, and its head: tests build on whatever head is today,
# so a team's own revisions never turn the suite red.
REVISIONS = revision_ids(ROOT)
HEAD = REVISIONS[-1]
# The tables 001 creates, each after those it references (the order rows are seeded in); the
# tables at head are those of the schema snapshot (make schema).
V001_TABLE_ORDER = (
    "organizations",
    "users",
    "frameworks",
    "questions",
    "assessments",
    "responses",
    "evidence",
    "assessment_results",
    "audit_logs",
)
V001_TABLES = frozenset(V001_TABLE_ORDER)
HEAD_TABLES = set(
    re.findall(
        r"^CREATE TABLE public\.(\w+) ", (ROOT / "sql" / "schema.sql").read_text(), re.MULTILINE
    )
)


def ups(*revisions: str) -> list[tuple[str, str]]:
    """migration_history's (revision, direction) rows of an upgrade through these revisions."""
    return [(revision, "up") for revision in revisions]


def add_revision(tree: Path, slug: str, up: str, down: str) -> str:
    """Write a test-only revision on top of the tree copy's head, shaped like a real one; its id."""
    return append_revision(tree, slug, up, down)
