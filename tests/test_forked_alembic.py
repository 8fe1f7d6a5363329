"""support/forked_alembic.py under coverage, as make test runs it (.coveragerc's patch=fork, _exit).

A forked `alembic` child must save its own coverage data and nothing else: the parent saves
what it measured before the fork itself.
"""

import os
import subprocess
import sys
import textwrap

from coverage import CoverageData

from support.project import ROOT

CHILDREN = 3


def test_a_forked_alembic_saves_only_its_own_coverage_data(tmp_path):
    settings = tmp_path / "coveragerc"
    settings.write_text(
        textwrap.dedent(
            f"""\
            [run]
            source_pkgs = migration_runner
            patch =
                fork
                _exit
            parallel = true
            data_file = {tmp_path / "data" / ".coverage"}
            """
        )
    )
    (tmp_path / "data").mkdir()
    script = tmp_path / "forks.py"
    script.write_text(
        textwrap.dedent(
            f"""\
            import sys
            sys.path[:0] = [{str(ROOT / "tests")!r}, {str(ROOT)!r}]
            from support.processes import run_alembic
            for _ in range({CHILDREN}):
                assert run_alembic("heads").returncode == 0
            """
        )
    )
    # Not measured by make test's own coverage: this run is the subject.
    environ = {key: value for key, value in os.environ.items() if not key.startswith("COVERAGE")}
    run = subprocess.run(
        [sys.executable, "-m", "coverage", "run", f"--rcfile={settings}", str(script)],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr

    files = sorted((tmp_path / "data").glob(".coverage.*"))
    # The parent's file and one per child; with coverage's own _exit patch alone, each child
    # also wrote a copy of the parent's pre-fork data.
    assert len(files) == 1 + CHILDREN, [file.name for file in files]
    ran_in_children = 0
    for file in files:
        data = CoverageData(str(file))
        data.read()
        measured = {name for name in data.measured_files() if data.lines(name)}
        ran_in_children += any(name.endswith("bookkeeping.py") for name in measured)
    assert ran_in_children == CHILDREN  # each child's own lines are saved, in its own file
