"""Before a run destroys rows it was allowed to destroy, pg_dump them somewhere safe.

The data-loss guard refuses a revision that drops or truncates a table, or
drops a column, while rows are there, until `-x allow-data-loss=true`. With
that permission, this step runs first: it reads every file the run will
execute, finds what they destroy, and writes `pg_dump --format=custom` of those
tables (whole, so a dropped column comes back with its row's key) into
MIGRATION_BACKUP_DIR, one file per destructive revision, named
`<revision>-<UTC time>-<tables>.dump`, with a `.json` manifest beside it that
says what the revision destroys, the revision the database is at and each
table's columns (tools/restore.py checks them), and the pg_restore commands a
DBA can paste. `-x backup=full` dumps the whole database instead.

The dump is written by the pg_dump of the server's major version when there is
one, so the server's own pg_restore reads it; otherwise by the newest, and the
log and the manifest say which pg_restore reads it. Backups hold user data: the
files are 0600 and a folder the runner creates is 0700, whatever the umask.

It runs before the first revision, so pg_dump (its own connection) sees the
committed rows and waits on no lock this run holds. If the backup cannot be
written, the run stops before any change. Offline scripts carry no backup and
say so.
"""

import errno
import json
import logging
import os
import re
import shlex
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from alembic.runtime.migration import MigrationContext

from migration_runner.errors import MigrationError
from migration_runner.pg_programs import client_version, find_client, libpq_arguments, major_of
from migration_runner.steps.data_loss_guard import find_destruction, tables_with_rows
from migration_runner.steps.emit import emit, fetch, literal
from migration_runner.steps.preflight import pending_files
from migration_runner.steps.run import Run

log = logging.getLogger("migration_runner")
# pg_dump waits this long for a table an application holds exclusively, then gives up.
LOCK_WAIT = "30s"
QUALIFIED = (
    "SELECT n.nspname, c.relname, format('%I.%I', n.nspname, c.relname) FROM pg_class AS c"
    " INNER JOIN pg_namespace AS n ON c.relnamespace = n.oid WHERE c.oid = to_regclass({})"
)
# A table's columns as pg_dump writes them (generated columns are computed, never dumped), their
# types, and the identity or serial sequence each owns: the shape restore compares and the
# sequences it moves past the restored values. {table} is a SQL literal.
COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), (
    SELECT s.relname FROM pg_class AS s
    WHERE s.oid = to_regclass(pg_get_serial_sequence(a.attrelid::regclass::text, a.attname))
)
FROM pg_attribute AS a
WHERE a.attrelid = to_regclass({table}) AND a.attnum > 0 AND NOT a.attisdropped
    AND a.attgenerated = ''
ORDER BY a.attnum
"""
REFERENCES = """
SELECT DISTINCT format('%I.%I', pn.nspname, p.relname) FROM pg_constraint AS f
INNER JOIN pg_class AS p ON p.oid = f.confrelid
INNER JOIN pg_namespace AS pn ON pn.oid = p.relnamespace
WHERE f.contype = 'f' AND f.conrelid = to_regclass({table}) AND f.confrelid <> f.conrelid
"""


def back_up_before_data_loss(ctx: MigrationContext, run: Run) -> None:
    """Write the backups this run needs, or stop it; offline, say the script takes none.

    Called only for a run allowed to lose data (env.py): any other run's guard refuses every
    loss of rows, so it has nothing to keep. A revision is backed up once per run
    (Run.backed_up): a retried attempt does not dump it again.
    """
    settings = run.settings
    destructive = [
        (revision, sql_file, destructions)
        for revision, sql_file in pending_files(ctx)
        if (destructions := find_destruction(sql_file))
    ]
    if not destructive:
        return
    if ctx.as_sql:
        emit(
            ctx,
            f"-- No backup: this script destroys data ({_names(destructive)}) and, unlike "
            "an online run, takes no pg_dump first. Back up before running it.",
        )
        return
    folder = Path(settings.backup_dir)
    folder = folder if folder.is_absolute() else run.tree / folder
    for revision, sql_file, destructions in destructive:
        if revision in run.backed_up:
            continue
        items = [
            _described(ctx, table, d.what, rows)
            for d in destructions
            for table, rows in tables_with_rows(ctx, d)
        ]
        if items or settings.backup == "full":
            full = settings.backup == "full"
            _write(ctx, folder, revision, sql_file.shown, _parents_first(ctx, items), full)
        run.backed_up.add(revision)


def _names(destructive) -> str:
    return "; ".join(
        f"{revision} {d.what} {d.table}" for revision, _, ds in destructive for d in ds
    )


def _described(ctx: MigrationContext, table: str, destroys: str, rows: int) -> dict:
    """The manifest's entry for one table a revision destroys."""
    schema, name, qualified = fetch(ctx, QUALIFIED.format(literal(table)))[0]
    columns = fetch(ctx, COLUMNS.format(table=literal(qualified)))
    return {
        "table": qualified,
        "schema": schema,
        "name": name,
        "destroys": destroys,
        "rows": rows,
        "columns": {column: type_ for column, type_, _ in columns},
        "sequences": [sequence for _, _, sequence in columns if sequence],
    }


def _parents_first(ctx: MigrationContext, items: list[dict]) -> list[dict]:
    """The items ordered so that a table comes after those its foreign keys name: restore and
    the manifest's commands, pasted in order, then never insert a row before its parent."""
    tables = {item["table"] for item in items}
    needs = {
        table: {row[0] for row in fetch(ctx, REFERENCES.format(table=literal(table)))} & tables
        for table in tables
    }
    ordered: list[dict] = []
    while len(ordered) < len(items):
        done = {item["table"] for item in ordered}
        ready = [item for item in items if item not in ordered and needs[item["table"]] <= done]
        ordered += ready or [item for item in items if item not in ordered]  # a cycle: as listed
    return ordered


def _private_folder(folder: Path) -> None:
    """Create the folder for its owner alone; one that exists keeps its mode (a folder shared
    with the DBAs on purpose stays shared: the files in it are private anyway)."""
    try:
        folder.mkdir(mode=0o700, parents=True)  # the mode is the last folder's alone
    except FileExistsError:
        return
    folder.chmod(0o700)  # mkdir's mode went through the umask


def _private_file(path: Path) -> int:
    """A new file that only its owner reads and writes, whatever the umask; its descriptor."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(descriptor, 0o600)  # os.open's mode went through the umask
    return descriptor


def _new_backup_file(folder: Path, name: str) -> Path:
    """folder/name.dump, created empty and private; name-2.dump and so on when a backup of the
    same revision and tables was taken in the same second (two runs, or a rerun)."""
    for attempt in range(1, 100):
        path = folder / f"{name}{'' if attempt == 1 else f'-{attempt}'}.dump"
        try:
            os.close(_private_file(path))
        except FileExistsError:
            continue
        return path
    raise FileExistsError(errno.EEXIST, "a hundred backups of this name exist", str(folder))


def _restore_commands(path: Path, items: list[dict]) -> dict:
    """What a DBA pastes, without the runner: list the backup, and load each table's rows (and
    its sequences' values) into the table, empty again, at the backup's revision."""
    dump = shlex.quote(str(path.resolve()))  # pasted from wherever the DBA stands
    data_only = []
    for item in {item["table"]: item for item in items}.values():
        selected = [f"--table={name}" for name in (item["name"], *item["sequences"])]
        words = ["pg_restore", "--data-only", "--single-transaction", f"--schema={item['schema']}"]
        data_only.append(f'{shlex.join(words + selected)} --dbname="$DATABASE_URL" {dump}')
    return {"list": f"pg_restore --list {dump}", "data_only": data_only}


def _tables_named(items: list[dict]) -> str:
    """Each table once, as name1+name2: a table a revision destroys twice (two of its columns)
    is named once; one whose name another schema's table has too is named schema.name."""
    tables = dict.fromkeys((item["schema"], item["name"]) for item in items)
    names = [name for _, name in tables]
    return "+".join(
        name if names.count(name) == 1 else f"{schema}.{name}" for schema, name in tables
    )


def _write(ctx, folder: Path, revision: str, shown: str, items: list[dict], full: bool) -> None:
    url = ctx.connection.engine.url
    server_major = int(fetch(ctx, "SHOW server_version_num")[0][0]) // 10000
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    what = "full" if full else _tables_named(items)
    name = f"{revision}-{stamp}-{re.sub(r'[^A-Za-z0-9_+.-]', '_', what)[:80]}"
    stop = f"Cannot write the backup before {shown} destroys data, so nothing was changed"
    try:
        pg_dump = find_client("pg_dump", server_major, same_major=True)
        _private_folder(folder)
        path = _new_backup_file(folder, name)  # pg_dump writes into it and keeps its mode
    except OSError as error:
        raise MigrationError(
            f"{stop}: {error.strerror} ({folder}). Set MIGRATION_BACKUP_DIR to a writable folder."
        ) from None
    except MigrationError as error:
        raise MigrationError(f"{stop}: {error}") from None
    tables = [] if full else [f"--table={t}" for t in dict.fromkeys(i["table"] for i in items)]
    uri, environ = libpq_arguments(url)
    dump = subprocess.run(
        [
            str(pg_dump),
            "--format=custom",
            f"--lock-wait-timeout={LOCK_WAIT}",
            *tables,
            f"--file={path}",
            f"--dbname={uri}",
        ],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    if dump.returncode != 0:
        path.unlink(missing_ok=True)
        reason = dump.stderr.strip().splitlines()[-1] if dump.stderr.strip() else "no message"
        raise MigrationError(f"{stop}: pg_dump failed: {reason}")
    version = client_version(pg_dump)
    dump_major = major_of(version)
    manifest = {
        "revision": revision,
        "file": shown,
        "taken_at": stamp,
        # The revision the rows are from: restore wants the database there again.
        "database_at": ctx.get_current_revision(),
        "server_major": server_major,
        "pg_dump": version,
        "pg_dump_major": dump_major,
        "read_by": f"pg_restore {dump_major} or newer",
        "full": full,
        "destroys": items,
        "restore_commands": _restore_commands(path, items),
    }
    if dump_major != server_major:
        manifest["note"] = (
            f"No pg_dump {server_major} here, so pg_dump {dump_major} wrote this backup of a "
            f"PostgreSQL {server_major} server: the server's own pg_restore {server_major} "
            f"cannot read it, pg_restore {dump_major} or newer can. Install "
            f"postgresql-client-{server_major} for backups the server's own tools read."
        )
        log.warning("backup before %s: %s", revision, manifest["note"])
    with os.fdopen(_private_file(path.with_suffix(".json")), "w") as out:
        out.write(json.dumps(manifest, indent=2) + "\n")
    size = path.stat().st_size
    log.info(
        "backup before %s: %s (%s bytes; %s; pg_dump %s)",
        revision,
        path,
        f"{size:,}",
        what,
        version,
    )
