"""The ORM half of `make compat`: one release's models write and read a scratch database.

    python migration_runner/tools/compat_probe.py < request.json > report.json

migration_runner/tools/compat.py starts it once per check, for the running release's
models (extracted from git) or for this tree's: never both in one interpreter, so the two
`assessment_models` packages cannot mix. It imports nothing from migration_runner, because
the models' folder comes first on sys.path and may hold an old release.

Request: {"models": folder, "url": database or null, "seed": bool, "recipes": {...} or null}.
Without a url it describes the mapped classes (the static pass reads that). With one it
first commits one row per class if `seed` asks, then, class by class in dependency order,
inserts, selects, updates and deletes a row: one transaction per class, rolled back, each
operation in its own savepoint, constraints checked at once (SET CONSTRAINTS ALL IMMEDIATE).

Rows are generated from the schema, never written per table: NOT NULL columns without a
default get a value, nullable ones stay NULL, a foreign key points at a parent row made first.
Each column has candidates for its type (for text: a uuid-based word, 'member', a slug, an
email, a MIME type, a sha256, a short word; first the literals its CHECKs list). A row is
tried in a savepoint; when PostgreSQL names a violated CHECK or unique constraint, the
columns that constraint mentions move on to their next candidates, carrying into the columns
earlier violations named (an odometer, so a status and the timestamp another CHECK ties to
it are tried in combination; optional columns start at NULL), up to MAX_ATTEMPTS tries.
Which candidates worked is the class's recipe; given recipes, rows are made from them
exactly, without searching: the old code writes what it wrote before the migration.
"""

import hashlib
import json
import re
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy import types as sqltypes
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import UnmappedColumnError
from sqlalchemy.pool import NullPool

MAX_ATTEMPTS = 60  # rows tried per class before its constraints are declared unsatisfiable
MAX_DEPTH = 8  # parent rows made for one row: a deeper chain is a cycle
SELECT_LIMIT = 5  # rows read besides the inserted one: the seeded rows, through these models
UNSET = "unset"  # the candidate "leave it to NULL or the default" of an optional column
CHECK_VIOLATION, UNIQUE_VIOLATION = "23514", "23505"
OPERATIONS = ("INSERT", "SELECT", "UPDATE", "DELETE")
CONSTRAINT_TEXTS = """
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass(:t)
UNION ALL
SELECT index.relname, pg_get_indexdef(i.indexrelid)
FROM pg_index AS i INNER JOIN pg_class AS index ON i.indexrelid = index.oid
WHERE i.indrelid = to_regclass(:t)
"""
QUOTED = re.compile(r"'((?:[^']|'')*)'")
# `col IN ('a', 'b')` as pg_get_constraintdef renders it, and `col = 'a'`.
LISTED = re.compile(r"\(?(\w+)\)? = ANY \(+ARRAY\[([^\]]*)\]")
EQUALS = re.compile(r"\(?(\w+)\)? = ('(?:[^']|'')*')")
COLUMN_IN_MESSAGE = re.compile(r'column "?(?:\w+\.)?([^" ]+)"? ')

TEXT_FORMS: dict[str, Callable[[str], Any]] = {
    "word": lambda token: f"w{token}",  # keys, slugs, codes, names: lower-case letters and digits
    "member": lambda token: "member",  # letters only: dotted verbs, entity types
    "slug": lambda token: f"org-{token}",
    "email": lambda token: f"{token}@b.example",
    "mime": lambda token: "text/plain",
    "sha256": lambda token: hashlib.sha256(token.encode()).hexdigest(),
    "short": lambda token: f"a{token[:2]}",  # under a length limit, still mostly unique
}
NUMBER_FORMS: dict[str, Callable[[str], Any]] = {
    "0": lambda token: 0,
    "1": lambda token: 1,
    "50": lambda token: 50,
    "100": lambda token: 100,
    "unique": lambda token: int(token[:4], 16),  # a unique column's second row
}
FORMS: dict[str, dict[str, Callable[[str], Any]]] = {
    "text": TEXT_FORMS,
    "number": NUMBER_FORMS,
    "bool": {"false": lambda token: False, "true": lambda token: True},
    "datetime": {"now": lambda token: datetime.now(UTC)},
    "date": {"today": lambda token: date.today()},
    "time": {"noon": lambda token: time(12)},
    "interval": {"day": lambda token: timedelta(days=1)},
    "uuid": {"uuid": lambda token: uuid.uuid4()},
    "json": {
        "object": lambda token: {},
        "value": lambda token: {"value": 1},
        "list": lambda token: [],
    },
    "array": {"empty": lambda token: []},
    "inet": {"localhost": lambda token: "127.0.0.1"},
    "bytes": {"byte": lambda token: b"\x00"},
}


class Unsatisfiable(Exception):
    """No candidate row passed the table's constraints: this class cannot be checked."""


class ParentFailed(Exception):
    """A parent row could not be made: the parent's own INSERT says why."""


@dataclass
class Probe:
    engine: Engine
    mappers: dict[str, Mapper]  # by table name
    search: bool  # find values (True), or make rows from the recipes as they are
    recipes: dict[str, dict[str, str]] = field(default_factory=dict)  # class -> column -> label
    constraints: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> name -> text


# --- describing the models ------------------------------------------------------------


def mapped_classes(base) -> list[Mapper]:
    """The mappers of the models, in dependency order (parents before children)."""
    order = {table: index for index, table in enumerate(base.metadata.sorted_tables)}
    mappers = [mapper for mapper in base.registry.mappers if mapper.local_table in order]
    return sorted(mappers, key=lambda mapper: order[mapper.local_table])


def attribute_of(mapper: Mapper, column) -> str | None:
    """The attribute a column is mapped to; None for a column the class does not map."""
    try:
        return mapper.get_property_by_column(column).key
    except UnmappedColumnError:
        return None


def server_default(column) -> bool:
    """The database fills the column when an INSERT leaves it out."""
    return any((column.server_default, column.identity, column.computed)) or (
        column.primary_key and column.autoincrement is True
    )


def has_default(column) -> bool:
    return column.default is not None or server_default(column)


def describe(mappers: list[Mapper]) -> list[dict]:
    """What the static pass needs: each class's table and its columns' types and nullability."""
    return [
        {
            "class": mapper.class_.__name__,
            "table": mapper.local_table.fullname,
            "columns": {
                column.name: {
                    "type": column.type.compile(dialect=postgresql.dialect()),
                    "nullable": bool(column.nullable),
                    "default": server_default(column),
                    # The ORM then always sends a value: the column is never left out.
                    "python_default": column.default is not None,
                }
                for column in mapper.local_table.columns
                if attribute_of(mapper, column) is not None
            },
        }
        for mapper in mappers
    ]


# --- candidate values -------------------------------------------------------------------


def kind_of(column_type) -> str | None:
    """The FORMS family of a column type; None when no candidate can be made for it."""
    for type_class, kind in (
        (sqltypes.JSON, "json"),
        (sqltypes.ARRAY, "array"),
        (postgresql.INET, "inet"),
        (postgresql.CIDR, "inet"),
        (sqltypes.Interval, "interval"),
    ):
        if isinstance(column_type, type_class):
            return kind
    try:
        python_type = column_type.python_type
    except NotImplementedError:
        return None
    for python_class, kind in (
        (bool, "bool"),  # before int: bool is an int
        (str, "text"),
        (int, "number"),
        (float, "number"),
        (Decimal, "number"),
        (datetime, "datetime"),  # before date: a datetime is a date
        (date, "date"),
        (time, "time"),
        (uuid.UUID, "uuid"),
        (bytes, "bytes"),
    ):
        if issubclass(python_type, python_class):
            return kind
    return None


def listed_literals(definitions: list[str]) -> dict[str, list[str]]:
    """The values CHECKs list per column: `col IN (...)`, stored as `= ANY (ARRAY[...])`."""
    found: dict[str, list[str]] = {}
    for definition in definitions:
        if not definition.startswith("CHECK"):
            continue
        for column, listed in LISTED.findall(definition) + EQUALS.findall(definition):
            values = [value.replace("''", "'") for value in QUOTED.findall(listed)]
            found.setdefault(column, []).extend(values)
    return found


def candidates(column, literals: list[str]) -> list[str]:
    """The labels of the values a column may take, most likely first; UNSET first if optional."""
    enums = list(getattr(column.type, "enums", None) or [])
    labels = [f"literal:{value}" for value in dict.fromkeys([*literals, *enums])]
    kind = kind_of(column.type)
    if kind is not None and not enums:
        labels += list(FORMS[kind])
    optional = column.nullable or has_default(column)
    return [UNSET, *labels] if optional else labels


def value_of(label: str, column, token: str) -> Any:
    """The value a label stands for, of the column's Python type, fresh for this row (token)."""
    if label.startswith("literal:"):
        raw = label.removeprefix("literal:")
    else:
        raw = FORMS[kind_of(column.type)][label](token)
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return raw
    if python_type in (int, float, Decimal) and not isinstance(raw, bool):
        return python_type(Decimal(str(raw)))
    if python_type is datetime and isinstance(raw, datetime) and not column.type.timezone:
        return raw.replace(tzinfo=None)
    length = getattr(column.type, "length", None)
    return raw[:length] if isinstance(raw, str) and length else raw


# --- one row ------------------------------------------------------------------------------


def constraint_texts(probe: Probe, session: Session, table) -> dict[str, str]:
    """Every constraint and index of the table, by name, as PostgreSQL prints it (cached)."""
    if table.fullname not in probe.constraints:
        rows = session.execute(text(CONSTRAINT_TEXTS), {"t": table.fullname})
        # Not dict(rows): a CursorResult has keys(), so dict() would read it as a mapping.
        probe.constraints[table.fullname] = {name: definition for name, definition in rows}  # noqa: C416
    return probe.constraints[table.fullname]


def columns_of(definition: str, names: list[str]) -> list[str]:
    """The columns a constraint's text mentions (its string literals taken out first)."""
    bare = QUOTED.sub("", definition)
    return [name for name in names if re.search(rf"\b{re.escape(name)}\b", bare)]


def writable_columns(mapper: Mapper) -> list:
    """The mapped columns a statement may write: not identity or generated ones."""
    return [
        column
        for column in mapper.local_table.columns
        if attribute_of(mapper, column) is not None and not column.identity and not column.computed
    ]


def own_columns(mapper: Mapper) -> list:
    """The columns a generated row chooses values for: not the keys a parent row gives."""
    keyed = {fk.parent for fk in mapper.local_table.foreign_keys}
    return [column for column in writable_columns(mapper) if column not in keyed]


def parent_values(probe: Probe, session: Session, mapper: Mapper, depth: int) -> dict[str, Any]:
    """A parent row for every foreign key the row cannot leave NULL; the keys that point at it."""
    values: dict[str, Any] = {}
    for constraint in mapper.local_table.foreign_key_constraints:
        if all(column.nullable for column in constraint.columns):
            continue
        parent_mapper = probe.mappers.get(constraint.referred_table.fullname)
        if parent_mapper is None:
            raise Unsatisfiable(
                f"no mapped class makes the {constraint.referred_table} row it needs"
            )
        if depth >= MAX_DEPTH:
            raise Unsatisfiable(f"its NOT NULL foreign keys go round through {parent_mapper}")
        try:
            parent = insert_row(probe, session, parent_mapper, depth + 1)
        except Exception as error:
            raise ParentFailed(f"{parent_mapper.class_.__name__}: {error}") from error
        for element in constraint.elements:
            remote = getattr(parent, attribute_of(parent_mapper, element.column))
            values[attribute_of(mapper, element.parent)] = remote
    return values


def try_row(session: Session, mapper: Mapper, values: dict[str, Any]) -> object:
    row = mapper.class_(**values)
    with session.begin_nested():
        session.add(row)
        session.flush()
    return row


def row_values(mapper: Mapper, columns: list, labels: dict[str, str]) -> dict[str, Any]:
    token = uuid.uuid4().hex[:12]
    return {
        attribute_of(mapper, column): value_of(labels[column.name], column, token)
        for column in columns
        if labels.get(column.name, UNSET) != UNSET
    }


def insert_row(probe: Probe, session: Session, mapper: Mapper, depth: int = 0) -> object:
    """A new row of mapper's class, flushed in a savepoint; raises what the database said."""
    name = mapper.class_.__name__
    keys = parent_values(probe, session, mapper, depth)
    columns = own_columns(mapper)
    if probe.search:
        probe.recipes[name], row = search(probe, session, mapper, columns, keys)
        return row
    if name not in probe.recipes:
        raise Unsatisfiable("the release's head gave no row of it to repeat")
    return try_row(session, mapper, {**keys, **row_values(mapper, columns, probe.recipes[name])})


def search(
    probe: Probe, session: Session, mapper: Mapper, columns: list, keys: dict
) -> tuple[dict[str, str], object]:
    """Try candidate rows until one passes; move on the columns each violation names first."""
    texts = constraint_texts(probe, session, mapper.local_table)
    options = column_options(columns, listed_literals(list(texts.values())))
    previous = probe.recipes.get(mapper.class_.__name__, {})
    chosen = {name: index_of(labels, previous.get(name)) for name, labels in options.items()}
    involved: list[str] = []  # columns some violated constraint named, latest constraint's first
    for _ in range(MAX_ATTEMPTS):
        labels = {name: options[name][index] for name, index in chosen.items()}
        try:
            return labels, try_row(session, mapper, {**keys, **row_values(mapper, columns, labels)})
        except Exception as error:
            named = violated_constraint(error)
            if named is None or named not in texts:
                raise
            mentioned = columns_of(texts[named], list(options))
            involved = mentioned + [name for name in involved if name not in mentioned]
            if not advance(chosen, options, involved):
                raise Unsatisfiable(f"no generated row satisfies {named}") from None
    raise Unsatisfiable(f"no generated row passed the constraints in {MAX_ATTEMPTS} tries")


def column_options(columns: list, literals: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each column's candidate labels; refused when a column has none."""
    options = {column.name: candidates(column, literals.get(column.name, [])) for column in columns}
    for column in columns:
        if not options[column.name]:
            raise Unsatisfiable(f"no candidate value for {column.name} of type {column.type}")
    return options


def index_of(labels: list[str], label: str | None) -> int:
    """Where a search starts for a column: the label that worked before, else the first."""
    return labels.index(label) if label in labels else 0


def violated_constraint(error: Exception) -> str | None:
    """The CHECK or unique constraint PostgreSQL names in the error, if that is what it is."""
    original = getattr(error, "orig", None)
    if getattr(original, "pgcode", None) not in (CHECK_VIOLATION, UNIQUE_VIOLATION):
        return None
    return original.diag.constraint_name


def advance(chosen: dict[str, int], options: dict[str, list[str]], columns: list[str]) -> bool:
    """The next combination of candidates for these columns, the first turning fastest (an
    odometer: a column that wraps round moves the next one on); False when all were tried."""
    for name in columns:
        chosen[name] += 1
        if chosen[name] < len(options[name]):
            return True
        chosen[name] = 0
    return False


# --- the four operations --------------------------------------------------------------------


def failure(error: Exception) -> dict:
    """What went wrong, as the orchestrator compares and prints it."""
    original = getattr(error, "orig", None)
    diag = getattr(original, "diag", None)
    primary = getattr(diag, "message_primary", None)
    message = (primary or str(original or error) or type(error).__name__).strip().splitlines()[0]
    match = COLUMN_IN_MESSAGE.search(message)
    return {
        "ok": False,
        "sqlstate": getattr(original, "pgcode", None),
        "message": message,
        "column": getattr(diag, "column_name", None) or (match.group(1) if match else None),
        # A trigger's own RAISE: the schema refusing on purpose, not a statement breaking.
        "raised": "at RAISE" in (getattr(diag, "context", None) or ""),
        "unchecked": isinstance(error, Unsatisfiable),
        "skipped": isinstance(error, ParentFailed),
    }


def attempt(session: Session, action: Callable[[], Any]) -> tuple[dict, Any]:
    """Run one operation in its own savepoint; its outcome, and what it returned."""
    try:
        with session.begin_nested():
            return {"ok": True}, action()
    except Exception as error:  # noqa: BLE001  (any failure of the release's code is the finding)
        return failure(error), None


def read_rows(session: Session, mapper: Mapper, inserted: object | None) -> object | None:
    """The inserted row read back, and a few existing rows (the seeded ones) through the models."""
    session.expire_all()
    existing = session.scalars(select(mapper.class_).limit(SELECT_LIMIT)).all()
    if inserted is not None:
        session.refresh(inserted)
        return inserted
    return existing[0] if existing else None


def update_row(session: Session, mapper: Mapper, row: object) -> None:
    """UPDATE every mapped column but the key to its own value: each one is written."""
    loaded = inspect(row).dict
    for column in writable_columns(mapper):
        attribute = attribute_of(mapper, column)
        if not column.primary_key and attribute in loaded:
            flag_modified(row, attribute)
    session.flush()


def delete_row(session: Session, row: object) -> None:
    session.delete(row)
    session.flush()


def check_class(probe: Probe, mapper: Mapper) -> list[dict]:
    """INSERT, SELECT, UPDATE, DELETE of one class, each in a savepoint, all rolled back."""
    outcomes = {}
    with Session(probe.engine) as session, session.begin():
        session.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))  # deferred ones too, per statement
        outcomes["INSERT"], inserted = attempt(session, lambda: insert_row(probe, session, mapper))
        outcomes["SELECT"], row = attempt(session, lambda: read_rows(session, mapper, inserted))
        if row is None:
            skipped = {"ok": False, "skipped": True, "message": "no row to change"}
            outcomes["UPDATE"] = outcomes["DELETE"] = skipped
        else:
            outcomes["UPDATE"], _ = attempt(session, lambda: update_row(session, mapper, row))
            outcomes["DELETE"], _ = attempt(session, lambda: delete_row(session, row))
        session.rollback()
    return [
        {
            "class": mapper.class_.__name__,
            "table": mapper.local_table.fullname,
            "operation": operation,
            **outcomes[operation],
        }
        for operation in OPERATIONS
    ]


def seed(probe: Probe, mapper: Mapper) -> dict:
    """One committed row of the class: the data the migrations then run over."""
    with Session(probe.engine) as session, session.begin():
        outcome, _ = attempt(session, lambda: insert_row(probe, session, mapper))
    return {
        "class": mapper.class_.__name__,
        "table": mapper.local_table.fullname,
        "operation": "SEED",
        **outcome,
    }


# --- the request -------------------------------------------------------------------------------


def run(request: dict, mappers: list[Mapper]) -> dict:
    url = make_url(request["url"]).set(drivername="postgresql+psycopg2")
    engine = create_engine(
        url, poolclass=NullPool, connect_args={"options": "-c statement_timeout=30s"}
    )
    recipes = request.get("recipes")
    probe = Probe(
        engine=engine,
        mappers={mapper.local_table.fullname: mapper for mapper in mappers},
        search=recipes is None,
        recipes=dict(recipes or {}),
    )
    try:
        results = [seed(probe, mapper) for mapper in mappers] if request.get("seed") else []
        for mapper in mappers:
            results += check_class(probe, mapper)
    finally:
        engine.dispose()
    return {"results": results, "recipes": probe.recipes}


def main() -> int:
    request = json.load(sys.stdin)
    sys.path.insert(0, request["models"])  # this release's models, before any installed ones
    from assessment_models import Base

    mappers = mapped_classes(Base)
    report: dict[str, Any] = {"classes": describe(mappers)}
    if request.get("url"):
        report.update(run(request, mappers))
    json.dump(report, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
