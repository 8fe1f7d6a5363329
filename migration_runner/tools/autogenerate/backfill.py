"""A batched backfill as docs/templates/batched_backfill.sql writes it, for one table.

Keyset batches in primary-key order, a COMMIT after each (a top-level DO block
outside a transaction may commit), each batch under the lock and statement
timeouts the runner hands over in migration.* settings, a pause between
batches, progress published at each commit. Its predicate skips rows already
done, so a rerun after an interruption continues where the commits stopped.
MIGRATIONS.md, "Batched backfills", says why each piece is there.
"""

from sqlalchemy import Table

from migration_runner.errors import MigrationError
from migration_runner.tools.autogenerate.identifiers import literal, quoted
from migration_runner.tools.autogenerate.type_changes import spelled

MAX_LINE = 100  # .sqlfluff's max_line_length
# The smallest key of each kind: the first batch starts after it.
KEYSET_START = {
    "uuid": "'00000000-0000-0000-0000-000000000000'",
    "smallint": "-32768",
    "integer": "-2147483648",
    "bigint": "-9223372036854775808",
    "text": "''",
}

TEMPLATE = """\
DO $backfill$
DECLARE
    batch_size integer := current_setting('migration.batch_size', TRUE)::integer;
    batch_pause interval := current_setting('migration.batch_pause', TRUE)::interval;
    last_key {key_type} := {start};
    batch_last {key_type};
    changed bigint;
    done bigint := 0;
    total bigint;
BEGIN
    -- What is left to do: the progress line's total.
    SELECT count(*) INTO total FROM {table}{count_where};
    LOOP
        -- This batch's transaction: never queue the application for long.
        PERFORM set_config('lock_timeout', current_setting('migration.lock_timeout'), TRUE);
        PERFORM set_config(
            'statement_timeout', current_setting('migration.statement_timeout'), TRUE
        );
        WITH batch AS (
            SELECT {key} AS batch_key FROM {table}
            WHERE {key} > last_key
            ORDER BY {key}
            LIMIT batch_size
        ),

        filled AS (
            UPDATE {table}
            SET {assignment}
            FROM batch
            WHERE {table}.{key} = batch.batch_key{and_todo}
            RETURNING {table}.{key}
        )

        -- The batch's last key, and how many rows it filled.
        SELECT
            (SELECT batch_key FROM batch ORDER BY batch_key DESC LIMIT 1),
            (SELECT count(*) FROM filled)
        INTO batch_last, changed;
        EXIT WHEN batch_last IS NULL;
        last_key := batch_last;
        done := done + changed;
        PERFORM pg_notify(
            'migration_progress',
            json_build_object(
                {progress}
            )::text
        );
        COMMIT;
        PERFORM pg_sleep_for(batch_pause);
    END LOOP;
END
$backfill$"""


def batched_update(table: Table, column: str, value: str, todo: str) -> str:
    """A DO block that sets column = value on every row where todo holds, a batch at a time
    (value and todo name the table's columns unqualified, quoted where they need it)."""
    key, key_type = _walk_key(table)
    return TEMPLATE.format(
        table=quoted(table.name),
        key=quoted(key),
        key_type=key_type,
        start=KEYSET_START[key_type],
        count_where=_where(f"    SELECT count(*) INTO total FROM {quoted(table.name)}", todo, ";"),
        and_todo=_where(
            f"            WHERE {quoted(table.name)}.{quoted(key)} = batch.batch_key",
            todo,
            "",
            "AND",
        ),
        assignment=f"{quoted(column)} = {value}",
        progress=_progress(literal(f"backfill {table.name}.{column}")),
    )


def _progress(what: str) -> str:
    """The progress object's pairs, on one line when it fits within MAX_LINE."""
    pairs = [f"'what', {what}", "'done', done", "'total', total"]
    if 16 + len(", ".join(pairs)) <= MAX_LINE:
        return ", ".join(pairs)
    return (",\n" + " " * 16).join(pairs)


def _where(line: str, condition: str, end: str, word: str = "WHERE") -> str:
    """` WHERE condition` (or ` AND condition`) to follow line: on it when it fits within
    MAX_LINE, else on lines of its own, indented under line, one per AND when still too long."""
    if len(f"{line} {word} {condition}{end}") <= MAX_LINE:
        return f" {word} {condition}"
    indent = len(line) - len(line.lstrip()) + 4
    return "\n" + " " * indent + f"{word} " + _wrapped(condition, indent)


def _wrapped(condition: str, indent: int) -> str:
    """condition as written, or, when its line would pass MAX_LINE, one line per AND of it
    (an AND outside quotes and brackets), so the file stays within sqlfluff's LT05."""
    if indent + len("WHERE ") + len(condition) + len(";") <= MAX_LINE:
        return condition
    parts, depth, quote, start = [], 0, "", 0
    for at, char in enumerate(condition):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "()":
            depth += 1 if char == "(" else -1
        elif depth == 0 and condition.startswith(" AND ", at):
            parts.append(condition[start:at])
            start = at + len(" AND ")
    parts.append(condition[start:])
    return ("\n" + " " * indent + "AND ").join(parts)


def _walk_key(table: Table) -> tuple[str, str]:
    """The single-column primary key the batches walk, and its type."""
    keys = list(table.primary_key.columns)
    key_type = spelled(keys[0].type) if len(keys) == 1 else ""
    if key_type not in KEYSET_START:
        raise MigrationError(
            f"{table.name} has no single uuid, integer or text primary key for a batched "
            "backfill to walk: write this change by hand (docs/templates/batched_backfill.sql)."
        )
    return keys[0].name, key_type
