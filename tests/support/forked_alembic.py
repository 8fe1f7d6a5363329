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
import posix
import sys
from pathlib import Path

import alembic.config
import alembic.runtime.plugins
import pglast  # noqa: F401  (imported once here, inherited by every child)
import psycopg2  # noqa: F401
import sqlalchemy  # noqa: F401
import sqlfluff
from tqdm import tqdm

from migration_runner.tools.alembic_child import ForkedProgram


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


class ForkedCommand(ForkedProgram):
    """A running `main(argv)` in a forked child (the product's ForkedProgram): stdout and
    stderr together (communicate's first value), or apart when asked."""

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
        load_sqlfluff()
        if _measuring() is not None:
            # Under make test's coverage (patch=fork) the child restarts coverage's collector,
            # which reads the call stack with inspect: inspect maps every imported module to its
            # file the first time. Mapped here, each child inherits the map, not rebuilding it.
            inspect.getmodule(sys._getframe())

        def program_main():
            if own_modules:
                _import_project_from(cwd)
            return main(argv)

        super().__init__(program_main, [program, *argv], cwd, environ, separate_stderr, leave=_exit)


class ForkedAlembic(ForkedCommand):
    """A running `alembic ARGV` (Alembic's own CommandLine), stdout and stderr together."""

    def __init__(
        self, argv: list[str], environ: dict[str, str], cwd: str, own_modules: bool = False
    ) -> None:
        super().__init__(_alembic_main, argv, environ, cwd, own_modules)


def _alembic_main(argv: list[str]) -> None:
    alembic.config.main(argv=argv, prog="alembic")


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
