"""Each revision's commit string runs on the server while Alembic prepares the next revision.

In a run from base most of the time is the server's: a revision's string (its SQL file, its
history row, its version change, the commit; steps/transaction.py) takes milliseconds there,
and the Python that prepares the next one (Alembic's loop, the shim, the history row) a
fraction of one, which the run used to add on top. A RevisionSender sends each string from
a thread of its own, on the run's connection, and returns at once: Alembic's loop goes on
with the next revision while the server runs this one. What the server sees is unchanged:

- one string at a time, in order: the next is handed over only once the one in flight has
  succeeded, so no revision runs after one that failed;
- anything else sent on the connection (a non-transactional revision, a shim's op.execute,
  the run's last COMMIT) waits for the string in flight first, through SQLAlchemy's
  before_cursor_execute and commit events, and that string's failure is raised there, as
  its own commit would have raised it: naming its file;
- a rollback (a run failing or interrupted for another reason) waits for it too, and the
  other reason stays the run's error.

So a failed revision is reported one step of Alembic's loop late, after Alembic's "Running
upgrade" line of the next revision, of which nothing has been sent.
"""

import threading
from collections.abc import Callable

from alembic.runtime.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError

from migration_runner.steps.emit import emit
from migration_runner.steps.progress import monitor_of, reported


class RevisionSender:
    def __init__(self, ctx: MigrationContext, progress_interval: float) -> None:
        connection = ctx.connection
        if progress_interval > 0:
            monitor_of(connection)  # its first use may query: here, not in the sender's thread
        self._ctx, self._connection = ctx, connection
        self._job: tuple[str, str, float, Callable[[DBAPIError], Exception]] | None = None
        self._failure: BaseException | None = None
        self._stopping = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._serve, name="revision sender", daemon=True)
        self._thread.start()
        event.listen(connection, "before_cursor_execute", self._before_statement)
        event.listen(connection, "commit", self._before_commit)
        event.listen(connection, "rollback", self._before_rollback)

    def send(
        self, sql: str, shown: str, interval: float, failure: Callable[[DBAPIError], Exception]
    ) -> None:
        """Send sql once the string in flight has succeeded; failure(error) is what a
        failure of sql raises. shown names the file for the progress reports."""
        self.finish()
        with self._changed:
            self._job = (sql, shown, interval, failure)
            self._changed.notify_all()

    def finish(self) -> None:
        """Wait for the string in flight; raise what its failure raises."""
        failure = self._wait()
        if failure is not None:
            raise failure

    def close(self) -> None:
        """Wait for the string in flight (its failure, if any, is dropped: the run raises its
        own), stop listening and end the thread."""
        self._wait()
        for name, listener in (
            ("before_cursor_execute", self._before_statement),
            ("commit", self._before_commit),
            ("rollback", self._before_rollback),
        ):
            event.remove(self._connection, name, listener)
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._thread.join()

    def _wait(self) -> BaseException | None:
        with self._changed:
            while self._job is not None:
                self._changed.wait()
            failure, self._failure = self._failure, None
        return failure

    def _serve(self) -> None:
        while True:
            with self._changed:
                while self._job is None and not self._stopping:
                    self._changed.wait()
                if self._job is None:
                    return
                sql, shown, interval, failure = self._job
            raised = None
            try:
                with reported(self._connection, shown, interval):
                    # Through SQLAlchemy, as every statement of the run: its events and echo
                    # see it (this class's own listeners let this thread pass).
                    emit(self._ctx, sql)
            except DBAPIError as error:
                raised = failure(error)
            except BaseException as error:  # noqa: BLE001 - raised in the run's thread instead
                raised = error
            with self._changed:
                self._job, self._failure = None, raised
                self._changed.notify_all()

    def _before_statement(self, *_statement) -> None:
        if threading.current_thread() is not self._thread:
            self.finish()

    def _before_commit(self, _connection) -> None:
        if threading.current_thread() is not self._thread:
            self.finish()

    def _before_rollback(self, _connection) -> None:
        if threading.current_thread() is not self._thread:
            self._wait()
