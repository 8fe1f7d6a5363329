"""Print where the database stands: target, revision, tables. Used by `make migrate`."""

import sys

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from migration_runner.errors import MigrationError
from migration_runner.steps.database_url import resolve_target

TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"


def main() -> int:
    try:
        target = resolve_target()
        engine = create_engine(target.url, poolclass=NullPool)
        with engine.connect() as connection:
            tables = [row[0] for row in connection.execute(text(TABLES))]
            revision = (
                connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
                if "alembic_version" in tables
                else None
            )
    except (MigrationError, OperationalError) as error:
        print(f"error: {getattr(error, 'orig', error)}", file=sys.stderr)
        return 1
    print(f"database: {target.shown} (from {target.variable})")
    print(f"revision: {revision or 'none (empty database)'}")
    print(f"tables:   {', '.join(tables) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
