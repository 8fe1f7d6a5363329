"""A command-line run ends without the garbage collector walking its whole heap again.

When a Python process exits, CPython runs full garbage collections over every object still
alive: here Alembic's, SQLAlchemy's, psycopg2's and the runner's. That was about 70 ms of
the 376 ms of a no-op `alembic upgrade head` at 300 revisions (bench/trees.py's tree, 15
interleaved runs with and without this step; make bench's no-op went from 1.19x to 0.95x
the import floor). None of it needs collecting: the process ends and its memory goes back
to the system.
gc.freeze() moves those objects out of the collector's sight, so exit only tears the
modules down.

Only for a process the command line started (`alembic ...`, `migrations ...`): a program
that calls alembic.command or migration_runner.cli.main from Python keeps its collector
as it was (tests/test_quick_exit.py).
"""

import gc


def skip_exit_collections(from_command_line: bool) -> None:
    """Freeze every object alive now when this process was started as a command."""
    if from_command_line:
        gc.freeze()
