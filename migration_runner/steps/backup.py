"""Before a run destroys rows it was allowed to destroy, pg_dump them somewhere safe.

The data-loss guard refuses a revision that drops or truncates a table, or
drops a column, while rows are there, until `-x allow-data-loss=true`. With
that permission, this step runs first: it reads every file the run will
execute, finds what they destroy, and writes `pg_dump --format=custom` of those
tables (whole, so a dropped column comes back with its row's key) into
MIGRATION_BACKUP_DIR, one file per destructive revision, named
`<revision>-<UTC time>-<tables>.dump`, with a `.json` manifest beside it that
says what the revision destroys (tools/restore.py reads it). `-x backup=full`
dumps the whole database instead.

It runs before the first revision, so pg_dump (its own connection) sees the
committed rows and waits on no lock this run holds. If the backup cannot be
written, the run stops before any change. Offline scripts carry no backup and
say so.
"""

import json
import logging
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from alembic.runtime.migration import MigrationContext

from migration_runner.errors import MigrationError
from migration_runner.pg_programs import find_client, libpq_arguments
from migration_runner.steps.data_loss_guard import find_destruction, tables_with_rows
from migration_runner.steps.emit import emit, fetch, literal
from migration_runner.steps.preflight import pending_files
from migration_runner.steps.settings import RunSettings

log = logging.getLogger("migration_runner")
# pg_dump waits this long for a table an application holds exclusively, then gives up.
LOCK_WAIT = "30s"
# Revisions backed up by this process: a retried attempt (lock timeout) does not dump again.
_backed_up: set[str] = set()
QUALIFIED = (
    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class AS c"
    " INNER JOIN pg_namespace AS n ON c.relnamespace = n.oid WHERE c.oid = to_regclass({})"
)


def back_up_before_data_loss(ctx: MigrationContext, settings: RunSettings, tree: Path) -> None:
    """Write the backups this run needs, or stop it; offline, say the script takes none."""
    if not settings.allow_data_loss:
        return  # the guard refuses any loss of rows: nothing to keep
    destructive = [
        (revision, sql_file, destructions)
        for revision, sql_file in pending_files(ctx)
        if (destructions := find_destruction(sql_file))
    ]
    if not destructive:
        return
    if ctx.as_sql:
        emit(ctx, f"-- No backup: this script destroys data ({_names(destructive)}) and, unlike "
                  "an online run, takes no pg_dump first. Back up before running it.")  # fmt: skip
        return
    folder = Path(settings.backup_dir)
    folder = folder if folder.is_absolute() else tree / folder
    for revision, sql_file, destructions in destructive:
        if revision in _backed_up:
            continue
        items = [
            {"table": _qualified(ctx, table), "destroys": d.what, "rows": rows}
            for d in destructions
            for table, rows in tables_with_rows(ctx, d)
        ]
        if items or settings.backup == "full":
            _write(ctx, folder, revision, sql_file.shown, items, full=settings.backup == "full")
        _backed_up.add(revision)


def _names(destructive) -> str:
    return "; ".join(
        f"{revision} {d.what} {d.table}" for revision, _, ds in destructive for d in ds
    )


def _qualified(ctx: MigrationContext, table: str) -> str:
    return fetch(ctx, QUALIFIED.format(literal(table)))[0][0]


def _write(ctx, folder: Path, revision: str, shown: str, items: list[dict], full: bool) -> None:
    url = ctx.connection.engine.url
    server_major = int(fetch(ctx, "SHOW server_version_num")[0][0]) // 10000
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    what = "full" if full else "+".join(item["table"].split(".")[-1] for item in items)
    path = folder / f"{revision}-{stamp}-{re.sub(r'[^A-Za-z0-9_+.-]', '_', what)[:80]}.dump"
    stop = f"Cannot write the backup before {shown} destroys data, so nothing was changed"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        pg_dump = find_client("pg_dump", server_major)
    except OSError as error:
        raise MigrationError(
            f"{stop}: {error.strerror} ({folder}). Set MIGRATION_BACKUP_DIR to a writable folder."
        ) from None
    except MigrationError as error:
        raise MigrationError(f"{stop}: {error}") from None
    tables = [] if full else [f"--table={item['table']}" for item in items]
    uri, environ = libpq_arguments(url)
    dump = subprocess.run(
        [str(pg_dump), "--format=custom", f"--lock-wait-timeout={LOCK_WAIT}", *tables,
         f"--file={path}", f"--dbname={uri}"],
        env=environ, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if dump.returncode != 0:
        path.unlink(missing_ok=True)
        reason = dump.stderr.strip().splitlines()[-1] if dump.stderr.strip() else "no message"
        raise MigrationError(f"{stop}: pg_dump failed: {reason}")
    manifest = {
        "revision": revision,
        "file": shown,
        "taken_at": stamp,
        "server_major": server_major,
        "full": full,
        "destroys": items,
    }
    path.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n")
    size = path.stat().st_size
    log.info("backup before %s: %s (%s bytes; %s)", revision, path, f"{size:,}", what)
