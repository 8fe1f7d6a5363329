"""`alembic revision --autogenerate` writes what the old code would break on in two phases.

For a renamed column, a type change that rewrites the table, a NOT NULL and a
renamed table: the model is edited, the revisions are generated, and then, with
rows present and the old release writing through its own models the whole
time, the expand phase runs without failing one of its transactions and leaves
every value in the new column (or table); the contract phase leaves the new
models working with every value and `alembic check` clean; a downgrade gives
every value back to the old column. A change that PostgreSQL makes without a
rewrite stays one statement, and every rule of the table that says so is
proven against the table's relfilenode.
"""

import random
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from sqlalchemy import BigInteger, Integer, Numeric, String, Text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from test_autogenerate import (
    edit,
    in_tree,
    lint,
    new_files,
    next_ids,
    slug_check_renamed_handle,
)

from assessment_models.assessments import Framework
from assessment_models.tenancy import User
from migration_runner.tools.autogenerate.catalog import Dependent
from migration_runner.tools.autogenerate.draft import same_but_column_order
from migration_runner.tools.autogenerate.type_changes import (
    NO_REWRITE,
    rewrites,
    spelled,
    type_name,
)
from migration_runner.tools.schema_snapshot import snapshot
from support.database import current_version, query
from support.project import HEAD
from support.writer import OldCodeWriter

ROWS = 1200
# Small batches, so that the backfill takes several while the old code writes.
BATCHES = ("-x", "batch-size=200", "-x", "batch-pause=5ms")
ALLOW_LOSS = ("-x", "allow-data-loss=true")  # the drops' guard: the values live on elsewhere
# The new release, run in a fresh interpreter that imports the tree's edited models.
NEW_CODE = """\
import sys
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from assessment_models.assessments import Framework
from assessment_models.tenancy import Organization, User
engine = create_engine(sys.argv[1])
with Session(engine) as session, session.begin():
    organization = session.scalars(select(Organization)).first()
"""


@pytest.fixture
def at_head(database_at_head, postgres_server, tree_copy):
    """A database at head with an organization and ROWS users, a tree whose models the test
    edits, and a server for scratch drafts."""
    database_url = database_at_head
    query(database_url, "INSERT INTO organizations (name, slug) VALUES ('Org', 'org')")
    query(
        database_url,
        "INSERT INTO users (organization_id, email, full_name)"
        " SELECT (SELECT id FROM organizations), 'user-' || i || '@example.com',"
        " CASE WHEN i % 4 <> 0 THEN 'Person ' || i END FROM generate_series(1, :n) AS i",
        n=ROWS,
    )
    scratch = make_url(postgres_server.admin_url).render_as_string(hide_password=False)
    return database_url, tree_copy, scratch


def old_code(url: str, write: Callable[[Session, int], dict]) -> OldCodeWriter:
    """The release before the model edit at work: short ORM transactions through this
    checkout's models (the tree's before the edit), each write's values kept once it commits,
    each failed transaction counted; 20 commits in before the migration starts."""
    return OldCodeWriter(url, write, warm_up=20, pause=0.003)


def writes_users(url: str, column: str, value: Callable[[int], object]) -> Callable:
    """The old code's write n: odd, a new user; even, a change to an existing one (but
    user-1, which the new code changes later); both set column, as the old models name it,
    to value(n)."""
    organization = query(url, "SELECT id FROM organizations")[0][0]
    existing = [
        row[0] for row in query(url, "SELECT id FROM users WHERE email <> 'user-1@example.com'")
    ]

    def write(session: Session, n: int) -> dict:
        if n % 2:
            user = User(organization_id=organization, email=f"old-{n}@example.com")
            session.add(user)
        else:
            user = session.get(User, random.choice(existing))
        setattr(user, column, value(n))
        session.flush()
        return {user.id: value(n)}

    return write


def column_values(url: str, column: str) -> dict:
    return dict(query(url, f"SELECT id, {column} FROM users"))


def run(tree, url: str, scratch: str, *args: str):
    result = in_tree(tree, url, scratch, *args)
    assert result.returncode == 0, result.stdout
    return result


def new_code(tree, url: str, body: str) -> None:
    """Run body as the new release would, in one transaction, with its models (the tree's)."""
    driver_url = make_url(url).set(drivername="postgresql+psycopg2")
    result = subprocess.run(
        [sys.executable, "-c", NEW_CODE + body, driver_url.render_as_string(hide_password=False)],
        env={"PYTHONPATH": str(tree)},
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def expand_under_load(tree, url: str, scratch: str, load: OldCodeWriter) -> str:
    """The expand phase while the old code writes, and some more writes after it."""
    with load:
        before = load.committed
        result = run(tree, url, scratch, *BATCHES, "-x", "phase=expand", "upgrade", "head")
        during = load.committed
        time.sleep(0.5)
    assert load.failures == [], load.failures[:5]
    assert before < during < load.committed, "the old code wrote during the expand and after it"
    return result.stdout


def user_id(url: str, email: str):
    return query(url, "SELECT id FROM users WHERE email = :email", email=email)[0][0]


def test_renamed_column_keeps_every_value_while_the_old_code_writes(at_head):
    url, tree, scratch = at_head
    expand, online, contract = next_ids(tree, 3)
    edit(
        tree,
        "tenancy.py",
        "    full_name: Mapped[str | None] = mapped_column(Text)\n",
        '    display_name: Mapped[str | None] = mapped_column(Text, info={"renamed_from": '
        '"full_name"})\n',
    )
    run(tree, url, scratch, "revision", "--autogenerate", "-m", "rename full name")
    assert [p.name for p in new_files(tree) if p.parent.name == "up"] == [
        f"{expand}_rename_full_name.sql",
        f"{online}_rename_full_name_online_steps.sql",
        f"{contract}_rename_full_name_contract.sql",
    ]
    up = (tree / f"sql/up/{expand}_rename_full_name.sql").read_text()
    assert "-- Phase: expand" in up and "ADD COLUMN display_name text;" in up
    assert "BEFORE INSERT OR UPDATE ON users" in up
    backfill = (tree / f"sql/up/{online}_rename_full_name_online_steps.sql").read_text()
    assert "-- Transaction: none" in backfill and "COMMIT;" in backfill
    dropped = (tree / f"sql/up/{contract}_rename_full_name_contract.sql").read_text()
    assert "-- Phase: contract" in dropped and "-- Destructive: yes" in dropped
    assert "DROP TRIGGER users_full_name_display_name_sync ON users;" in dropped
    lint(tree, new_files(tree))
    seeded = column_values(url, "full_name")
    load = old_code(url, writes_users(url, "full_name", lambda n: f"old {n}" if n % 5 else None))

    expanded = expand_under_load(tree, url, scratch, load)

    assert current_version(url) == online and "holding back" in expanded
    written = {**seeded, **load.written}
    assert column_values(url, "display_name") == column_values(url, "full_name")
    assert {k: v for k, v in column_values(url, "display_name").items() if k in written} == written

    run(tree, url, scratch, "-x", "phase=contract", *ALLOW_LOSS, "upgrade", "head")
    new_code(
        tree,
        url,
        """\
    session.add(User(organization_id=organization.id, email="new@example.com", display_name="New"))
    user = session.scalars(select(User).where(User.email == "user-1@example.com")).one()
    user.display_name = "Renamed"
""",
    )
    run(tree, url, scratch, "check")
    after = column_values(url, "display_name")
    assert {k: after[k] for k in written} == written | {
        user_id(url, "user-1@example.com"): "Renamed"
    }
    assert after[user_id(url, "new@example.com")] == "New"

    run(tree, url, scratch, *ALLOW_LOSS, "downgrade", HEAD)
    assert column_values(url, "full_name") == after


def column_type(url: str, table: str, column: str) -> tuple:
    return query(
        url,
        "SELECT data_type, character_maximum_length, is_nullable FROM information_schema.columns"
        " WHERE table_name = :table AND column_name = :column",
        table=table,
        column=column,
    )[0]


def test_retyped_column_keeps_every_value_while_the_old_code_writes(at_head):
    """text to varchar(320) rewrites the table: a copy of the new type, its CHECK and unique
    index built beside the old ones, swapped in by the contract."""
    url, tree, scratch = at_head
    expand, online, _, contract = next_ids(tree, 4)  # _: the contract's first online steps
    edit(
        tree,
        "tenancy.py",
        "    email: Mapped[str] = mapped_column(Text)\n",
        "    email: Mapped[str] = mapped_column(String(320))\n",
    )
    edit(tree, "tenancy.py", "ForeignKey, Index, Text", "ForeignKey, Index, String, Text")
    run(tree, url, scratch, "revision", "--autogenerate", "-m", "email as varchar")
    up = (tree / f"sql/up/{expand}_email_as_varchar.sql").read_text()
    assert "ADD COLUMN email__new varchar(320);" in up
    assert "NEW.email__new := NEW.email::varchar;" in up  # the cast, written out
    online_up = (tree / f"sql/up/{online}_email_as_varchar_online_steps.sql").read_text()
    assert "SET email__new = email::varchar" in online_up
    assert "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email_key__new" in online_up
    swap = (tree / f"sql/up/{contract}_email_as_varchar_contract.sql").read_text()
    assert "-- Phase: contract" in swap
    assert "ALTER TABLE users RENAME COLUMN email__new TO email;" in swap
    assert "ALTER INDEX users_email_key__new RENAME TO users_email_key;" in swap
    lint(tree, new_files(tree))
    seeded = column_values(url, "email")
    load = old_code(url, writes_users(url, "email", lambda n: f"old-{n}@example.com"))

    expand_under_load(tree, url, scratch, load)

    written = {**seeded, **load.written}
    assert column_values(url, "email__new") == column_values(url, "email")
    assert {k: v for k, v in column_values(url, "email__new").items() if k in written} == written

    run(tree, url, scratch, "-x", "phase=contract", *ALLOW_LOSS, "upgrade", "head")
    assert column_type(url, "users", "email") == ("character varying", 320, "NO")
    new_code(
        tree,
        url,
        """\
    session.add(User(organization_id=organization.id, email="new@example.com"))
    user = session.scalars(select(User).where(User.email == "user-1@example.com")).one()
    user.email = "renamed@example.com"
""",
    )
    run(tree, url, scratch, "check")
    after = column_values(url, "email")
    changed = user_id(url, "renamed@example.com")
    assert {k: after[k] for k in written} == written | {changed: "renamed@example.com"}
    assert "new@example.com" in after.values()

    run(tree, url, scratch, *ALLOW_LOSS, "downgrade", HEAD)
    assert column_type(url, "users", "email") == ("text", None, "NO")
    assert column_values(url, "email") == after


def test_not_null_with_a_default_fills_the_old_codes_nulls(at_head):
    """The old code writes NULL (its model says nullable): expand turns every NULL, there and
    to come, into the default; contract sets NOT NULL."""
    url, tree, scratch = at_head
    expand, _, contract = next_ids(tree, 3)
    edit(
        tree,
        "tenancy.py",
        "    full_name: Mapped[str | None] = mapped_column(Text)\n",
        "    full_name: Mapped[str] = mapped_column(Text, server_default=text(\"''\"))\n",
    )
    run(tree, url, scratch, "revision", "--autogenerate", "-m", "full name required")
    up = (tree / f"sql/up/{expand}_full_name_required.sql").read_text()
    assert "SET DEFAULT ''" in up and "CREATE TRIGGER users_full_name_fill" in up
    contract_up = tree / f"sql/up/{contract}_full_name_required_contract_online_steps.sql"
    assert "-- Phase: contract" in contract_up.read_text()
    assert "ALTER COLUMN full_name SET NOT NULL" in contract_up.read_text()
    lint(tree, new_files(tree))
    seeded = column_values(url, "full_name")
    load = old_code(url, writes_users(url, "full_name", lambda n: None if n % 3 else f"old {n}"))

    expand_under_load(tree, url, scratch, load)

    written = {k: "" if v is None else v for k, v in {**seeded, **load.written}.items()}
    assert query(url, "SELECT count(*) FROM users WHERE full_name IS NULL") == [(0,)]
    assert {k: v for k, v in column_values(url, "full_name").items() if k in written} == written

    run(tree, url, scratch, "-x", "phase=contract", "upgrade", "head")
    assert column_type(url, "users", "full_name") == ("text", None, "NO")
    new_code(
        tree,
        url,
        """\
    session.add(User(organization_id=organization.id, email="new@example.com"))
""",
    )
    run(tree, url, scratch, "check")
    after = column_values(url, "full_name")
    assert after[user_id(url, "new@example.com")] == ""

    run(tree, url, scratch, "downgrade", HEAD)
    assert column_type(url, "users", "full_name") == ("text", None, "YES")
    assert column_values(url, "full_name") == after


def test_new_not_null_column_without_default_waits_for_its_values(at_head):
    """Nothing can fill the rows already there: the contract refuses, naming the column, until
    they have values; then it sets NOT NULL."""
    url, tree, scratch = at_head
    expand, contract = next_ids(tree, 2)
    edit(
        tree,
        "tenancy.py",
        "    full_name: Mapped[str | None] = mapped_column(Text)\n",
        "    full_name: Mapped[str | None] = mapped_column(Text)\n"
        "    test_only_nickname: Mapped[str] = mapped_column(Text)\n",
    )
    result = run(tree, url, scratch, "revision", "--autogenerate", "-m", "add nickname")
    assert (
        "users.test_only_nickname becomes NOT NULL with nothing to fill the rows left NULL"
        in result.stdout
    )
    up = (tree / f"sql/up/{expand}_add_nickname.sql").read_text()
    assert "ALTER TABLE users ADD COLUMN test_only_nickname text;" in up
    lint(tree, new_files(tree))
    run(tree, url, scratch, "-x", "phase=expand", "upgrade", "head")

    refused = in_tree(tree, url, scratch, "-x", "phase=contract", "upgrade", "head")

    assert refused.returncode != 0
    assert "users.test_only_nickname is NULL in some rows" in refused.stdout
    assert current_version(url) == expand
    query(url, "UPDATE users SET test_only_nickname = 'nick'")
    run(tree, url, scratch, "-x", "phase=contract", "upgrade", "head")
    assert current_version(url) == contract
    assert column_type(url, "users", "test_only_nickname") == ("text", None, "NO")
    run(tree, url, scratch, "check")


def test_rewrite_free_type_change_stays_one_statement(at_head):
    url, tree, scratch = at_head
    (only,) = next_ids(tree, 1)
    edit(
        tree,
        "tenancy.py",
        "    full_name: Mapped[str | None] = mapped_column(Text)\n",
        "    full_name: Mapped[str | None] = mapped_column(String)\n",
    )
    edit(tree, "tenancy.py", "ForeignKey, Index, Text", "ForeignKey, Index, String, Text")
    run(tree, url, scratch, "revision", "--autogenerate", "-m", "full name as varchar")
    assert [p.name for p in new_files(tree) if p.parent.name == "up"] == [
        f"{only}_full_name_as_varchar.sql"
    ]
    up = (tree / f"sql/up/{only}_full_name_as_varchar.sql").read_text()
    assert "ALTER TABLE users ALTER COLUMN full_name TYPE varchar;" in up
    assert "no rewrite" in up and "-- Destructive: no" in up
    lint(tree, new_files(tree))
    relfilenode = "SELECT relfilenode FROM pg_class WHERE relname = 'users'"
    before = query(url, relfilenode)
    run(tree, url, scratch, "upgrade", "head")
    assert query(url, relfilenode) == before
    run(tree, url, scratch, "check")


# Each rule of type_changes.NO_REWRITE with a change it allows, and one it does not.
TYPE_CHANGES = [
    (String(100), String(200)),
    (String(200), String(100)),
    (String(100), String()),
    (String(100), Text()),
    (Text(), String()),
    (Text(), String(200)),
    (postgresql.BIT(5, varying=True), postgresql.BIT(10, varying=True)),
    (postgresql.BIT(10, varying=True), postgresql.BIT(5, varying=True)),
    (Numeric(10, 2), Numeric(12, 2)),
    (Numeric(10, 2), Numeric(12, 3)),
    (Numeric(10, 2), Numeric()),
    (Numeric(), Numeric(10, 2)),
    (postgresql.CIDR(), postgresql.INET()),
    (postgresql.INET(), postgresql.CIDR()),
    (postgresql.TIMESTAMP(precision=3), postgresql.TIMESTAMP()),
    (postgresql.TIMESTAMP(precision=6), postgresql.TIMESTAMP(precision=3)),
    (postgresql.TIMESTAMP(timezone=True, precision=3), postgresql.TIMESTAMP(timezone=True)),
    (postgresql.TIMESTAMP(timezone=True), postgresql.TIMESTAMP(timezone=True, precision=2)),
    (postgresql.TIME(precision=3), postgresql.TIME()),
    (postgresql.TIME(), postgresql.TIME(precision=2)),
    (postgresql.INTERVAL(precision=3), postgresql.INTERVAL()),
    (postgresql.INTERVAL(), postgresql.INTERVAL(precision=2)),
    (Integer(), BigInteger()),
    (postgresql.CHAR(5), postgresql.CHAR(10)),
    (postgresql.BIT(5), postgresql.BIT(10, varying=True)),
]


def test_no_rewrite_rules_hold_on_this_server(database_url):
    """What type_changes.rewrites says of each change, against PostgreSQL's own answer: a new
    relfilenode after ALTER COLUMN ... TYPE means the table was rewritten."""
    assert {(type_name(before), type_name(after)) for before, after in TYPE_CHANGES} >= set(
        NO_REWRITE
    ), "every rule has a change that proves it"
    wrong = []
    for before, after in TYPE_CHANGES:
        query(
            database_url,
            f"DROP TABLE IF EXISTS retyped; CREATE TABLE retyped (c {spelled(before)})",
        )
        query(database_url, "INSERT INTO retyped VALUES (NULL)")
        relfilenode = "SELECT relfilenode FROM pg_class WHERE relname = 'retyped'"
        old = query(database_url, relfilenode)
        query(database_url, f"ALTER TABLE retyped ALTER COLUMN c TYPE {spelled(after)}")
        rewritten = query(database_url, relfilenode) != old
        if rewrites(before, after) != rewritten:
            wrong.append(f"{spelled(before)} -> {spelled(after)}: rewritten={rewritten}")
    assert wrong == []


def test_swaps_carry_their_indexes_and_constraints_and_round_trip(at_head):
    """A renamed unique, checked column and a retyped one beside it: each gets the models'
    constraints online (a unique constraint on an index built CONCURRENTLY), the contract drops
    the old ones with their columns, and the downgrade rebuilds them with every value."""
    url, tree, scratch = at_head
    _, online, first, contract = next_ids(tree, 4)
    slug_check_renamed_handle(tree)
    edit(
        tree,
        "tenancy.py",
        "    slug: Mapped[str] = mapped_column(Text, unique=True)",
        '    handle: Mapped[str] = mapped_column(Text, unique=True, info={"renamed_from": "slug"})',
    )
    edit(
        tree,
        "assessments.py",
        "    position: Mapped[int] = mapped_column(Integer)",
        "    position: Mapped[int] = mapped_column(BigInteger)",
    )
    query(url, "INSERT INTO frameworks (key, name, version) VALUES ('iso', 'ISO', '1')")
    query(
        url,
        "INSERT INTO questions (framework_id, code, prompt, category, position, answer_type)"
        " SELECT (SELECT id FROM frameworks), 'q' || i, 'Why?', 'General', i, 'text'"
        " FROM generate_series(1, 300) AS i",
    )
    run(tree, url, scratch, "revision", "--autogenerate", "-m", "handle and wide positions")
    online_up = (tree / f"sql/up/{online}_handle_and_wide_positions_online_steps.sql").read_text()
    assert "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS organizations_handle_key" in online_up
    assert "UNIQUE USING INDEX organizations_handle_key" in online_up
    assert "ADD CONSTRAINT questions_position_check__new\n" in online_up
    assert "CHECK (position__new >= 0) NOT VALID;" in online_up
    swap = (tree / f"sql/up/{contract}_handle_and_wide_positions_contract.sql").read_text()
    assert "DROP COLUMN slug;" in swap and "DROP COLUMN position;" in swap
    assert "RENAME COLUMN position__new TO position;" in swap
    stem = "handle_and_wide_positions_contract_first_online_steps"
    down = (tree / f"sql/down/{first}_{stem}.sql").read_text()  # rebuilt online once slug is back
    assert "UNIQUE USING INDEX organizations_slug_key;" in down
    lint(tree, new_files(tree))
    slugs = dict(query(url, "SELECT id, slug FROM organizations"))
    positions = dict(query(url, "SELECT id, position FROM questions"))
    before = snapshot(url)

    run(tree, url, scratch, *BATCHES, *ALLOW_LOSS, "upgrade", "head")

    assert dict(query(url, "SELECT id, handle FROM organizations")) == slugs
    assert dict(query(url, "SELECT id, position FROM questions")) == positions
    assert column_type(url, "questions", "position") == ("bigint", None, "NO")
    run(tree, url, scratch, "check")
    run(tree, url, scratch, *ALLOW_LOSS, "downgrade", HEAD)
    assert dict(query(url, "SELECT id, slug FROM organizations")) == slugs
    assert dict(query(url, "SELECT id, position FROM questions")) == positions
    assert same_but_column_order(before, snapshot(url))


def writes_frameworks(url: str) -> Callable:
    """The old code's write n, through its model of frameworks: odd, a new framework; even, a
    new name for one."""
    existing = [row[0] for row in query(url, "SELECT id FROM frameworks")]

    def write(session: Session, n: int) -> dict:
        if n % 2:
            framework = Framework(key=f"old-{n}", name="Old", version="1")
            session.add(framework)
        else:
            framework = session.get(Framework, random.choice(existing))
        framework.name = f"Old {n}"
        session.flush()
        return {framework.id: framework.name}

    return write


def test_renamed_table_serves_the_old_code_through_a_view(at_head):
    url, tree, scratch = at_head
    expand, contract = next_ids(tree, 2)
    edit(
        tree,
        "assessments.py",
        '    __tablename__ = "frameworks"',
        '    __tablename__ = "standards"',
    )
    edit(
        tree,
        "assessments.py",
        '        {"comment": "Assessment templates shared by all organizations, e.g. key iso-27001."},',
        '        {"comment": "Assessment templates shared by all organizations, e.g. key iso-27001.",\n'
        '         "info": {"renamed_from": "frameworks"}},',
    )
    edit(
        tree, "assessments.py", '_fk("frameworks.id", "CASCADE")', '_fk("standards.id", "CASCADE")'
    )
    edit(
        tree, "assessments.py", '_fk("frameworks.id", "RESTRICT"', '_fk("standards.id", "RESTRICT"'
    )
    query(
        url,
        "INSERT INTO frameworks (key, name, version)"
        " SELECT 'f-' || i, 'Framework ' || i, '1' FROM generate_series(1, 200) AS i",
    )
    run(tree, url, scratch, "revision", "--autogenerate", "-m", "frameworks are standards")
    up = (tree / f"sql/up/{expand}_frameworks_are_standards.sql").read_text()
    assert "ALTER TABLE frameworks RENAME TO standards;" in up
    assert "RENAME CONSTRAINT frameworks_key_check TO standards_key_check;" in up
    assert "CREATE VIEW frameworks AS" in up
    dropped = (tree / f"sql/up/{contract}_frameworks_are_standards_contract.sql").read_text()
    assert "-- Phase: contract" in dropped and "DROP VIEW frameworks;" in dropped
    lint(tree, new_files(tree))
    seeded = dict(query(url, "SELECT id, name FROM frameworks"))
    load = old_code(url, writes_frameworks(url))

    expand_under_load(tree, url, scratch, load)

    written = {**seeded, **load.written}
    assert dict(query(url, "SELECT id, name FROM standards")) == written
    run(tree, url, scratch, "-x", "phase=contract", "upgrade", "head")
    assert query(url, "SELECT to_regclass('frameworks')") == [(None,)]
    new_code(
        tree,
        url,
        """\
    session.add(Framework(key="new", name="New", version="1"))
""",
    )
    run(tree, url, scratch, "check")
    after = dict(query(url, "SELECT id, name FROM standards"))
    assert {k: after[k] for k in written} == written and "New" in after.values()

    run(tree, url, scratch, "downgrade", HEAD)
    assert dict(query(url, "SELECT id, name FROM frameworks")) == after


def test_a_moved_object_names_the_new_column_and_nothing_else():
    """Column references in expressions, index columns and key lists are renamed; a function
    or a referenced table's column of the same name is not."""
    index = Dependent("index", "t_lower_idx", "CREATE INDEX t_lower_idx ON t (lower(lower), b)")
    check = Dependent("check", "t_c_check", "ALTER TABLE t ADD CONSTRAINT t_c_check CHECK (c > 0)")
    key = Dependent(
        "foreign key",
        "t_c_fkey",
        "ALTER TABLE t ADD CONSTRAINT t_c_fkey FOREIGN KEY (c) REFERENCES other (c)",
    )
    columns = {"lower": "lower__new", "c": "c__new"}

    assert index.moved(columns, "t_lower_idx__new").statement == (
        "CREATE INDEX t_lower_idx__new ON t ((lower(lower__new)), b)"
    )
    assert check.moved(columns, "t_c_check__new").statement == (
        "ALTER TABLE t ADD CONSTRAINT t_c_check__new CHECK (c__new > 0)"
    )
    assert key.moved(columns, "t_c_fkey__new").statement == (
        "ALTER TABLE t ADD CONSTRAINT t_c_fkey__new FOREIGN KEY (c__new) REFERENCES other (c)"
    )


def test_names_that_need_quotes_are_quoted_in_every_statement(at_head):
    """A table renamed to a name with a space, a column renamed to a keyword ("order"), a
    mixed-case column ("Score") with its index and CHECK; then, with rows in both tables, "Score"
    made NOT NULL (trigger, backfill, validated CHECK) and a rewriting retype on the spaced
    table (a column swap). Every statement names the right object: both revisions apply,
    `alembic check` is clean after each, and the downgrade gives back head's schema and values."""
    url, tree, scratch = at_head
    edit(
        tree,
        "assessments.py",
        '    __tablename__ = "frameworks"',
        '    __tablename__ = "framework set"',
    )
    edit(
        tree,
        "assessments.py",
        '        {"comment": "Assessment templates shared by all organizations, e.g. key iso-27001."},',
        '        {"comment": "Assessment templates shared by all organizations, e.g. key iso-27001.",\n'
        '         "info": {"renamed_from": "frameworks"}},',
    )
    for action in ('"CASCADE")', '"RESTRICT"'):
        edit(
            tree,
            "assessments.py",
            f'_fk("frameworks.id", {action}',
            f'_fk("framework set.id", {action}',
        )
    edit(
        tree,
        "tenancy.py",
        "    full_name: Mapped[str | None] = mapped_column(Text)\n",
        '    order: Mapped[str | None] = mapped_column("order", Text, info={"renamed_from": '
        '"full_name"})\n    score: Mapped[int | None] = mapped_column("Score", BigInteger, '
        "index=True)\n",
    )
    edit(
        tree,
        "tenancy.py",
        "CheckConstraint(\"role IN ('owner', 'admin', 'member', 'viewer')\", name=\"role\"),",
        "CheckConstraint(\"role IN ('owner', 'admin', 'member', 'viewer')\", name=\"role\"),\n"
        '        CheckConstraint(\'"Score" >= 0\', name="Score"),',
    )
    edit(tree, "tenancy.py", "import CheckConstraint,", "import BigInteger, CheckConstraint,")
    query(
        url,
        "INSERT INTO frameworks (key, name, version, description)"
        " SELECT 'f-' || i, 'Framework ' || i, '1', 'About ' || i FROM generate_series(1, 300) AS i",
    )
    full_names = column_values(url, "full_name")
    descriptions = dict(query(url, "SELECT id, description FROM frameworks"))
    before = snapshot(url)

    first = next_ids(tree, 1)[0]
    run(tree, url, scratch, "revision", "--autogenerate", "-m", "quoted names")
    up = (tree / f"sql/up/{first}_quoted_names.sql").read_text()
    assert 'ALTER TABLE frameworks RENAME TO "framework set";' in up
    assert 'RENAME CONSTRAINT frameworks_key_check TO "framework set_key_check";' in up
    assert 'ADD COLUMN "order" text;' in up and 'NEW."order" := NEW.full_name;' in up
    run(tree, url, scratch, *BATCHES, *ALLOW_LOSS, "upgrade", "head")
    run(tree, url, scratch, "check")
    assert column_values(url, '"order"') == full_names
    assert dict(query(url, 'SELECT id, description FROM "framework set"')) == descriptions

    query(url, "UPDATE users SET \"Score\" = 7 WHERE email = 'user-1@example.com'")
    edit(
        tree,
        "tenancy.py",
        'mapped_column("Score", BigInteger, index=True)',
        'mapped_column("Score", BigInteger, index=True, server_default=text("0"))',
    )
    edit(tree, "tenancy.py", "score: Mapped[int | None]", "score: Mapped[int]")
    edit(
        tree,
        "assessments.py",
        "    description: Mapped[str | None] = mapped_column(Text)",
        "    description: Mapped[str | None] = mapped_column(String(2000))",
    )
    edit(tree, "assessments.py", "    SmallInteger,\n", "    SmallInteger,\n    String,\n")
    second = next_ids(tree, 1)[0]
    run(tree, url, scratch, "revision", "--autogenerate", "-m", "quoted names again")
    up = (tree / f"sql/up/{second}_quoted_names_again.sql").read_text()
    assert 'CREATE TRIGGER "users_Score_fill"' in up and 'NEW."Score" := 0;' in up
    assert 'ALTER TABLE "framework set" ADD COLUMN description__new varchar(2000);' in up
    lint(tree, new_files(tree))
    run(tree, url, scratch, *BATCHES, *ALLOW_LOSS, "upgrade", "head")
    run(tree, url, scratch, "check")
    scores = column_values(url, '"Score"')
    assert scores[user_id(url, "user-1@example.com")] == 7
    assert set(scores.values()) == {0, 7}
    assert column_type(url, "framework set", "description")[:2] == ("character varying", 2000)
    assert dict(query(url, 'SELECT id, description FROM "framework set"')) == descriptions

    run(tree, url, scratch, *ALLOW_LOSS, "downgrade", HEAD)
    assert same_but_column_order(before, snapshot(url))
    assert column_values(url, "full_name") == full_names
    assert dict(query(url, "SELECT id, description FROM frameworks")) == descriptions
