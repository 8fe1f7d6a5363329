"""Run settings: `alembic -x name=value` first, then environment variables, then defaults."""

import os
import re
from dataclasses import dataclass

from migration_runner.errors import MigrationError

# PostgreSQL accepts these units for time settings; a bare number means ms.
DURATION = re.compile(r"^\d+\s*(us|ms|s|min|h|d)?$")
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Option:
    name: str  # the -x name
    env: str  # the environment variable
    default: str
    kind: str  # duration, count, seconds or flag
    help: str


OPTIONS = (
    Option(
        "lock-timeout",
        "MIGRATION_LOCK_TIMEOUT",
        "100ms",
        "duration",
        "first attempt's wait for a table lock; each retry waits longer, up to lock-timeout-max",
    ),
    Option(
        "lock-timeout-max",
        "MIGRATION_LOCK_TIMEOUT_MAX",
        "400ms",
        "duration",
        "the longest any attempt waits for a lock: how long application queries may queue",
    ),
    Option(
        "statement-timeout",
        "MIGRATION_STATEMENT_TIMEOUT",
        "0",
        "duration",
        "longest run of one statement (0: no limit)",
    ),
    Option(
        "lock-retries",
        "MIGRATION_LOCK_RETRIES",
        "30",
        "count",
        "how many times a run that hit the lock timeout is retried (30: about 4 minutes)",
    ),
    Option(
        "connect-timeout",
        "MIGRATION_CONNECT_TIMEOUT",
        "10",
        "seconds",
        "how long to keep retrying the first connection (a suspended compute waking up)",
    ),
    Option(
        "allow-data-loss",
        "MIGRATION_ALLOW_DATA_LOSS",
        "false",
        "flag",
        "let a migration drop or truncate tables, or drop columns, that hold rows",
    ),
    Option(
        "batch-size",
        "MIGRATION_BATCH_SIZE",
        "1000",
        "count",
        "rows per batch of a batched backfill (read as migration.batch_size)",
    ),
    Option(
        "batch-pause",
        "MIGRATION_BATCH_PAUSE",
        "100ms",
        "duration",
        "pause between a backfill's batches (read as migration.batch_pause)",
    ),
    Option(
        "progress-interval",
        "MIGRATION_PROGRESS_INTERVAL",
        "5",
        "seconds",
        "a statement running longer than this reports progress this often",
    ),
    Option(
        "backup",
        "MIGRATION_BACKUP",
        "tables",
        "backup",
        "before allowed data loss, pg_dump the tables it destroys (tables) or the database (full)",
    ),
    Option(
        "backup-dir",
        "MIGRATION_BACKUP_DIR",
        "backups",
        "path",
        "where those backups go (relative to the project folder)",
    ),
    Option(
        "lock-report",
        "MIGRATION_LOCK_REPORT",
        "",
        "file",
        "write the table locks the run holds before it commits to this JSON file (rehearsal)",
    ),
)
BACKUP_KINDS = ("tables", "full")


@dataclass(frozen=True)
class RunSettings:
    lock_timeout: str
    lock_timeout_max: str
    statement_timeout: str
    lock_retries: int
    connect_timeout: float
    allow_data_loss: bool
    batch_size: int
    batch_pause: str
    progress_interval: float
    backup: str
    backup_dir: str
    lock_report: str


def _convert(option: Option, raw: str, source: str):
    value = raw.strip().lower()
    if option.kind == "duration" and DURATION.match(value):
        return value.replace(" ", "")
    if option.kind == "count" and value.isdigit():
        return int(value)
    if option.kind == "seconds" and re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    if option.kind == "flag" and value in TRUE_WORDS | FALSE_WORDS:
        return value in TRUE_WORDS
    if option.kind == "backup" and value in BACKUP_KINDS:
        return value
    if option.kind == "path" and raw.strip():
        return raw.strip()
    if option.kind == "file":
        return raw.strip()  # empty: none
    expected = {
        "duration": "a duration such as 2s, 500ms or 1min",
        "count": "a whole number such as 5",
        "seconds": "a number of seconds such as 30",
        "flag": "true or false",
        "backup": " or ".join(BACKUP_KINDS),
        "path": "a folder",
        "file": "a file name",
    }[option.kind]
    raise MigrationError(f"{source} must be {expected}, not {raw!r}.")


def read_settings(x_arguments: dict[str, str], environ=os.environ) -> RunSettings:
    """Settings from `-x` arguments and the environment; unknown names are refused."""
    known = {option.name for option in OPTIONS}
    unknown = sorted(set(x_arguments) - known)
    if unknown:
        raise MigrationError(
            f"Unknown -x option {', '.join(unknown)}; known options: {', '.join(sorted(known))}."
        )
    values = {}
    for option in OPTIONS:
        if option.name in x_arguments:
            raw, source = x_arguments[option.name], f"-x {option.name}"
        elif option.env in environ:
            raw, source = environ[option.env], option.env
        else:
            raw, source = option.default, option.name
        values[option.name.replace("-", "_")] = _convert(option, raw, source)
    return RunSettings(**values)


def milliseconds(duration: str) -> float:
    """A PostgreSQL duration (as accepted above) in milliseconds."""
    match = re.fullmatch(r"(\d+)(us|ms|s|min|h|d)?", duration)
    number, unit = int(match.group(1)), match.group(2) or "ms"
    return (
        number
        * {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}[unit]
    )
