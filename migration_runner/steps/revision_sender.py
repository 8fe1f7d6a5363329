"""Each revision's commit string runs on the server while Alembic prepares the next revision.

In a run from base most of the time is the server's: a revision's string (its SQL file, its
history row, its version change, the commit; steps/transaction.py) takes milliseconds there,
and the Python that prepares the next one (Alembic's loop, the shim, the history row) a
fraction of one, which the run used to add on top. A RevisionSender sends each string from
a thread of its own, on the run's connection, and returns at once: Alembic's loop goes on
with the next revision while the server runs this one. What the server sees is unchanged:

- the strings in order, each revision committing on its own: a string handed over waits
  for those before it, and runs only if they succeeded, so no revision runs after one that
  failed;
- the strings waiting when the server answers (up to DEPTH) go as one, so the server never
  waits for this thread's Python between two revisions (with a string of its own per round
  trip that was a quarter of a millisecond per revision). PostgreSQL runs such a string
  statement by statement and skips the rest after an error, so the revisions before the
  failed one stay committed, as when each went alone. Only strings that commit go
  together (not through a pooler), and a failure names the revision that failed
  (_failed_job);
- anything else sent on the connection (a non-transactional revision, a shim's op.execute,
  the run's last COMMIT) first waits for the strings handed over, through SQLAlchemy's
  before_cursor_execute and commit events, and a failure among them is raised there, as
  its own commit would have raised it: naming its file;
- a rollback (a run failing or interrupted for another reason) waits for them too, and the
  other reason stays the run's error.

So a failed revision is reported up to DEPTH steps of Alembic's loop late, after Alembic's
"Running upgrade" lines of the revisions after it, which never ran. A long revision's
progress reports name the span of files sent with it.
"""

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice

from alembic.runtime.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError

from migration_runner.steps.emit import emit
from migration_runner.steps.progress import monitor_of, reported

# Strings handed over and not yet done, those in flight included: how far Alembic's loop
# may run ahead of the server, and how many revisions one round trip may carry.
DEPTH = 8
# What a failure of a string raises, given the error and where it happened (its file, or a
# span of files when that is not known).
Failure = Callable[[DBAPIError, str], Exception]


@dataclass(frozen=True)
class Job:
    """One revision's string, as handed over."""

    sql: str
    shown: str  # its file, for messages and progress reports
    failure: Failure
    # A version the string puts in alembic_version when it commits (Alembic asserts that none
    # holds it before); None when it does not commit (through a pooler) or adds none (a
    # downgrade's last DELETE): it goes alone.
    adds: str | None


def _span(batch: list[Job]) -> str:
    return batch[0].shown if len(batch) == 1 else f"{batch[0].shown} to {batch[-1].shown}"


def _position(error: DBAPIError) -> int | None:
    """Where in the string sent PostgreSQL places the error (1 is its first character), when
    it says: syntax errors, and unknown names found while a statement is planned."""
    position = getattr(getattr(error.orig, "diag", None), "statement_position", None)
    return int(position) if position else None


class RevisionSender:
    def __init__(self, ctx: MigrationContext, progress_interval: float, versions: str) -> None:
        """versions: the query that reads alembic_version (for _failed_job)."""
        connection = ctx.connection
        if progress_interval > 0:
            monitor_of(connection)  # its first use may query: here, not in the sender's thread
        self._ctx, self._connection, self._interval = ctx, connection, progress_interval
        self._versions = versions
        # Each string not done yet, those in flight first.
        self._jobs: deque[Job] = deque()
        self._failure: BaseException | None = None
        self._stopping = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._serve, name="revision sender", daemon=True)
        self._thread.start()
        for name, listener in self._listeners():
            event.listen(connection, name, listener)

    def send(self, sql: str, shown: str, failure: Failure, adds: str | None) -> None:
        """Hand sql over, to run once the strings before it have succeeded (see Job). Waits
        while DEPTH strings are not done; raises the failure of one that failed."""
        with self._changed:
            while len(self._jobs) >= DEPTH and self._failure is None:
                self._changed.wait()
            self._raise_failure()
            self._jobs.append(Job(sql, shown, failure, adds))
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
                batch = self._next_batch()
            raised = None
            try:
                with reported(self._connection, _span(batch), self._interval):
                    # Through SQLAlchemy, as every statement of the run: its events and echo
                    # see it (this class's own listeners let this thread pass).
                    emit(self._ctx, "".join(job.sql for job in batch))
            except DBAPIError as error:
                failed, where = self._failed_job(batch, error)
                raised = failed.failure(error, where)
            except BaseException as error:  # noqa: BLE001 - raised in the run's thread instead
                raised = error
            with self._changed:
                if raised is None:
                    for _ in batch:
                        self._jobs.popleft()
                else:  # the strings after it are never sent
                    self._jobs.clear()
                    self._failure = raised
                self._changed.notify_all()

    def _next_batch(self) -> list[Job]:
        """The first string waiting, and the strings after it while each commits."""
        batch = [self._jobs[0]]
        if batch[0].adds is not None:
            for job in islice(self._jobs, 1, None):
                if job.adds is None:
                    break
                batch.append(job)
        return batch

    def _failed_job(self, batch: list[Job], error: DBAPIError) -> tuple[Job, str]:
        """The string of batch that failed, and where to say it failed.

        PostgreSQL does not say which statement of a string failed. Where it places the error
        in the string, that names the file (a syntax error runs nothing of the string: the
        rerun one statement at a time starts with its first file). Otherwise the strings
        before the failed one have committed: a connection of its own reads which did (the
        last one whose version alembic_version holds: a version goes when a later string
        replaces it). If that cannot be read (the server is gone), the message names the
        whole span.
        """
        if len(batch) == 1:
            return batch[0], batch[0].shown
        position = _position(error)
        if position is not None:
            end = 0
            for job in batch:
                end += len(job.sql)
                if position <= end:
                    return job, job.shown
        try:
            with self._connection.engine.connect() as other:
                other = other.execution_options(no_parameters=True)
                # The failed transaction keeps its locks until the run's rollback.
                other.exec_driver_sql("SET lock_timeout = '1s'")
                held = {version for (version,) in other.exec_driver_sql(self._versions)}
        except Exception:  # noqa: BLE001 - the run's own error says what happened
            return batch[0], f"one of {_span(batch)}"
        # The last string whose version is there committed, and those before it.
        done = max((i for i, job in enumerate(batch) if job.adds in held), default=-1)
        # After the last string's commit only its lock is taken back: it failed there.
        failed = batch[min(done + 1, len(batch) - 1)]
        return failed, failed.shown

    def _finish_first(self, *_event) -> None:
        if threading.current_thread() is not self._thread:  # the sender's own pass
            self.finish()

    def _drain_first(self, *_event) -> None:
        if threading.current_thread() is not self._thread:
            with self._changed:
                self._drain()  # its failure stays, for the run's own error handling
