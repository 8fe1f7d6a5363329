"""`alembic` and `make` as a user runs them, each in its own process with a clean environment."""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from migration_runner.steps.database_url import URL_VARIABLES
from support.forked_alembic import ForkedAlembic, ForkedCommand
from support.project import ROOT

# Backups that runs with allow-data-loss write, kept out of the checkout's backups/.
BACKUPS = tempfile.mkdtemp(prefix="migration-test-backups-")
atexit.register(shutil.rmtree, BACKUPS, ignore_errors=True)


def clean_environ(**extra: str) -> dict[str, str]:
    """The test process's environment without any database URL or runner setting."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in URL_VARIABLES and not key.startswith(("MIGRATION_", "POSTGRES_"))
    }
    environ["MIGRATION_BACKUP_DIR"] = BACKUPS
    environ.update(extra)
    return environ


def run_python(
    script: str, *args: str, tree: Path = ROOT, url: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """`python -c script ARGS` in a fresh interpreter in tree (its packages first on the
    path), as a tool driving Alembic from Python runs; DATABASE_URL is url when given."""
    extra = {"PYTHONPATH": str(tree)} | ({"DATABASE_URL": url} if url else {})
    return _run_clean([sys.executable, "-c", script, *args], tree, timeout, **extra)


def _run_clean(
    command: list[str], cwd: Path, timeout: float, **extra: str
) -> subprocess.CompletedProcess:
    """command in cwd with clean_environ(**extra), its output captured as text, any exit."""
    return subprocess.run(
        command,
        cwd=cwd,
        env=clean_environ(**extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def unmeasured(environ: dict[str, str] | None = None) -> dict[str, str]:
    """environ (this process's by default) without the variables that start make test's
    coverage in a child (.coveragerc: patch = subprocess), for a child that runs none of our
    packages: a linter, or pytest collecting. Measured, it would only trace third-party code."""
    return {
        key: value
        for key, value in (os.environ if environ is None else environ).items()
        if not key.startswith("COVERAGE_PROCESS_")
    }


def run_alembic(
    *args: str,
    url: str | None = None,
    tree: Path = ROOT,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    fresh_interpreter: bool = False,
    python: str | Path | None = None,
    own_modules: bool = False,
) -> subprocess.CompletedProcess:
    """`alembic -c <tree>/alembic.ini ARGS` as a user runs it, in its own process (see
    start_alembic).

    Alembic prints FAILED: ... on stdout and logs on stderr; both land in .stdout here.
    """
    process = start_alembic(
        *args,
        url=url,
        tree=tree,
        env=env,
        fresh_interpreter=fresh_interpreter,
        python=python,
        own_modules=own_modules,
    )
    stdout, _ = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout)


def run_alembic_concurrently(
    runs: int,
    *args: str,
    url: str | None = None,
    tree: Path = ROOT,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> list[subprocess.CompletedProcess]:
    """Start `runs` alembic processes at once, as simultaneous deploys would; wait for all."""
    processes = [start_alembic(*args, url=url, tree=tree, env=env) for _ in range(runs)]
    results = []
    for process in processes:
        stdout, _ = process.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, stdout))
    return results


def start_alembic(
    *args: str,
    url: str | None = None,
    tree: Path = ROOT,
    env: dict[str, str] | None = None,
    fresh_interpreter: bool = False,
    python: str | Path | None = None,
    own_modules: bool = False,
) -> ForkedAlembic | subprocess.Popen:
    """Start `alembic -c <tree>/alembic.ini ARGS` in its own process, in clean_environ plus
    env (and DATABASE_URL=url if given); .communicate() gives stdout and stderr together.

    The process is forked from this one (Alembic already imported, see
    forked_alembic.py) unless fresh_interpreter asks for a new Python: this one, or
    the interpreter `python` names (which implies a fresh one). A forked process runs this
    process's runner and models unless own_modules asks for tree's (a copy's edited models).
    """
    environ = clean_environ(**(env or {}))
    if url is not None:
        environ["DATABASE_URL"] = url
    argv = ["-c", str(tree / "alembic.ini"), *args]
    if not fresh_interpreter and python is None:
        return ForkedAlembic(argv, environ, str(tree), own_modules)
    return subprocess.Popen(
        [str(python or sys.executable), "-m", "alembic", *argv],
        env=environ,
        cwd=tree,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_migrations_command(
    *args: str, env: dict[str, str], cwd: Path = ROOT, timeout: float = 120
) -> subprocess.CompletedProcess:
    """`migrations ARGS` (migration_runner/cli.py) with exactly env as its environment, in a
    forked child of this process (forked_alembic.py); stdout and stderr apart, as
    subprocess.run(capture_output=True) has them. Tests about a fresh interpreter, or whose
    child must take signals of its own, run `python -m migration_runner.cli` instead."""
    from migration_runner.cli import main

    process = ForkedCommand(
        main, list(args), env, str(cwd), program="migrations", separate_stderr=True
    )
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run_make(
    project: Path, *args: str, timeout: float = 600, **extra: str
) -> subprocess.CompletedProcess:
    """`make ARGS` in a project copy, with no database URL or runner setting from this process
    (extra: variables to add)."""
    return _run_clean(["make", *args], project, timeout, **extra)


def make_variable(project: Path, variable: str, **extra: str) -> str:
    """The value make gives variable in project's Makefile (extra: variables to add)."""
    said = run_make(
        project,
        "-s",
        "--no-print-directory",
        "--eval",
        f"said: ; @echo '$({variable})'",
        "said",
        **extra,
    )
    assert said.returncode == 0, said.stdout + said.stderr
    return said.stdout.strip()
