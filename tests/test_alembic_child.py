"""`alembic` of a tree in a process of its own (migration_runner/tools/alembic_child.py): a
forked child where that is safe, a new interpreter otherwise, the same database either way."""

import gc
import os
import subprocess
import sys
import threading

from sqlalchemy.engine import make_url

from migration_runner.tools import alembic_child
from support.database import current_version
from support.processes import clean_environ
from support.project import HEAD, ROOT


def _refuse(*_args, **_kwargs):
    raise AssertionError("this run was to take the other way")


def _upgrade(tree, url: str) -> alembic_child.Finished:
    return alembic_child.run(tree, ["upgrade", "head"], clean_environ(DATABASE_URL=url))


def test_a_tree_with_this_runner_is_migrated_by_a_forked_child(
    database_url, tree_copy, monkeypatch
):
    assert alembic_child.forks_safely(ROOT)
    assert alembic_child.forks_safely(tree_copy)  # its own copy of the runner, the same files
    monkeypatch.setattr(subprocess, "run", _refuse)  # no new interpreter

    finished = _upgrade(tree_copy, database_url)
    assert finished.returncode == 0, finished.output
    assert "Running upgrade" in finished.output
    assert current_version(database_url) == HEAD


def test_another_runner_or_a_second_thread_gets_a_new_interpreter(
    database_url, tree_copy, monkeypatch
):
    monkeypatch.setattr(os, "fork", _refuse)
    other = tree_copy / "migration_runner" / "errors.py"
    other.write_text(other.read_text() + "\n# another release's runner\n")
    assert not alembic_child.forks_safely(tree_copy)
    finished = _upgrade(tree_copy, database_url)
    assert finished.returncode == 0, finished.output
    assert current_version(database_url) == HEAD

    monkeypatch.setattr(sys, "platform", "darwin")  # macOS: no fork, whatever the runner
    assert not alembic_child.forks_safely(ROOT)
    monkeypatch.undo()

    waiting = threading.Event()
    thread = threading.Thread(target=waiting.wait)
    thread.start()
    try:
        assert not alembic_child.forks_safely(ROOT)
    finally:
        waiting.set()
        thread.join()


def test_a_failed_run_gives_its_exit_code_and_its_failed_line(postgres_server):
    url = make_url(postgres_server.admin_url).set(database="test_no_such_database")
    finished = _upgrade(ROOT, url.render_as_string(hide_password=False))
    assert finished.returncode != 0
    assert "FAILED:" in finished.output and "test_no_such_database" in finished.output


class _Finalized:
    """Writes the pid of the process that finalizes it."""

    def __init__(self, path):
        self.path, self.cycle = path, self

    def __del__(self):
        with open(self.path, "a") as written:
            written.write(f"{os.getpid()}\n")


def test_the_child_leaves_this_processes_garbage_to_this_process(database_url, tmp_path):
    """An unreachable cycle not yet collected here is inherited; the child's collector must
    not finalize it (gc.freeze): finalizers are this process's to run, once."""
    finalized = tmp_path / "finalized"
    gc.disable()
    try:
        _Finalized(finalized)  # unreachable at once, a cycle: left for the collector
        assert _upgrade(ROOT, database_url).returncode == 0
        assert not finalized.exists()
    finally:
        gc.enable()
    gc.collect()
    assert finalized.read_text() == f"{os.getpid()}\n"
