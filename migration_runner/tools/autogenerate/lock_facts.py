"""What each kind of statement autogenerate writes does to a table: its locks, rewrite, scan.

The comments autogenerate puts above its statements come from this table, and
tests/test_lock_facts.py proves every row on PostgreSQL 15 and 18: the lock
modes from pg_locks (read by a second session while the statement's
transaction is held open, or while a concurrent statement waits), the rewrite
from the table's relfilenode before and after, the scan from a row that
violates what the statement checks.

SKELETON: the rows below are placeholders until tests/test_lock_facts.py proves them.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Fact:
    what: str  # the statement kind, as a reviewer reads it
    locks: dict[str, str]  # role ("table", "referenced") -> lock mode, e.g. "ACCESS EXCLUSIVE"
    rewrites: bool  # the table gets a new relfilenode
    scans: bool  # every row is read (under the locks above)
    example: str  # run by the test on its fixture tables; {table} and {referenced} filled in
    setup: list[str] = field(default_factory=list)  # run first, committed
    transactional: bool = True  # False: runs outside a transaction block (CONCURRENTLY)


FACTS: dict[str, Fact] = {
    "add_column_nullable": Fact(
        "ADD COLUMN, nullable, no default",
        {"table": "ACCESS EXCLUSIVE"},
        rewrites=False,
        scans=False,
        example="ALTER TABLE {table} ADD COLUMN added text",
    ),
    "comment_on_column": Fact(
        "COMMENT ON COLUMN",
        {"table": "SHARE UPDATE EXCLUSIVE"},
        rewrites=False,
        scans=False,
        example="COMMENT ON COLUMN {table}.note IS 'a note'",
    ),
    "add_foreign_key_not_valid": Fact(
        "ADD FOREIGN KEY ... NOT VALID",
        {"table": "SHARE ROW EXCLUSIVE", "referenced": "SHARE ROW EXCLUSIVE"},
        rewrites=False,
        scans=False,
        example=(
            "ALTER TABLE {table} ADD CONSTRAINT {table}_ref_fkey"
            " FOREIGN KEY (ref) REFERENCES {referenced} (id) NOT VALID"
        ),
    ),
}


def describe(kind: str, table: str, referenced: str | None = None) -> str:
    """The comment clause for a statement of this kind on table: its locks, rewrite and scan."""
    fact = FACTS[kind]
    names = {"table": table, "referenced": referenced or table}
    locks = ", ".join(
        f"{mode} on {names[role]}" for role, mode in fact.locks.items() if role in names
    )
    if fact.rewrites:
        cost = "rewrites the whole table while it holds it"
    elif fact.scans:
        cost = "reads every row while it holds it"
    else:
        cost = "briefly: no rewrite, no scan"
    return f"takes {locks}, {cost}"
