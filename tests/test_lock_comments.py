"""The lock comments autogenerate writes say what lock_facts proves, for the statement written.

An ADD COLUMN's rewrite depends on its server default, which only PostgreSQL can judge
(clock_timestamp() is volatile, now() is not): autogenerate asks it (lock_facts.
added_column_rewrites) and says its answer, where it said "no rewrite" and then "a volatile
default would rewrite the table" whatever the default. (A volatile default never gets that
far: squawk's adding-field-with-default refuses the draft.)
"""

from sqlalchemy.engine import make_url

from support.database import query
from support.processes import run_alembic
from support.project import REVISIONS

JOINED = """    test_only_joined_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
"""
PLAN = """    plan: Mapped[str] = mapped_column(Text, server_default=text("'free'"))\n"""
RELFILENODE = "SELECT relfilenode FROM pg_class WHERE oid = 'organizations'::regclass"


def test_an_added_columns_comment_says_its_default_does_not_rewrite(
    database_url, postgres_server, tree_copy
):
    url, tree = database_url, tree_copy
    assert run_alembic("upgrade", "head", url=url).returncode == 0
    models = tree / "assessment_models" / "tenancy.py"
    source = models.read_text()
    assert PLAN in source
    models.write_text(source.replace(PLAN, PLAN + JOINED, 1))
    scratch = make_url(postgres_server.admin_url).render_as_string(hide_password=False)
    result = run_alembic(
        "revision",
        "--autogenerate",
        "-m",
        "add joined at",
        url=url,
        tree=tree,
        env={"SCHEMA_SCRATCH_URL": scratch},
        own_modules=True,
    )
    assert result.returncode == 0, result.stdout
    [up] = [p for p in (tree / "sql" / "up").glob("*.sql") if p.name[:3] not in REVISIONS]
    comments = " ".join(
        line.removeprefix("-- ") for line in up.read_text().splitlines() if line.startswith("--")
    )
    assert (
        "Add organizations.test_only_joined_at: takes ACCESS EXCLUSIVE on organizations (blocks "
        "reads and writes), briefly: no rewrite, no scan"
    ) in comments
    assert "a volatile default would rewrite" not in comments
    # And so it goes: the revision leaves organizations' file as it was.
    before = query(url, RELFILENODE)
    applied = run_alembic("upgrade", "head", url=url, tree=tree)
    assert applied.returncode == 0, applied.stdout
    assert query(url, RELFILENODE) == before
