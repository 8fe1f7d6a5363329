"""Autogenerate's renderers, called directly on Alembic's op objects: no database, no server.

Each op type's function (renderers.py's dispatch table) is given an op and a Context, and the
test reads the plan it fills: which revision each statement lands in (expand or contract, in a
transaction or online), its SQL and its comment. Names that PostgreSQL only takes in quotes
(a mixed-case table "Scores", a column "Score", a keyword column "order", a table "foobar fk")
are used throughout. Every statement a renderer writes is parsed by PostgreSQL's own parser
(pglast), and where a test reads the names the parser found, they are the models' own.
"""

import ast
from pathlib import Path

import pglast
import pytest
from alembic.operations import ops
from pglast import ast as sql_ast
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from assessment_models.base import NAMING_CONVENTION
from migration_runner.errors import MigrationError
from migration_runner.steps.phases import CONTRACT, EXPAND
from migration_runner.tools.autogenerate import (  # render registers every renderer
    backfill,
    expand_contract,
    render,  # noqa: F401
    triggers,
)
from migration_runner.tools.autogenerate.expand_contract import ColumnSwap
from migration_runner.tools.autogenerate.lock_facts import describe
from migration_runner.tools.autogenerate.plan import SPECIAL_NAMES_MEANT, Plan, Statement
from migration_runner.tools.autogenerate.renderers import (
    ADDED,
    DROPPED,
    Context,
    mismatch,
    render_mismatch,
    render_op,
    renderer_for,
    renders,
)
from migration_runner.tools.model_parity import ModelMismatch
from support.project import ROOT

EXPAND_TX, EXPAND_ONLINE = (EXPAND, False), (EXPAND, True)
CONTRACT_TX, CONTRACT_ONLINE = (CONTRACT, False), (CONTRACT, True)
PACKAGE = ROOT / "migration_runner" / "tools" / "autogenerate"
# The AST attributes that hold a name (a table, column, constraint, index, trigger...).
NAME_FIELDS = {"relname", "colname", "name", "conname", "idxname", "trigname", "newname", "subname"}


def models() -> MetaData:
    """Two tables with the project's naming convention; "Scores" needs quotes, as do two of
    its columns."""
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    Table("parents", metadata, Column("id", BigInteger, primary_key=True))
    Table(
        "Scores",
        metadata,
        Column("id", BigInteger, primary_key=True),
        Column("Score", BigInteger, nullable=False, server_default=text("0")),
        Column("order", Text),
        Column("parent_id", BigInteger, ForeignKey("parents.id", ondelete="CASCADE")),
        Column("label", Text, nullable=False),
        Index(None, "Score"),
        CheckConstraint('"Score" >= 0', name="Score"),
    )
    Table(
        "foobar fk",
        metadata,
        Column("id", BigInteger, primary_key=True),
        Column("Note", Text),
    )
    return metadata


METADATA = models()
SCORES = METADATA.tables["Scores"]


def names_in(sql: str) -> set[str]:
    """Every name PostgreSQL's parser reads in sql (the bodies of DO blocks and functions are
    strings to it)."""
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, (list, tuple)):
            for item in node:
                walk(item)
        elif isinstance(node, sql_ast.String):
            found.add(node.sval)
        elif isinstance(node, sql_ast.Node):
            for attribute in node:
                value = getattr(node, attribute)
                if attribute in NAME_FIELDS and isinstance(value, str):
                    found.add(value)
                else:
                    walk(value)

    walk(pglast.parse_sql(sql))
    return found


def statements(plan: Plan) -> list[Statement]:
    return [s for part in plan.parts.values() for s in (*part.up, *part.down)]


def rendered(op, new_tables: set[str] = frozenset()) -> Plan:
    """op through its renderer; every statement it writes must parse."""
    context = Context(METADATA, Plan(), set(new_tables))
    render_op(op, context)
    for statement in statements(context.plan):
        pglast.parse_sql(statement.sql)
    return context.plan


def parts(plan: Plan) -> dict[tuple[str, bool], tuple[list[str], list[str]]]:
    """The revisions that got statements: (phase, online) -> (up SQL, down SQL)."""
    return {
        key: ([s.sql for s in part.up], [s.sql for s in part.down])
        for key, part in plan.parts.items()
        if part.up or part.down
    }


def only(plan: Plan, key) -> tuple[list[Statement], list[Statement]]:
    assert set(parts(plan)) == {key}, parts(plan)
    return plan.parts[key].up, plan.parts[key].down


# -- the dispatch table --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        ops.CreateTableOp,
        ops.DropTableOp,
        ops.AddColumnOp,
        ops.DropColumnOp,
        ops.AlterColumnOp,
        ops.CreateIndexOp,
        ops.DropIndexOp,
        ops.CreateForeignKeyOp,
        ops.DropConstraintOp,
        ops.CreateTableCommentOp,
        ops.DropTableCommentOp,
        mismatch("CHECK", ADDED),
        mismatch("index", ADDED),
        mismatch("index", DROPPED),
    ],
)
def test_each_op_type_has_its_renderer(target):
    assert callable(renderer_for(target))


def test_a_second_renderer_for_one_op_type_is_refused():
    with pytest.raises(ValueError, match="already exists"):
        renders(ops.AddColumnOp)(lambda op, context: None)


def test_an_op_without_a_renderer_is_refused_in_one_line():
    with pytest.raises(MigrationError) as refused:
        rendered(ops.ExecuteSQLOp("SELECT 1"))
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("autogenerate does not write ExecuteSQLOp () yet:")
    assert "write this change by hand with `alembic revision -m ...`" in message


def test_a_mismatch_kind_without_a_renderer_is_refused_in_one_line():
    context = Context(METADATA)
    odd = ModelMismatch("EXCLUDE", "Scores", "Scores_excl", None, "EXCLUDE (id WITH =)")
    with pytest.raises(MigrationError) as refused:
        render_mismatch(odd, ADDED, context)
    assert str(refused.value) == (
        "autogenerate does not write a EXCLUDE difference (Scores) yet: write this change by "
        "hand with `alembic revision -m ...` (MIGRATIONS.md)."
    )


def _module_imports(path: Path) -> set[str]:
    """The package's modules that path imports at module level."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            if module == "migration_runner.tools.autogenerate":
                found |= {alias.name for alias in node.names}
            elif module.startswith("migration_runner.tools.autogenerate."):
                found.add(module.rsplit(".", 1)[1])
    return found


def test_no_module_of_autogenerate_imports_itself_back():
    """No import circle: following the package's module-level imports from any module never
    leads back to it."""
    graph = {path.stem: _module_imports(path) for path in PACKAGE.glob("*.py")}
    circles = []
    for start, imported in graph.items():
        seen, todo = set(), list(imported)
        while todo:
            module = todo.pop()
            if module == start:
                circles.append(start)
                break
            if module not in seen and module in graph:
                seen.add(module)
                todo += graph[module]
    used = graph["render"] | graph["render_columns"]
    assert {"renderers", "render_columns", "constraints"} <= used
    assert circles == []


# -- tables ---------------------------------------------------------------------------------------


def test_new_table_is_created_whole_and_dropped_as_the_down():
    plan = rendered(ops.CreateTableOp.from_table(SCORES), new_tables={"Scores"})
    up, down = only(plan, EXPAND_TX)
    assert up[0].sql.startswith('CREATE TABLE "Scores" (')
    assert up[0].comment == "New table Scores: nothing reads it yet."
    assert {"Scores", "Score", "order", "Scores_Score_check"} <= names_in(up[0].sql)
    assert [s.sql for s in down] == ['DROP TABLE "Scores"']
    assert down[0].squawk_ignore == "ban-drop-table"
    assert down[0].comment == "Hazard: deletes Scores and every row in it."


def test_table_comment_is_one_statement_each_way():
    plan = rendered(ops.CreateTableCommentOp("Scores", "Points, by team's game"))
    up, down = only(plan, EXPAND_TX)
    assert [s.sql for s in up] == ["""COMMENT ON TABLE "Scores" IS 'Points, by team''s game'"""]
    assert up[0].comment == f"Comment on Scores: {describe('comment_on_table', 'Scores')}."
    assert [s.sql for s in down] == ['COMMENT ON TABLE "Scores" IS NULL']
    plan = rendered(ops.DropTableCommentOp("Scores", existing_comment="Points"))
    assert parts(plan) == {
        EXPAND_TX: (
            ['COMMENT ON TABLE "Scores" IS NULL'],
            ["""COMMENT ON TABLE "Scores" IS 'Points'"""],
        )
    }


# -- columns --------------------------------------------------------------------------------------


def test_new_nullable_column_is_added_in_expand():
    plan = rendered(ops.AddColumnOp.from_column_and_tablename(None, "Scores", SCORES.c.order))
    up, down = only(plan, EXPAND_TX)
    assert [s.sql for s in up] == ['ALTER TABLE "Scores" ADD COLUMN "order" TEXT']
    assert up[0].comment == f"Add Scores.order: {describe('add_column_nullable', 'Scores')}"
    assert [s.sql for s in down] == ['ALTER TABLE "Scores" DROP COLUMN "order"']
    assert down[0].comment == "Drop Scores.order again."
    assert plan.warnings == []


def test_new_not_null_column_without_default_is_nullable_until_the_contract():
    plan = rendered(ops.AddColumnOp.from_column_and_tablename(None, "Scores", SCORES.c.label))
    assert set(parts(plan)) == {EXPAND_TX, CONTRACT_ONLINE}
    (add,) = plan.parts[EXPAND_TX].up
    assert add.sql == 'ALTER TABLE "Scores" ADD COLUMN label TEXT'
    assert add.comment.endswith("; nullable until the contract phase (the old code leaves it NULL)")
    contract = "\n".join(s.sql for s in plan.parts[CONTRACT_ONLINE].up)
    assert 'ALTER TABLE "Scores" ALTER COLUMN label SET NOT NULL' in contract
    assert plan.warnings == [
        (
            "Scores.label becomes NOT NULL with nothing to fill the rows left NULL: its contract "
            "revision refuses to run while one is; fill them first (or give the column a "
            "server_default: autogenerate then fills them in the expand phase)"
        )
    ]


def parent_key_column() -> Column:
    """A column with its own REFERENCES, not yet in a table: Alembic's add_column writes the
    key after the ADD COLUMN (autogenerate's columns come with a CreateForeignKeyOp instead)."""
    return Column("parent_id", BigInteger, ForeignKey("parents.id", ondelete="CASCADE"))


def test_new_foreign_key_column_on_a_table_with_rows_is_validated_online():
    plan = rendered(ops.AddColumnOp("Scores", parent_key_column()))
    assert set(parts(plan)) == {EXPAND_TX, EXPAND_ONLINE}
    assert [s.sql for s in plan.parts[EXPAND_TX].up] == [
        'ALTER TABLE "Scores" ADD COLUMN parent_id BIGINT'
    ]
    online = "\n".join(s.sql for s in plan.parts[EXPAND_ONLINE].up)
    assert "NOT VALID" in online
    assert 'VALIDATE CONSTRAINT "Scores_parent_id_fkey"' in online
    (drop,) = plan.parts[EXPAND_ONLINE].down
    assert "DROP CONSTRAINT" in drop.sql and '"Scores_parent_id_fkey"' in drop.sql


def test_new_column_of_a_new_table_keeps_its_key_in_the_transaction():
    plan = rendered(ops.AddColumnOp("Scores", parent_key_column()), new_tables={"Scores"})
    up, _ = only(plan, EXPAND_TX)
    assert up[1].sql == (
        'ALTER TABLE "Scores" ADD CONSTRAINT "Scores_parent_id_fkey" FOREIGN KEY(parent_id) '
        "REFERENCES parents (id) ON DELETE CASCADE"
    )


def test_dropped_column_is_a_destructive_contract_step():
    plan = rendered(ops.DropColumnOp.from_column_and_tablename(None, "Scores", SCORES.c.order))
    up, down = only(plan, CONTRACT_TX)
    assert [(s.sql, s.squawk_ignore) for s in up] == [
        ('ALTER TABLE "Scores" DROP COLUMN "order"', "ban-drop-column")
    ]
    assert up[0].comment == (
        f"Hazard: deletes every value of Scores.order; {describe('drop_column', 'Scores')}"
    )
    assert [s.sql for s in down] == ['ALTER TABLE "Scores" ADD COLUMN "order" TEXT']
    assert down[0].comment == "Put Scores.order back, as the last column (its values are not)."
    assert plan.drops_columns


def test_rewrite_free_type_change_is_one_statement_that_says_so():
    op = ops.AlterColumnOp(
        "Scores",
        "order",
        existing_type=String(10),
        modify_type=String(20),
        existing_nullable=True,
    )
    up, down = only(rendered(op), EXPAND_TX)
    assert [(s.sql, s.squawk_ignore) for s in up] == [
        ('ALTER TABLE "Scores" ALTER COLUMN "order" TYPE VARCHAR(20)', "changing-column-type")
    ]
    assert up[0].comment == (
        "Retype Scores.order from varchar(10) to varchar(20): PostgreSQL changes its catalog "
        "only (no rewrite, no scan); an ACCESS EXCLUSIVE lock on Scores, briefly."
    )
    assert [s.sql for s in down] == ['ALTER TABLE "Scores" ALTER COLUMN "order" TYPE VARCHAR(10)']


def test_default_and_dropped_not_null_are_one_statement_each():
    op = ops.AlterColumnOp(
        "Scores",
        "order",
        existing_type=Text(),
        existing_nullable=False,
        existing_server_default=None,
        modify_server_default=text("'none'"),
        modify_nullable=True,
    )
    up, down = only(rendered(op), EXPAND_TX)
    assert [s.sql for s in up] == [
        """ALTER TABLE "Scores" ALTER COLUMN "order" SET DEFAULT 'none'""",
        'ALTER TABLE "Scores" ALTER COLUMN "order" DROP NOT NULL',
    ]
    assert [s.comment for s in up] == [
        f"Alter Scores.order: {describe('set_default', 'Scores')}.",
        (
            "Scores.order may be NULL: the old code, still running, writes a value in every row "
            "and reads no NULL until the new code writes one (why the squawk rule is ignored "
            f"here); {describe('drop_not_null', 'Scores')}."
        ),
    ]
    assert up[1].squawk_ignore == "ban-drop-not-null"
    assert [s.sql for s in down] == [
        'ALTER TABLE "Scores" ALTER COLUMN "order" SET NOT NULL',
        'ALTER TABLE "Scores" ALTER COLUMN "order" DROP DEFAULT',
    ]


def test_not_null_with_a_default_is_filled_in_expand_and_set_in_the_contract():
    op = ops.AlterColumnOp(
        "Scores",
        "Score",
        existing_type=BigInteger(),
        existing_nullable=True,
        modify_nullable=False,
    )
    plan = rendered(op)
    assert set(parts(plan)) == {EXPAND_TX, EXPAND_ONLINE, CONTRACT_ONLINE}
    trigger = [s.sql for s in plan.parts[EXPAND_TX].up]
    assert trigger[0].startswith('CREATE FUNCTION "Scores_Score_fill"() RETURNS trigger')
    assert 'IF NEW."Score" IS NULL THEN\n        NEW."Score" := 0;' in trigger[0]
    assert trigger[2] == (
        'CREATE TRIGGER "Scores_Score_fill"\nBEFORE INSERT OR UPDATE ON "Scores"\n'
        'FOR EACH ROW EXECUTE FUNCTION "Scores_Score_fill"()'
    )
    (fill,) = plan.parts[EXPAND_ONLINE].up
    assert 'UPDATE "Scores"\n            SET "Score" = 0' in fill.sql
    assert 'WHERE "Scores".id = batch.batch_key AND "Score" IS NULL' in fill.sql
    contract = [s.sql for s in plan.parts[CONTRACT_ONLINE].up]
    assert 'ALTER TABLE "Scores" ALTER COLUMN "Score" SET NOT NULL' in contract
    assert contract[-2:] == [
        'DROP TRIGGER "Scores_Score_fill" ON "Scores"',
        'DROP FUNCTION "Scores_Score_fill"()',
    ]
    assert plan.warnings == []


def test_column_of_a_new_table_is_altered_plainly():
    op = ops.AlterColumnOp(
        "Scores",
        "Score",
        existing_type=BigInteger(),
        existing_nullable=True,
        modify_nullable=False,
    )
    plan = rendered(op, new_tables={"Scores"})
    assert parts(plan) == {
        EXPAND_TX: (
            ['ALTER TABLE "Scores" ALTER COLUMN "Score" SET NOT NULL'],
            ['ALTER TABLE "Scores" ALTER COLUMN "Score" DROP NOT NULL'],
        )
    }


# -- indexes --------------------------------------------------------------------------------------

SCORE_INDEX = next(index for index in SCORES.indexes if index.name == "Scores_Score_idx")


def test_index_on_a_table_with_rows_is_built_concurrently_online():
    up, down = only(rendered(ops.CreateIndexOp.from_index(SCORE_INDEX)), EXPAND_ONLINE)
    assert [s.sql for s in up] == [
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "Scores_Score_idx" ON "Scores" ("Score")'
    ]
    assert up[0].comment == (
        "Build Scores_Score_idx without blocking writes: "
        f"{describe('create_index_concurrently', 'Scores')}; if it is interrupted, drop the "
        "INVALID index and rerun."
    )
    assert [s.sql for s in down] == ['DROP INDEX CONCURRENTLY IF EXISTS "Scores_Score_idx"']


def test_index_on_a_new_table_is_built_in_its_transaction():
    plan = rendered(ops.CreateIndexOp.from_index(SCORE_INDEX), new_tables={"Scores"})
    assert parts(plan) == {
        EXPAND_TX: (
            ['CREATE INDEX "Scores_Score_idx" ON "Scores" ("Score")'],
            ['DROP INDEX "Scores_Score_idx"'],
        )
    }


def test_dropped_index_goes_concurrently_and_comes_back_concurrently():
    up, down = only(rendered(ops.DropIndexOp.from_index(SCORE_INDEX)), EXPAND_ONLINE)
    assert [(s.sql, s.comment) for s in up] == [
        (
            'DROP INDEX CONCURRENTLY IF EXISTS "Scores_Score_idx"',
            f"Drop index Scores_Score_idx: {describe('drop_index_concurrently', 'Scores')}.",
        )
    ]
    assert [s.sql for s in down] == [
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "Scores_Score_idx" ON "Scores" ("Score")'
    ]


# -- constraints ---------------------------------------------------------------------------------

PARENT_KEY = next(iter(SCORES.c.parent_id.foreign_keys)).constraint


def test_foreign_key_on_a_table_with_rows_is_not_valid_then_validated_online():
    up, down = only(rendered(ops.CreateForeignKeyOp.from_constraint(PARENT_KEY)), EXPAND_ONLINE)
    online = " ".join(" ".join(s.sql for s in up).split())
    assert 'ADD CONSTRAINT "Scores_parent_id_fkey" FOREIGN KEY' in online
    assert "NOT VALID" in online and 'VALIDATE CONSTRAINT "Scores_parent_id_fkey"' in online
    assert [s.sql for s in down] == ['ALTER TABLE "Scores" DROP CONSTRAINT "Scores_parent_id_fkey"']
    assert down[0].comment == "Drop foreign key Scores_parent_id_fkey."


def test_foreign_key_on_a_new_table_is_added_in_its_transaction():
    plan = rendered(ops.CreateForeignKeyOp.from_constraint(PARENT_KEY), new_tables={"Scores"})
    up, down = only(plan, EXPAND_TX)
    assert [s.sql for s in up] == [
        (
            'ALTER TABLE "Scores" ADD CONSTRAINT "Scores_parent_id_fkey" FOREIGN KEY(parent_id) '
            "REFERENCES parents (id) ON DELETE CASCADE"
        )
    ]
    assert up[0].comment == "Foreign key Scores_parent_id_fkey on the new table."
    assert [s.sql for s in down] == ['ALTER TABLE "Scores" DROP CONSTRAINT "Scores_parent_id_fkey"']


def test_dropped_constraint_is_dropped_in_expand_and_restored_by_the_down():
    up, down = only(rendered(ops.DropConstraintOp.from_constraint(PARENT_KEY)), EXPAND_TX)
    assert [(s.sql, s.squawk_ignore) for s in up] == [
        ('ALTER TABLE "Scores" DROP CONSTRAINT "Scores_parent_id_fkey"', "ban-drop-constraint")
    ]
    assert up[0].comment == (
        "Drop Scores_parent_id_fkey, which the models no longer declare: "
        f"{describe('drop_foreign_key', 'Scores', 'parents')}."
    )
    assert "ACCESS EXCLUSIVE on parents" in up[0].comment
    assert down[0].sql.startswith('ALTER TABLE "Scores" ADD CONSTRAINT "Scores_parent_id_fkey"')
    assert down[0].comment == "Restore Scores_parent_id_fkey."


# -- what model_parity finds and Alembic does not -----------------------------------------------

CHECK = ModelMismatch(
    "CHECK", "Scores", "Scores_Score_check", 'CHECK (("Score" > 0))', 'CHECK (("Score" >= 0))'
)
INDEX = ModelMismatch(
    "index",
    "Scores",
    "Scores_order_idx",
    'CREATE INDEX "Scores_order_idx" ON "Scores" USING btree (lower("order"))',
    'CREATE INDEX "Scores_order_idx" ON "Scores" USING btree (upper("order"))',
)


def mismatch_plan(difference: ModelMismatch, direction: str) -> Plan:
    context = Context(METADATA)
    render_mismatch(difference, direction, context)
    for statement in statements(context.plan):
        pglast.parse_sql(statement.sql)
    return context.plan


def test_a_check_the_database_has_is_no_renderers_but_constraints_finds():
    """A CHECK dropped or changed is taken over by constraints.find before any renderer runs
    (tests/test_constraint_changes.py writes both): no renderer is registered for it, and one
    reaching the dispatch table is refused in one line."""
    assert renderer_for(mismatch("CHECK", DROPPED)) is None
    with pytest.raises(MigrationError) as refused:
        mismatch_plan(CHECK, DROPPED)
    assert str(refused.value).startswith("autogenerate does not write a CHECK difference (Scores)")


def test_check_the_models_add_is_not_valid_then_validated_online():
    up, down = only(mismatch_plan(CHECK, ADDED), EXPAND_ONLINE)
    online = "\n".join(s.sql for s in up)
    assert 'ADD CONSTRAINT "Scores_Score_check" CHECK (("Score" >= 0)) NOT VALID' in online
    assert 'VALIDATE CONSTRAINT "Scores_Score_check"' in online
    assert [s.sql for s in down] == ['ALTER TABLE "Scores" DROP CONSTRAINT "Scores_Score_check"']


def test_index_definitions_are_dropped_and_built_concurrently():
    up, down = only(mismatch_plan(INDEX, DROPPED), EXPAND_ONLINE)
    assert [s.sql for s in up] == ['DROP INDEX CONCURRENTLY IF EXISTS "Scores_order_idx"']
    assert [s.sql for s in down] == [
        (
            'CREATE INDEX CONCURRENTLY IF NOT EXISTS "Scores_order_idx" ON "Scores" USING btree '
            '(lower("order"))'
        )
    ]
    up, down = only(mismatch_plan(INDEX, ADDED), EXPAND_ONLINE)
    assert [(s.sql, s.comment) for s in up] == [
        (
            (
                'CREATE INDEX CONCURRENTLY IF NOT EXISTS "Scores_order_idx" ON "Scores" USING btree '
                '(upper("order"))'
            ),
            (
                "Build index Scores_order_idx without blocking writes: "
                f"{describe('create_index_concurrently', 'Scores')}."
            ),
        )
    ]
    assert [s.sql for s in down] == ['DROP INDEX CONCURRENTLY IF EXISTS "Scores_order_idx"']


# -- the hand-written pieces of two-phase changes ----------------------------------------------


def test_renamed_column_swap_names_both_columns_in_quotes():
    """A column renamed to "order": its trigger, backfill and contract say "order"."""
    old = Column("Rank", Text)
    swap = ColumnSwap(SCORES, old, SCORES.c.order, "order")
    plan = Plan()
    expand_contract.write_swap(plan, swap)
    for statement in statements(plan):
        pglast.parse_sql(statement.sql)
    expand = [s.sql for s in plan.parts[EXPAND_TX].up]
    assert expand[0] == 'ALTER TABLE "Scores" ADD COLUMN "order" text'
    assert 'IF NEW."order" IS DISTINCT FROM OLD."order" THEN' in expand[1]
    assert 'NEW."Rank" := NEW."order";' in expand[1]
    assert expand[3].startswith('CREATE TRIGGER "Scores_Rank_order_sync"\n')
    comments = [s.comment for s in plan.parts[EXPAND_TX].up]
    assert comments[0].endswith(describe("add_column_nullable", "Scores"))
    assert (
        comments[3] == f"Fire it on every write to Scores: {describe('create_trigger', 'Scores')}."
    )
    (copy,) = plan.parts[EXPAND_ONLINE].up
    assert 'SET "order" = "Rank"' in copy.sql
    assert 'WHERE "Scores".id = batch.batch_key AND "order" IS NULL AND "Rank" IS NOT NULL' in (
        copy.sql
    )
    assert "'what', 'backfill Scores.order'" in copy.sql
    contract = plan.parts[CONTRACT_TX]
    assert [s.sql for s in contract.up] == ['ALTER TABLE "Scores" DROP COLUMN "Rank"']
    assert contract.up[0].comment.endswith(f"; {describe('drop_column', 'Scores')}.")
    assert 'UPDATE "Scores" SET "Rank" = "order"' in [s.sql for s in contract.down]


def test_triggers_and_backfills_quote_what_they_name():
    fill = triggers.fill("foobar fk", "Note", "'none'")
    create = [s.sql for s in fill.create()]
    assert {"foobar fk", "foobar fk_Note_fill"} <= names_in(create[2])
    assert create[1] == (
        'COMMENT ON FUNCTION "foobar fk_Note_fill"() IS\n'
        "'Expand/contract: gives foobar fk.Note its default for a NULL.'"
    )
    assert fill.drop("Gone")[0].comment == (
        "Gone: drop the trigger that gives foobar fk.Note its default for a NULL; "
        f"{describe('drop_trigger', 'foobar fk')}."
    )
    assert [s.sql for s in fill.drop("Gone")] == [
        'DROP TRIGGER "foobar fk_Note_fill" ON "foobar fk"',
        'DROP FUNCTION "foobar fk_Note_fill"()',
    ]
    sql = backfill.batched_update(METADATA.tables["foobar fk"], "Note", "'none'", '"Note" IS NULL')
    assert 'SELECT count(*) INTO total FROM "foobar fk" WHERE "Note" IS NULL;' in sql
    assert 'RETURNING "foobar fk".id' in sql
    assert "'what', 'backfill foobar fk.Note'" in sql


def test_names_sqlfluff_refuses_carry_its_exemption_and_squawks_above_the_statement():
    """A space is a character sqlfluff's RF05 refuses in a name: the statement says it is
    meant, and its squawk-ignore line moves below that, right above the statement."""
    column = METADATA.tables["foobar fk"].c.Note
    plan = rendered(ops.DropColumnOp.from_column_and_tablename(None, "foobar fk", column))
    (drop,) = plan.parts[CONTRACT_TX].up
    assert drop.sql == (
        SPECIAL_NAMES_MEANT + '-- squawk-ignore ban-drop-column\nALTER TABLE "foobar fk" DROP '
        'COLUMN "Note"'
    )
    assert drop.squawk_ignore == ""
    assert names_in(drop.sql) == {"foobar fk", "Note"}
    plain = rendered(ops.DropColumnOp.from_column_and_tablename(None, "Scores", SCORES.c.order))
    assert not plain.parts[CONTRACT_TX].up[0].sql.startswith(SPECIAL_NAMES_MEANT)
