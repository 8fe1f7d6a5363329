"""An offline script refuses a database that is not at the revision it starts from.

`alembic upgrade head --sql` writes a script from an empty database: it creates
alembic_version. `alembic upgrade 004:head --sql` writes one from 004: its first
version update expects 004. Applied elsewhere, the first would fail late on
`relation "alembic_version" already exists`, and the second would silently
update no version row. The script's first statement checks where the database
is instead, and says which command writes the right script. (A database
downgraded to base keeps an empty alembic_version; the script from empty drops
it, since Alembic's script creates it.)
"""

from alembic.runtime.migration import MigrationContext

from migration_runner.steps.emit import emit, literal

CHECK = """DO $starts_from$
DECLARE
    current_revision text;
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL THEN
        SELECT string_agg(version_num, ',') INTO current_revision FROM alembic_version;
{at_base}    END IF;
    IF current_revision IS DISTINCT FROM {expected} THEN
        RAISE EXCEPTION 'This script starts from {described}, but the database is at revision %. '
            'Write the script from its revision: alembic upgrade %:head --sql',
            coalesce(current_revision, '(none)'), coalesce(current_revision, '<revision>');
    END IF;
END
$starts_from$;"""


# Downgraded to base, a database keeps an empty alembic_version: that is the empty state,
# but the script's CREATE TABLE alembic_version would fail on it.
AT_BASE = """        IF current_revision IS NULL THEN
            DROP TABLE alembic_version;
        END IF;
"""


def check_starting_revision(ctx: MigrationContext) -> None:
    """Emit the check that the database is where this script starts (offline upgrades only)."""
    heads = ctx.get_current_heads()  # offline: the script's starting revision, () for empty
    expected = literal(heads[0]) if heads else "NULL"
    described = f"revision {heads[0]}" if heads else "an empty database"
    emit(
        ctx, CHECK.format(expected=expected, described=described, at_base="" if heads else AT_BASE)
    )
