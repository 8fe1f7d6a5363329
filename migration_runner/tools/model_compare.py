"""What `alembic check` and `alembic revision --autogenerate` compare the database with.

The models (assessment_models) are imported only for those two commands, so a
plain `alembic upgrade head` never pays for them. The runner's own tables are
left out of every comparison: no model declares them.
"""

from alembic.config import Config

RUNNER_TABLES = {"alembic_version", "migration_history"}


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
    from migration_runner.tools.model_parity import add_to_diff

    return {
        "target_metadata": metadata,
        "process_revision_directives": add_to_diff,
        "include_name": include_name,
        "compare_type": True,
        "compare_server_default": True,
    }
