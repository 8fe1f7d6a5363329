"""A process started as `alembic ...` or `migrations ...` freezes its heap before it exits
(migration_runner/steps/quick_exit.py); a program calling the same code from Python keeps
its garbage collector as it was.

Each runs in a fresh interpreter, which reports how many more objects gc.get_freeze_count()
counts as it exits than as it started: 0 unless something froze the heap. (Python 3.12 starts
with a few hundred objects of its own frozen; 3.11 with none.)
"""

import subprocess
import sys
import textwrap

from support.database import current_version
from support.processes import clean_environ
from support.project import HEAD, ROOT

# Run last at exit (atexit is last in, first out): how many objects were frozen since start.
REPORT = """
import atexit, gc, sys
frozen_at_start = gc.get_freeze_count()
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() - frozen_at_start))
sys.argv = ["program"]
"""


def frozen_at_exit(url: str, script: str) -> int:
    run = subprocess.run(
        [sys.executable, "-c", REPORT + textwrap.dedent(script)],
        env=clean_environ(DATABASE_URL=url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    said = [line for line in run.stdout.splitlines() if line.startswith("frozen at exit:")]
    assert said, run.stdout + run.stderr
    return int(said[-1].split(":")[1])


def test_the_alembic_and_migrations_commands_freeze_their_heap_before_exit(database_url):
    # alembic.config.main is what the `alembic` script runs: Alembic's command line.
    command_line = "from alembic.config import main\nmain(argv=['upgrade', 'head'])\n"
    # Alembic's, SQLAlchemy's and psycopg2's objects alone: about 75,000 here.
    assert frozen_at_exit(database_url, command_line) > 50_000
    assert current_version(database_url) == HEAD

    # migration_runner.cli.main() with no argv reads sys.argv: the `migrations` script.
    script = "from migration_runner.cli import main\nsys.argv = ['migrations', 'status']\nmain()\n"
    assert frozen_at_exit(database_url, script) > 50_000


def test_the_same_runs_called_from_python_leave_the_collector_alone(database_url):
    api = """
    from alembic import command
    from alembic.config import Config
    command.upgrade(Config("alembic.ini"), "head")
    """
    assert frozen_at_exit(database_url, api) == 0
    assert current_version(database_url) == HEAD

    assert (
        frozen_at_exit(database_url, "from migration_runner.cli import main\nmain(['status'])\n")
        == 0
    )
