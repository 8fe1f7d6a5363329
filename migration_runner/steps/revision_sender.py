"""Each revision's commit string runs on the server while Alembic prepares the next revision.

In a run from base most of the time is the server's: a revision's string (its SQL file, its
history row, its version change, the commit; steps/transaction.py) takes milliseconds there,
and the Python that prepares the next one (Alembic's loop, the shim, the history row) a
fraction of one, which the run used to add on top. A RevisionSender sends each string from
a thread of its own, on the run's connection, and returns at once: Alembic's loop goes on
with the next revision while the server runs this one. What the server sees is unchanged:

- one string at a time, in order: a string handed over waits for those before it, and
  runs only if they succeeded, so no revision runs after one that failed; with the next
  string already waiting (DEPTH), the sender starts it as soon as the server answers;
- anything else sent on the connection (a non-transactional revision, a shim's op.execute,
  the run's last COMMIT) first waits for the strings handed over, through SQLAlchemy's
  before_cursor_execute and commit events, and a failure among them is raised there, as
  its own commit would have raised it: naming its file;
- a rollback (a run failing or interrupted for another reason) waits for them too, and the
  other reason stays the run's error.

So a failed revision is reported up to two steps of Alembic's loop late, after Alembic's
"Running upgrade" lines of the revisions after it, of which nothing has been sent.
"""

import threading
from collections import deque
from collections.abc import Callable

from alembic.runtime.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError

from migration_runner.steps.emit import emit
from migration_runner.steps.progress import monitor_of, reported

# Strings handed over and not yet done, the one in flight included: with the next one
# already waiting, the sender starts it the moment the server answers the first, so the
# server never waits for this run's Python.
DEPTH = 2


class RevisionSender:
    def __init__(self, ctx: MigrationContext, progress_interval: float) -> None:
        connection = ctx.connection
        if progress_interval > 0:
            monitor_of(connection)  # its first use may query: here, not in the sender's thread
        self._ctx, self._connection, self._interval = ctx, connection, progress_interval
        # (sql, shown, failure) of each string not done yet, the first in flight.
        self._jobs: deque[tuple[str, str, Callable[[DBAPIError], Exception]]] = deque()
        self._failure: BaseException | None = None
        self._stopping = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._serve, name="revision sender", daemon=True)
        self._thread.start()
        for name, listener in self._listeners():
            event.listen(connection, name, listener)

    def send(self, sql: str, shown: str, failure: Callable[[DBAPIError], Exception]) -> None:
        """Hand sql over, to run once the strings before it have succeeded; failure(error) is
        what a failure of sql raises. shown names the file for the progress reports. Waits
        while DEPTH strings are not done; raises the failure of one that failed."""
        with self._changed:
            while len(self._jobs) >= DEPTH and self._failure is None:
                self._changed.wait()
            self._raise_failure()
            self._jobs.append((sql, shown, failure))
            self._changed.notify_all()

    def finish(self) -> None:
        """Wait until every string handed over is done; raise the failure of one that failed."""
        with self._changed:
            self._drain()
            self._raise_failure()

    def close(self) -> None:
        """Wait for the string in flight (a failure is dropped: the run raises its own, and
        the strings after it never run), stop listening and end the thread."""
        with self._changed:
            self._drain()
            self._failure = None
            self._stopping = True
            self._changed.notify_all()
        for name, listener in self._listeners():
            event.remove(self._connection, name, listener)
        self._thread.join()

    def _listeners(self) -> tuple[tuple[str, Callable], ...]:
        """What the run's thread does before it uses the connection: a statement or a commit
        waits for the strings handed over and raises their failure; a rollback only waits."""
        return (
            ("before_cursor_execute", self._finish_first),
            ("commit", self._finish_first),
            ("rollback", self._drain_first),
        )

    def _drain(self) -> None:
        while self._jobs:
            self._changed.wait()

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def _serve(self) -> None:
        while True:
            with self._changed:
                while not self._jobs and not self._stopping:
                    self._changed.wait()
                if not self._jobs:
                    return
                sql, shown, failure = self._jobs[0]
            raised = None
            try:
                with reported(self._connection, shown, self._interval):
                    # Through SQLAlchemy, as every statement of the run: its events and echo
                    # see it (this class's own listeners let this thread pass).
                    emit(self._ctx, sql)
            except DBAPIError as error:
                raised = failure(error)
            except BaseException as error:  # noqa: BLE001 - raised in the run's thread instead
                raised = error
            with self._changed:
                if raised is None:
                    self._jobs.popleft()
                else:  # the strings after it are never sent
                    self._jobs.clear()
                    self._failure = raised
                self._changed.notify_all()

    def _finish_first(self, *_event) -> None:
        if threading.current_thread() is not self._thread:  # the sender's own pass
            self.finish()

    def _drain_first(self, *_event) -> None:
        if threading.current_thread() is not self._thread:
            with self._changed:
                self._drain()  # its failure stays, for the run's own error handling
