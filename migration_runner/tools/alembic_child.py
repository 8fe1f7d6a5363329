"""`alembic ...` of a tree in a process of its own: forked from this one where that is safe,
else a new interpreter.

Scratch databases (scratch.migrate: templates, `make schema`, drift, compat) and the
rehearsal (each pending revision) run `alembic upgrade` of a tree as a deploy runs it: its
own process, environment, working folder, output and exit code, and the tree's runner. A
new interpreter first spends about 0.4 s importing Alembic, SQLAlchemy and psycopg2; a child
forked from this process has them already (before this module, the rehearsal of 10 revisions
took 9.7 times one `alembic upgrade head` of the same revisions: bench/results.md of
2026-12-01, section 5).

Forked only where that is safe, else a new interpreter, as before:
- on Linux: macOS's system libraries are not safe to use in a forked child;
- with no other thread running: a lock another thread held would stay held in the child;
- when the tree's runner (its own migration_runner/ if it has one, alembic.ini puts it
  first on sys.path) has the same files as the runner this process imported: a copy of
  another release must run its own code.

The child never collects what it inherited (gc.freeze): garbage the parent had not collected
yet is the parent's to finalize, once (a finalizer may close a connection or write a file).
It leaves by os._exit, so nothing of the parent's (atexit handlers, buffered output) runs
twice either.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import io
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import migration_runner


@dataclass(frozen=True)
class Finished:
    returncode: int
    output: str  # stdout and stderr together, in the order written


def run(tree: Path, argv: list[str], environ: dict[str, str]) -> Finished:
    """`alembic -c <tree>/alembic.ini ARGV` in tree, with exactly environ as its environment."""
    command = ["-c", str(tree / "alembic.ini"), *argv]
    if forks_safely(tree):
        return _forked(tree, command, environ)
    result = subprocess.run(
        [sys.executable, "-m", "alembic", *command],
        env=environ,
        cwd=tree,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    return Finished(result.returncode, result.stdout)


def runner_folder(tree: Path) -> Path:
    """The migration_runner package a run of tree imports: the tree's own copy if it has one
    (alembic.ini puts the tree first on sys.path), else the installed one."""
    own = tree / "migration_runner"
    return own.resolve() if (own / "__init__.py").is_file() else _imported_runner()


def forks_safely(tree: Path) -> bool:
    """Whether a forked child runs tree as a new interpreter would (the module's docstring)."""
    if sys.platform != "linux" or threading.active_count() != 1:
        return False
    folder = runner_folder(tree)
    return folder == _imported_runner() or _digest(folder) == _imported_digest()


def _imported_runner() -> Path:
    return Path(migration_runner.__file__).resolve().parent


@functools.cache
def _imported_digest() -> str:
    """The imported runner's files as they were when first asked (about when imported)."""
    return _digest(_imported_runner())


def _digest(folder: Path) -> str:
    """A digest of a runner's Python files and package data (bytecode caches left out)."""
    digest = hashlib.sha256()
    add_files(digest, "migration_runner", folder)
    return digest.hexdigest()


def add_files(digest, label: str, root: Path) -> None:
    """Add every file under root (root itself if it is a file) to digest: its path, under
    label, and its bytes. Bytecode caches are left out: they follow from the rest."""
    found = [root] if root.is_file() else sorted(root.rglob("*")) if root.is_dir() else []
    for path in found:
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(f"{label}/{path.relative_to(root)}\0".encode())
            digest.update(path.read_bytes())
            digest.update(b"\0")


def _forked(tree: Path, command: list[str], environ: dict[str, str]) -> Finished:
    def alembic() -> None:
        from alembic.config import main

        main(argv=command, prog="alembic")

    child = ForkedProgram(alembic, ["alembic", *command], tree, environ)
    output, _ = child.communicate()
    return Finished(child.returncode, output)


class ForkedProgram:
    """call() run as a program's main in a child forked now (run_as_program), with the parts
    of subprocess.Popen that callers use: communicate() gives its stdout and stderr together,
    or (stdout, stderr) with separate_stderr, and sets returncode. leave: as run_as_program's.
    """

    def __init__(
        self,
        call,
        argv: list[str],
        cwd: Path | str,
        environ: dict[str, str],
        separate_stderr: bool = False,
        leave=None,
    ) -> None:
        self.args = argv
        self.returncode: int | None = None
        sys.stdout.flush()  # the child inherits what is buffered: none of it can be written twice
        sys.stderr.flush()
        pipes = [os.pipe() for _ in range(2 if separate_stderr else 1)]
        pid = os.fork()
        if pid == 0:  # the child: never returns
            for read_end, _ in pipes:
                os.close(read_end)
            out, err = pipes[0][1], pipes[-1][1]
            run_as_program(call, argv, cwd, environ, out, err, leave)
        for _, write_end in pipes:
            os.close(write_end)
        self.pid = pid
        self._reads = [read_end for read_end, _ in pipes]

    def communicate(self, timeout: float | None = None) -> tuple[str, str | None]:
        """Read all its output and wait for it to end. On a timeout (subprocess.TimeoutExpired),
        or Ctrl-C or SIGTERM meanwhile, the child is killed first, as subprocess.run's is."""
        deadline = None if timeout is None else time.monotonic() + timeout
        output = {read_end: bytearray() for read_end in self._reads}
        open_ends = list(self._reads)
        try:
            while open_ends:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                ready = select.select(open_ends, [], [], left)[0]
                if not ready:
                    raise subprocess.TimeoutExpired(self.args, timeout)
                for read_end in ready:
                    chunk = os.read(read_end, 65536)
                    if chunk:
                        output[read_end] += chunk
                    else:
                        open_ends.remove(read_end)
                        os.close(read_end)
            status = os.waitpid(self.pid, 0)[1]
        except BaseException:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            for read_end in open_ends:
                os.close(read_end)
            raise
        self.returncode = os.waitstatus_to_exitcode(status)
        texts = [output[read_end].decode(errors="replace") for read_end in self._reads]
        return texts[0], texts[1] if len(texts) > 1 else None


def run_as_program(
    call, argv: list[str], cwd: Path | str, environ: dict[str, str], out: int, err: int, leave=None
) -> None:
    """In a forked child: become a new process (become_new_process), run call() as a
    program's main, and leave with its status: call's int (0 for None), SystemExit's code,
    or 1 with the traceback printed as the interpreter prints it. Never returns.

    leave(status) ends the process, os._exit by default: the parent's atexit handlers are
    not the child's to run."""
    code = 1
    try:
        become_new_process(cwd, environ, out, err)
        sys.argv = argv
        try:
            returned = call()
            code = returned if isinstance(returned, int) else 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    except BaseException:  # noqa: BLE001  (printed as the interpreter would, exit 1)
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        (leave or os._exit)(code & 0xFF)


def become_new_process(cwd: Path | str, environ: dict[str, str], out: int, err: int) -> None:
    """In a forked child: what a new interpreter started in cwd with environ would have.

    stdin from /dev/null, stdout and stderr on out and err; exactly environ; the default
    SIGINT and SIGTERM handlers; a root logger with no handler (a warning reaches stderr
    through logging's last resort; env.py configures its own); a collector that runs, but
    over what the child makes only (see the module's docstring).
    """
    gc.freeze()  # what it inherited is the parent's to collect and finalize
    gc.enable()  # as in a new interpreter, whatever the parent chose
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    for end in {out, err}:
        os.close(end)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
    os.environ.clear()
    os.environ.update(environ)
    os.chdir(cwd)
    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
