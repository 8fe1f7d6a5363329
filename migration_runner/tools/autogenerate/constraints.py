"""Constraints added to a table that has rows, without a scan under a strong lock.

Every NOT VALID + VALIDATE pair autogenerate writes comes from validated(), and
every SET NOT NULL on an existing column from validated_not_null(), which goes
through it.
"""

from migration_runner.tools.autogenerate.identifiers import quoted
from migration_runner.tools.autogenerate.plan import Statement
from migration_runner.tools.autogenerate.statements import brief, drop_constraint


def validated(table: str, name: str, add_sql: str, what: str) -> list[Statement]:
    """add_sql (ALTER TABLE ... ADD CONSTRAINT name ...) NOT VALID: no scan under its lock;
    then VALIDATE, whose scan lets reads and writes through."""
    return [
        Statement(f"{add_sql} NOT VALID", f"Add {what} NOT VALID: {brief(table)}, no scan."),
        Statement(
            f"ALTER TABLE {quoted(table)} VALIDATE CONSTRAINT {quoted(name)}",
            "Validate it: scans under SHARE UPDATE EXCLUSIVE (reads and writes go on); "
            "fails if a row violates it.",
        ),
    ]


def validated_not_null(table: str, column: str) -> list[Statement]:
    """SET NOT NULL without its full scan under ACCESS EXCLUSIVE: a CHECK NOT VALID, VALIDATE
    (a scan that lets reads and writes through), then SET NOT NULL, which trusts the CHECK."""
    check = f"{table}_{column}_not_null_check"
    add = (
        f"ALTER TABLE {quoted(table)} ADD CONSTRAINT {quoted(check)} "
        f"CHECK ({quoted(column)} IS NOT NULL)"
    )
    return [
        *validated(table, check, add, f"CHECK {check} (NOT NULL in steps)"),
        Statement(
            f"ALTER TABLE {quoted(table)} ALTER COLUMN {quoted(column)} SET NOT NULL",
            "The validated CHECK proves it: no second scan, a brief ACCESS EXCLUSIVE lock.",
        ),
        drop_constraint(table, check, "The CHECK has done its job: NOT NULL says the same."),
    ]
