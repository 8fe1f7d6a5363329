"""Synthetic migration trees: the same N revisions laid out for each tool measured.

Revision i (1-based, four digits) creates table bench_i with a jsonb column and
a GIN index on it; its down file drops the table. The trees hold only these
synthetic revisions (not the project's real 001), so every tool runs exactly
the same SQL.
"""

import shutil
from pathlib import Path

import alembic

from migration_runner.tools.scaffold import render_shim

ROOT = Path(__file__).resolve().parents[1]
STAMP = "2026-01-01T00:00:00Z"


def rev_id(i: int) -> str:
    return f"{i:04d}"


def stem(i: int) -> str:
    return f"{rev_id(i)}_bench_table_{rev_id(i)}"


def up_sql(i: int) -> str:
    table = f"bench_{rev_id(i)}"
    return (
        f"-- {stem(i)} (up): synthetic benchmark revision, one table with a GIN index.\n"
        "-- Destructive: no\n"
        "-- Transaction: yes\n"
        f"CREATE TABLE {table} (\n"
        "    id bigint GENERATED ALWAYS AS IDENTITY,\n"
        "    doc jsonb NOT NULL DEFAULT '{}',\n"
        f"    CONSTRAINT {table}_pkey PRIMARY KEY (id)\n"
        ");\n"
        f"CREATE INDEX {table}_doc_idx ON {table} USING gin (doc);\n"
    )


def down_sql(i: int) -> str:
    return (
        f"-- {stem(i)} (down): synthetic benchmark revision.\n"
        "-- Destructive: yes\n"
        "-- Transaction: yes\n"
        f"DROP TABLE bench_{rev_id(i)};\n"
    )


def body(sql: str) -> str:
    """The statements without the header comments (for tools that want their own wrapping)."""
    return "".join(line + "\n" for line in sql.splitlines() if not line.startswith("--"))


def _shim(mako: str, i: int) -> str:
    down = rev_id(i - 1) if i > 1 else None
    return render_shim(mako, rev_id(i), down, f"bench table {rev_id(i)}")


def _write_sql_pairs(tree: Path, n: int, up=up_sql, down=down_sql) -> None:
    for direction, make in (("up", up), ("down", down)):
        folder = tree / "sql" / direction
        folder.mkdir(parents=True)
        for i in range(1, n + 1):
            (folder / f"{stem(i)}.sql").write_text(make(i))


def ours(tree: Path, n: int, up=up_sql, down=down_sql) -> Path:
    """A copy of the project's runner (alembic/, migration_runner/, alembic.ini) with N shims."""
    tree.mkdir(parents=True)
    shutil.copytree(
        ROOT / "alembic",
        tree / "alembic",
        ignore=shutil.ignore_patterns("__pycache__", "versions"),
    )
    shutil.copytree(
        ROOT / "migration_runner",
        tree / "migration_runner",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "alembic.ini", tree / "alembic.ini")
    versions = tree / "alembic" / "versions"
    versions.mkdir()
    mako = (ROOT / "alembic" / "script.py.mako").read_text()
    for i in range(1, n + 1):
        (versions / f"{stem(i)}.py").write_text(_shim(mako, i))
    _write_sql_pairs(tree, n, up, down)
    return tree


PLAIN_SHIM = '''"""bench table {rev}

Revision ID: {rev}
Revises: {down_text}
Create Date: bench
"""

from pathlib import Path

from alembic import op

revision = {rev!r}
down_revision = {down}
branch_labels = None
depends_on = None
SQL = Path(__file__).resolve().parents[2] / "sql"


def upgrade() -> None:
    op.execute((SQL / "up" / "{stem}.sql").read_text())


def downgrade() -> None:
    op.execute((SQL / "down" / "{stem}.sql").read_text())
'''

PLAIN_INI = """[alembic]
script_location = %(here)s/alembic
prepend_sys_path = %(here)s
path_separator = os
sqlalchemy.url = {url}

[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console
qualname =

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""


def plain_alembic(tree: Path, n: int, url: str, up=up_sql, down=down_sql) -> Path:
    """Alembic's stock `generic` env.py and shims that op.execute the same SQL text."""
    tree.mkdir(parents=True)
    template = Path(alembic.__file__).parent / "templates" / "generic"
    (tree / "alembic" / "versions").mkdir(parents=True)
    shutil.copy(template / "env.py", tree / "alembic" / "env.py")
    shutil.copy(template / "script.py.mako", tree / "alembic" / "script.py.mako")
    # psycopg2, as our runner uses (SQLAlchemy 2.1 would pick psycopg 3 for postgresql://).
    url = url.replace("postgresql://", "postgresql+psycopg2://", 1)
    (tree / "alembic.ini").write_text(PLAIN_INI.format(url=url.replace("%", "%%")))
    for i in range(1, n + 1):
        previous = repr(rev_id(i - 1)) if i > 1 else "None"
        (tree / "alembic" / "versions" / f"{stem(i)}.py").write_text(
            PLAIN_SHIM.format(
                rev=rev_id(i), down=previous, down_text=rev_id(i - 1) if i > 1 else "", stem=stem(i)
            )
        )
    _write_sql_pairs(tree, n, up, down)
    return tree


def psql_script(path: Path, n: int) -> Path:
    """All up files concatenated, for `psql -1 -f`: the floor."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(up_sql(i) for i in range(1, n + 1)))
    return path


def _migrations_folder(tree: Path, n: int, files) -> Path:
    """tree/migrations holding files(i), a {name: text} for each revision i."""
    folder = tree / "migrations"
    folder.mkdir(parents=True)
    for i in range(1, n + 1):
        for name, text in files(i).items():
            (folder / name).write_text(text)
    return folder


def dbmate(tree: Path, n: int) -> Path:
    """dbmate's layout: one file per migration with `-- migrate:up` and `-- migrate:down`."""

    def files(i: int) -> dict[str, str]:
        both = f"-- migrate:up\n{body(up_sql(i))}\n-- migrate:down\n{body(down_sql(i))}"
        return {f"{rev_id(i)}_bench_table.sql": both}

    return _migrations_folder(tree, n, files)


def yoyo(tree: Path, n: int) -> Path:
    """yoyo's layout: NNNN_name.sql and NNNN_name.rollback.sql, chained in name order."""

    def files(i: int) -> dict[str, str]:
        return {f"{stem(i)}.sql": body(up_sql(i)), f"{stem(i)}.rollback.sql": body(down_sql(i))}

    return _migrations_folder(tree, n, files)


def sqitch(tree: Path, n: int) -> Path:
    """sqitch's layout: sqitch.plan plus deploy/ and revert/ scripts, each in its own transaction."""
    tree.mkdir(parents=True)
    (tree / "sqitch.conf").write_text("[core]\n\tengine = pg\n\tplan_file = sqitch.plan\n")
    lines = ["%syntax-version=1.0.0", "%project=bench", ""]
    for folder in ("deploy", "revert", "verify"):
        (tree / folder).mkdir()
    for i in range(1, n + 1):
        name = f"bench_{rev_id(i)}"
        lines.append(f"{name} {STAMP} bench <bench@example.invalid> # bench table {rev_id(i)}")
        (tree / "deploy" / f"{name}.sql").write_text(f"BEGIN;\n{body(up_sql(i))}COMMIT;\n")
        (tree / "revert" / f"{name}.sql").write_text(f"BEGIN;\n{body(down_sql(i))}COMMIT;\n")
    (tree / "sqitch.plan").write_text("\n".join(lines) + "\n")
    return tree
