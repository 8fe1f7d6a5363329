"""Print where the database stands: target, revision, tables. Used by `make migrate`
(`migrations status`)."""

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from migration_runner.steps.database_url import resolve_target

TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"


def run() -> int:
    """`migrations status`; raises (one FAILED line) when the database cannot be read."""
    target = resolve_target()
    engine = create_engine(target.url, poolclass=NullPool)
    with engine.connect() as connection:
        tables = [row[0] for row in connection.execute(text(TABLES))]
        revision = (
            connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            if "alembic_version" in tables
            else None
        )
    print(f"database: {target.shown} (from {target.variable})")
    print(f"revision: {revision or 'none (empty database)'}")
    print(f"tables:   {', '.join(tables) or 'none'}")
    return 0
