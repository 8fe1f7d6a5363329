"""The header lines of every SQL file say what the file really does.

    migrations sql-headers [TREE]     (in `make lint`)

A reviewer reads `-- Destructive:` and `-- Transaction:` before the SQL. The
runner acts on `Transaction` only; `Destructive` is for people, so it is
checked here against what the file does: a file that drops a table or a
column, or truncates one, must say `Destructive: yes` (the data-loss guard
finds those statements the same way, with PostgreSQL's own parser). A file
with BEGIN, COMMIT or any other transaction control statement fails too, as
the runner's preflight refuses it.
"""

import sys
from pathlib import Path

from migration_runner.errors import MigrationError
from migration_runner.steps import sql_files
from migration_runner.steps.data_loss_guard import find_destruction
from migration_runner.steps.preflight import transaction_control

ALLOWED = {"destructive": ("yes", "no"), "transaction": ("yes", "none")}


def _word(value: str) -> str:
    """`yes, every table ...` -> `yes`: a header may explain itself after its value."""
    return value.split(",")[0].split()[0].lower() if value.strip() else ""


def problems_in(sql_file: sql_files.SqlFile) -> list[str]:
    """Each way the file's headers misstate it, as a sentence that says the fix."""
    found = []
    headers = sql_file.headers
    for key, allowed in ALLOWED.items():
        if key in headers and _word(headers[key]) not in allowed:
            found.append(
                f"{sql_file.shown}: `-- {key.title()}: {headers[key]}` must be "
                f"{' or '.join(allowed)}"
            )
    try:
        destroys = find_destruction(sql_file)
        control = transaction_control(sql_file)
    except MigrationError as error:
        return [*found, str(error)]
    if control:
        found.append(control)
    if destroys and _word(headers.get("destructive", "no")) != "yes":
        what = "; ".join(f"{d.what} {d.table}" for d in destroys)
        found.append(
            f"{sql_file.shown} {what}, but its header does not say so: "
            "set `-- Destructive: yes` (a reviewer reads it before the SQL)"
        )
    return found


def problems(tree: Path) -> list[str]:
    found = []
    for direction in sql_files.DIRECTIONS:
        for path in sorted((tree / "sql" / direction).glob("*.sql")):
            found += problems_in(sql_files.load(path))
    return found


def run(tree: Path) -> int:
    """`migrations sql-headers`: 1 with one FAILED line per problem."""
    found = problems(tree)
    for problem in found:
        print(f"FAILED: {problem}", file=sys.stderr)
    if not found:
        print(
            "sql headers: every Destructive and Transaction line matches its file, "
            "and no file controls its transaction"
        )
    return 1 if found else 0
