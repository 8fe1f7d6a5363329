"""The migration history must be one straight line: 001, 002, ... each with its SQL pair.

Two branches that both add 005 merge cleanly in git (different slugs) but give
Alembic two heads; this check makes that, a gap, and a shim without its SQL
files (or SQL files without a shim) fail in CI and in pre-commit.

    migrations linear-history [TREE]
"""

import re
import sys
from collections import defaultdict
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

STEM = re.compile(r"^(\d{3})_[a-z0-9]+(_[a-z0-9]+)*$")


def _stems(folder: Path, suffix: str) -> set[str]:
    return {path.stem for path in folder.glob(f"*{suffix}")} if folder.is_dir() else set()


def problems(tree: Path) -> list[str]:
    """Everything that breaks the straight line, as sentences; empty when all is well."""
    shims = _stems(tree / "alembic" / "versions", ".py") - {"__init__"}
    ups, downs = _stems(tree / "sql" / "up", ".sql"), _stems(tree / "sql" / "down", ".sql")
    found = []
    for stem in sorted(shims | ups | downs):
        if not STEM.match(stem):
            found.append(f"{stem}: name it NNN_slug (three digits, lower-case words joined by _)")
        missing = [
            where
            for where, stems in (
                (f"alembic/versions/{stem}.py", shims),
                (f"sql/up/{stem}.sql", ups),
                (f"sql/down/{stem}.sql", downs),
            )
            if stem not in stems
        ]
        if missing:
            found.append(f"{stem}: missing {', '.join(missing)}")

    by_number = defaultdict(list)
    for stem in shims:
        by_number[stem[:3]].append(stem)
    for number, stems in sorted(by_number.items()):
        if len(stems) > 1:
            found.append(
                f"number {number} is used twice ({', '.join(sorted(stems))}): two branches added "
                "a migration each; renumber yours after the other (next free number)"
            )
    numbers = sorted(int(number) for number in by_number if number.isdigit())
    gaps = sorted(set(range(1, (numbers[-1] if numbers else 0) + 1)) - set(numbers))
    if gaps:
        found.append(f"numbering has gaps: {_ranges(gaps)} missing")
    if found:
        return found  # Alembic cannot load an inconsistent tree reliably

    script = ScriptDirectory.from_config(_config(tree))
    heads = script.get_heads()
    if len(heads) > 1:
        found.append(f"more than one head: {', '.join(sorted(heads))}; history must be linear")
    for stem in sorted(shims):
        revision = script.get_revision(stem[:3])
        expected_down = None if stem[:3] == "001" else f"{int(stem[:3]) - 1:03d}"
        if revision is None or Path(revision.path).stem != stem:
            found.append(f"alembic/versions/{stem}.py: revision id must be {stem[:3]!r}")
        elif revision.down_revision != expected_down:
            found.append(
                f"alembic/versions/{stem}.py: down_revision is {revision.down_revision!r}, "
                f"expected {expected_down!r}"
            )
    return found


def _ranges(numbers: list[int]) -> str:
    """[2, 3, 4, 7] as "002-004, 007": a stray 999 gives one range, not 997 numbers."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ", ".join(
        f"{run[0]:03d}" if len(run) == 1 else f"{run[0]:03d}-{run[-1]:03d}" for run in runs
    )


def _config(tree: Path) -> Config:
    config = Config(str(tree / "alembic.ini"))
    config.set_main_option("script_location", str(tree / "alembic"))
    return config


def run(tree: Path) -> int:
    """`migrations linear-history`: 1 with one FAILED line per problem."""
    found = problems(tree)
    for problem in found:
        print(f"FAILED: migration history is not linear: {problem}", file=sys.stderr)
    if found:
        return 1
    count = len(_stems(tree / "alembic" / "versions", ".py") - {"__init__"})
    print(f"linear history: {count} revision(s), 001 to {count:03d}, each with its SQL pair")
    return 0
