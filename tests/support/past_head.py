"""A copy of the project with three ordinary revisions on top of its head, made as a team makes them.

    python tests/support/past_head.py DEST

Each revision is scaffolded by `alembic revision -m`, its SQL pair filled in
and the models changed to match; then the schema snapshot is rewritten (what
`make schema` runs). The three are the first changes teams make: a column
(with its model), an index built without blocking writes, and a table (with
its model). tests/test_past_head.py runs the suite's revision-sensitive tests
in such a copy, so a suite that only holds at today's head fails in `make test`.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Every test file that runs revisions, reads the head, or adds revisions of its own.
REVISION_SENSITIVE = (
    "test_at_head.py",
    "test_application_role.py",
    "test_autogenerate.py",
    "test_backup_restore.py",
    "test_checksums.py",
    "test_commit_per_revision.py",
    "test_compat.py",
    "test_concurrent_runs.py",
    "test_data_loss_guard.py",
    "test_drift_and_adoption.py",
    "test_existing_database.py",
    "test_failure_rollback.py",
    "test_history_checks.py",
    "test_interrupted_runs.py",
    "test_linear_history.py",
    "test_loaded_steps.py",
    "test_lock_timeout.py",
    "test_model_parity.py",
    "test_non_transactional.py",
    "test_offline_scripts.py",
    "test_partial_application.py",
    "test_phases.py",
    "test_refusals_before_any_change.py",
    "test_rehearse.py",
    "test_revision_map.py",
    "test_revision_sender.py",
    "test_scaffold.py",
    "test_schema_snapshot.py",
    "test_upgrade_downgrade.py",
    "test_whole_file.py",
)

# make test runs the revision-sensitive files in the copy past head only, on both versions,
# each its share (support/shares.py): SPLIT_VARIABLE=past-head leaves them out of the tree's
# own run. Unset, as in a developer's plain `pytest`: the tree runs them too.
SPLIT_VARIABLE = "TEST_REVISION_SENSITIVE_AT"


def left_out(test_file: str, split: str | None) -> bool:
    """Whether the tree's own run skips collecting test_file under this split."""
    return split == "past-head" and test_file in REVISION_SENSITIVE


COLUMN_UP = """\
-- {stem} (up): the ISO 3166-1 alpha-2 code of
-- each organization's seat.
-- Destructive: no
-- Transaction: yes
--
-- Nullable and without a default: no table rewrite, a brief ACCESS EXCLUSIVE lock.
ALTER TABLE organizations ADD COLUMN past_head_country text;

COMMENT ON COLUMN organizations.past_head_country IS
'ISO 3166-1 alpha-2 code of the seat, if known.';
"""
COLUMN_DOWN = """\
-- {stem} (down): undo the column.
-- Destructive: yes
-- Transaction: yes
ALTER TABLE organizations DROP COLUMN past_head_country;
"""
INDEX_UP = """\
-- {stem} (up): index that column, built without blocking writes.
-- Destructive: no
-- Transaction: none
CREATE INDEX CONCURRENTLY organizations_past_head_country_idx
ON organizations (past_head_country);
"""
INDEX_DOWN = """\
-- {stem} (down): undo the index.
-- Destructive: no
-- Transaction: none
DROP INDEX CONCURRENTLY organizations_past_head_country_idx;
"""
TABLE_UP = """\
-- {stem} (up): past_head_notes, free-text notes an
-- administrator keeps on a tenant.
-- Destructive: no
-- Transaction: yes
CREATE TABLE past_head_notes (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT past_head_notes_pkey PRIMARY KEY (id),
    CONSTRAINT past_head_notes_organization_id_fkey FOREIGN KEY (organization_id)
    REFERENCES organizations (id) ON DELETE CASCADE
);

CREATE INDEX past_head_notes_organization_id_idx ON past_head_notes (organization_id);

COMMENT ON TABLE past_head_notes IS 'Free-text notes an administrator keeps on a tenant.';
"""
TABLE_DOWN = """\
-- {stem} (down): undo the table.
-- Destructive: yes
-- Transaction: yes
DROP TABLE past_head_notes;
"""
COUNTRY_MODEL = """\
    past_head_country: Mapped[str | None] = mapped_column(
        Text, index=True, comment="ISO 3166-1 alpha-2 code of the seat, if known."
    )
"""
NOTES_MODEL = """

class PastHeadNote(Base):
    __tablename__ = "past_head_notes"
    __table_args__ = {"comment": "Free-text notes an administrator keeps on a tenant."}

    id: Mapped[uuid.UUID] = uuid_key()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()
"""
REVISIONS = (
    ("add organizations past head country", COLUMN_UP, COLUMN_DOWN),
    ("index organizations past head country", INDEX_UP, INDEX_DOWN),
    ("add past head notes", TABLE_UP, TABLE_DOWN),
)


def copy_project(dest: Path) -> None:
    """The files git knows (committed or not yet), as a clone with the user's changes has them."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def clone_project(dest: Path) -> None:
    """copy_project, committed in a git repository of its own, as a clone is."""
    copy_project(dest)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    for step in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "clone"]):
        subprocess.run([*git, *step], cwd=dest, capture_output=True, check=True)


def _run(dest: Path, *args: str) -> None:
    environ = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, *args], cwd=dest, env=environ, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed in {dest}:\n{result.stdout}{result.stderr}")


def add_three_revisions(dest: Path) -> None:
    """Scaffold each revision, fill its SQL pair, change the models, rewrite sql/schema.sql."""
    for message, up, down in REVISIONS:
        _run(dest, "-m", "alembic", "revision", "-m", message)
        stem = max((dest / "sql" / "up").glob("*.sql")).stem
        (dest / "sql" / "up" / f"{stem}.sql").write_text(up.format(stem=stem))
        (dest / "sql" / "down" / f"{stem}.sql").write_text(down.format(stem=stem))
    tenancy = dest / "assessment_models" / "tenancy.py"
    models = tenancy.read_text()
    anchor = "    plan: Mapped[str] = mapped_column(Text, server_default=text(\"'free'\"))\n"
    assert anchor in models, "the Organization model changed: update tests/support/past_head.py"
    tenancy.write_text(models.replace(anchor, anchor + COUNTRY_MODEL) + NOTES_MODEL)
    _run(dest, "-m", "migration_runner.cli", "schema", "write")


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.mkdir(parents=True, exist_ok=True)
    clone_project(target)
    add_three_revisions(target)
    print(target)
