"""Bring back the rows a destructive revision removed, from the backup the runner wrote.

    migrations restore backups/002-20261125T041500Z-users.dump
    make restore BACKUP=backups/002-...dump

The target (DATABASE_URL, Vercel's or libpq's variables, as for `alembic`)
must be where the backup was taken: at the revision its manifest records in
`database_at` (for an upgrade, the one before the destructive revision, where
`alembic downgrade` recreates what it dropped, empty), each table with the
columns and types it had then. Otherwise restore refuses, and says what
`--overwrite` would overwrite.

For each table in the manifest, pg_restore reads its rows out of the dump and
they stream by COPY into a staging table, never whole in memory; a dropped or
truncated table gets them inserted again, a dropped column gets its values
written back, matched by primary key. Identity and serial sequences then
continue after the restored values. All of it in one transaction; each table's
count is checked against the backup's. Triggers fire as for any write: an
`updated_at` trigger stamps restored rows.
"""

import json
import logging
import re
import subprocess
import tempfile
from pathlib import Path
from typing import BinaryIO

import psycopg2
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from migration_runner.errors import MigrationError
from migration_runner.pg_programs import find_client
from migration_runner.steps.backup import COLUMNS
from migration_runner.steps.database_url import resolve_target
from migration_runner.steps.emit import literal

log = logging.getLogger("migration_runner")
DROPPED_COLUMN = re.compile(r"^drops column (.+) of$")
PRIMARY_KEY = """
SELECT a.attname FROM pg_index AS i
INNER JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indrelid = to_regclass(:table) AND i.indisprimary
"""
# In pg_restore's script: the line that opens a table's rows, the encoding they are written in,
# the line that closes them.
COPY_LINE = re.compile(rb"^COPY .+? \((.*)\) FROM stdin;\n$")
ENCODING_LINE = re.compile(rb"^SET client_encoding = '([^']+)';\n$")
END_OF_DATA = b"\\.\n"
IDENTIFIER = re.compile(r'"(?:[^"]|"")*"|[^,\s]+')
# Bytes handed to the server per COPY message.
COPY_CHUNK = 1 << 16
MANIFEST_KEYS = {"database_at", "pg_dump_major", "destroys"}


class CopyData:
    """The data lines of one COPY block of pg_restore's output, read as psycopg2 asks for them."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.rows = 0  # one line per row: COPY's text format escapes newlines in values
        self.ended = False
        self.complete = False  # the block's end marker was read, not just the end of the output

    def read(self, size: int = COPY_CHUNK) -> bytes:
        lines: list[bytes] = []
        length = 0
        while length < size and not self.ended:
            line = self.stream.readline()
            self.complete = line == END_OF_DATA
            self.ended = self.complete or not line
            if not self.ended:
                lines.append(line)
                length += len(line)
        self.rows += len(lines)
        return b"".join(lines)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _unquoted(identifier: str) -> str:
    return identifier[1:-1].replace('""', '"') if identifier.startswith('"') else identifier


def _sql(connection: Connection, sql: str) -> list[tuple]:
    """Rows of catalog SQL whose % signs are not placeholders."""
    result = connection.execution_options(no_parameters=True).exec_driver_sql(sql)
    return [tuple(row) for row in result] if result.returns_rows else []


def _columns(connection: Connection, table: str) -> list[tuple[str, str, str | None]]:
    """(name, type, owned sequence) of each column pg_dump writes, as the table is now."""
    return _sql(connection, COLUMNS.format(table=literal(table)))


def _stage(connection: Connection, program: Path, dump: Path, item: dict) -> tuple[list[str], int]:
    """Stream the table's rows from the dump into the temporary table restore_staging, every
    column text; the backup's column names and its row count."""
    command = [
        str(program),
        "--data-only",
        f"--schema={item['schema']}",
        f"--table={item['name']}",
        "--file=-",
        str(dump),
    ]
    names: list[str] = []
    data = None
    with tempfile.TemporaryFile() as errors:
        # Leaving the block early (a failed COPY) closes the pipe: pg_restore ends on it.
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors) as reading:
            encoding = None
            for line in reading.stdout:
                if found := ENCODING_LINE.match(line):
                    encoding = found.group(1).decode()
                if found := COPY_LINE.match(line):
                    names = [_unquoted(i) for i in IDENTIFIER.findall(found.group(1).decode())]
                    data = CopyData(reading.stdout)
                    _copy_into_staging(connection, names, encoding, data)
                    reading.stdout.read()  # the script's closing lines
                    break
        if reading.returncode != 0 or (data is not None and not data.complete):
            errors.seek(0)
            reason = " ".join(errors.read().decode(errors="replace").split()) or "no message"
            raise MigrationError(f"pg_restore cannot read {dump}: {reason}")
    if data is None:
        raise MigrationError(f"{dump} holds no rows of {item['table']}.")
    return names, data.rows


def _copy_into_staging(
    connection: Connection, names: list[str], encoding: str | None, data: CopyData
) -> None:
    columns = ", ".join(_quoted(name) for name in names)
    connection.exec_driver_sql(
        f"CREATE TEMP TABLE restore_staging ({', '.join(f'{_quoted(n)} text' for n in names)})"
        " ON COMMIT DROP"
    )
    # The rows go to the server as the bytes pg_dump wrote, in the dump's encoding.
    ours = connection.exec_driver_sql("SHOW client_encoding").scalar()
    if encoding and encoding != ours:
        connection.exec_driver_sql(f"SET LOCAL client_encoding = {literal(encoding)}")
    cursor = connection.connection.driver_connection.cursor()
    cursor.copy_expert(f"COPY restore_staging ({columns}) FROM STDIN", data, size=COPY_CHUNK)
    if encoding and encoding != ours:
        connection.exec_driver_sql(f"SET LOCAL client_encoding = {literal(ours)}")


def _restore_table(
    connection: Connection, program: Path, dump: Path, item: dict, overwrite: bool
) -> str:
    table = item["table"]
    here = {name: type_ for name, type_, _ in _columns(connection, table)}
    names, in_backup = _stage(connection, program, dump, item)

    def value(name: str) -> str:  # a staged text value, as the column's type here
        return f"CAST(r.{_quoted(name)} AS {here[name]})"

    column = DROPPED_COLUMN.match(item["destroys"])
    if column:
        name = column.group(1)
        key = [row[0] for row in connection.execute(text(PRIMARY_KEY), {"table": table})]
        if not key or not set(key) <= set(names):
            raise MigrationError(f"{table} has no primary key the backup holds to match rows by.")
        if name not in here or name not in names:
            raise MigrationError(f"{table} has no column {name} here to write the backup's into.")
        match = " AND ".join(f"t.{_quoted(k)} = {value(k)}" for k in key)
        if overwrite:
            differing = connection.exec_driver_sql(
                f"SELECT count(*) FROM {table} AS t INNER JOIN restore_staging AS r ON {match}"
                f" WHERE t.{_quoted(name)} IS DISTINCT FROM {value(name)}"
            ).scalar()
            log.warning(
                "--overwrite: %s of the backup's rows of %s hold another %s now",
                f"{differing:,}",
                table,
                name,
            )
        done = connection.exec_driver_sql(
            f"UPDATE {table} AS t SET {_quoted(name)} = {value(name)}"
            f" FROM restore_staging AS r WHERE {match}"
        ).rowcount
    else:
        kept = [name for name in names if name in here]  # --overwrite: columns gone are left out
        done = connection.exec_driver_sql(
            f"INSERT INTO {table} ({', '.join(_quoted(name) for name in kept)})"
            f" OVERRIDING SYSTEM VALUE SELECT {', '.join(value(name) for name in kept)}"
            " FROM restore_staging AS r"
        ).rowcount
    connection.exec_driver_sql("DROP TABLE restore_staging")
    if done != in_backup:
        raise MigrationError(
            f"Only {done} of the {in_backup} rows of {table} in the backup could be restored "
            "(rows deleted since?); nothing was restored."
        )
    what = f"column {column.group(1)} of {done:,} rows" if column else f"{done:,} rows"
    return f"restored {what} into {table}"


def _continue_sequences(connection: Connection, item: dict) -> list[str]:
    """Move each identity or serial sequence of the table past the restored values, so that the
    next insert does not take a value a restored row holds (never moving one back)."""
    moved = []
    for name, _, sequence in _columns(connection, item["table"]):
        if sequence is None:
            continue
        qualified = literal(f"{_quoted(item['schema'])}.{_quoted(sequence)}")
        value = connection.exec_driver_sql(
            f"SELECT setval({qualified}, max({_quoted(name)})) FROM {item['table']}"
            f" HAVING max({_quoted(name)}) > coalesce(pg_sequence_last_value({qualified}), 0)"
        ).scalar()
        if value is not None:
            moved.append(f"sequence {sequence} of {item['table']}.{name} continues after {value}")
    return moved


def _shown(revision: str | None) -> str:
    return f"revision {revision}" if revision else "base (no revision)"


def _current_revision(connection: Connection) -> str | None:
    if connection.exec_driver_sql("SELECT to_regclass('alembic_version')").scalar() is None:
        return None
    return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def _differences(connection: Connection, manifest: dict) -> list[str]:
    """How the database differs from the one the backup was taken from; empty when it does not."""
    at, now = manifest["database_at"], _current_revision(connection)
    found = [] if now == at else [f"it was taken at {_shown(at)}, the database is at {_shown(now)}"]
    for table, then in {item["table"]: item["columns"] for item in manifest["destroys"]}.items():
        if connection.execute(text("SELECT to_regclass(:t)"), {"t": table}).scalar() is None:
            raise MigrationError(
                f"{table} does not exist here: bring the database to {_shown(at)} (the "
                "downgrade of the revision that dropped it recreates it), then restore."
            )
        here = {name: type_ for name, type_, _ in _columns(connection, table)}
        found += [
            f"{table}.{name} is {here[name]} here, {type_} in the backup"
            for name, type_ in then.items()
            if name in here and here[name] != type_
        ]
        found += [f"{table}.{name} is not here" for name in then if name not in here]
        found += [f"{table}.{name} is not in the backup" for name in here if name not in then]
    return found


def _effects(manifest: dict) -> str:
    """What restoring writes, as the refusal and the --overwrite warning say it."""
    effects = []
    for item in manifest["destroys"]:
        column = DROPPED_COLUMN.match(item["destroys"])
        if column:
            effects.append(
                f"overwrites column {column.group(1)} of the {item['rows']:,} rows of "
                f"{item['table']} the backup holds (matched by primary key)"
            )
        else:
            effects.append(f"inserts the backup's {item['rows']:,} rows into {item['table']}")
    return "; ".join(effects) + f", with their values as of {_shown(manifest['database_at'])}"


def _refusal(dump: Path, differences: str, manifest: dict) -> MigrationError:
    at = manifest["database_at"]
    how = (
        f"`alembic downgrade {at}` or `alembic upgrade {at}`" if at else "`alembic downgrade base`"
    )
    return MigrationError(
        f"Not restoring {dump}: {differences}. Bring the database to {_shown(at)} ({how}) and "
        "restore again, or restore here with --overwrite (make restore ... OVERWRITE=1), which "
        f"{_effects(manifest)}. Nothing was restored."
    )


def _manifest(dump: Path) -> dict:
    manifest_path = dump.with_suffix(".json")
    if not dump.is_file() or not manifest_path.is_file():
        raise MigrationError(
            f"{dump} is not a backup written by the runner (it and its .json manifest must "
            "exist); restore other dumps with pg_restore (docs/rehearse-and-backup.md)."
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError as error:
        raise MigrationError(f"{manifest_path} is not a manifest: {error}") from None
    missing = MANIFEST_KEYS - set(manifest)
    if missing:
        raise MigrationError(
            f"{manifest_path} does not record {', '.join(sorted(missing))} (an older runner wrote "
            "it): restore it with its pg_restore commands (docs/rehearse-and-backup.md)."
        )
    return manifest


def restore(dump: Path, overwrite: bool = False) -> list[str]:
    """Restore the backup's tables in one transaction; a line per table and sequence moved."""
    manifest = _manifest(dump)
    program = find_client("pg_restore", manifest["pg_dump_major"], same_major=True)
    target = resolve_target()
    engine = create_engine(target.url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            differences = "; ".join(_differences(connection, manifest))
            if differences and not overwrite:
                raise _refusal(dump, differences, manifest)
            if differences:
                log.warning(
                    "--overwrite: %s; restoring anyway, which %s", differences, _effects(manifest)
                )
            done = [
                _restore_table(connection, program, dump, item, overwrite)
                for item in manifest["destroys"]
            ]
            for item in {item["table"]: item for item in manifest["destroys"]}.values():
                done += _continue_sequences(connection, item)
            return done
    except (DBAPIError, psycopg2.Error) as error:  # the COPY runs on psycopg2's own cursor
        reason = " ".join(str(getattr(error, "orig", error)).split())
        raise MigrationError(
            f"Restore into {target.shown} failed: {reason}; nothing was restored."
        ) from None
    finally:
        engine.dispose()


def run(backup: Path, overwrite: bool) -> int:
    """`migrations restore`: 0 restored; a refusal raises MigrationError (exit 1)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)-5.5s [%(name)s] %(message)s")
    for line in restore(backup, overwrite):
        print(line)
    return 0
