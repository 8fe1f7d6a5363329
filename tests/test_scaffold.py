"""`alembic revision -m` scaffolds the next number and an empty SQL pair that lints and applies."""

import subprocess
import sys
from pathlib import Path

from support.database import current_version, query
from support.processes import run_alembic, unmeasured
from support.project import HEAD, REVISIONS, ROOT, add_revision, ups

# A URL nothing listens on: `alembic revision` must not try it.
UNREACHABLE = "postgresql://nobody:secret@127.0.0.1:1/nowhere"


def run(*args: str, cwd, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def lint(*args: str, cwd) -> subprocess.CompletedProcess:
    """A linter, as make lint runs it (outside make test's coverage: none of our code runs)."""
    return run(*args, cwd=cwd, env=unmeasured())


def after(revision: str) -> str:
    """The id that follows revision: one more, zero-padded to three digits."""
    return f"{int(revision) + 1:03d}"


def revision_files(tree: Path) -> list[str]:
    """The tree's shims and SQL files, as paths relative to it."""
    patterns = ("alembic/versions/*.py", "sql/up/*.sql", "sql/down/*.sql")
    return sorted(
        str(path.relative_to(tree)) for pattern in patterns for path in tree.glob(pattern)
    )


def test_revision_writes_next_number_shim_and_sql_pair_that_apply(database_url, tree_copy):
    new = after(HEAD)
    result = run_alembic("revision", "-m", "add widgets", url=UNREACHABLE, tree=tree_copy)
    assert result.returncode == 0, result.stdout

    shim = tree_copy / "alembic" / "versions" / f"{new}_add_widgets.py"
    up = tree_copy / "sql" / "up" / f"{new}_add_widgets.sql"
    down = tree_copy / "sql" / "down" / f"{new}_add_widgets.sql"
    assert f'revision = "{new}"' in shim.read_text()
    assert f'down_revision = "{HEAD}"' in shim.read_text()
    for sql in (up, down):
        lines = sql.read_text().splitlines()
        assert lines[0].startswith(f"-- {new}_add_widgets (")
        assert "-- Destructive: no" in lines and "-- Transaction: yes" in lines
    # Lint clean as it is: sqlfluff, squawk, ruff, the linear-history check.
    sqlfluff = [sys.executable, "-m", "sqlfluff", "lint", "--config", str(ROOT / ".sqlfluff")]
    assert lint(*sqlfluff, str(up), str(down), cwd=tree_copy).returncode == 0
    squawk = str(Path(sys.executable).parent / "squawk")
    assert lint(squawk, str(up), cwd=ROOT).returncode == 0
    ruff = [sys.executable, "-m", "ruff"]
    assert lint(*ruff, "format", "--check", str(shim), cwd=ROOT).returncode == 0
    assert lint(*ruff, "check", str(shim), cwd=ROOT).returncode == 0
    linear = run(
        sys.executable, "-m", "migration_runner.cli", "linear-history", str(tree_copy), cwd=ROOT
    )
    assert linear.returncode == 0, linear.stdout + linear.stderr

    # Applies and reverts as it is.
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    assert current_version(database_url) == new
    assert query(
        database_url, "SELECT revision, direction FROM migration_history ORDER BY id"
    ) == ups(*REVISIONS, new)
    assert run_alembic("downgrade", "-1", url=database_url, tree=tree_copy).returncode == 0
    assert current_version(database_url) == HEAD

    # The next one follows on, with the previous head as its parent.
    assert run_alembic("revision", "-m", "Add gadgets, v2!", tree=tree_copy).returncode == 0
    following = after(new)
    shim = tree_copy / "alembic" / "versions" / f"{following}_add_gadgets_v2.py"
    assert f'revision = "{following}"' in shim.read_text()
    assert f'down_revision = "{new}"' in shim.read_text()
    assert (tree_copy / "sql" / "up" / f"{following}_add_gadgets_v2.sql").exists()


def test_revision_without_message_is_refused_and_writes_nothing(tree_copy):
    result = run_alembic("revision", tree=tree_copy)
    assert result.returncode != 0
    assert "alembic revision -m" in result.stdout
    assert revision_files(tree_copy) == revision_files(ROOT)


def test_two_branches_adding_the_same_number_collide(tree_copy):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    for step in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "base"]):
        assert run(*git, *step, cwd=tree_copy).returncode == 0
    for branch, message in (("widgets", "add widgets"), ("gadgets", "add gadgets")):
        assert run(*git, "checkout", "-q", "-b", branch, "main", cwd=tree_copy).returncode == 0
        assert run_alembic("revision", "-m", message, tree=tree_copy).returncode == 0
        assert run(*git, "add", "-A", cwd=tree_copy).returncode == 0
        assert run(*git, "commit", "-qm", message, cwd=tree_copy).returncode == 0

    merged = run(*git, "merge", "-q", "--no-edit", "widgets", cwd=tree_copy)
    assert merged.returncode == 0  # git sees no conflict: the slugs differ

    check = run(
        sys.executable, "-m", "migration_runner.cli", "linear-history", str(tree_copy), cwd=ROOT
    )
    assert check.returncode != 0
    assert after(HEAD) in check.stdout + check.stderr


def test_history_and_current_show_the_sequential_ids(database_url, tree_copy):
    added = add_revision(tree_copy, "add_widgets", "SELECT 1;\n", "SELECT 1;\n")
    history = run_alembic("history", url=UNREACHABLE, tree=tree_copy)  # needs no database
    assert history.returncode == 0, history.stdout
    assert f"{HEAD} -> {added} (head), add widgets" in history.stdout
    assert "<base> -> 001, Initial schema" in history.stdout

    assert run_alembic("upgrade", "001", url=database_url, tree=tree_copy).returncode == 0
    current = run_alembic("current", url=database_url, tree=tree_copy)
    assert current.returncode == 0 and "001" in current.stdout.split()
    marked = run_alembic("history", "--indicate-current", url=database_url, tree=tree_copy)
    assert "<base> -> 001 (current), Initial schema" in marked.stdout


def test_scaffold_lints_clean_for_a_long_message(tree_copy):
    """A slug of 29 characters or more once made the down file's header 101 columns wide."""
    message = "add organizations country code of the billing address for invoices and tax"
    assert run_alembic("revision", "-m", message, tree=tree_copy).returncode == 0
    files = [tree_copy / name for name in revision_files(tree_copy) if after(HEAD) in name]
    assert len(files) == 3
    sqlfluff = [sys.executable, "-m", "sqlfluff", "lint", "--config", str(ROOT / ".sqlfluff")]
    linted = lint(*sqlfluff, *(str(path) for path in files if path.suffix == ".sql"), cwd=tree_copy)
    assert linted.returncode == 0, linted.stdout
    assert all(len(line) <= 100 for path in files for line in path.read_text().splitlines())


def test_rev_id_other_than_the_next_number_is_refused_and_writes_nothing(tree_copy):
    before = revision_files(tree_copy)
    refused = run_alembic("revision", "-m", "add widgets", "--rev-id", "999", tree=tree_copy)
    assert refused.returncode != 0
    assert (
        f"FAILED: --rev-id 999 is not the next revision number: revisions are numbered in "
        f"sequence, and the next is {after(HEAD)}. Leave out --rev-id." in refused.stdout
    )
    assert revision_files(tree_copy) == before
    accepted = run_alembic("revision", "-m", "add widgets", "--rev-id", after(HEAD), tree=tree_copy)
    assert accepted.returncode == 0, accepted.stdout
    assert f"sql/up/{after(HEAD)}_add_widgets.sql" in revision_files(tree_copy)


def test_a_header_that_hides_a_drop_fails_lint_with_the_fix(tree_copy):
    added = add_revision(
        tree_copy,
        "drop_plan",
        "-- drop_plan (up): test-only.\n-- Destructive: no\nALTER TABLE organizations DROP plan;\n",
        "-- drop_plan (down): test-only.\nALTER TABLE organizations ADD plan text;\n",
    )
    lint = run(
        sys.executable, "-m", "migration_runner.cli", "sql-headers", str(tree_copy), cwd=ROOT
    )
    assert lint.returncode == 1
    assert lint.stderr.strip() == (
        f"FAILED: sql/up/{added}_drop_plan.sql drops column plan of organizations, but its header "
        "does not say so: set `-- Destructive: yes` (a reviewer reads it before the SQL)"
    )
    assert (
        run(sys.executable, "-m", "migration_runner.cli", "sql-headers", cwd=ROOT).returncode == 0
    )
