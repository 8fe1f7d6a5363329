"""Shims as `alembic revision` writes them are read as data; any other shim is imported."""

import importlib.util
from pathlib import Path

from migration_runner.steps.shims import module_from_text
from migration_runner.tools.scaffold import render_shim
from support.database import current_version, query
from support.processes import run_alembic
from support.project import ROOT, add_revision

IDS = ("revision", "down_revision", "branch_labels", "depends_on", "__doc__")


def _imported(path: Path):
    spec = importlib.util.spec_from_file_location("imported_shim", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_template_shim_makes_the_module_its_import_makes(tmp_path):
    mako = (ROOT / "alembic" / "script.py.mako").read_text(encoding="utf-8")
    fresh = tmp_path / "003_fresh.py"
    fresh.write_text(render_shim(mako, "003", "002", "add a thing"), encoding="utf-8")
    shims = [*sorted((ROOT / "alembic" / "versions").glob("*.py")), fresh]
    for path in shims:
        built = module_from_text("built_shim", str(path), path.read_text(encoding="utf-8"))
        assert built is not None, f"{path.name} is not read as a template shim"
        imported = _imported(path)
        assert [getattr(built, name) for name in IDS] == [
            getattr(imported, name) for name in IDS
        ], path.name
        assert built.upgrade.__doc__ == imported.upgrade.__doc__, path.name
        assert built.downgrade.__doc__ == imported.downgrade.__doc__, path.name
        assert built.__file__ == str(path)


def test_a_shim_with_anything_else_is_left_to_alembic():
    text = (ROOT / "alembic" / "versions").glob("001_*.py").__next__().read_text(encoding="utf-8")
    edits = [
        text.replace("    run_up(__file__)\n", "    run_up(__file__)\n    print('more')\n"),
        text.replace("from migration_runner", "import os\nfrom migration_runner"),
        text.replace("down_revision = None", 'down_revision = "0" + "01"'),
        text.replace("branch_labels = None", 'branch_labels = ("schema",)'),
        text.replace('"""Initial schema', '"""Initial \\"schema'),
    ]
    for edited in edits:
        assert edited != text
        assert module_from_text("edited", "001_initial_schema.py", edited) is None, edited


def test_a_shims_own_code_runs_where_it_stands(database_url, tree_copy):
    """A shim that does more than run its file is imported, and runs its file first when its
    code says so: the file does not wait for the revision's commit string."""
    assert run_alembic("upgrade", "head", url=database_url, tree=tree_copy).returncode == 0
    added = add_revision(
        tree_copy,
        "with_code",
        "-- test-only\nCREATE TABLE test_only_made (id integer);\n",
        "DROP TABLE test_only_made;\n",
    )
    shim = next((tree_copy / "alembic" / "versions").glob(f"{added}_*.py"))
    shim.write_text(
        shim.read_text(encoding="utf-8")
        .replace("from migration_runner", "from alembic import op\nfrom migration_runner", 1)
        .replace(
            "    run_up(__file__)\n",
            "    run_up(__file__)\n    op.execute('INSERT INTO test_only_made VALUES (7)')\n",
        ),
        encoding="utf-8",
    )
    result = run_alembic("upgrade", "head", url=database_url, tree=tree_copy)

    assert result.returncode == 0, result.stdout
    assert current_version(database_url) == added
    assert query(database_url, "SELECT id FROM test_only_made") == [(7,)]
