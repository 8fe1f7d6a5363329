"""Two phases in one linear history: expand before the new code is deployed, contract after.

An up file headed `-- Phase: contract` removes or narrows something the running
release may still use (a column it reads, a table it writes); it runs only once
the new code is live everywhere. Every other revision is `expand` (the default):
backward compatible, safe while the old code still serves.

    alembic -x phase=expand upgrade head     # before the deploy: up to the first contract one
    alembic -x phase=contract upgrade head   # after it: the rest (as plain `upgrade head`)

The history stays one line: the expand phase stops at the first pending contract
revision, so an expand revision numbered after it waits too (`make lint` refuses
that order among the revisions the running release does not have yet).
"""

import logging

from alembic.runtime.migration import MigrationContext

from migration_runner.steps import sql_files

log = logging.getLogger("migration_runner")
PHASE_HEADER = "phase"
EXPAND, CONTRACT = "expand", "contract"


def phase_of(sql_file: sql_files.SqlFile) -> str:
    """The phase an up file declares: contract, or expand when it says nothing else."""
    return CONTRACT if sql_file.headers.get(PHASE_HEADER, EXPAND).lower() == CONTRACT else EXPAND


def first_contract(revisions) -> tuple[int, sql_files.SqlFile] | None:
    """Where the first contract revision is among these Alembic scripts, oldest first, and
    its up file; None when there is none (None items, steps that run no file, are skipped)."""
    for index, revision in enumerate(revisions):
        if revision is not None and revision.path is not None:
            up = sql_files.for_revision(revision.path, "up")
            if phase_of(up) == CONTRACT:
                return index, up
    return None


def limit_to_phase(ctx: MigrationContext, phase: str) -> None:
    """For `-x phase=expand`, make the run's steps end before the first contract revision.

    Alembic's migration function (the steps from the current revision to the target)
    is wrapped in place; downgrades are never held back.
    """
    if phase != EXPAND:
        return
    steps_of = ctx.opts["fn"]
    reported: set[str] = set()  # the preflight, the backup and the run each ask for the steps

    def expand_steps(heads, context):
        steps = list(steps_of(heads, context))
        found = first_contract(
            getattr(step, "revision", None) if step.is_upgrade else None for step in steps
        )
        if found is None:
            return steps
        index, contract = found
        if contract.shown not in reported:
            reported.add(contract.shown)
            _report_held_back(steps[index:], contract)
        return steps[:index]

    # Alembic reads the function from both places: opts (our preflight and backup) and
    # the attribute its run_migrations loop calls.
    ctx.opts["fn"] = ctx._migrations_fn = expand_steps


def _report_held_back(held: list, contract: sql_files.SqlFile) -> None:
    ids = ", ".join(step.revision.revision for step in held)
    log.info(
        "phase expand: holding back %s: %s is headed `Phase: contract` and runs only after the "
        "new code is live everywhere (alembic -x phase=contract upgrade head)",
        ids,
        contract.shown,
    )
