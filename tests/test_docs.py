"""The docs' commands run as shown.

docs/first-migration.md, the one page that tells the core loop, is run block by
block in a copy of the project, with its SQL and model snippets put where the
page says. Every other shell block in the docs is checked against what exists:
each `make` target in the Makefile, each `alembic` command and `-x` option in
Alembic and the runner, each `migrations` subcommand, each `python -m` module in the tree.
"""

import argparse
import re
import shlex
import subprocess
from pathlib import Path

import alembic.command

from migration_runner import cli
from migration_runner.steps.settings import OPTIONS
from migration_runner.tools.scaffold import revision_ids
from support.database import current_version, query
from support.processes import clean_environ, run_make
from support.project import ROOT

PAGES = sorted([ROOT / "README.md", ROOT / "MIGRATIONS.md", *(ROOT / "docs").glob("*.md")])
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
# Programs a shell block may call besides make, alembic and python: the system's and Vercel's.
EXTERNAL = {"psql", "pg_restore", "pg_dump", "vercel", "set", "export", "source", "eval", "cd"}
# make test is this suite: the first-migration run stops before it.
NOT_RUN_HERE = "make test"


def blocks(page: Path | str, language: str) -> list[str]:
    """The page's fenced blocks in this language; page is a file or its text."""
    text = page.read_text() if isinstance(page, Path) else page
    return [body for lang, body in FENCE.findall(text) if lang == language]


def first_migration_page(project: Path) -> str:
    """docs/first-migration.md as the project can run it: a team that already added the page's
    example column (users.last_login_ip) gets the same steps for a column of another name."""
    page = (ROOT / "docs" / "first-migration.md").read_text()
    if not re.search(r"\blast_login_ip\b", (project / "sql" / "schema.sql").read_text()):
        return page
    return page.replace("last_login_ip", "docs_example_ip").replace(
        "last login ip", "docs example ip"
    )


def commands(block: str) -> list[str]:
    """The block's command lines, comments cut (a `#` inside quotes is kept by shlex)."""
    found = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            found.append(" ".join(shlex.quote(word) for word in words))
    return found


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))


def alembic_problems(args: list[str]) -> list[str]:
    """An Alembic command that exists, with known `-x` options before it (Alembic's rule)."""
    commands = {name for name, value in vars(alembic.command).items() if callable(value)}
    found, subcommand = [], None
    for index, arg in enumerate(args):
        if arg == "-x":
            name = args[index + 1].split("=", 1)[0]
            if name not in {option.name for option in OPTIONS}:
                found.append(f"alembic -x {name}: no such option")
            if subcommand is not None:
                found.append(f"alembic {subcommand} -x {name}: -x goes before the command")
        elif subcommand is None and not arg.startswith("-") and args[index - 1] != "-x":
            subcommand = arg
            if subcommand not in commands:
                found.append(f"alembic {subcommand}: no such command")
    return found


def problems_in(command: str) -> list[str]:
    words = shlex.split(command)
    # Leading VARIABLE=value assignments, as in `DATABASE_URL=... make rehearse`.
    while words and re.match(r"^[A-Z_]+=", words[0]):
        words.pop(0)
    if not words:
        return []
    program, args = words[0], words[1:]
    if program == "make":
        targets = [arg for arg in args if not arg.startswith("-") and "=" not in arg]
        return [
            f"make {target}: no such target" for t in targets if (target := t) not in make_targets()
        ]
    if program == "alembic":
        return alembic_problems(args)
    if program == "migrations":  # pyproject.toml's [project.scripts]: migration_runner/cli.py
        choices = next(
            action.choices
            for action in cli.parser()._actions
            if isinstance(action, argparse._SubParsersAction)
        )
        return [] if args and args[0] in choices else [f"migrations {' '.join(args[:1])}: no such"]
    if program.startswith("python"):
        module = args[args.index("-m") + 1] if "-m" in args else ""
        path = ROOT / Path(*module.split("."))
        script = path.with_suffix(".py")
        # A module runs under -m only with a __main__ block (the tools have none: `migrations`).
        runs = (path / "__main__.py").exists() or (
            script.exists() and 'if __name__ == "__main__":' in script.read_text()
        )
        return [] if not module or runs else [f"python -m {module}: runs nothing"]
    return [] if program in EXTERNAL else [f"{program}: not a command these docs may use"]


def test_every_documented_command_exists():
    found = [
        f"{page.relative_to(ROOT)}: {command}: {problem}"
        for page in PAGES
        for block in blocks(page, "bash")
        for command in commands(block)
        for problem in problems_in(command)
    ]
    assert found == []


def test_the_first_migration_page_runs_as_written(tmp_path, project_copy):
    """The page's blocks in order, in a copy of the project: scaffold, SQL, model, autogenerate
    (which then finds nothing left to write), fmt, lint, schema, upgrade, downgrade."""
    project = project_copy
    page = first_migration_page(project)
    shell = blocks(page, "bash")
    sql = blocks(page, "sql")
    model = blocks(page, "python")[0]
    column = re.search(r"ADD COLUMN (\w+) inet", sql[0]).group(1)
    assert NOT_RUN_HERE in shell[-1]
    environ = clean_environ()
    environ.pop("MIGRATION_BACKUP_DIR")
    before = revision_ids(project)

    def run(block: str) -> str:
        script = "set -euo pipefail\n" + block  # as written: bash reads its own comments
        saved = shlex.quote(str(state))  # the shell's variables, from one block to the next
        result = subprocess.run(
            ["bash", "-c", f"source {saved} 2>/dev/null || true\n{script}\nexport -p > {saved}"],
            cwd=project,
            env=environ,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, f"{block}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        return result.stdout + result.stderr

    state = tmp_path / "shell-state"
    try:
        run(shell[0])  # make migrate, the venv, DATABASE_URL
        url = re.search(
            r"^declare -x DATABASE_URL=\"(.*)\"$", state.read_text(), re.MULTILINE
        ).group(1)
        run(shell[1])  # alembic revision -m
        added = revision_ids(project)[-1]
        assert revision_ids(project) == [*before, added]
        for snippet in sql:
            target = project / re.match(r"-- (sql/[^, ]+)", snippet).group(1).replace("NNN", added)
            text = target.read_text() + "\n" + snippet.split("\n", 1)[1]
            if "Destructive: yes" in snippet.splitlines()[0]:
                text = text.replace("-- Destructive: no", "-- Destructive: yes", 1)
            target.write_text(text)
        tenancy = project / "assessment_models" / "tenancy.py"
        anchor = (
            "    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))\n"
        )
        code = tenancy.read_text().replace(
            anchor, anchor + "    " + model.replace("\n", "\n    ").rstrip() + "\n"
        )
        code = code.replace(
            "from sqlalchemy.dialects.postgresql import UUID",
            "from sqlalchemy.dialects.postgresql import INET, UUID",
        )
        tenancy.write_text(code)
        nothing_left = run(shell[2])  # autogenerate: the hand-written pair already matches
        assert "No changes" in nothing_left and revision_ids(project) == [*before, added]
        run("\n".join(line for line in shell[3].splitlines() if NOT_RUN_HERE not in line))
        assert current_version(url) == added
        assert query(
            url,
            "SELECT data_type FROM information_schema.columns"
            f" WHERE table_name = 'users' AND column_name = '{column}'",
        ) == [("inet",)]
        assert f"{column} inet" in (project / "sql" / "schema.sql").read_text()
    finally:
        run_make(project, "-s", "db-remove")
