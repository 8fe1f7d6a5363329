"""Run settings: `alembic -x name=value` first, then environment variables, then defaults."""

import os
import re
from dataclasses import dataclass

from migration_runner.errors import MigrationError
from migration_runner.steps.lock_report import read_lock_report

# PostgreSQL accepts these units for time settings; a bare number means ms.
DURATION = re.compile(r"^[0-9]+\s*(us|ms|s|min|h|d)?$")
# PostgreSQL's largest lock_timeout and statement_timeout, in ms (about 24 days).
LONGEST_DURATION = 2_147_483_647
# Units of a range in the message that names it.
RANGE_UNITS = {"duration": "ms", "count": "", "seconds": " s"}
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Option:
    name: str  # the -x name
    env: str  # the environment variable
    default: str
    kind: str  # duration, count, seconds or flag
    help: str
    limits: tuple[float, float] | None = None  # the allowed range, in ms for a duration


OPTIONS = (
    Option(
        "lock-timeout",
        "MIGRATION_LOCK_TIMEOUT",
        "100ms",
        "duration",
        "first attempt's wait for a table lock; each retry waits longer, up to lock-timeout-max",
        limits=(0, LONGEST_DURATION),
    ),
    Option(
        "lock-timeout-max",
        "MIGRATION_LOCK_TIMEOUT_MAX",
        "400ms",
        "duration",
        "the longest any attempt waits for a lock: how long application queries may queue",
        limits=(0, LONGEST_DURATION),
    ),
    Option(
        "statement-timeout",
        "MIGRATION_STATEMENT_TIMEOUT",
        "0",
        "duration",
        "longest run of one statement (0: no limit)",
        limits=(0, LONGEST_DURATION),
    ),
    Option(
        "lock-retries",
        "MIGRATION_LOCK_RETRIES",
        "30",
        "count",
        "how many times a run that hit the lock timeout is retried (30: about 4 minutes)",
        limits=(0, 1000),
    ),
    Option(
        "connect-timeout",
        "MIGRATION_CONNECT_TIMEOUT",
        "10",
        "seconds",
        "how long to keep retrying the first connection (a suspended compute waking up)",
        limits=(0, 3600),
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
        limits=(1, 1_000_000),
    ),
    Option(
        "batch-pause",
        "MIGRATION_BATCH_PAUSE",
        "100ms",
        "duration",
        "pause between a backfill's batches (read as migration.batch_pause)",
        limits=(0, LONGEST_DURATION),
    ),
    Option(
        "progress-interval",
        "MIGRATION_PROGRESS_INTERVAL",
        "5",
        "seconds",
        "a statement running longer than this reports progress this often",
        limits=(0.1, 3600),
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
        "app-role",
        "MIGRATION_APP_ROLE",
        "assessment_app",
        "role",
        "the application's role, which revision 002 creates and grants (read as migration.app_role)",
    ),
    Option(
        "phase",
        "MIGRATION_PHASE",
        "all",
        "phase",
        "expand: the pending revisions before the first contract one (before a deploy); "
        "contract or all: every pending revision",
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
PHASES = ("all", "expand", "contract")


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
    app_role: str
    phase: str
    lock_report: str


def _convert(option: Option, raw: str, source: str):
    value = raw.strip().lower()
    if option.kind == "duration" and DURATION.match(value):
        return value.replace(" ", "")
    if option.kind == "count" and re.fullmatch("[0-9]+", value):
        return int(value)
    if option.kind == "seconds" and re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
        return float(value)
    if option.kind == "flag" and value in TRUE_WORDS | FALSE_WORDS:
        return value in TRUE_WORDS
    if option.kind == "backup" and value in BACKUP_KINDS:
        return value
    if option.kind == "phase" and value in PHASES:
        return value
    if option.kind == "role" and re.fullmatch(r"[a-z_][a-z0-9_$]{0,62}", raw.strip()):
        return raw.strip()
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
        "phase": ", ".join(PHASES),
        "role": "a role name of lower-case letters, digits and _ (at most 63)",
        "path": "a folder",
        "file": "a file name",
    }[option.kind]
    raise MigrationError(f"{source} must be {expected}, not {raw!r}.")


def _check_range(option: Option, value, raw: str, source: str) -> None:
    """Refuse a value outside the option's limits (a retry count whose growing lock timeout
    overflows, a timeout PostgreSQL rejects midway) before anything connects."""
    if option.limits is None:
        return
    low, high = option.limits
    size = milliseconds(value) if option.kind == "duration" else value
    if not low <= size <= high:
        unit = RANGE_UNITS[option.kind]
        raise MigrationError(f"{source} must be from {low:,}{unit} to {high:,}{unit}, not {raw!r}.")


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
        value = _convert(option, raw, source)
        _check_range(option, value, raw, source)
        values[option.name.replace("-", "_")] = value
    if values["lock_report"]:
        read_lock_report(values["lock_report"])  # a bad file fails now, not before a commit
    return RunSettings(**values)


def milliseconds(duration: str) -> float:
    """A PostgreSQL duration (as accepted above) in milliseconds."""
    match = re.fullmatch(r"([0-9]+)(us|ms|s|min|h|d)?", duration)
    number, unit = int(match.group(1)), match.group(2) or "ms"
    return (
        number
        * {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}[unit]
    )
