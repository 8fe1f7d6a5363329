"""The acceptance corpus as data: model changes a SQLAlchemy user writes, and what each gives.

Each case edits a copy of assessment_models' MetaData (its tables are Table objects of
a MetaData of their own, so nothing here touches the application's models) the way a
model edit would: a Column, a Constraint or an Index added to a Table, or one taken
away, a table added, dropped or renamed. The harness (harness.py) runs each through
autogenerate and every stage after it, on a database at head with rows in every table.

`expect` is today's outcome: "written" (every stage passes) or "refused" (autogenerate
says in one line that it does not write this change yet, and writes nothing). The suite
fails when a case is wrong, or when a written case becomes refused; a refused case that
starts being written is reported, so its expectation can be updated here.

`writes` is what a written case gives, revision by revision: `expand`, `expand online`
(`-- Transaction: none`), `contract`, `contract online`. `refusal` is a word or two of the
refusal's message. `before_contract` is the SQL a team runs between the phases when
autogenerate's warning asks for it (values for rows the old code left NULL).
`writers` are the tables the old release writes to while the expand phase runs.

Run `python tests/acceptance/cases.py` to print the table of docs/autogenerate.md's
corpus section from this data (tests/acceptance/test_acceptance.py checks they agree).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSON, UUID

WRITTEN, REFUSED = "written", "refused"
# PostgreSQL versions the corpus is split between: make test runs each case on one of them.
VERSIONS = ("15", "18")


@dataclass(frozen=True)
class Case:
    name: str
    covers: str  # the kind of change, for the table: "column: add", "index: partial", ...
    change: str  # what the model edit is, in words
    edit: Callable[[MetaData], None]
    writers: tuple[str, ...]
    expect: str = WRITTEN
    writes: str = ""  # written: the revisions, e.g. "expand, expand online"
    refusal: str = ""  # refused: words of the message
    before_contract: str | None = None
    # The SQL a team runs when the down refuses, as its header says (a dropped NOT NULL
    # column's values): the harness's downgrade must first refuse in one line, then finish.
    fill_before_downgrade: str | None = None
    columns_dropped: bool = False  # the down can only add a dropped column back last
    extra: dict = field(default_factory=dict)


# -- helpers a case's edit uses ----------------------------------------------------------


def _drop_column(table: Table, name: str) -> None:
    """The column, and what only it used (a CHECK naming it, an index on it), gone from the
    model, as deleting the mapped_column line (and its CheckConstraint) does."""
    column = table.c[name]
    for constraint in list(table.constraints):
        if (isinstance(constraint, CheckConstraint) and name in str(constraint.sqltext)) or (
            name in getattr(constraint, "columns", {})
            and not isinstance(constraint, PrimaryKeyConstraint)
        ):
            table.constraints.discard(constraint)
    for index in list(table.indexes):
        if name in index.columns:
            table.indexes.discard(index)
    table._columns.remove(column)


def _drop_check(table: Table, name: str) -> None:
    (found,) = [c for c in table.constraints if c.name == name]
    table.constraints.discard(found)


def _drop_index(table: Table, name: str) -> None:
    (found,) = [i for i in table.indexes if i.name == name]
    table.indexes.discard(found)


def _drop_constraint(table: Table, name: str) -> None:
    (found,) = [c for c in table.constraints if c.name == name]
    table.constraints.discard(found)
    if isinstance(found, ForeignKeyConstraint):
        for element in found.elements:
            element.parent.foreign_keys.discard(element)


def _drop_unique_flag(table: Table, column: str, name: str) -> None:
    table.c[column].unique = False
    _drop_constraint(table, name)


def _replace_check(table: Table, name: str, short: str, sql: str) -> None:
    _drop_check(table, name)
    table.append_constraint(CheckConstraint(sql, name=short))


def _rename_column(table: Table, old: str, new: str) -> None:
    """A mapped_column with a new name and info={"renamed_from": old}: the same column."""
    column = table.c[old]
    replacement = column._copy()
    replacement.name = replacement.key = new
    replacement.info = {"renamed_from": old}
    _drop_column(table, old)
    table.append_column(replacement)


def _retype(table: Table, column: str, new_type) -> None:
    table.c[column].type = new_type


def _tags_table(metadata: MetaData, name: str = "tags", key=None, **columns) -> Table:
    return Table(
        name,
        metadata,
        key
        if key is not None
        else Column(
            "id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
        ),
        Column(
            "organization_id",
            UUID(as_uuid=True),
            ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        Column("tag_name", Text, nullable=False),
        *columns.values(),
        comment="Labels an organization puts on its assessments.",
    )


def _t(name: str) -> Callable[[MetaData], Table]:
    return lambda metadata: metadata.tables[name]


ORGS, USERS, FRAMEWORKS, QUESTIONS = "organizations", "users", "frameworks", "questions"
ASSESSMENTS, RESPONSES, EVIDENCE = "assessments", "responses", "evidence"
RESULTS, AUDIT = "assessment_results", "audit_logs"


def case(name, covers, change, writers, expect=WRITTEN, **options):
    """Decorator: the function is the case's edit of the MetaData."""

    def register(edit):
        CASES.append(Case(name, covers, change, edit, tuple(writers), expect, **options))
        return edit

    return register


CASES: list[Case] = []

# -- columns ---------------------------------------------------------------------------


@case("add_nullable_column", "column: add", "organizations.country text", [ORGS])
def _(m):
    m.tables[ORGS].append_column(Column("country", Text))


@case(
    "add_column_constant_default_not_null",
    "column: add",
    "organizations.tier text NOT NULL DEFAULT 'basic'",
    [ORGS],
)
def _(m):
    m.tables[ORGS].append_column(
        Column("tier", Text, nullable=False, server_default=text("'basic'"))
    )


@case(
    "add_column_not_null_no_default",
    "column: add",
    "users.nickname text NOT NULL, no default (rows filled between the phases)",
    [USERS],
    before_contract="UPDATE users SET nickname = 'nick' WHERE nickname IS NULL",
)
def _(m):
    m.tables[USERS].append_column(Column("nickname", Text, nullable=False))


@case(
    "add_column_volatile_default",
    "column: add",
    "frameworks.token uuid NOT NULL DEFAULT gen_random_uuid()",
    [FRAMEWORKS],
)
def _(m):
    m.tables[FRAMEWORKS].append_column(
        Column(
            "token", UUID(as_uuid=True), nullable=False, server_default=text("gen_random_uuid()")
        )
    )


@case(
    "drop_column",
    "column: drop",
    "frameworks.description removed",
    [FRAMEWORKS],
    columns_dropped=True,
)
def _(m):
    _drop_column(m.tables[FRAMEWORKS], "description")


@case(
    "drop_column_with_check",
    "column: drop",
    "evidence.sha256 (NOT NULL) and its CHECK removed",
    [EVIDENCE],
    columns_dropped=True,
    fill_before_downgrade="UPDATE evidence SET sha256 = repeat('a', 64) WHERE sha256 IS NULL",
)
def _(m):
    _drop_column(m.tables[EVIDENCE], "sha256")


@case(
    "set_server_default",
    "column: default",
    "questions.category gets DEFAULT 'general'",
    [QUESTIONS],
)
def _(m):
    m.tables[QUESTIONS].c.category.server_default = _default("'general'::text")


@case(
    "change_server_default",
    "column: default",
    "organizations.plan DEFAULT 'free' becomes 'team'",
    [ORGS],
)
def _(m):
    m.tables[ORGS].c.plan.server_default = _default("'team'::text")


@case(
    "drop_server_default",
    "column: default",
    "questions.weight loses DEFAULT 1 (the old code still omits it)",
    [QUESTIONS],
)
def _(m):
    m.tables[QUESTIONS].c.weight.server_default = None


@case("drop_not_null", "column: nullability", "questions.category becomes nullable", [QUESTIONS])
def _(m):
    m.tables[QUESTIONS].c.category.nullable = True


@case(
    "set_not_null_with_default",
    "column: nullability",
    "users.full_name NOT NULL DEFAULT '' (NULLs filled)",
    [USERS],
)
def _(m):
    column = m.tables[USERS].c.full_name
    column.nullable = False
    column.server_default = _default("''::text")


@case(
    "set_not_null_no_default",
    "column: nullability",
    "frameworks.description NOT NULL, no default (rows filled between the phases)",
    [FRAMEWORKS],
    before_contract="UPDATE frameworks SET description = '' WHERE description IS NULL",
)
def _(m):
    m.tables[FRAMEWORKS].c.description.nullable = False


@case(
    "add_identity_column",
    "column: identity",
    "organizations.number bigint GENERATED BY DEFAULT AS IDENTITY",
    [ORGS],
)
def _(m):
    m.tables[ORGS].append_column(Column("number", BigInteger, Identity(), nullable=False))


@case(
    "identity_always_to_by_default",
    "column: identity",
    "audit_logs.id GENERATED ALWAYS becomes BY DEFAULT",
    [AUDIT],
)
def _(m):
    m.tables[AUDIT].append_column(
        Column("id", BigInteger, Identity(always=False), primary_key=True), replace_existing=True
    )


@case(
    "add_generated_column",
    "column: generated",
    "organizations.slug_length bigint GENERATED ALWAYS AS (char_length(slug)) STORED",
    [ORGS],
)
def _(m):
    m.tables[ORGS].append_column(
        Column("slug_length", BigInteger, Computed("char_length(slug)", persisted=True))
    )


@case(
    "add_column_with_collation",
    "column: collation",
    'frameworks.sort_key text COLLATE "C"',
    [FRAMEWORKS],
)
def _(m):
    m.tables[FRAMEWORKS].append_column(Column("sort_key", Text(collation="C")))


@case(
    "change_column_collation",
    "column: collation",
    'organizations.name text becomes text COLLATE "C"',
    [ORGS],
)
def _(m):
    _retype(m.tables[ORGS], "name", Text(collation="C"))


@case(
    "type_text_to_varchar_limit",
    "column: type",
    "organizations.name text to varchar(200) (rewrite: shadow column)",
    [ORGS],
    columns_dropped=True,
)
def _(m):
    _retype(m.tables[ORGS], "name", String(200))


@case(
    "type_text_to_varchar",
    "column: type",
    "frameworks.version text to varchar (no rewrite)",
    [FRAMEWORKS],
)
def _(m):
    _retype(m.tables[FRAMEWORKS], "version", String())


@case(
    "type_integer_to_bigint",
    "column: type",
    "questions.position integer to bigint (rewrite)",
    [QUESTIONS],
    columns_dropped=True,
)
def _(m):
    _retype(m.tables[QUESTIONS], "position", BigInteger())


@case(
    "type_smallint_to_integer",
    "column: type",
    "assessment_results.maturity_level smallint to integer (rewrite)",
    [RESULTS],
    columns_dropped=True,
)
def _(m):
    _retype(m.tables[RESULTS], "maturity_level", Integer())


@case(
    "type_numeric_more_digits",
    "column: type",
    "questions.weight numeric(6,3) to numeric(9,3) (no rewrite)",
    [QUESTIONS],
)
def _(m):
    _retype(m.tables[QUESTIONS], "weight", Numeric(9, 3))


@case(
    "type_jsonb_to_json",
    "column: type",
    "responses.answer jsonb to json (rewrite)",
    [RESPONSES],
    columns_dropped=True,
)
def _(m):
    _retype(m.tables[RESPONSES], "answer", JSON())


@case(
    "type_timestamp_precision",
    "column: type",
    "assessments.started_at timestamptz to timestamptz(3) (rewrite)",
    [ASSESSMENTS],
    columns_dropped=True,
)
def _(m):
    from sqlalchemy.dialects.postgresql import TIMESTAMP

    _retype(m.tables[ASSESSMENTS], "started_at", TIMESTAMP(timezone=True, precision=3))


@case(
    "rename_column",
    "column: rename",
    "users.full_name to display_name (info renamed_from)",
    [USERS],
    columns_dropped=True,
)
def _(m):
    _rename_column(m.tables[USERS], "full_name", "display_name")


@case(
    "rename_column_with_check",
    "column: rename",
    "questions.prompt (with its CHECK) to question_text",
    [QUESTIONS],
    columns_dropped=True,
)
def _(m):
    table = m.tables[QUESTIONS]
    _rename_column(table, "prompt", "question_text")
    table.append_constraint(
        CheckConstraint("char_length(btrim(question_text)) > 0", name="question_text")
    )


# -- CHECK -----------------------------------------------------------------------------


@case("add_check", "CHECK: add", "organizations: char_length(name) <= 150", [ORGS])
def _(m):
    m.tables[ORGS].append_constraint(
        CheckConstraint("char_length(name) <= 150", name="name_length")
    )


@case(
    "add_check_two_columns",
    "CHECK: add",
    "evidence: byte_size < 2^40 OR content_type LIKE 'video/%'",
    [EVIDENCE],
)
def _(m):
    m.tables[EVIDENCE].append_constraint(
        CheckConstraint(
            "byte_size < 1099511627776 OR content_type LIKE 'video/%'", name="size_limit"
        )
    )


@case("drop_check", "CHECK: drop", "questions_weight_check removed", [QUESTIONS])
def _(m):
    _drop_check(m.tables[QUESTIONS], "questions_weight_check")


@case("change_check", "CHECK: change", "users_role_check allows 'guest' too", [USERS])
def _(m):
    _replace_check(
        m.tables[USERS],
        "users_role_check",
        "role",
        "role IN ('owner', 'admin', 'member', 'viewer', 'guest')",
    )


@case(
    "add_column_with_check",
    "CHECK: add",
    "organizations.seats bigint with CHECK (seats > 0)",
    [ORGS],
)
def _(m):
    table = m.tables[ORGS]
    table.append_column(Column("seats", BigInteger))
    table.append_constraint(CheckConstraint("seats > 0", name="seats"))


# -- foreign keys ------------------------------------------------------------------------


@case(
    "add_fk_column",
    "FK: add",
    "assessments.reviewed_by uuid REFERENCES users ON DELETE SET NULL, indexed",
    [ASSESSMENTS],
)
def _(m):
    m.tables[ASSESSMENTS].append_column(
        Column(
            "reviewed_by",
            UUID(as_uuid=True),
            ForeignKey("users.id", ondelete="SET NULL"),
            index=True,
        )
    )


@case(
    "add_fk_existing_column", "FK: add", "audit_logs.entity_id gets REFERENCES assessments", [AUDIT]
)
def _(m):
    m.tables[AUDIT].append_constraint(
        ForeignKeyConstraint(["entity_id"], ["assessments.id"], name="audit_logs_entity_id_fkey")
    )


@case("drop_fk", "FK: drop", "responses.answered_by loses its foreign key", [RESPONSES])
def _(m):
    _drop_constraint(m.tables[RESPONSES], "responses_answered_by_fkey")


@case(
    "change_fk_ondelete",
    "FK: change",
    "responses.answered_by ON DELETE SET NULL becomes CASCADE",
    [RESPONSES],
)
def _(m):
    table = m.tables[RESPONSES]
    _drop_constraint(table, "responses_answered_by_fkey")
    table.append_constraint(ForeignKeyConstraint(["answered_by"], ["users.id"], ondelete="CASCADE"))


# -- unique --------------------------------------------------------------------------------


@case("add_unique", "unique: add", "UNIQUE (name) on organizations", [ORGS])
def _(m):
    m.tables[ORGS].append_constraint(UniqueConstraint("name"))


@case(
    "add_unique_two_columns",
    "unique: add",
    "UNIQUE (framework_id, position) on questions",
    [QUESTIONS],
)
def _(m):
    m.tables[QUESTIONS].append_constraint(UniqueConstraint("framework_id", "position"))


@case("drop_unique", "unique: drop", "evidence.storage_key loses UNIQUE", [EVIDENCE])
def _(m):
    _drop_unique_flag(m.tables[EVIDENCE], "storage_key", "evidence_storage_key_key")


@case("add_column_unique", "unique: add", "organizations.domain text UNIQUE (a new column)", [ORGS])
def _(m):
    m.tables[ORGS].append_column(Column("domain", Text, unique=True))


# -- indexes ---------------------------------------------------------------------------


@case("add_index", "index: add", "frameworks (name)", [FRAMEWORKS])
def _(m):
    table = m.tables[FRAMEWORKS]
    Index("frameworks_name_idx", table.c.name)


@case(
    "add_index_two_columns_desc",
    "index: add",
    "audit_logs (entity_type, occurred_at DESC)",
    [AUDIT],
)
def _(m):
    table = m.tables[AUDIT]
    Index("audit_logs_entity_type_occurred_at_idx", table.c.entity_type, table.c.occurred_at.desc())


@case(
    "add_partial_index",
    "index: partial",
    "assessments (status) WHERE archived_at IS NULL",
    [ASSESSMENTS],
)
def _(m):
    table = m.tables[ASSESSMENTS]
    Index("assessments_status_idx", table.c.status, postgresql_where=text("archived_at IS NULL"))


@case("add_expression_index", "index: expression", "organizations (lower(name))", [ORGS])
def _(m):
    Index("organizations_lower_name_idx", func.lower(m.tables[ORGS].c.name))


@case(
    "add_unique_index",
    "index: unique",
    "UNIQUE INDEX questions (framework_id, lower(code))",
    [QUESTIONS],
)
def _(m):
    table = m.tables[QUESTIONS]
    Index(
        "questions_framework_id_lower_code_idx",
        table.c.framework_id,
        func.lower(table.c.code),
        unique=True,
    )


@case("add_index_include", "index: add", "evidence (response_id) INCLUDE (byte_size)", [EVIDENCE])
def _(m):
    table = m.tables[EVIDENCE]
    Index(
        "evidence_response_id_byte_size_idx", table.c.response_id, postgresql_include=["byte_size"]
    )


@case("drop_index", "index: drop", "assessments_organization_id_status_idx removed", [ASSESSMENTS])
def _(m):
    _drop_index(m.tables[ASSESSMENTS], "assessments_organization_id_status_idx")


@case(
    "drop_expression_index",
    "index: drop",
    "users_email_key (lower(email), unique) removed",
    [USERS],
)
def _(m):
    _drop_index(m.tables[USERS], "users_email_key")


@case(
    "change_index_columns",
    "index: change",
    "audit_logs_entity_type_entity_id_idx on (entity_id, entity_type)",
    [AUDIT],
)
def _(m):
    table = m.tables[AUDIT]
    _drop_index(table, "audit_logs_entity_type_entity_id_idx")
    Index("audit_logs_entity_type_entity_id_idx", table.c.entity_id, table.c.entity_type)


# -- comments --------------------------------------------------------------------------


@case("change_table_comment", "comment: table", "organizations' comment reworded", [ORGS])
def _(m):
    m.tables[ORGS].comment = "Tenants: each user, assessment and audit entry belongs to one."


@case("drop_table_comment", "comment: table", "frameworks' comment removed", [FRAMEWORKS])
def _(m):
    m.tables[FRAMEWORKS].comment = None


@case("add_column_comment", "comment: column", "users.email gets a comment", [USERS])
def _(m):
    m.tables[USERS].c.email.comment = "Sign-in address; unique whatever its letter case."


# -- enums -----------------------------------------------------------------------------


@case(
    "add_enum_column",
    "enum: add",
    "organizations.status organization_status ('active', 'suspended') DEFAULT 'active'",
    [ORGS],
)
def _(m):
    m.tables[ORGS].append_column(
        Column(
            "status",
            Enum("active", "suspended", name="organization_status"),
            nullable=False,
            server_default=text("'active'"),
        )
    )


@case(
    "text_to_enum",
    "enum: type change",
    "assessments.status text to assessment_status enum",
    [ASSESSMENTS],
    columns_dropped=True,
)
def _(m):
    # The column declared anew, as a model does: an Enum is a SchemaType, whose CREATE TYPE
    # comes from being attached to its column (a type assigned afterwards has none).
    statuses = ("draft", "in_progress", "submitted", "scored", "archived")
    m.tables[ASSESSMENTS].append_column(
        Column(
            "status",
            Enum(*statuses, name="assessment_status"),
            nullable=False,
            server_default=text("'draft'"),
        ),
        replace_existing=True,
    )


@case("new_table_with_enum", "enum: new table", "tags.kind tag_kind ('topic', 'risk')", [ORGS])
def _(m):
    _tags_table(m, kind=Column("kind", Enum("topic", "risk", name="tag_kind"), nullable=False))


# -- tables ----------------------------------------------------------------------------


@case("add_table", "table: add", "tags (uuid key, FK to organizations, index, comment)", [ORGS])
def _(m):
    _tags_table(m)


@case("add_table_identity_unique", "table: add", "labels (identity key, UNIQUE, CHECK, FK)", [ORGS])
def _(m):
    Table(
        "labels",
        m,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column(
            "organization_id",
            UUID(as_uuid=True),
            ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("name", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), server_default=text("now()"), nullable=False),
        UniqueConstraint("organization_id", "name"),
        CheckConstraint("char_length(name) <= 80", name="name"),
    )


@case(
    "add_table_composite_key",
    "table: add",
    "question_links (composite primary key of two FKs)",
    [QUESTIONS],
)
def _(m):
    Table(
        "question_links",
        m,
        Column(
            "from_id",
            UUID(as_uuid=True),
            ForeignKey("questions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column(
            "to_id",
            UUID(as_uuid=True),
            ForeignKey("questions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("weight", BigInteger, nullable=False, server_default=text("1")),
    )


@case(
    "drop_table_with_triggers", "table: drop", "audit_logs (append-only triggers) removed", [AUDIT]
)
def _(m):
    m.remove(m.tables[AUDIT])


@case(
    "drop_table_updated_at_trigger",
    "table: drop",
    "evidence (set_updated_at trigger) removed",
    [EVIDENCE],
)
def _(m):
    m.remove(m.tables[EVIDENCE])


@case(
    "rename_table_with_triggers",
    "table: rename",
    "evidence to attachments (info renamed_from; trigger renamed)",
    [EVIDENCE],
)
def _(m):
    table = m.tables[EVIDENCE]
    m.remove(table)
    copy = table.to_metadata(m, name="attachments")
    copy.info = {"renamed_from": "evidence"}
    for item in [*copy.constraints, *copy.indexes]:  # the names the convention gives them
        if item.name and str(item.name).startswith("evidence_"):
            item.name = "attachments_" + str(item.name).removeprefix("evidence_")


@case(
    "change_primary_key", "table: primary key", "audit_logs' key becomes (id, occurred_at)", [AUDIT]
)
def _(m):
    m.tables[AUDIT].append_column(
        Column(
            "occurred_at", DateTime(timezone=True), primary_key=True, server_default=text("now()")
        ),
        replace_existing=True,
    )


# -- quoted and mixed-case identifiers ---------------------------------------------------


@case("add_mixed_case_column", "identifiers: mixed case", 'users."Nickname" text', [USERS])
def _(m):
    m.tables[USERS].append_column(Column("Nickname", Text))


@case(
    "add_reserved_word_column",
    "identifiers: reserved word",
    'questions."order" bigint NOT NULL DEFAULT 0',
    [QUESTIONS],
)
def _(m):
    m.tables[QUESTIONS].append_column(
        Column("order", BigInteger, nullable=False, server_default=text("0"))
    )


@case("add_column_with_space", "identifiers: quoted", 'organizations."display name" text', [ORGS])
def _(m):
    m.tables[ORGS].append_column(Column("display name", Text))


@case(
    "add_mixed_case_table",
    "identifiers: mixed case",
    '"AuditArchive" ("Id" uuid key, "CreatedAt", FK, index)',
    [ORGS],
)
def _(m):
    Table(
        "AuditArchive",
        m,
        Column(
            "Id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
        ),
        Column(
            "OrganizationId",
            UUID(as_uuid=True),
            ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        Column("CreatedAt", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )


@case(
    "index_on_mixed_case_column",
    "identifiers: mixed case",
    'users."Team" text with index "users_Team_idx"',
    [USERS],
)
def _(m):
    table = m.tables[USERS]
    table.append_column(Column("Team", Text))
    Index("users_Team_idx", table.c.Team)


@case(
    "check_on_mixed_case_column",
    "identifiers: mixed case",
    'organizations."MaxSeats" bigint with a CHECK',
    [ORGS],
)
def _(m):
    table = m.tables[ORGS]
    table.append_column(Column("MaxSeats", BigInteger))
    table.append_constraint(CheckConstraint('"MaxSeats" > 0', name="MaxSeats"))


@case(
    "fk_from_mixed_case_column",
    "identifiers: mixed case",
    'assessments."ReviewerId" REFERENCES users',
    [ASSESSMENTS],
)
def _(m):
    m.tables[ASSESSMENTS].append_column(
        Column("ReviewerId", UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL"))
    )


@case(
    "rename_to_mixed_case_column",
    "identifiers: mixed case",
    'frameworks.version to "Version" (renamed_from)',
    [FRAMEWORKS],
    columns_dropped=True,
)
def _(m):
    table = m.tables[FRAMEWORKS]
    _rename_column(table, "version", "Version")  # its CHECK goes with it; the new one names it
    table.append_constraint(
        CheckConstraint('char_length(btrim("Version")) BETWEEN 1 AND 50', name="version")
    )


# -- several changes in one model edit -----------------------------------------------------


@case(
    "column_index_and_check_together",
    "several",
    "organizations.region text, its index and a CHECK",
    [ORGS],
)
def _(m):
    table = m.tables[ORGS]
    table.append_column(Column("region", Text))
    Index("organizations_region_idx", table.c.region)
    table.append_constraint(CheckConstraint("region <> ''", name="region"))


@case("new_table_and_fk_to_it", "several", "teams table and users.team_id REFERENCES it", [USERS])
def _(m):
    Table(
        "teams",
        m,
        Column(
            "id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
        ),
        Column("name", Text, nullable=False),
    )
    m.tables[USERS].append_column(
        Column(
            "team_id", UUID(as_uuid=True), ForeignKey("teams.id", ondelete="SET NULL"), index=True
        )
    )


def _default(sql: str):
    from sqlalchemy import DefaultClause

    return DefaultClause(text(sql))


# -- what each case gives today (update from a run's report: TEST_ACCEPTANCE_REPORT) -----

# written: the revisions it writes; refused: its message, shortened.
EXPECTED = {
    "add_nullable_column": (WRITTEN, "expand"),
    "add_column_constant_default_not_null": (WRITTEN, "expand"),
    "add_column_not_null_no_default": (WRITTEN, "expand, contract online"),
    "add_column_volatile_default": (WRITTEN, "expand, expand online"),
    "drop_column": (WRITTEN, "contract"),
    "drop_column_with_check": (WRITTEN, "contract online, contract"),
    "set_server_default": (WRITTEN, "expand"),
    "change_server_default": (WRITTEN, "expand"),
    "drop_server_default": (WRITTEN, "contract"),
    "drop_not_null": (WRITTEN, "expand"),
    "set_not_null_with_default": (WRITTEN, "expand, expand online, contract online"),
    "set_not_null_no_default": (WRITTEN, "contract online"),
    "add_identity_column": (WRITTEN, "expand, expand online"),
    "identity_always_to_by_default": (WRITTEN, "expand"),
    "add_generated_column": (
        REFUSED,
        "organizations.slug_length is a stored generated column: `ALTER TABLE organizations ADD COLUMN slug_length BIGINT GENERATED ALWAYS AS (char_length(slug)) STORED` takes ACCESS EXCLUSIVE on organizations (blocks reads and writes), and rewrites organizations wh...",
    ),
    "add_column_with_collation": (WRITTEN, "expand"),
    "change_column_collation": (WRITTEN, "expand"),
    "type_text_to_varchar_limit": (WRITTEN, "expand, expand online, contract online, contract"),
    "type_text_to_varchar": (WRITTEN, "expand"),
    "type_integer_to_bigint": (WRITTEN, "expand, expand online, contract online, contract"),
    "type_smallint_to_integer": (WRITTEN, "expand, expand online, contract online, contract"),
    "type_numeric_more_digits": (WRITTEN, "expand"),
    "type_timestamp_precision": (WRITTEN, "expand, expand online, contract online, contract"),
    "type_jsonb_to_json": (WRITTEN, "expand, expand online, contract online, contract"),
    "rename_column": (WRITTEN, "expand, expand online, contract"),
    "rename_column_with_check": (WRITTEN, "expand, expand online, contract online, contract"),
    "add_check": (WRITTEN, "expand online"),
    "add_check_two_columns": (WRITTEN, "expand online"),
    "drop_check": (WRITTEN, "expand online"),
    "change_check": (WRITTEN, "expand online"),
    "add_column_with_check": (WRITTEN, "expand, expand online"),
    "add_fk_column": (WRITTEN, "expand, expand online"),
    "add_fk_existing_column": (WRITTEN, "expand online"),
    "drop_fk": (WRITTEN, "expand online"),
    "change_fk_ondelete": (WRITTEN, "expand online"),
    "add_unique": (WRITTEN, "expand online"),
    "add_unique_two_columns": (WRITTEN, "expand online"),
    "drop_unique": (WRITTEN, "expand online"),
    "add_column_unique": (WRITTEN, "expand, expand online"),
    "add_index": (WRITTEN, "expand online"),
    "add_index_two_columns_desc": (WRITTEN, "expand online"),
    "add_partial_index": (WRITTEN, "expand online"),
    "add_expression_index": (WRITTEN, "expand online"),
    "add_unique_index": (WRITTEN, "expand online"),
    "add_index_include": (WRITTEN, "expand online"),
    "drop_index": (WRITTEN, "expand online"),
    "drop_expression_index": (WRITTEN, "expand online"),
    "change_index_columns": (WRITTEN, "expand online"),
    "change_table_comment": (WRITTEN, "expand"),
    "drop_table_comment": (WRITTEN, "expand"),
    "add_column_comment": (WRITTEN, "expand"),
    "add_enum_column": (WRITTEN, "expand"),
    "text_to_enum": (WRITTEN, "expand, expand online, contract online, contract"),
    "new_table_with_enum": (WRITTEN, "expand"),
    "add_table": (WRITTEN, "expand"),
    "add_table_identity_unique": (WRITTEN, "expand"),
    "add_table_composite_key": (WRITTEN, "expand"),
    "drop_table_with_triggers": (WRITTEN, "contract"),
    "drop_table_updated_at_trigger": (WRITTEN, "contract"),
    "rename_table_with_triggers": (WRITTEN, "expand, contract"),
    "change_primary_key": (WRITTEN, "expand online, contract online"),
    "add_mixed_case_column": (WRITTEN, "expand"),
    "add_reserved_word_column": (WRITTEN, "expand"),
    "add_column_with_space": (WRITTEN, "expand"),
    "add_mixed_case_table": (WRITTEN, "expand"),
    "index_on_mixed_case_column": (WRITTEN, "expand, expand online"),
    "check_on_mixed_case_column": (WRITTEN, "expand, expand online"),
    "fk_from_mixed_case_column": (WRITTEN, "expand, expand online"),
    "rename_to_mixed_case_column": (WRITTEN, "expand, expand online, contract online, contract"),
    "column_index_and_check_together": (WRITTEN, "expand, expand online"),
    "new_table_and_fk_to_it": (WRITTEN, "expand, expand online"),
}


def _expected(item: Case) -> Case:
    kind, detail = EXPECTED[item.name]
    return replace(
        item, expect=kind, **({"writes": detail} if kind == WRITTEN else {"refusal": detail})
    )


CASES[:] = [_expected(item) for item in CASES]


# -- the docs table --------------------------------------------------------------------------


def version_of(index: int) -> str:
    """make test runs case number index (0-based) on this PostgreSQL version: alternately."""
    return VERSIONS[index % len(VERSIONS)]


def _row(index: int, item: Case, outcome: str, what: str) -> str:
    if item.before_contract:
        what += f"; between the phases the team runs `{item.before_contract}`"
    if item.fill_before_downgrade:
        what += f"; the down refuses until the team runs `{item.fill_before_downgrade}`"
    cells = [f"`{item.name}`", item.covers, item.change, version_of(index), outcome, what]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def doc_table() -> str:
    """docs/autogenerate.md's corpus table, from this data."""
    counts = {kind: sum(c.expect == kind for c in CASES) for kind in (WRITTEN, REFUSED)}
    header = [
        "| case | change | model edit | PostgreSQL | outcome | what is written (or the refusal) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines = [
        (
            f"{len(CASES)} cases: {counts[WRITTEN]} written, {counts[REFUSED]} refused with one "
            "line, 0 wrong."
        ),
        "",
        *header,
    ]
    for index, item in enumerate(CASES):
        lines.append(
            _row(index, item, item.expect, item.writes if item.expect == WRITTEN else item.refusal)
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(doc_table())
