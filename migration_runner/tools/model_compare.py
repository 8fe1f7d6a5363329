"""What `alembic check` and `alembic revision --autogenerate` compare the database with.

The models (assessment_models) are imported only for those two commands, so a
plain `alembic upgrade head` never pays for them. The runner's own tables are
left out of every comparison: no model declares them.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic.config import Config

from migration_runner.bookkeeping import RUNNER_TABLES
from migration_runner.steps.database_url import URL_VARIABLES, DatabaseTarget, resolve_target


def command_name(config: Config) -> str:
    command = getattr(config.cmd_opts, "cmd", None)
    return getattr(command[0], "__name__", "") if command else ""


def compares_models(config: Config) -> bool:
    """True for `alembic check` and `alembic revision --autogenerate`."""
    name = command_name(config)
    return name == "check" or (
        name == "revision" and bool(getattr(config.cmd_opts, "autogenerate", False))
    )


def include_name(name, type_, parent_names) -> bool:
    """Alembic's include_name hook: every table but the runner's bookkeeping."""
    return not (type_ == "table" and name in RUNNER_TABLES)


def comparison_options(config: Config) -> dict:
    """context.configure() options for comparing with the models; none for other commands."""
    if not compares_models(config):
        return {}
    from assessment_models import metadata  # only these commands need the models

    if command_name(config) == "check":
        from migration_runner.tools.model_parity import add_to_diff as directives
    else:
        from migration_runner.tools.autogenerate.revision import write_sql_revisions as directives
    return {
        "target_metadata": metadata,
        "process_revision_directives": directives,
        "include_name": include_name,
        "compare_type": True,
        "compare_server_default": True,
    }


@contextmanager
def comparison_target(config: Config) -> Iterator[DatabaseTarget]:
    """The database this command runs on: the environment's, or for autogenerate with no
    URL set, a scratch database migrated to head (dropped afterwards)."""
    if not compares_models(config) or any(os.environ.get(name) for name in URL_VARIABLES):
        yield resolve_target()
        return
    from migration_runner.tools import schema_snapshot

    tree = Path(config.config_file_name).parent
    with schema_snapshot.scratch_database(os.environ.get("SCHEMA_SCRATCH_URL")) as url:
        schema_snapshot.migrate(tree, url, "head")
        yield resolve_target({"DATABASE_URL": url})
