"""Run the `alembic` command line in a forked child of the test process.

A fresh interpreter spends about 0.4 s importing Alembic, SQLAlchemy and
psycopg2 before it does anything (autogenerate loads sqlfluff besides), and the
suite runs alembic a few hundred times on each PostgreSQL version. A forked
child starts with those modules already imported and otherwise is what
`alembic` is: its own process, environment, working folder, stdout/stderr
and exit code, running Alembic's own CommandLine. Tests that prove something
about a fresh interpreter (sys.path, an uninstalled copy of the tree) use a
real subprocess instead.

A child inherits this process's runner and models, patches included (tests
patch a step that the child then runs). Asked to (own_modules), a child run in a
copy of the tree imports the copy's own runner and models instead, as a fresh
`alembic -c copy/alembic.ini` would (alembic.ini's prepend_sys_path puts the
copy first): the project's packages are dropped from the inherited modules, and
so are the Alembic plugins they registered, which the copy registers again.
"""

import inspect
import io
import os
import posix
import select
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import alembic.config
import alembic.runtime.plugins
import pglast  # noqa: F401  (imported once here, inherited by every child)
import psycopg2  # noqa: F401
import sqlalchemy  # noqa: F401
import sqlfluff

# sqlfluff's rules and its postgres dialect load on first use (autogenerate lints every
# draft): once here, for every child, instead of once per child.
sqlfluff.lint("SELECT 1;\n", dialect="postgres")

# The packages a tree (or a copy of it) holds, imported from whichever tree a child runs in.
PROJECT_PACKAGES = ("migration_runner", "assessment_models")


class ForkedAlembic:
    """A running `alembic ARGV`, with the parts of subprocess.Popen the tests use."""

    def __init__(
        self, argv: list[str], environ: dict[str, str], cwd: str, own_modules: bool = False
    ) -> None:
        self.args = ["alembic", *argv]
        self.returncode: int | None = None
        read_end, write_end = os.pipe()
        if _measuring() is not None:
            # Under make test's coverage (patch=fork) the child restarts coverage's collector,
            # which reads the call stack with inspect: inspect maps every imported module to its
            # file the first time. Mapped here, each child inherits the map, not rebuilding it.
            inspect.getmodule(sys._getframe())
        pid = os.fork()
        if pid == 0:  # the child never returns from here
            os.close(read_end)
            _run_in_child(argv, environ, cwd, write_end, own_modules)
        os.close(write_end)
        self.pid, self._output, self._read_end = pid, bytearray(), read_end

    def communicate(self, timeout: float | None = None) -> tuple[str, None]:
        """Read all output (stdout and stderr together) and wait for the exit code."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self._read_end], [], [], left)[0]:
                os.kill(self.pid, signal.SIGKILL)
                raise subprocess.TimeoutExpired(self.args, timeout)
            chunk = os.read(self._read_end, 65536)
            if not chunk:
                break
            self._output += chunk
        os.close(self._read_end)
        self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self._output.decode(), None


def _run_in_child(
    argv: list[str], environ: dict[str, str], cwd: str, output: int, own_modules: bool
) -> None:
    code = 1
    try:
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(output)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
        os.environ.clear()
        os.environ.update(environ)
        os.chdir(cwd)
        if own_modules:
            _import_project_from(cwd)
        sys.argv = ["alembic", *argv]
        try:
            alembic.config.main(argv=argv, prog="alembic")
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
        except BaseException:  # noqa: BLE001  (printed as the interpreter would, exit 1)
            traceback.print_exc()
            code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        _exit(code & 0xFF)


def _exit(code: int) -> None:
    """Leave without pytest's atexit and finalizers inherited from the parent; first save
    this child's own line coverage when make test measures it (.coveragerc).

    coverage's patch=_exit makes os._exit save the Coverage the parent had before the fork
    too, though the parent saves its own data: every child would write a copy of all the
    test process measured so far (tests/test_forked_alembic.py counts the files).
    """
    measuring = _measuring()
    if measuring is not None:
        measuring.save()
    posix._exit(code)  # os._exit as the interpreter has it, whatever patched os


def _measuring():
    """The Coverage measuring this process (make test's .coveragerc), else None."""
    coverage = sys.modules.get("coverage")
    return coverage.Coverage.current() if coverage is not None else None


def _import_project_from(tree: str) -> None:
    """Make the project's packages import afresh from tree, where this process has them from
    another folder: drop them and their Alembic plugins (named after their modules)."""
    imported = sys.modules.get(PROJECT_PACKAGES[0])
    if imported is None or Path(imported.__file__).resolve().parents[1] == Path(tree).resolve():
        return
    for name in list(sys.modules):
        if name.split(".")[0] in PROJECT_PACKAGES:
            del sys.modules[name]
    registered = alembic.runtime.plugins._all_plugins  # Plugin.remove() per name, all at once
    for name in list(registered):
        if name.split(".")[0] in PROJECT_PACKAGES:
            registered[name].remove()
