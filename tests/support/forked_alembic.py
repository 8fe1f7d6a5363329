"""Run the `alembic` command line in a forked child of the test process.

A fresh interpreter spends about 0.4 s importing Alembic, SQLAlchemy and
psycopg2 before it does anything, and the suite runs alembic a few hundred
times on each PostgreSQL version. A forked child starts with those modules
already imported and otherwise is what `alembic` is: its own process,
environment, working folder, stdout/stderr and exit code, running Alembic's
own CommandLine. Tests that prove something about a fresh interpreter
(sys.path, an uninstalled copy of the tree) use a real subprocess instead.
"""

import io
import os
import select
import signal
import subprocess
import sys
import time
import traceback

import alembic.config
import pglast  # noqa: F401  (imported once here, inherited by every child)
import psycopg2  # noqa: F401
import sqlalchemy  # noqa: F401


class ForkedAlembic:
    """A running `alembic ARGV`, with the parts of subprocess.Popen the tests use."""

    def __init__(self, argv: list[str], environ: dict[str, str], cwd: str) -> None:
        self.args = ["alembic", *argv]
        self.returncode: int | None = None
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child never returns from here
            os.close(read_end)
            _run_in_child(argv, environ, cwd, write_end)
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


def _run_in_child(argv: list[str], environ: dict[str, str], cwd: str, output: int) -> None:
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
        os._exit(code & 0xFF)  # skip pytest's atexit and finalizers inherited from the parent
