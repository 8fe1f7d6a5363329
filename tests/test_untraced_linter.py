"""support/untraced_linter: under make test's coverage, sqlfluff runs untraced, and what
runs after it is measured again.

Setting sqlfluff aside loses nothing only if it calls none of our code, and only if the
tracer comes back when it returns: each is proven here, the first on the files autogenerate
lints (a draft written by draft.sql_text), the second with a real coverage run.
"""

import json
import subprocess
import sys
from pathlib import Path

import sqlfluff
from sqlfluff.core import Linter

from migration_runner.tools.autogenerate import draft
from migration_runner.tools.autogenerate.plan import Statement
from support import untraced_linter
from support.processes import unmeasured
from support.project import ROOT

OURS = (str(ROOT / "migration_runner"), str(ROOT / "assessment_models"))


def _called_files(function, *args, **kwargs) -> set[str]:
    """The files of every function called while function(*args, **kwargs) runs, traced."""
    called = set()

    def trace(frame, event, _arg):
        if event == "call":
            called.add(frame.f_code.co_filename)

    sys.settrace(trace)
    try:
        function(*args, **kwargs)
    finally:
        sys.settrace(None)
    return called


def test_sqlfluff_calls_none_of_our_code_and_runs_with_the_tracer_set_aside(tmp_path):
    untraced_linter.install()
    statement = Statement("ALTER TABLE users ADD COLUMN nickname text", "A nullable column.")
    text = draft.sql_text(ROOT, ["test-only (up)."], [statement])
    (tmp_path / "draft.sql").write_text(text)
    config = draft._config_of(*draft._config_source(ROOT))

    for name in untraced_linter.ENTRY_POINTS:
        assert hasattr(getattr(Linter, name), "__wrapped__"), name
    # Unwrapped, sqlfluff's lint and fix of a draft trace into sqlfluff only, never into ours.
    lint_string = Linter.lint_string_wrapped.__wrapped__
    lint_paths = Linter.lint_paths.__wrapped__
    for fix in (False, True):
        called = _called_files(lint_string, Linter(config=config), text, fix=fix)
        assert any("sqlfluff" in name for name in called)
        assert not [name for name in called if name.startswith(OURS)]
    called = _called_files(lint_paths, Linter(config=config), (str(tmp_path / "draft.sql"),))
    assert not [name for name in called if name.startswith(OURS)]

    # Wrapped, sqlfluff's parser and rules (all but the simple API's few calls around them)
    # run untraced; the tracer traces again once it returns.
    called = _called_files(
        lambda: (sqlfluff.lint(text, config=config), draft.stem_of("004", "after the lint"))
    )
    assert not [name for name in called if "/sqlfluff/core/parser/" in name]
    assert not [name for name in called if "/sqlfluff/rules/" in name]
    assert draft.__file__ in called


MEASURED_AFTER_A_LINT = """\
import sqlfluff
from support import untraced_linter
from migration_runner.tools.autogenerate import draft

untraced_linter.install()
sqlfluff.fix("select 1\\n", dialect="postgres")
print(draft.stem_of("004", "measured after the fix"))
"""


def test_coverage_measures_our_code_run_after_an_untraced_lint(tmp_path):
    settings = tmp_path / "coveragerc"
    data = tmp_path / ".coverage"
    settings.write_text(f"[run]\nsource_pkgs = migration_runner\ndata_file = {data}\n")
    script = tmp_path / "after_a_lint.py"
    script.write_text(MEASURED_AFTER_A_LINT)
    environ = unmeasured() | {"PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"}
    run = [sys.executable, "-m", "coverage", "run", f"--rcfile={settings}", str(script)]
    child = subprocess.run(run, cwd=ROOT, env=environ, capture_output=True, text=True)
    assert child.returncode == 0, child.stdout + child.stderr
    assert child.stdout.strip() == "004_measured_after_the_fix"

    exported = tmp_path / "coverage.json"
    subprocess.run(
        [sys.executable, "-m", "coverage", "json", f"--rcfile={settings}", "-o", str(exported)],
        cwd=ROOT,
        env=environ,
        check=True,
        capture_output=True,
    )
    files = json.loads(exported.read_text())["files"]
    measured = next(
        lines["executed_lines"]
        for name, lines in files.items()
        if Path(name).parts[-2:] == ("autogenerate", "draft.py")
    )
    body = draft.stem_of.__code__.co_firstlineno + 2  # the line after its docstring
    assert body in measured
