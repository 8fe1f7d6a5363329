"""Every refusal of a run is decided before its first change.

Each revision commits on its own, so a refusal raised when revision k starts
would leave revisions before k applied. The preflight reads every file the run
will execute, in order, and refuses the whole run up front:
- a file that would destroy rows present now (unless `-x allow-data-loss=true`);
- a `-- Transaction: none` file when the run goes through PgBouncer (steps/pooler.py).
"""

from alembic.runtime.migration import MigrationContext

from migration_runner.errors import MigrationError
from migration_runner.steps import sql_files
from migration_runner.steps.data_loss_guard import find_destruction, losses, refusal
from migration_runner.steps.pooler import behind_pgbouncer
from migration_runner.steps.settings import RunSettings


def pending_files(ctx: MigrationContext) -> list[tuple[str, sql_files.SqlFile]]:
    """(revision, SQL file) for every step this run will take, in order.

    None for `alembic check` and `revision --autogenerate`: they apply nothing, and
    asking their migration function for its steps would run the comparison itself.
    """
    if ctx.opts.get("target_metadata") is not None:
        return []
    steps = ctx.opts["fn"](ctx.get_current_heads(), ctx)  # the steps Alembic is about to run
    found = []
    for step in steps:
        revision = getattr(step, "revision", None)
        if revision is None or revision.path is None:
            continue  # a stamp: nothing runs
        direction = "up" if step.is_upgrade else "down"
        found.append((revision.revision, sql_files.for_revision(revision.path, direction)))
    return found


def refuse_before_any_change(ctx: MigrationContext, settings: RunSettings) -> None:
    """Raise the first refusal any pending file would meet, before anything runs.

    Offline scripts check nothing here: each file carries its own guard (data_loss_guard).
    """
    if ctx.as_sql:
        return
    if ctx.opts.get("pooled_target") is None:  # the URL does not say: the server tells
        ctx.opts["pooled_target"] = behind_pgbouncer(ctx)  # one transaction if it pools
    for _, sql_file in pending_files(ctx):
        if not sql_file.transactional and ctx.opts["pooled_target"]:
            raise MigrationError(
                f"{sql_file.shown} is headed `-- Transaction: none`: it holds the migration lock "
                "across commits, which needs one server connection, and this run goes through a "
                "pooler (PgBouncer). Nothing was applied. Run it with the direct URL: set "
                "POSTGRES_URL_NON_POOLING or DATABASE_URL_UNPOOLED."
            )
        destructions = [] if settings.allow_data_loss else find_destruction(sql_file)
        lost = losses(ctx, destructions) if destructions else []
        if lost:
            raise refusal(
                sql_file, lost, "Nothing was changed: the run stops before its first revision."
            )
