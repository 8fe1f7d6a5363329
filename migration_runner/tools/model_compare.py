"""What `alembic check` and `alembic revision --autogenerate` compare the database with.

The models (assessment_models) are imported only for those two commands, so a
plain `alembic upgrade head` never pays for them. The commands are recognised
from Alembic's own environment, so they compare the models when called from
Python (`alembic.command.check(config)`, `command.revision(config,
autogenerate=True, message=...)`) as from the command line. A tool may pass
another MetaData in `config.attributes["target_metadata"]`. The runner's own
tables are left out of every comparison: no model declares them. What counts as a
difference is comparison.py's (the same for `check`, autogenerate and its draft's proof);
this module only wires it into env.py.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic.config import Config

from migration_runner.steps.database_url import URL_VARIABLES, DatabaseTarget, resolve_target

# config.attributes key of a MetaData to compare with instead of assessment_models'.
TARGET_METADATA = "target_metadata"


def _environment_options() -> dict:
    """The options alembic.command gave the EnvironmentContext running env.py (none outside)."""
    from alembic import context

    environment = getattr(context, "_proxy", None)
    return getattr(environment, "context_opts", None) or {}


def command_name() -> str:
    """The alembic.command function running env.py ('check', 'revision', 'upgrade', ...),
    from the command line or from Python alike."""
    step = _environment_options().get("fn")
    if getattr(step, "__module__", None) != "alembic.command":
        return ""
    return step.__qualname__.partition(".")[0]


def compares_models(config: Config | None = None) -> bool:
    """True for `alembic check` and `alembic revision --autogenerate`, however called."""
    revision_context = _environment_options().get("revision_context")
    command_args = getattr(revision_context, "command_args", None) or {}
    return bool(command_args.get("autogenerate"))


def target_metadata(config: Config):
    """config.attributes["target_metadata"] when a tool passes one, else the models'."""
    given = config.attributes.get(TARGET_METADATA)
    if given is not None:
        return given
    from assessment_models import metadata  # only these commands need the models

    return metadata


def comparison_options(config: Config) -> dict:
    """context.configure() options for comparing with the models; none for other commands."""
    if not compares_models(config):
        return {}
    from migration_runner.tools import comparison  # Alembic's autogenerate: these commands only

    if command_name() == "check":
        from migration_runner.tools.model_parity import add_to_diff as directives
    else:
        from migration_runner.tools.autogenerate.revision import write_sql_revisions as directives
    return {
        **comparison.OPTIONS,
        "target_metadata": target_metadata(config),
        "process_revision_directives": directives,
        "fn": at_head_first(_environment_options()["fn"]),
    }


def at_head_first(compare):
    """Alembic's comparison step, refusing first a database not at head with its revision,
    head's, and the command that brings it there (Alembic says only `Target database is not
    up to date.`)."""

    def step(current_heads, context):
        script = context.script
        if set(script.get_revisions(current_heads)) != set(script.get_revisions("heads")):
            from migration_runner.errors import MigrationError

            at = ", ".join(current_heads) or "none (no revision applied)"
            head = ", ".join(script.get_heads())
            raise MigrationError(
                f"Target database is not up to date: it is at revision {at}, head is {head}. "
                "The models are compared with a database at head: run `alembic upgrade head` "
                "on it first, then this command again."
            )
        return compare(current_heads, context)

    return step


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
