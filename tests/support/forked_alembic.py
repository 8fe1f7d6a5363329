"""Run the `alembic` command line (or `migrations`, migration_runner/cli.py) in a forked
child of the test process.

A fresh interpreter spends about 0.4 s importing Alembic, SQLAlchemy and
psycopg2 before it does anything (autogenerate loads sqlfluff besides), and the
suite runs alembic a few hundred times on each PostgreSQL version. A forked
child starts with those modules already imported and otherwise is what
`alembic` is: its own process, environment, working folder, stdout/stderr
and exit code, running Alembic's own CommandLine (a `migrations` child runs
migration_runner.cli.main, as the `migrations` script does). Tests that prove something
about a fresh interpreter (sys.path, an uninstalled copy of the tree) use a
real subprocess instead.

A child inherits this process's runner and models, patches included (tests
patch a step that the child then runs). Asked to (own_modules), a child run in a
copy of the tree imports the copy's own runner and models instead, as a fresh
`alembic -c copy/alembic.ini` would (alembic.ini's prepend_sys_path puts the
copy first): the project's packages are dropped from the inherited modules, and
so are the Alembic plugins they registered, which the copy registers again.
"""

import functools
import inspect
import os
import posix
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import alembic.config
import alembic.runtime.plugins
import pglast  # noqa: F401  (imported once here, inherited by every child)
import psycopg2  # noqa: F401
import sqlalchemy  # noqa: F401
import sqlfluff
from tqdm import tqdm

from migration_runner.tools.alembic_child import run_as_program


@functools.cache
def load_sqlfluff() -> None:
    """sqlfluff's rules and its postgres dialect load on first use (autogenerate lints every
    draft): once, before the first fork (conftest.py loads them after collecting), for every
    child, instead of once per child; not at import, so that a pytest that only collects
    (tests/test_shares.py) does not pay it."""
    # As autogenerate has it (draft._sqlfluff): sqlfluff's progress bars start no monitor
    # thread, so the product's scratch migrations fork here too (tools/alembic_child.py).
    tqdm.monitor_interval = 0
    sqlfluff.lint("SELECT 1;\n", dialect="postgres")


# The packages a tree (or a copy of it) holds, imported from whichever tree a child runs in.
PROJECT_PACKAGES = ("migration_runner", "assessment_models")


class ForkedCommand:
    """A running `main(argv)` in a forked child, with the parts of subprocess.Popen the tests
    use: stdout and stderr together (communicate's first value), or apart when asked."""

    def __init__(
        self,
        main,
        argv: list[str],
        environ: dict[str, str],
        cwd: str,
        own_modules: bool = False,
        program: str = "alembic",
        separate_stderr: bool = False,
    ) -> None:
        self.args = [program, *argv]
        self.returncode: int | None = None
        load_sqlfluff()
        pipes = [os.pipe() for _ in range(2 if separate_stderr else 1)]
        if _measuring() is not None:
            # Under make test's coverage (patch=fork) the child restarts coverage's collector,
            # which reads the call stack with inspect: inspect maps every imported module to its
            # file the first time. Mapped here, each child inherits the map, not rebuilding it.
            inspect.getmodule(sys._getframe())
        pid = os.fork()
        if pid == 0:  # the child never returns from here
            for read_end, _ in pipes:
                os.close(read_end)
            writes = [write_end for _, write_end in pipes]
            _run_in_child(main, program, argv, environ, cwd, writes[0], writes[-1], own_modules)
        for _, write_end in pipes:
            os.close(write_end)
        self.pid = pid
        self._reads = [read_end for read_end, _ in pipes]

    def communicate(self, timeout: float | None = None) -> tuple[str, str | None]:
        """Read all output and wait for the exit code: (stdout and stderr, None), or
        (stdout, stderr) when they were asked apart."""
        deadline = None if timeout is None else time.monotonic() + timeout
        output = {read_end: bytearray() for read_end in self._reads}
        open_ends = list(self._reads)
        while open_ends:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = select.select(open_ends, [], [], left)[0]
            if not ready:
                os.kill(self.pid, signal.SIGKILL)
                raise subprocess.TimeoutExpired(self.args, timeout)
            for read_end in ready:
                chunk = os.read(read_end, 65536)
                if chunk:
                    output[read_end] += chunk
                else:
                    open_ends.remove(read_end)
                    os.close(read_end)
        self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        texts = [output[read_end].decode() for read_end in self._reads]
        return (texts[0], texts[1] if len(texts) > 1 else None)


class ForkedAlembic(ForkedCommand):
    """A running `alembic ARGV` (Alembic's own CommandLine), stdout and stderr together."""

    def __init__(
        self, argv: list[str], environ: dict[str, str], cwd: str, own_modules: bool = False
    ) -> None:
        super().__init__(_alembic_main, argv, environ, cwd, own_modules)


def _alembic_main(argv: list[str]) -> None:
    alembic.config.main(argv=argv, prog="alembic")


def _run_in_child(
    main,
    program: str,
    argv: list[str],
    environ: dict[str, str],
    cwd: str,
    out: int,
    err: int,
    own_modules: bool,
) -> None:
    def program_main():
        if own_modules:
            _import_project_from(cwd)
        return main(argv)

    # As the product's forked children run (tools/alembic_child.py), leaving by _exit below.
    run_as_program(program_main, [program, *argv], cwd, environ, out, err, leave=_exit)


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
