"""The release that is running: a git ref, and the revisions it has.

Expand/contract checks compare the working tree with what production runs now.
That is `COMPAT_REF` when set; else the merge base with origin/main (a pull
request's starting point); else main. None outside a git repository.
"""

import os
import subprocess
from pathlib import Path


def _git(tree: Path, *args: str) -> str | None:
    result = subprocess.run(["git", *args], cwd=tree, capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def release_ref(tree: Path) -> str | None:
    """COMPAT_REF, the merge base with origin/main, or main: the first that resolves."""
    if os.environ.get("COMPAT_REF"):
        return os.environ["COMPAT_REF"]
    if _git(tree, "rev-parse", "--verify", "--quiet", "origin/main"):
        return _git(tree, "merge-base", "HEAD", "origin/main")
    return "main" if _git(tree, "rev-parse", "--verify", "--quiet", "main") else None


def released_revisions(tree: Path, ref: str) -> set[str] | None:
    """The revision ids whose shims the ref has; None when git cannot read the ref."""
    listed = _git(tree, "ls-tree", "--name-only", f"{ref}:alembic/versions")
    if listed is None:
        return None
    return {name[:3] for name in listed.splitlines() if name[:3].isdigit()}
