"""Bring back the rows a destructive revision removed, from the backup the runner wrote.

    python -m migration_runner.tools.restore backups/002-20261125T041500Z-users.dump
    make restore BACKUP=backups/002-...dump

The target (DATABASE_URL, Vercel's or libpq's variables, as for `alembic`)
must be at the revision before the destructive one (`alembic downgrade`
recreates what it dropped, empty). For each table in the backup's manifest:
a dropped or truncated table gets its rows inserted again; a dropped column
gets its values written back into the rows, matched by primary key. All of it
in one transaction; each table's count is checked against the backup's.
Triggers fire as for any write: an `updated_at` trigger stamps restored rows.
"""

import argparse
import io
import json
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from migration_runner.errors import MigrationError
from migration_runner.pg_programs import find_client
from migration_runner.steps.database_url import resolve_target

COPY_BLOCK = re.compile(r"^COPY (\S+) \((.*?)\) FROM stdin;\n(.*?)^\\\.$", re.MULTILINE | re.DOTALL)
DROPPED_COLUMN = re.compile(r"^drops column (\S+) of$")
PRIMARY_KEY = """
SELECT a.attname FROM pg_index AS i
INNER JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indrelid = to_regclass(:table) AND i.indisprimary
"""


def _rows_in_backup(dump: Path, table: str, server_major: int) -> tuple[str, str]:
    """(column list, COPY text) of table's rows, read with pg_restore."""
    schema, name = table.split(".", 1)
    program = find_client("pg_restore", server_major)
    result = subprocess.run(
        [str(program), "--data-only", f"--schema={schema.strip(chr(34))}",
         f"--table={name.strip(chr(34))}", "--file=-", str(dump)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise MigrationError(f"pg_restore cannot read {dump}: {result.stderr.strip()}")
    block = COPY_BLOCK.search(result.stdout)
    if block is None:
        raise MigrationError(f"{dump} holds no rows of {table}.")
    return block.group(2), block.group(3)


def _restore_table(connection: Connection, dump: Path, item: dict, server_major: int) -> str:
    table, destroys = item["table"], item["destroys"]
    if connection.execute(text("SELECT to_regclass(:t)"), {"t": table}).scalar() is None:
        raise MigrationError(
            f"{table} does not exist here: downgrade to the revision before the one that "
            "dropped it (`alembic downgrade -1`), then restore."
        )
    columns, rows = _rows_in_backup(dump, table, server_major)
    connection.exec_driver_sql(
        f"CREATE TEMP TABLE restored ON COMMIT DROP AS TABLE {table} WITH NO DATA"
    )
    cursor = connection.connection.driver_connection.cursor()
    cursor.copy_expert(f"COPY restored ({columns}) FROM STDIN", io.StringIO(rows))
    in_backup = connection.exec_driver_sql("SELECT count(*) FROM restored").scalar()
    column = DROPPED_COLUMN.match(destroys)
    if column:
        key = [row[0] for row in connection.execute(text(PRIMARY_KEY), {"table": table})]
        if not key:
            raise MigrationError(f"{table} has no primary key to match restored values by.")
        match = " AND ".join(f"t.{k} = r.{k}" for k in key)
        done = connection.exec_driver_sql(
            f"UPDATE {table} AS t SET {column.group(1)} = r.{column.group(1)} "
            f"FROM restored AS r WHERE {match}"
        ).rowcount
    else:
        done = connection.exec_driver_sql(
            f"INSERT INTO {table} ({columns}) OVERRIDING SYSTEM VALUE "
            f"SELECT {columns} FROM restored"
        ).rowcount
    connection.exec_driver_sql("DROP TABLE restored")
    if done != in_backup:
        raise MigrationError(
            f"Only {done} of the {in_backup} rows of {table} in the backup could be restored "
            "(rows deleted since?); nothing was restored."
        )
    what = f"column {column.group(1)} of {done:,} rows" if column else f"{done:,} rows"
    return f"restored {what} into {table}"


REFERENCES = """
SELECT DISTINCT format('%I.%I', pn.nspname, p.relname) FROM pg_constraint AS f
INNER JOIN pg_class AS p ON p.oid = f.confrelid
INNER JOIN pg_namespace AS pn ON pn.oid = p.relnamespace
WHERE f.contype = 'f' AND f.conrelid = to_regclass(:table) AND f.confrelid <> f.conrelid
"""


def _parents_first(connection: Connection, items: list[dict]) -> list[dict]:
    """The backup's tables ordered so that a table comes after those its foreign keys name."""
    tables = {item["table"] for item in items}
    needs = {
        item["table"]: {
            row[0] for row in connection.execute(text(REFERENCES), {"table": item["table"]})
        }
        & tables
        for item in items
    }
    ordered: list[dict] = []
    while len(ordered) < len(items):
        done = {item["table"] for item in ordered}
        ready = [item for item in items if item not in ordered and needs[item["table"]] <= done]
        ordered += ready or [item for item in items if item not in ordered]  # a cycle: as listed
    return ordered


def restore(dump: Path) -> list[str]:
    manifest_path = dump.with_suffix(".json")
    if not dump.is_file() or not manifest_path.is_file():
        raise MigrationError(
            f"{dump} is not a backup written by the runner (it and its .json manifest must "
            "exist); restore other dumps with pg_restore (docs/rehearse-and-backup.md)."
        )
    manifest = json.loads(manifest_path.read_text())
    target = resolve_target()
    engine = create_engine(target.url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            return [
                _restore_table(connection, dump, item, manifest["server_major"])
                for item in _parents_first(connection, manifest["destroys"])
            ]
    except DBAPIError as error:
        raise MigrationError(f"Restore into {target.shown} failed: {error.orig}".strip()) from None
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backup", type=Path, help="a .dump file the runner wrote")
    options = parser.parse_args(argv)
    try:
        for line in restore(options.backup):
            print(line)
    except MigrationError as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
