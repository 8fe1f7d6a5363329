"""Constraints on a table that has rows: online, rerunnable, never a moment without them.

Every NOT VALID + VALIDATE pair autogenerate writes comes from added() (validated()
for an ADD CONSTRAINT statement), every SET NOT NULL on an existing column from
validated_not_null(), and every changed constraint from find(), which takes the
changes over from the renderers.

All of it goes in a `-- Transaction: none` revision, where each statement
commits on its own and a rerun skips those recorded as committed
(steps/partial_application.py). A DO block or a CONCURRENTLY build runs alone
and is recorded after it commits, so a run killed in between runs it again:
each step therefore looks at the catalog first and does only what is left.

- Before anything that can fail on the rows (VALIDATE, SET NOT NULL, a unique
  index), a refusal step counts the rows that would fail it, names a few by
  their key and says how to fix them; it runs before the NOT VALID constraint
  or the index exists, so a refusal leaves nothing behind that the running
  code would trip on.
- A constraint is added NOT VALID (no scan under its strong lock) in a step of
  its own, then validated in a DO block: if VALIDATE fails after all (a row
  written between the refusal step and the NOT VALID constraint), the block
  drops the NOT VALID constraint, commits that, and refuses as above; the
  rerun counts again and adds it back.
- A changed foreign key or CHECK is built beside the old one, under the name
  plus `__new`, and validated; then one short transaction drops the old one
  and renames the new one to the old name. The old constraint holds until the
  new one does. A changed unique constraint gets its new index built
  CONCURRENTLY, then one transaction drops the old constraint and makes the
  new one `UNIQUE USING INDEX`. A unique constraint on an existing table is
  the same without the old one.
- A constraint whose definition PostgreSQL prints the same on both sides
  (pg_get_constraintdef; for a CHECK on a column whose type changes without a
  rewrite, as it prints after the change) is left alone.
- Down files get the same steps the other way round.
"""

import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pglast
from alembic.operations import ops
from pglast.enums.parsenodes import ConstrType
from pglast.stream import RawStream
from sqlalchemy import text

from migration_runner.tools.autogenerate.identifiers import fitted_name, literal, quoted, regclass
from migration_runner.tools.autogenerate.lock_facts import describe
from migration_runner.tools.autogenerate.plan import Statement
from migration_runner.tools.autogenerate.type_changes import spelled
from migration_runner.tools.model_parity import create_models

STAGING = "__new"
SHOWN = 5  # offending rows named in a refusal
LINE = 99  # the longest line of a DO block's body, indentation included (sqlfluff allows 100)
# The table's primary key, by table: refusals name offending rows by it (remember_keys).
KEYS: dict[str, tuple[str, ...]] = {}
VIOLATIONS = "check_violation OR foreign_key_violation OR not_null_violation"
LOCK_TIMEOUT = (
    "PERFORM set_config('lock_timeout', coalesce(current_setting('migration.lock_timeout', "
    "TRUE), current_setting('lock_timeout')), TRUE);"
)


def remember_keys(metadata) -> None:
    """The models' primary keys, which refusals name offending rows by."""
    KEYS.clear()
    for name, table in metadata.tables.items():
        KEYS[name] = tuple(column.name for column in table.primary_key.columns)


def staged(name: str) -> str:
    """The temporary name of a constraint's replacement."""
    return fitted_name(name, suffix=STAGING)  # within 63 bytes, and not another's


@dataclass(frozen=True)
class Wanted:
    """A constraint on an existing table: its name and its definition, as ADD CONSTRAINT
    takes it ("CHECK (...)", "FOREIGN KEY (...) REFERENCES ...", "UNIQUE (...)")."""

    table: str
    name: str
    definition: str
    # pg_get_constraintdef's text of it once validated: the catalog check that says it is in
    # place already (empty: the name alone says so).
    settled: str = ""

    def __post_init__(self) -> None:
        node = pglast.parse_sql(f"ALTER TABLE x ADD CONSTRAINT y {self.definition}")
        object.__setattr__(self, "_node", node[0].stmt.cmds[0].def_)

    @property
    def kind(self) -> str:
        return {
            ConstrType.CONSTR_CHECK: "check",
            ConstrType.CONSTR_FOREIGN: "foreign key",
            ConstrType.CONSTR_UNIQUE: "unique",
        }[self._node.contype]

    @property
    def columns(self) -> list[str]:
        """A foreign key's or a unique constraint's own columns."""
        names = self._node.fk_attrs if self.kind == "foreign key" else self._node.keys
        return [name.sval for name in names or ()]

    @property
    def referenced(self) -> str:
        return self._node.pktable.relname if self.kind == "foreign key" else ""

    def add(self, name: str) -> str:
        return f"ALTER TABLE {quoted(self.table)} ADD CONSTRAINT {quoted(name)} {self.definition}"


# -- catalog checks, as SQL conditions ---------------------------------------------------------


def _constraint(table: str, name: str, extra: str = "") -> str:
    return (
        f"EXISTS (SELECT FROM pg_constraint WHERE conrelid = to_regclass({regclass(table)})"
        f" AND conname = {literal(name)}{extra})"
    )


def _settled(wanted: Wanted) -> str:
    """The constraint is there under its final name, validated, with the wanted definition."""
    same = f" AND pg_get_constraintdef(oid) = {literal(wanted.settled)}" if wanted.settled else ""
    return _constraint(wanted.table, wanted.name, " AND convalidated" + same)


def _not_null(table: str, column: str) -> str:
    return (
        f"EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass({regclass(table)})"
        f" AND attname = {literal(column)} AND attnotnull)"
    )


# -- the rows a step would fail on -------------------------------------------------------------


@dataclass(frozen=True)
class Offending:
    """The rows of a table that a constraint would refuse, and what to say about them."""

    source: str  # FROM ...
    condition: str  # WHERE ...
    key: str  # the text naming one row
    named: str  # what key is made of ("id")
    what: str  # the headline: "some rows of t violate t_x_check"
    fix: str  # how to fix them


def _key(table: str, alias: str, fallback: Iterable[str]) -> tuple[str, str]:
    """The expression naming one row, and what it is called: the primary key if known."""
    columns = list(KEYS.get(table) or fallback)
    prefix = f"{alias}." if alias else ""
    parts = [f"{prefix}{quoted(column)}" for column in columns]
    expression = f"{parts[0]}::text" if len(parts) == 1 else f"ROW({', '.join(parts)})::text"
    return expression, ", ".join(columns)


def offending(wanted: Wanted) -> Offending:
    table = quoted(wanted.table)
    if wanted.kind == "check":
        expression = RawStream()(wanted._node.raw_expr)
        columns = sorted(_column_refs(expression)) or ["ctid"]
        key, named = _key(wanted.table, "", columns)
        return Offending(
            table,
            f"NOT ({expression})",
            key,
            named,
            f"some rows of {wanted.table} violate {wanted.name}",
            "update or delete them so that the check holds",
        )
    if wanted.kind == "foreign key":
        node = wanted._node
        local = [name.sval for name in node.fk_attrs]
        remote = [name.sval for name in node.pk_attrs]
        present = " AND ".join(f"checked.{quoted(c)} IS NOT NULL" for c in local)
        matched = " AND ".join(
            f"referenced.{quoted(r)} = checked.{quoted(c)}"
            for c, r in zip(local, remote, strict=False)
        )
        parent = quoted(node.pktable.relname)
        key, named = _key(wanted.table, "checked", local)
        return Offending(
            f"{table} AS checked",
            f"{present} AND NOT EXISTS (SELECT FROM {parent} AS referenced WHERE {matched})",
            key,
            named,
            f"some rows of {wanted.table} have a {', '.join(local)} that {node.pktable.relname} "
            f"lacks ({wanted.name})",
            f"point them at existing {node.pktable.relname} rows, set them to NULL or delete them",
        )
    raise ValueError(wanted.kind)


def _column_refs(expression: str) -> set[str]:
    found = set()

    def visit(node) -> None:
        if isinstance(node, pglast.ast.ColumnRef):
            last = node.fields[-1]
            if isinstance(last, pglast.ast.String):
                found.add(last.sval)
        if isinstance(node, pglast.ast.Node):
            for attribute in node:
                visit(getattr(node, attribute))
        elif isinstance(node, tuple):
            for item in node:
                visit(item)

    visit(pglast.parse_sql(f"SELECT {expression}")[0].stmt)
    return found


def _null_rows(table: str, column: str, fix: str | None = None) -> Offending:
    key, named = _key(table, "", ["ctid"])
    return Offending(
        quoted(table),
        f"{quoted(column)} IS NULL",
        key,
        named,
        f"{table}.{column} is NULL in some rows",
        fix or f"give them a value (UPDATE {table} SET {column} = ... WHERE {column} IS NULL)",
    )


def _raise(found: Offending) -> list[str]:
    """PL/pgSQL: count the offending rows; if any, name a few and stop with what to do."""
    return [
        f"SELECT count(*) INTO offending FROM {found.source} WHERE {found.condition};",
        "IF offending > 0 THEN",
        "    SELECT string_agg(found.k, ', ') INTO named FROM (",
        f"        SELECT {found.key} AS k FROM {found.source} WHERE {found.condition}",
        f"        ORDER BY 1 LIMIT {SHOWN}",
        "    ) AS found;",
        *_stop(found.what, f"the first by {found.named}", found.fix),
        "END IF;",
    ]


def _stop(headline: str, counted: str, fix: str) -> list[str]:
    """RAISE, one line: the headline, how many, the first few, what to do (the literals cut
    into pieces that fit sqlfluff's line length)."""
    first, *rest = _pieces(f"{headline} (")
    return [
        "    RAISE EXCEPTION '%',",
        first.replace("|| ", "   ", 1),
        *rest,
        "        || offending",
        *_pieces(f" in all; {counted}: "),
        "        || named",
        *_pieces(f"): {fix}, then run the migration again", last=";"),
    ]


def _pieces(text: str, last: str = "") -> list[str]:
    """text as string literals of at most 60 characters, joined with ||, one a line."""
    pieces, current = [], ""
    for word in re.split(r"(?<= )", text):
        if current and len(current) + len(word) > 60:
            pieces.append(current)
            current = ""
        current += word
    pieces.append(current)
    lines = [f"        || {literal(piece)}" for piece in pieces]
    lines[-1] += last
    return lines


def _duplicates(wanted: Wanted) -> list[str]:
    """PL/pgSQL: count the values a unique constraint would find twice; if any, name a few."""
    columns = [quoted(c) for c in wanted.columns]
    listed = ", ".join(columns)
    value = f"{columns[0]}::text" if len(columns) == 1 else f"ROW({listed})::text"
    present = " AND ".join(f"{c} IS NOT NULL" for c in columns)
    grouped = f"FROM {quoted(wanted.table)} WHERE {present} GROUP BY {listed} HAVING count(*) > 1"
    headline = (
        f"some values of {', '.join(wanted.columns)} are in more than one row of "
        f"{wanted.table}, which {wanted.name} forbids"
    )
    return [
        f"SELECT count(*) INTO offending FROM (SELECT {listed} {grouped}) AS duplicated;",
        "IF offending > 0 THEN",
        "    SELECT string_agg(found.k, ', ') INTO named FROM (",
        f"        SELECT {value} || ' (' || count(*) || ' rows)' AS k {grouped}",
        f"        ORDER BY 1 LIMIT {SHOWN}",
        "    ) AS found;",
        *_stop(headline, "the first", "change or delete the duplicates"),
        "END IF;",
    ]


# -- DO blocks -------------------------------------------------------------------------------


def _do(tag: str, body: list[str], declare: list[str] = ()) -> str:
    lines = [f"DO ${tag}$"]
    if declare:
        lines += ["DECLARE", *(f"    {line}" for line in declare)]
    lines += ["BEGIN", *(_wrapped(line, "    ") for line in body), "END", f"${tag}$"]
    return "\n".join(lines)


def _wrapped(line: str, indent: str) -> str:
    """line, indented, broken at spaces outside string literals when it is too long."""
    lead = len(line) - len(line.lstrip(" "))
    indent += " " * lead
    words, current, open_quote = [], "", ""
    for char in line.lstrip(" "):
        if char in "'\"" and open_quote in ("", char):
            open_quote = "" if open_quote else char
        if char == " " and not open_quote:
            words.append(current)
            current = ""
        else:
            current += char
    words.append(current)
    out, row = [], indent
    for word in words:
        candidate = f"{row} {word}" if row.strip() else f"{row}{word}"
        if len(candidate) > LINE and row.strip():
            out.append(row)
            row = f"{indent}    {word}"
        else:
            row = candidate
    out.append(row)
    return "\n".join(out)


OFFENDING = ["offending bigint;", "named text;"]


def _refusal(found_lines: list[str], done: str, comment: str) -> Statement:
    return Statement(
        _do(
            "refuse",
            [f"IF NOT {done} THEN", *(f"    {x}" for x in found_lines), "END IF;"],
            OFFENDING,
        ),
        comment,
    )


def _add_not_valid(table: str, name: str, add_sql: str, done: str, comment: str) -> Statement:
    body = [
        f"IF NOT {done} AND NOT {_constraint(table, name)} THEN",
        f"    {LOCK_TIMEOUT}",
        *(f"    {line}" for line in _not_valid(add_sql, name, 8)),
        "END IF;",
    ]
    return Statement(_do("add", body), comment)


def _not_valid(add_sql: str, name: str, indent: int) -> list[str]:
    """add_sql NOT VALID; when that line is too long at indent, the definition on a line of its
    own."""
    if indent + len(add_sql) + len(" NOT VALID;") <= LINE:
        return [f"{add_sql} NOT VALID;"]
    head, definition = add_sql.split(f" ADD CONSTRAINT {quoted(name)} ", 1)
    return [f"{head} ADD CONSTRAINT {quoted(name)}", f"    {definition} NOT VALID;"]


def _validate(
    table: str, name: str, add_sql: str, done: str, found_lines: list[str], comment: str
) -> Statement:
    """VALIDATE, or if it fails: drop the NOT VALID constraint, commit, and refuse naming rows.
    When the constraint is missing (dropped by such a refusal), count first, then add it back."""
    inner = [f"    {x}" for x in found_lines]
    body = [
        f"IF NOT {done} THEN",
        f"    IF NOT {_constraint(table, name)} THEN",
        *(f"    {x}" for x in inner),
        f"        {LOCK_TIMEOUT}",
        *(f"        {line}" for line in _not_valid(add_sql, name, 12)),
        "        COMMIT;",
        "    END IF;",
        f"    {LOCK_TIMEOUT}",
        "    BEGIN",
        f"        ALTER TABLE {quoted(table)} VALIDATE CONSTRAINT {quoted(name)};",
        f"    EXCEPTION WHEN {VIOLATIONS} THEN",
        "        failed := TRUE;",
        "    END;",
        "    IF failed THEN",
        f"        ALTER TABLE {quoted(table)} DROP CONSTRAINT {quoted(name)};",
        "        COMMIT;",
        *(f"    {x}" for x in inner),
        f"        RAISE EXCEPTION {literal(name + ' does not hold: fix the rows, then rerun')};",
        "    END IF;",
        "END IF;",
    ]
    return Statement(_do("validate", body, ["failed boolean := FALSE;", *OFFENDING]), comment)


def _swap(wanted: Wanted, staging: str, comment: str) -> Statement:
    table = quoted(wanted.table)
    body = [
        f"IF {_constraint(wanted.table, staging)} THEN",
        f"    {LOCK_TIMEOUT}",
        f"    ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {quoted(wanted.name)};",
        f"    ALTER TABLE {table} RENAME CONSTRAINT {quoted(staging)} TO {quoted(wanted.name)};",
        "END IF;",
    ]
    return Statement(_do("swap", body), comment)


# -- the steps of one change -----------------------------------------------------------------


def added(wanted: Wanted, replacing: bool = False) -> list[Statement]:
    """A constraint on an existing table, online and rerunnable; replacing: the table has one
    of that name already, which keeps holding until this one does."""
    if replacing and not wanted.settled:
        raise ValueError(f"{wanted.name}: a replacement needs its settled definition")
    if wanted.kind == "unique":
        return _unique(wanted, replacing)
    table, name = wanted.table, wanted.name
    building = staged(name) if replacing else name
    done = _settled(wanted)
    found = offending(wanted)
    add_sql = wanted.add(building)
    kind = "check" if wanted.kind == "check" else "foreign_key"
    referenced = wanted.referenced or None
    what = f"{'CHECK' if wanted.kind == 'check' else wanted.kind} {name}"
    beside = f" as {building}, beside the old one," if replacing else ""
    steps = [
        _refusal(
            _raise(found),
            done,
            f"Refuse before any change while a row would fail {what}, naming a few: "
            f"{READS}; skipped once {name} is in place.",
        ),
        _add_not_valid(
            table,
            building,
            add_sql,
            done,
            f"Add {what}{beside} NOT VALID: "
            f"{describe(f'add_{kind}_not_valid', table, referenced)}; skipped if it "
            "is there.",
        ),
        _validate(
            table,
            building,
            add_sql,
            done,
            _raise(found),
            f"Validate it: {describe(f'validate_{kind}', table, referenced)}. A row it "
            "fails on makes it drop the NOT VALID constraint and refuse as above; the "
            "rerun counts again and adds it back.",
        ),
    ]
    if replacing:
        steps.append(
            _swap(
                wanted,
                building,
                f"In one transaction, drop the old {name} "
                f"({describe(f'drop_{kind}', table, referenced)}) and give {building} its name "
                f"({describe('rename_constraint', table)}); skipped once done.",
            )
        )
    return steps


READS = "a scan that takes ACCESS SHARE only (blocks neither reads nor writes)"


def _unique(wanted: Wanted, replacing: bool) -> list[Statement]:
    """CREATE UNIQUE INDEX CONCURRENTLY (the runner drops an INVALID leftover before a rerun),
    then in one transaction the old constraint goes and the new one takes the index."""
    table, name = wanted.table, wanted.name
    index = staged(name) if replacing else name
    done = _settled(wanted)
    columns = ", ".join(quoted(c) for c in wanted.columns)
    build = (
        f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {quoted(index)}\n"
        f"ON {quoted(table)} ({columns})"
    )
    attach = [
        f"IF NOT {done} AND to_regclass({regclass(index)}) IS NOT NULL THEN",
        f"    {LOCK_TIMEOUT}",
        *(
            [f"    ALTER TABLE {quoted(table)} DROP CONSTRAINT IF EXISTS {quoted(name)};"]
            if replacing
            else []
        ),
        f"    ALTER TABLE {quoted(table)} ADD CONSTRAINT {quoted(name)}",
        f"        UNIQUE USING INDEX {quoted(index)};",
        "END IF;",
    ]
    old = f"drop the old {name} ({describe('drop_check', table)}), then " if replacing else ""
    return [
        _refusal(
            _duplicates(wanted),
            done,
            f"Refuse before any change while a value of {', '.join(wanted.columns)} is in "
            f"more than one row, naming a few: {READS}; skipped once {name} is in place.",
        ),
        Statement(
            build,
            f"The index of unique {name}, built without blocking writes: "
            f"{describe('create_unique_index_concurrently', table)}. If a build is "
            "interrupted, the runner drops the INVALID index before the rerun builds it "
            "again.",
        ),
        Statement(
            _do("attach", attach),
            f"In one transaction, {old}make {index} the index of {name}: "
            f"{describe('add_unique_using_index', table, index=index)}; skipped once done.",
        ),
    ]


def dropped(table: str, name: str, comment: str) -> Statement:
    """DROP CONSTRAINT IF EXISTS: it commits with its record, and a rerun finds it gone."""
    return Statement(
        f"ALTER TABLE {quoted(table)} DROP CONSTRAINT IF EXISTS {quoted(name)}",
        comment,
        "ban-drop-constraint",
    )


def validated_not_null(table: str, column: str, fix: str | None = None) -> list[Statement]:
    """SET NOT NULL without its full scan under ACCESS EXCLUSIVE: refuse while a row is NULL,
    a CHECK NOT VALID, VALIDATE (a scan that lets reads and writes through), SET NOT NULL,
    which trusts the CHECK, and the CHECK dropped. Each step is skipped once the column is
    NOT NULL. fix: what the refusal says to do (by default, an UPDATE)."""
    check = fitted_name(table, column, suffix="_not_null_check")
    done = _not_null(table, column)
    add_sql = (
        f"ALTER TABLE {quoted(table)} ADD CONSTRAINT {quoted(check)} "
        f"CHECK ({quoted(column)} IS NOT NULL)"
    )
    found = _raise(_null_rows(table, column, fix))
    return [
        _refusal(
            found,
            done,
            f"Refuse before any change while {table}.{column} is NULL in a row, naming a "
            f"few: {READS}; skipped once the column is NOT NULL.",
        ),
        _add_not_valid(
            table,
            check,
            add_sql,
            done,
            f"NOT NULL in steps: a CHECK first, NOT VALID: "
            f"{describe('add_check_not_valid', table)}.",
        ),
        _validate(
            table,
            check,
            add_sql,
            done,
            found,
            f"Validate it: {describe('validate_check', table)}. A NULL it meets makes it "
            "drop the CHECK and refuse as above.",
        ),
        Statement(
            f"ALTER TABLE {quoted(table)} ALTER COLUMN {quoted(column)} SET NOT NULL",
            f"The CHECK validated above proves it: "
            f"{describe('set_not_null_proven_by_check', table)} (squawk cannot see the "
            "CHECK inside the DO blocks).",
            "adding-not-nullable-field",
        ),
        dropped(
            table,
            check,
            f"The CHECK has done its job, NOT NULL says the same: {describe('drop_check', table)}.",
        ),
    ]


def validated(table: str, name: str, add_sql: str, what: str = "") -> list[Statement]:
    """add_sql (ALTER TABLE ... ADD CONSTRAINT name ...) as the rerunnable steps of added(); the
    comments name the constraint by its kind and name (what is the callers' old label)."""
    definition = re.split(
        r"\bADD CONSTRAINT\s+(?:\"(?:[^\"]|\"\")+\"|\S+)\s+", add_sql, maxsplit=1
    )[1]
    return added(Wanted(table, name, definition))


# -- finding the changes -------------------------------------------------------------------------

DEFINITIONS = """
SELECT t.relname, c.conname, c.contype::text, pg_get_constraintdef(c.oid)
FROM pg_constraint AS c
INNER JOIN pg_class AS t ON t.oid = c.conrelid
INNER JOIN pg_namespace AS n ON n.oid = t.relnamespace
WHERE n.nspname = :schema AND c.contype IN ('c', 'f', 'u')
"""
KINDS = {"c": "CHECK", "f": "foreign key", "u": "unique"}


@dataclass
class ConstraintChanges:
    """The constraint changes of one diff this module writes, and the ops and model_parity
    differences it took over from the renderers."""

    pairs: list[tuple[list[Statement], list[Statement]]]
    covered: set[int]  # id() of the ops and differences taken over

    def covers(self, item) -> bool:
        return id(item) in self.covered

    def write(self, plan) -> None:
        for up, down in self.pairs:
            plan.pair(up, down, online=True)


def _definitions(connection, schema: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(table, name) -> (contype, pg_get_constraintdef) of the CHECKs, keys and uniques."""
    rows = connection.execute(text(DEFINITIONS), {"schema": schema})
    return {(table, name): (kind, definition) for table, name, kind, definition in rows}


@contextmanager
def _scratch_schema(connection) -> Iterator[str]:
    """A schema first on the search path, inside a savepoint rolled back afterwards."""
    scratch = f"constraints_{uuid.uuid4().hex[:8]}"
    savepoint = connection.begin_nested()
    try:
        connection.exec_driver_sql(f"CREATE SCHEMA {scratch}")
        connection.exec_driver_sql(f"SET LOCAL search_path = {scratch}")
        yield scratch
    finally:
        savepoint.rollback()  # the scratch schema and search_path go with it


def _model_definitions(connection, metadata) -> dict[tuple[str, str], tuple[str, str]]:
    """The same for the models, created in a scratch schema: PostgreSQL's own text of them."""
    with _scratch_schema(connection) as scratch:
        create_models(connection, metadata)  # a `%` of a CHECK once, not `%%`
        return _definitions(connection, scratch)


def _after_type_changes(
    connection, schema: str, table: str, retyped: list[tuple[str, str]]
) -> dict[str, str]:
    """The table's CHECKs as PostgreSQL prints them once its columns have their new types (a
    copy of the table in a scratch schema is altered): a type change rebuilds them."""
    with _scratch_schema(connection) as scratch:
        connection.exec_driver_sql(
            f"CREATE TABLE {quoted(table)} (LIKE {quoted(schema)}.{quoted(table)} "
            "INCLUDING CONSTRAINTS)"
        )
        for column, type_ in retyped:
            connection.exec_driver_sql(
                f"ALTER TABLE {quoted(table)} ALTER COLUMN {quoted(column)} TYPE {type_}"
            )
        found = _definitions(connection, scratch)
    return {name: definition for (_, name), (kind, definition) in found.items() if kind == "c"}


def find(operations, mismatches, metadata, catalog, new_tables: set[str]) -> ConstraintChanges:
    """The changed, dropped and unique constraints of existing tables among Alembic's ops and
    model_parity's CHECK differences, as rerunnable online steps (up and down)."""
    remember_keys(metadata)
    changes = ConstraintChanges([], set())
    drops, adds = {}, {}
    for op in operations:
        if isinstance(op, ops.DropConstraintOp) and op.table_name not in new_tables:
            drops[(op.table_name, op.constraint_name)] = op
        elif isinstance(op, ops.CreateForeignKeyOp) and op.source_table not in new_tables:
            adds[(op.source_table, op.constraint_name)] = op
        elif isinstance(op, ops.CreateUniqueConstraintOp) and op.table_name not in new_tables:
            adds[(op.table_name, op.constraint_name)] = op
    checks = [m for m in mismatches if m.kind == "CHECK" and m.database is not None]
    if not (drops or adds or checks):
        return changes
    connection = catalog.connection
    database = _definitions(connection, catalog.schema)
    models = _model_definitions(connection, metadata)
    for key, op in drops.items():
        if key not in database:
            continue  # a primary key, or what the renderers know better
        old = Wanted(*key, database[key][1], database[key][1])
        if key in adds:
            changes.covered |= {id(op), id(adds[key])}
            if models[key][1] != old.definition:
                new = Wanted(*key, models[key][1], models[key][1])
                changes.pairs.append((added(new, replacing=True), added(old, replacing=True)))
            continue
        changes.covered.add(id(op))
        changes.pairs.append((_dropped(old), added(old)))
    for key, op in adds.items():
        if key not in drops and isinstance(op, ops.CreateUniqueConstraintOp):
            changes.covered.add(id(op))
            new = Wanted(*key, models[key][1], models[key][1])
            changes.pairs.append((added(new), _dropped(new)))
    retyped: dict[str, list[tuple[str, str]]] = {}
    for op in operations:
        if isinstance(op, ops.AlterColumnOp) and op.modify_type is not None:
            retyped.setdefault(op.table_name, []).append((op.column_name, spelled(op.modify_type)))
    for difference in checks:
        changes.covered.add(id(difference))
        table, name = difference.table, difference.name
        old = Wanted(table, name, difference.database, difference.database)
        if difference.models is None:
            changes.pairs.append((_dropped(old), added(old)))
            continue
        printed = difference.database
        if table in retyped:
            printed = _after_type_changes(connection, catalog.schema, table, retyped[table])[name]
        if printed != difference.models:
            new = Wanted(table, name, difference.models, difference.models)
            changes.pairs.append((added(new, replacing=True), added(old, replacing=True)))
    return changes


def _dropped(wanted: Wanted) -> list[Statement]:
    kind = {"check": "drop_check", "foreign key": "drop_foreign_key"}.get(wanted.kind, "drop_check")
    return [
        dropped(
            wanted.table,
            wanted.name,
            f"Drop {wanted.kind} {wanted.name}, which the models no longer declare: "
            f"{describe(kind, wanted.table, wanted.referenced or None)}.",
        )
    ]
