"""The model edits autogenerate used to refuse or get wrong (issue 19, items 3 and 9).

Each test edits the models of a tree copy, on a database whose tables have
rows, runs `alembic revision --autogenerate`, lints what it wrote, applies it,
checks that `alembic check` is clean, downgrades to where it started, and
asserts the catalog and the rows at each step. Independent edits share one
autogenerate run, to keep the tests fast.
"""

import pytest
from sqlalchemy.engine import make_url
from test_autogenerate import edit, in_tree, lint, new_files

from migration_runner.tools.autogenerate.draft import same_but_column_order
from migration_runner.tools.schema_snapshot import snapshot
from support.database import query
from support.processes import run_alembic
from support.project import HEAD, V001_TABLES, add_revision

ALLOW_LOSS = ("-x", "allow-data-loss=true")
ROWS = 60
SEED = [
    (
        "INSERT INTO organizations (name, slug)"
        " SELECT 'Org', 'org-' || i FROM generate_series(1, 3) AS i"
    ),
    (
        "INSERT INTO users (organization_id, email, full_name)"
        " SELECT (SELECT min(id::text)::uuid FROM organizations), 'user-' || i || '@example.com',"
        f" CASE WHEN i % 3 <> 0 THEN 'Person ' || i END FROM generate_series(1, {ROWS}) AS i"
    ),
    "INSERT INTO frameworks (key, name, version) VALUES ('fw-1', 'F', '1'), ('fw-2', 'G', '1')",
    (
        "INSERT INTO questions (framework_id, code, prompt, category, position, answer_type)"
        " SELECT (SELECT id FROM frameworks WHERE key = 'fw-1'), 'q' || i, 'Why?', 'c', i * 10,"
        " 'text' FROM generate_series(1, 30) AS i"
    ),
    (
        "INSERT INTO assessments (organization_id, framework_id, title, status, archived_at)"
        " SELECT (SELECT min(id::text)::uuid FROM organizations),"
        " (SELECT id FROM frameworks WHERE key = 'fw-1'), 'Review ' || i,"
        " CASE WHEN i % 2 = 0 THEN 'archived' ELSE 'draft' END,"
        " CASE WHEN i % 2 = 0 THEN now() END FROM generate_series(1, 20) AS i"
    ),
    (
        "INSERT INTO assessment_results (assessment_id, overall_score, maturity_level)"
        " SELECT id, 50, 3 FROM assessments"
    ),
    (
        "INSERT INTO audit_logs (organization_id, action, entity_type)"
        " SELECT (SELECT min(id::text)::uuid FROM organizations), 'user.created', 'user'"
        " FROM generate_series(1, 5)"
    ),
]


@pytest.fixture
def server(postgres_server) -> str:
    return make_url(postgres_server.admin_url).render_as_string(hide_password=False)


def start(url: str, tree, up: str | None = None, down: str | None = None) -> str:
    """The tree's head (with a test-only revision on top when up is given) on url, with rows;
    the revision a downgrade goes back to."""
    head = HEAD if up is None else add_revision(tree, "test_only_kinds", up, down)
    migrated = run_alembic("upgrade", "head", url=url, tree=tree)
    assert migrated.returncode == 0, migrated.stdout
    for statement in SEED:
        query(url, statement)
    return head


PARTS = ("expand", "online", "contract", "contract_online")


def revisions(tree, head: str) -> dict[str, str | None]:
    """The id of each revision autogenerate wrote past head, by its part (None: not written),
    read from its header: the first says the message as given, whatever its part."""
    found = dict.fromkeys((*PARTS, "contract_first"))
    for path in generated(tree, head):
        if path.parent.name != "up":
            continue
        text = path.read_text()
        phase = "expand" if "-- Phase: expand" in text else "contract"
        part = phase if "-- Transaction: none" not in text else f"{phase}_online"
        part = {"expand_online": "online"}.get(part, part)
        if part == "contract_online" and "first online steps" in text.splitlines()[0]:
            part = "contract_first"
        found[part] = path.name[:3]
    return found


def generated(tree, head: str) -> list:
    """The SQL files of the revisions autogenerate wrote past head."""
    return [path for path in new_files(tree) if path.name[:3] > head]


def autogenerate(tree, url, scratch, message: str, head: str = HEAD):
    result = in_tree(tree, url, scratch, "revision", "--autogenerate", "-m", message)
    assert result.returncode == 0, result.stdout
    lint(tree, generated(tree, head))
    return result


def upgrade_and_check(tree, url, scratch) -> None:
    upgraded = in_tree(tree, url, scratch, *ALLOW_LOSS, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stdout
    checked = in_tree(tree, url, scratch, "check")
    assert checked.returncode == 0, checked.stdout
    assert "No new upgrade operations detected" in checked.stdout


def downgrade(tree, url, scratch, head: str) -> None:
    downgraded = in_tree(tree, url, scratch, *ALLOW_LOSS, "downgrade", head)
    assert downgraded.returncode == 0, downgraded.stdout


def up_text(tree, rev_id: str) -> str:
    return "".join(p.read_text() for p in (tree / "sql" / "up").glob(f"{rev_id}_*.sql"))


def down_text(tree, rev_id: str) -> str:
    return "".join(p.read_text() for p in (tree / "sql" / "down").glob(f"{rev_id}_*.sql"))


def one_value(url: str, sql: str):
    return query(url, sql)[0][0]


# -- a dropped table -----------------------------------------------------------------------

TRIGGER_COMMENT_UP = """\
-- 003_test_only_kinds (up): a comment on one of audit_logs' triggers.
-- Destructive: no
-- Transaction: yes

COMMENT ON TRIGGER audit_logs_reject_truncate ON audit_logs IS 'No TRUNCATE.';
"""
TRIGGER_COMMENT_DOWN = """\
-- 003_test_only_kinds (down): a comment on one of audit_logs' triggers.
-- Destructive: no
-- Transaction: yes

COMMENT ON TRIGGER audit_logs_reject_truncate ON audit_logs IS NULL;
"""


def test_dropped_tables_take_their_triggers_and_only_their_functions(
    database_url, tree_copy, server
):
    """audit_logs has two triggers on a function of its own; evidence one trigger on the
    function every table shares. Both tables go in the contract; only audit_logs' function
    goes with them; the down brings back the functions, triggers, indexes and grants."""
    url, tree = database_url, tree_copy
    head = start(url, tree, TRIGGER_COMMENT_UP, TRIGGER_COMMENT_DOWN)
    users_before = query(url, "SELECT id, email, full_name FROM users ORDER BY id")
    before = snapshot(url)  # with the comments on the function and the trigger
    edit(tree, "audit.py", "class AuditLog(Base):", "class AuditLog:  # no longer a model")
    edit(tree, "assessments.py", "class Evidence(Base):", "class Evidence:  # no longer a model")
    edit(
        tree,
        "assessments.py",
        '    evidence: Mapped[list[Evidence]] = relationship(back_populates="response", passive_deletes=True)\n',
        "",
    )
    autogenerate(tree, url, server, "drop audit logs and evidence", head)
    contract = revisions(tree, head)["contract"]
    # One revision: the tables' indexes go with them, not in an expand step before.
    assert [path.name for path in generated(tree, head)] == [
        f"{contract}_drop_audit_logs_and_evidence.sql"
    ] * 2

    up = up_text(tree, contract)
    assert "-- Phase: contract" in up and "-- Destructive: yes" in up
    assert "DROP TABLE audit_logs;" in up and "DROP TABLE evidence;" in up
    assert "DROP FUNCTION audit_logs_reject_change();" in up
    assert "set_updated_at" not in up  # the other tables' triggers still call it
    down = down_text(tree, contract)
    assert (
        down.index("CREATE OR REPLACE FUNCTION public.audit_logs_reject_change()")
        < down.index("CREATE TABLE audit_logs")
        < down.index("CREATE TRIGGER audit_logs_reject_update_delete")
    )
    assert "GRANT INSERT, SELECT ON audit_logs TO assessment_app;" in down

    upgrade_and_check(tree, url, server)
    assert query(url, "SELECT to_regclass('audit_logs'), to_regclass('evidence')") == [(None, None)]
    assert query(
        url,
        "SELECT proname FROM pg_proc WHERE proname IN"
        " ('audit_logs_reject_change', 'set_updated_at')",
    ) == [("set_updated_at",)]

    downgrade(tree, url, server, head)
    assert snapshot(url) == before
    triggers = (
        "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal"
        " AND tgrelid IN ('audit_logs'::regclass, 'evidence'::regclass) ORDER BY 1, 2"
    )
    assert query(url, triggers) == [
        ("audit_logs", "audit_logs_reject_truncate"),
        ("audit_logs", "audit_logs_reject_update_delete"),
        ("evidence", "evidence_set_updated_at"),
    ]
    # The app role may add to the log and read it, as before, not change it.
    assert query(
        url,
        "SELECT has_table_privilege('assessment_app', 'audit_logs', 'INSERT'),"
        " has_table_privilege('assessment_app', 'audit_logs', 'UPDATE')",
    ) == [(True, False)]
    query(url, "INSERT INTO audit_logs (action, entity_type) VALUES ('a.b', 'x')")
    with pytest.raises(Exception, match="append-only"):
        query(url, "UPDATE audit_logs SET action = 'c.d'")
    assert query(url, "SELECT id, email, full_name FROM users ORDER BY id") == users_before


def test_all_nine_tables_dropped_in_an_order_postgresql_accepts(database_url, tree_copy, server):
    """Each table goes before the tables it references (and comes back after them); the
    function every table's trigger calls goes once, after all of them."""
    url, tree = database_url, tree_copy
    start(url, tree)
    before = snapshot(url)
    for module in ("assessments.py", "tenancy.py", "audit.py"):
        path = tree / "assessment_models" / module
        path.write_text(path.read_text().replace("(Base):", ":  # no longer a model"))
    autogenerate(tree, url, server, "drop everything")
    ids = revisions(tree, HEAD)
    contract, contract_online = ids["contract"], ids["contract_online"]
    up = up_text(tree, contract)
    references = query(
        url,
        "SELECT DISTINCT conrelid::regclass::text, confrelid::regclass::text"
        " FROM pg_constraint WHERE contype = 'f' AND conrelid <> confrelid",
    )
    assert len(references) >= 8
    for referencing, referenced in references:
        assert up.index(f"DROP TABLE {referencing};") < up.index(f"DROP TABLE {referenced};")
    assert "DROP FUNCTION set_updated_at();" in up_text(tree, contract_online)

    upgrade_and_check(tree, url, server)
    assert query(
        url, "SELECT count(*) FROM pg_class WHERE relname = ANY(:names)", names=sorted(V001_TABLES)
    ) == [(0,)]
    assert query(
        url,
        "SELECT count(*) FROM pg_proc WHERE proname IN"
        " ('set_updated_at', 'audit_logs_reject_change')",
    ) == [(0,)]
    downgrade(tree, url, server, HEAD)
    assert snapshot(url) == before


# -- enum types ----------------------------------------------------------------------------

ENUMS_UP = """\
-- 003_test_only_kinds (up): enum types and a serial key to change.
-- Destructive: no
-- Transaction: yes

CREATE TYPE test_only_mood AS ENUM ('calm', 'busy');
CREATE TYPE test_only_gone AS ENUM ('x', 'y');
ALTER TABLE users ADD COLUMN test_only_mood test_only_mood NOT NULL DEFAULT 'calm';
ALTER TABLE users ADD COLUMN test_only_gone test_only_gone;
"""
ENUMS_DOWN = """\
-- 003_test_only_kinds (down): enum types and a serial key to change.
-- Destructive: yes
-- Transaction: yes

ALTER TABLE users DROP COLUMN test_only_gone;
ALTER TABLE users DROP COLUMN test_only_mood;
DROP TYPE test_only_gone;
DROP TYPE test_only_mood;
"""
ENUMS = """\
SELECT t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
FROM pg_type AS t INNER JOIN pg_enum AS e ON e.enumtypid = t.oid
WHERE t.typname LIKE 'test_only_%' GROUP BY t.typname ORDER BY t.typname
"""
MOOD = (
    "    test_only_mood: Mapped[str] = mapped_column(\n"
    "        Enum({values}, name='test_only_mood'), server_default=text(\"'calm'::test_only_mood\")\n"
    "    )\n"
)


def test_enum_types_are_created_extended_and_dropped(database_url, tree_copy, server):
    """A new type for a new column and for a new table, two values added to a type with rows,
    a type no model uses any more dropped after its column; a value removed is refused."""
    url, tree = database_url, tree_copy
    head = start(url, tree, ENUMS_UP, ENUMS_DOWN)
    query(url, "UPDATE users SET test_only_mood = 'busy' WHERE full_name IS NULL")
    moods = query(url, "SELECT id, test_only_mood::text FROM users ORDER BY id")
    statuses = query(url, "SELECT id, status FROM assessments ORDER BY id")
    before = snapshot(url)
    edit(
        tree,
        "tenancy.py",
        "from sqlalchemy import CheckConstraint,",
        "from sqlalchemy import CheckConstraint, Enum,",
    )
    edit(
        tree,
        "tenancy.py",
        "    last_login_at:",
        MOOD.format(values="'calm'") + "    last_login_at:",
    )
    # A value removed: refused in one line, nothing written.
    refused = in_tree(tree, url, server, "revision", "--autogenerate", "-m", "drop a mood")
    assert refused.returncode != 0
    failed = [line for line in refused.stdout.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1, refused.stdout
    assert failed[0].startswith(
        "FAILED: enum type test_only_mood loses 'busy' (database ('calm', 'busy'), models "
        "('calm')): PostgreSQL cannot drop or move an enum value, and the type swap that "
        "does it rewrites every table using it; write it by hand (alembic revision -m ...)."
    )
    assert "Traceback" not in refused.stdout and generated(tree, head) == []
    # Values reordered: refused the same way (PostgreSQL cannot move one).
    edit(tree, "tenancy.py", MOOD.format(values="'calm'"), MOOD.format(values="'busy', 'calm'"))
    reordered = in_tree(tree, url, server, "revision", "--autogenerate", "-m", "moods reordered")
    assert reordered.returncode != 0
    assert (
        "FAILED: enum type test_only_mood has its values reordered (database ('calm', 'busy'), "
        "models ('busy', 'calm')): PostgreSQL cannot drop or move an enum value" in reordered.stdout
    )
    edit(tree, "tenancy.py", MOOD.format(values="'busy', 'calm'"), MOOD.format(values="'calm'"))

    edit(
        tree,
        "tenancy.py",
        MOOD.format(values="'calm'"),
        MOOD.format(values="'asleep', 'calm', 'idle', 'busy', 'away'")
        + "    test_only_status: Mapped[str | None] = mapped_column(\n"
        "        Enum('new', 'active', name='test_only_status'), server_default='new'\n    )\n",
    )
    # A text column retyped to a new enum: the type exists before the swap's new column.
    edit(tree, "assessments.py", "    Integer,", "    Enum,\n    Integer,")
    edit(
        tree,
        "assessments.py",
        """    status: Mapped[str] = mapped_column(Text, server_default=text("'draft'"))""",
        "    status: Mapped[str] = mapped_column(\n"
        "        Enum('draft', 'in_progress', 'submitted', 'scored', 'archived', name='test_only_status_kind'),\n"
        "        server_default=text(\"'draft'::test_only_status_kind\"),\n    )",
    )
    (tree / "assessment_models" / "tenancy.py").write_text(
        (tree / "assessment_models" / "tenancy.py").read_text() + "\n\nclass TestOnlyTag(Base):\n"
        '    __tablename__ = "test_only_tags"\n'
        "    id: Mapped[uuid.UUID] = uuid_key()\n"
        "    kind: Mapped[str] = mapped_column(Enum('label', 'topic', name='test_only_tag_kind'))\n"
    )
    autogenerate(tree, url, server, "enum types", head)
    expand, online, contract, contract_online = map(revisions(tree, head).get, PARTS)

    up = up_text(tree, expand)
    assert up.index("CREATE TYPE test_only_status AS ENUM ('new', 'active');") < up.index(
        "ADD COLUMN test_only_status test_only_status"
    )
    assert up.index("CREATE TYPE test_only_status_kind AS ENUM") < up.index(
        "ADD COLUMN status__new test_only_status_kind"
    )
    assert "NEW.status__new := NEW.status::test_only_status_kind;" in up  # the cast, written out
    assert up.count("CREATE TYPE test_only_tag_kind") == 1  # by CREATE TABLE, once
    assert "DROP TYPE test_only_status;" in down_text(tree, expand)
    assert "DROP TYPE test_only_tag_kind;" in down_text(tree, expand)
    steps = up_text(tree, online)
    assert "-- Transaction: none" in steps
    assert "ALTER TYPE test_only_mood ADD VALUE IF NOT EXISTS 'asleep' BEFORE 'calm';" in steps
    assert "ALTER TYPE test_only_mood ADD VALUE IF NOT EXISTS 'idle' AFTER 'calm';" in steps
    assert "ALTER TYPE test_only_mood ADD VALUE IF NOT EXISTS 'away' AFTER 'busy';" in steps
    assert "DROP COLUMN test_only_gone" in up_text(tree, contract)
    assert "DROP TYPE test_only_gone;" in up_text(tree, contract_online)

    upgrade_and_check(tree, url, server)
    assert query(url, ENUMS) == [
        ("test_only_mood", ["asleep", "calm", "idle", "busy", "away"]),
        ("test_only_status", ["new", "active"]),
        ("test_only_status_kind", ["draft", "in_progress", "submitted", "scored", "archived"]),
        ("test_only_tag_kind", ["label", "topic"]),
    ]
    assert one_value(url, "SELECT count(*) FROM users WHERE test_only_status = 'new'") == ROWS
    assert query(url, "SELECT id, status::text FROM assessments ORDER BY id") == statuses
    query(url, "UPDATE users SET test_only_mood = 'away' WHERE email = 'user-1@example.com'")

    # The down's type swap fails while a row holds a value it removes, and changes nothing.
    refused = in_tree(tree, url, server, *ALLOW_LOSS, "downgrade", head)
    assert (
        refused.returncode != 0
        and 'invalid input value for enum test_only_mood: "away"' in refused.stdout
    )
    assert dict(query(url, ENUMS))["test_only_mood"] == ["asleep", "calm", "idle", "busy", "away"]
    query(url, "UPDATE users SET test_only_mood = 'calm' WHERE email = 'user-1@example.com'")
    downgrade(tree, url, server, head)
    # The retyped column comes back as its table's last column: PostgreSQL cannot insert one.
    assert same_but_column_order(before, snapshot(url))
    assert query(url, ENUMS) == [
        ("test_only_gone", ["x", "y"]),
        ("test_only_mood", ["calm", "busy"]),
    ]
    assert query(url, "SELECT id, test_only_mood::text FROM users ORDER BY id") == moods
    assert query(url, "SELECT id, status FROM assessments ORDER BY id") == statuses


# -- primary keys, identity columns, NOT NULL with a default ------------------------------

FILES = (
    "SELECT relname, relfilenode FROM pg_class"
    " WHERE relname IN ('assessment_results', 'audit_logs', 'questions', 'frameworks', 'users')"
    " ORDER BY 1"
)
KEY = """
SELECT array_agg(a.attname::text ORDER BY k.ord)
FROM pg_constraint AS c
CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k (attnum, ord)
INNER JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
WHERE c.conrelid = 'audit_logs'::regclass AND c.contype = 'p'
"""
IDENTITY = """
SELECT attrelid::regclass::text, attname, attidentity, attnotnull FROM pg_attribute
WHERE (attrelid, attname) IN (('questions'::regclass, 'position'), ('frameworks'::regclass,
    'test_only_number'), ('users'::regclass, 'last_login_at'))
ORDER BY 1, 2
"""


def test_keys_identities_and_not_null_with_a_default_on_tables_with_rows(
    database_url, tree_copy, server
):
    """audit_logs' key moves to (id, occurred_at); assessment_results' to a new serial column;
    questions.position becomes an identity (ALWAYS); frameworks gets a new identity column;
    users.last_login_at becomes NOT NULL with a default in the same edit. Nothing rewrites a
    table: the relfilenodes stay."""
    url, tree = database_url, tree_copy
    head = start(url, tree)
    files = query(url, FILES)
    users = query(url, "SELECT id, email, full_name FROM users ORDER BY id")
    positions = query(url, "SELECT id, position FROM questions ORDER BY id")
    logs = query(url, "SELECT id, occurred_at FROM audit_logs ORDER BY id")
    before = snapshot(url)
    edit(
        tree,
        "audit.py",
        """DateTime(timezone=True), server_default=text("now()")""",
        """DateTime(timezone=True), server_default=text("now()"), primary_key=True""",
    )
    edit(tree, "assessments.py", "    Index,", "    Identity,\n    Index,")
    edit(
        tree,
        "assessments.py",
        "    position: Mapped[int] = mapped_column(Integer)",
        "    position: Mapped[int] = mapped_column(Integer, Identity(always=True))",
    )
    edit(
        tree,
        "assessments.py",
        "    description: Mapped[str | None] = mapped_column(Text)\n",
        "    description: Mapped[str | None] = mapped_column(Text)\n"
        "    test_only_number: Mapped[int] = mapped_column(BigInteger, Identity())\n",
    )
    edit(
        tree,
        "tenancy.py",
        "    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))",
        "    last_login_at: Mapped[datetime] = mapped_column(\n"
        "        DateTime(timezone=True), server_default=func.now()\n    )",
    )
    # A new serial key on assessment_results (ADD COLUMN ... serial would rewrite the table).
    edit(
        tree,
        "assessments.py",
        """    id: Mapped[uuid.UUID] = uuid_key()
    # One current result per assessment; rescoring updates it in place.""",
        """    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), server_default=text("gen_random_uuid()")
    )
    seq: Mapped[int] = mapped_column(primary_key=True)
    # One current result per assessment; rescoring updates it in place.""",
    )
    autogenerate(tree, url, server, "keys and identities")
    expand, online, contract, contract_online = map(revisions(tree, HEAD).get, PARTS)

    up = up_text(tree, expand)
    assert "ALTER TABLE questions ALTER COLUMN position ADD GENERATED BY DEFAULT AS IDENTITY;" in up
    assert "ALTER TABLE frameworks ADD COLUMN test_only_number bigint;" in up  # no GENERATED
    assert "ALTER TABLE assessment_results ADD COLUMN seq integer;" in up  # not serial
    assert "ALTER SEQUENCE assessment_results_seq_seq OWNED BY assessment_results.seq;" in up
    steps = up_text(tree, online)
    assert (
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS audit_logs_pkey__new\n"
        "ON audit_logs (id, occurred_at);"
        in steps
        or "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS audit_logs_pkey__new ON audit_logs "
        "(id, occurred_at);"
        in steps
    )
    assert "ADD GENERATED BY DEFAULT AS IDENTITY;" in steps  # the new column's, in its DO block
    assert "ALTER COLUMN position SET GENERATED ALWAYS;" in up_text(tree, contract)
    last = up_text(tree, contract_online)
    assert (
        "ALTER TABLE audit_logs DROP CONSTRAINT audit_logs_pkey,\n"
        "ADD CONSTRAINT audit_logs_pkey PRIMARY KEY USING INDEX audit_logs_pkey__new;" in last
    )
    assert "ALTER TABLE users ALTER COLUMN last_login_at SET NOT NULL;" in last

    upgrade_and_check(tree, url, server)
    assert query(url, FILES) == files  # no table was rewritten
    assert one_value(url, KEY) == ["id", "occurred_at"]
    assert one_value(url, KEY.replace("'audit_logs'", "'assessment_results'")) == ["seq"]
    assert query(url, "SELECT count(DISTINCT seq), count(*) FROM assessment_results") == [(20, 20)]
    assert query(
        url,
        "SELECT d.deptype::text FROM pg_depend AS d WHERE d.objid ="
        " 'assessment_results_seq_seq'::regclass AND d.refobjsubid > 0",
    ) == [("a",)]
    assert query(url, IDENTITY) == [
        ("frameworks", "test_only_number", "d", True),
        ("questions", "position", "a", True),
        ("users", "last_login_at", "", True),
    ]
    assert query(url, "SELECT count(DISTINCT test_only_number) FROM frameworks") == [(2,)]
    assert query(url, "SELECT to_regclass('frameworks_test_only_number_fill_seq')") == [(None,)]
    query(url, "INSERT INTO frameworks (key, name, version) VALUES ('fw-3', 'H', '1')")
    assert one_value(url, "SELECT test_only_number FROM frameworks WHERE key = 'fw-3'") == 3
    query(
        url,
        "INSERT INTO questions (framework_id, code, prompt, category, answer_type)"
        " SELECT id, 'new', 'Why?', 'c', 'text' FROM frameworks WHERE key = 'fw-1'",
    )
    assert one_value(url, "SELECT position FROM questions WHERE code = 'new'") == 301
    assert one_value(url, "SELECT count(*) FROM users WHERE last_login_at IS NULL") == 0

    downgrade(tree, url, server, head)
    assert snapshot(url) == before
    assert query(url, "SELECT id, email, full_name FROM users ORDER BY id") == users
    assert [
        row
        for row in query(url, "SELECT id, position FROM questions ORDER BY id")
        if row in positions
    ] == positions
    assert query(url, "SELECT id, occurred_at FROM audit_logs ORDER BY id") == logs


def test_a_stored_generated_column_on_a_table_with_rows_is_refused(database_url, tree_copy, server):
    """ADD COLUMN ... GENERATED ALWAYS AS (...) STORED rewrites the table under ACCESS
    EXCLUSIVE, and there is no online form: one line says so, with the statement."""
    url, tree = database_url, tree_copy
    start(url, tree)
    edit(tree, "assessments.py", "    Index,", "    Computed,\n    Index,")
    edit(
        tree,
        "assessments.py",
        "    description: Mapped[str | None] = mapped_column(Text)\n",
        "    description: Mapped[str | None] = mapped_column(Text)\n"
        "    test_only_key: Mapped[str | None] = mapped_column(Text, Computed('lower(key)', persisted=True))\n",
    )
    refused = in_tree(tree, url, server, "revision", "--autogenerate", "-m", "lower key")
    assert refused.returncode != 0
    failed = [line for line in refused.stdout.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1 and "Traceback" not in refused.stdout
    assert failed[0].startswith(
        "FAILED: frameworks.test_only_key is a stored generated column: `ALTER TABLE frameworks "
        "ADD COLUMN test_only_key TEXT GENERATED ALWAYS AS (lower(key)) STORED` takes ACCESS "
        "EXCLUSIVE on frameworks (blocks reads and writes), and rewrites frameworks while it "
        "holds it, and PostgreSQL cannot make an existing column generated"
    )
    assert generated(tree, HEAD) == []


# -- serial columns, an identity dropped, and what is refused -----------------------------

SERIALS_UP = """\
-- 003_test_only_kinds (up): serial and plain integer keys to change.
-- Destructive: no
-- Transaction: yes

CREATE TABLE test_only_counters (id serial PRIMARY KEY, label text NOT NULL);
INSERT INTO test_only_counters (label) SELECT 'c' || i FROM generate_series(1, 30) AS i;
CREATE TABLE test_only_tickets (id integer PRIMARY KEY, label text NOT NULL, rank integer);
INSERT INTO test_only_tickets (id, label) SELECT i * 2, 't' || i FROM generate_series(1, 20) AS i;
CREATE TABLE test_only_notes (id integer NOT NULL, body text);
INSERT INTO test_only_notes (id, body) SELECT i, 'n' || i FROM generate_series(1, 25) AS i;
CREATE TABLE test_only_plain (id integer NOT NULL, CONSTRAINT test_only_plain_pkey PRIMARY KEY (id));
INSERT INTO test_only_plain (id) SELECT i FROM generate_series(1, 25) AS i;
"""
SERIALS_DOWN = """\
-- 003_test_only_kinds (down): serial and plain integer keys to change.
-- Destructive: yes
-- Transaction: yes

DROP TABLE test_only_plain;
DROP TABLE test_only_notes;
DROP TABLE test_only_tickets;
DROP TABLE test_only_counters;
"""
SERIAL_MODELS = """

class TestOnlyCounter(Base):
    __tablename__ = "test_only_counters"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(Text)


class TestOnlyTicket(Base):
    __tablename__ = "test_only_tickets"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    label: Mapped[str] = mapped_column(Text)
    rank: Mapped[int | None] = mapped_column()


test_only_notes = Table(  # no primary key yet: the ORM maps no such table
    "test_only_notes", Base.metadata,
    Column("id", Integer, nullable=False), Column("body", Text),
)
test_only_plain = Table(
    "test_only_plain", Base.metadata, Column("id", Integer, primary_key=True, autoincrement=False)
)
"""
# The sequences that a column owns as a serial's (pg_depend 'a') or an identity's ('i').
OWNED = """
SELECT d.refobjid::regclass::text, a.attname, d.deptype::text
FROM pg_depend AS d
INNER JOIN pg_class AS s ON s.oid = d.objid AND s.relkind = 'S'
INNER JOIN pg_attribute AS a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE d.refobjid IN ('test_only_counters'::regclass, 'test_only_tickets'::regclass,
    'audit_logs'::regclass)
ORDER BY 1
"""

PRIMARY_KEYS = """
SELECT conrelid::regclass::text, conname FROM pg_constraint
WHERE contype = 'p' AND conrelid IN ('test_only_notes'::regclass, 'test_only_plain'::regclass)
"""


def refused(tree, url, scratch, message: str) -> str:
    """The one FAILED: line of an autogenerate that refuses; nothing written."""
    result = in_tree(tree, url, scratch, "revision", "--autogenerate", "-m", message)
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
    assert result.returncode != 0 and len(failed) == 1, result.stdout
    assert "Traceback" not in result.stdout
    assert "Nothing was written to sql/; Alembic's own SQL of the change" in failed[0]  # drafts/
    return failed[0]


def test_serials_and_a_dropped_identity_and_what_is_refused(database_url, tree_copy, server):
    """A serial key becomes a plain integer and a plain one serial (Alembic said "No changes"
    to both); audit_logs.id loses its identity. Refused: an identity on a nullable column, and
    a primary key that other tables' foreign keys reference moved to another column, and a type
    change PostgreSQL has no cast for."""
    url, tree = database_url, tree_copy
    head = start(url, tree, SERIALS_UP, SERIALS_DOWN)
    models = tree / "assessment_models" / "tenancy.py"
    models.write_text(models.read_text() + SERIAL_MODELS)
    edit(
        tree,
        "tenancy.py",
        "from sqlalchemy import CheckConstraint,",
        "from sqlalchemy import CheckConstraint, Column, Integer, Table,",
    )
    counters = query(url, "SELECT id, label FROM test_only_counters ORDER BY id")
    before = snapshot(url)

    edit(
        tree,
        "tenancy.py",
        "    rank: Mapped[int | None] = mapped_column()",
        "    rank: Mapped[int] = mapped_column(Identity())",
    )
    edit(
        tree,
        "tenancy.py",
        "from sqlalchemy import CheckConstraint,",
        "from sqlalchemy import CheckConstraint, Identity,",
    )
    assert refused(tree, url, server, "rank identity").startswith(
        "FAILED: test_only_tickets.rank gets an identity but is nullable in the database: make "
        "it NOT NULL in a revision of its own first (autogenerate writes that), then add the "
        "identity."
    )
    edit(
        tree,
        "tenancy.py",
        "    rank: Mapped[int] = mapped_column(Identity())",
        "    rank: Mapped[int | None] = mapped_column()",
    )
    edit(
        tree,
        "tenancy.py",
        "    id: Mapped[uuid.UUID] = uuid_key()\n    name: Mapped[str] = mapped_column(Text)",
        '    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), server_default=text("gen_random_uuid()"), unique=True)\n'
        "    name: Mapped[str] = mapped_column(Text, primary_key=True)",
    )
    line = refused(tree, url, server, "organizations by name")
    assert line.startswith(
        "FAILED: The primary key organizations_pkey of organizations moves from (id) to (name), "
        "but "
    )
    assert "users_organization_id_fkey on users" in line
    assert "move the foreign keys with it by hand (alembic revision -m ...)." in line
    edit(tree, "tenancy.py", "mapped_column(Text, primary_key=True)", "mapped_column(Text)")
    edit(
        tree,
        "tenancy.py",
        '    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), server_default=text("gen_random_uuid()"), unique=True)\n',
        "    id: Mapped[uuid.UUID] = uuid_key()\n",
    )
    edit(
        tree,
        "audit.py",
        "    entity_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))",
        "    entity_id: Mapped[int | None] = mapped_column(BigInteger)",
    )
    assert refused(tree, url, server, "entity id as a number").startswith(
        "FAILED: audit_logs.entity_id changes from uuid to bigint, but PostgreSQL has no cast "
        "from uuid to bigint (USING entity_id::bigint cannot work): write the conversion by "
        "hand (alembic revision -m ...)."
    )
    edit(
        tree,
        "audit.py",
        "    entity_id: Mapped[int | None] = mapped_column(BigInteger)",
        "    entity_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))",
    )
    assert generated(tree, head) == []

    edit(
        tree,
        "tenancy.py",
        "    id: Mapped[int] = mapped_column(primary_key=True)\n",
        "    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)\n",
    )
    edit(
        tree,
        "tenancy.py",
        "    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)\n    label: Mapped[str] = mapped_column(Text)\n    rank",
        "    id: Mapped[int] = mapped_column(primary_key=True)\n    label: Mapped[str] = mapped_column(Text)\n    rank",
    )
    edit(
        tree,
        "audit.py",
        "mapped_column(BigInteger, Identity(always=True), primary_key=True)",
        "mapped_column(BigInteger, primary_key=True, autoincrement=False)",
    )
    # A primary key added to a table without one, and one taken off.
    edit(
        tree,
        "tenancy.py",
        'Column("id", Integer, nullable=False), Column("body", Text)',
        'Column("id", Integer, primary_key=True, autoincrement=False), Column("body", Text)',
    )
    edit(
        tree,
        "tenancy.py",
        'Column("id", Integer, primary_key=True, autoincrement=False)\n)',
        'Column("id", Integer, nullable=False)\n)',
    )
    autogenerate(tree, url, server, "serials", head)
    expand, online, contract, contract_online = map(revisions(tree, head).get, PARTS)
    up = up_text(tree, expand)
    assert "CREATE SEQUENCE test_only_tickets_id_seq AS integer;" in up
    assert "ALTER SEQUENCE test_only_tickets_id_seq OWNED BY test_only_tickets.id;" in up
    # max(id) of a key reads its index, not every row (lock_facts: setval_to_max_of_key).
    assert "briefly: no rewrite, no scan" in " ".join(
        up.split("SELECT setval('test_only_tickets_id_seq'")[0].split("\n\n")[-1].split("\n-- ")
    )
    later = up_text(tree, contract)
    assert "ALTER TABLE test_only_counters ALTER COLUMN id DROP DEFAULT;" in later
    assert "DROP SEQUENCE test_only_counters_id_seq;" in later
    assert "ALTER TABLE audit_logs ALTER COLUMN id DROP IDENTITY;" in later
    assert "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS test_only_notes_pkey__new" in up_text(
        tree, online
    )
    keys = up_text(tree, contract_online)
    assert (
        "ALTER TABLE test_only_notes\nADD CONSTRAINT test_only_notes_pkey PRIMARY KEY USING INDEX"
        in keys
    )
    assert "ALTER TABLE test_only_plain DROP CONSTRAINT test_only_plain_pkey;" in keys

    upgrade_and_check(tree, url, server)
    assert query(url, OWNED) == [("test_only_tickets", "id", "a")]
    query(url, "INSERT INTO test_only_tickets (label) VALUES ('new')")
    assert one_value(url, "SELECT id FROM test_only_tickets WHERE label = 'new'") == 41
    query(url, "INSERT INTO audit_logs (id, action, entity_type) VALUES (100, 'a.b', 'x')")
    assert query(url, PRIMARY_KEYS) == [("test_only_notes", "test_only_notes_pkey")]

    downgrade(tree, url, server, head)
    assert snapshot(url) == before
    assert query(url, OWNED) == [("audit_logs", "id", "i"), ("test_only_counters", "id", "a")]
    assert query(url, PRIMARY_KEYS) == [("test_only_plain", "test_only_plain_pkey")]
    assert query(url, "SELECT id, label FROM test_only_counters ORDER BY id") == counters
    query(url, "INSERT INTO test_only_counters (label) VALUES ('new')")
    assert one_value(url, "SELECT id FROM test_only_counters WHERE label = 'new'") == 31
    query(url, "INSERT INTO audit_logs (action, entity_type) VALUES ('a.b', 'x')")
    assert one_value(url, "SELECT max(id) FROM audit_logs") == 101  # past the row added above
