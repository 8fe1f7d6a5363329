"""One run of the migrations, its state on one object: built by env.py, passed to each step.

Alembic's own MigrationContext.run_migrations is one loop with its state on one object and no
module globals; a Run is that for our steps. It holds the settings as read and those of the
attempt under way (a retry after a lock timeout waits longer), the history recorder, the lock
hand-over (what a revision sends with its commit), whether the run goes through a pooler,
whether its statements go one at a time (the rerun that names a failing line), and the
revisions already backed up (a retried attempt does not dump them again). A second run in the
same interpreter is a new Run and inherits none of it (tests/test_run_state.py).

Alembic calls two things of ours that it passes no Run to: a shim's run_up or run_down and
its HeadMaintainer. They find the Run where env.py's context.configure(run=...) put it,
MigrationContext.opts["run"] (emit.run_of); every other step receives it as an argument.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from alembic.runtime.migration import MigrationContext, MigrationInfo

from migration_runner.steps.emit import Held
from migration_runner.steps.history import HistoryRecorder
from migration_runner.steps.lock_report import write_lock_report
from migration_runner.steps.settings import RunSettings
from migration_runner.steps.transaction import commit_revision

if TYPE_CHECKING:
    from migration_runner.steps.revision_sender import RevisionSender


@dataclass(eq=False)
class Run:
    settings: RunSettings  # -x arguments, the environment, defaults
    tree: Path  # the project folder: a relative backup folder is in it
    # This attempt's settings: the run's, with a lock_timeout that grows on each retry.
    attempt: RunSettings | None = None
    recorder: HistoryRecorder = field(default_factory=HistoryRecorder)
    # Through a pooler (PgBouncer in transaction mode) the run is one transaction. None: the
    # URL does not say, and the preflight asks the server.
    pooled: bool | None = None
    # The lock hand-over: a revision's file and version change, sent with its commit (None:
    # each statement goes on its own round trip; steps/transaction.py).
    held: Held | None = None
    # Sends each revision's string while Alembic prepares the next (steps/revision_sender.py);
    # set with held.
    sender: "RevisionSender | None" = None
    # After a failed try the rerun sends each statement of a file alone, to name its line.
    one_statement_at_a_time: bool = False
    backed_up: set[str] = field(default_factory=set)  # revisions this run has backed up

    def __post_init__(self) -> None:
        if self.attempt is None:
            self.attempt = self.settings

    def after_revision(
        self, ctx: MigrationContext, step: MigrationInfo, heads: set, run_args: dict
    ) -> None:
        """Alembic's on_version_apply: record the revision, note its locks, commit it."""
        self.recorder.record(ctx, step, self.held)
        write_lock_report(ctx, self.settings.lock_report)  # before the commit releases them
        commit_revision(ctx, self)
