"""support/processes.unmeasured: a child that runs none of our code runs outside coverage.

make test measures its children too (.coveragerc: patch = subprocess): coverage passes
variables that start it in every child Python. A linter or a collection started with
unmeasured()'s environment starts no coverage, so nothing traces its third-party code.
"""

import subprocess
import sys

from support.processes import unmeasured

STARTED = "import sys; print('coverage' in sys.modules)"


def _coverage_started(environ: dict[str, str]) -> bool:
    child = subprocess.run(
        [sys.executable, "-c", STARTED], env=environ, capture_output=True, text=True, check=True
    )
    return child.stdout.strip() == "True"


def test_a_child_started_unmeasured_runs_without_coverage(tmp_path):
    settings = tmp_path / "coveragerc"
    settings.write_text(
        f"[run]\nsource_pkgs = migration_runner\nparallel = true\n"
        f"data_file = {tmp_path / '.coverage'}\n"
    )
    measured = unmeasured() | {"COVERAGE_PROCESS_START": str(settings)}
    assert _coverage_started(measured)  # as every child of make test's pytest
    assert not _coverage_started(unmeasured(measured))
