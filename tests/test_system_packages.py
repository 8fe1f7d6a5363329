"""`make test` installs the Debian packages it needs, as `make migrate` makes its venv.

A new user runs two commands; the second must not fail on a package the
README forgot. Root gets them installed; anyone else gets one line with the
exact command, before anything runs.
"""

import subprocess
import sys

from support.project import ROOT

SCRIPT = ROOT / "tools" / "system_packages.py"


# Another user may not reach this venv's interpreter nor the clone: Debian's
# python3 reads the script from standard input.
SYSTEM_PYTHON = "/usr/bin/python3"


def run_as(user: str | None, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-", *args]
    if user is not None:
        command = ["runuser", "-u", user, "--", SYSTEM_PYTHON, "-", *args]
    return subprocess.run(
        command, input=SCRIPT.read_text(), capture_output=True, text=True, timeout=60, check=False
    )


def test_machine_with_every_package_passes_without_a_word():
    result = run_as(None)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_non_root_user_on_a_bare_machine_gets_one_line_with_the_install_command():
    """The probes look under a folder that does not exist: every package is missing."""
    result = run_as("nobody", "--root", "/nonexistent/bare-machine")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].endswith(
        "sudo apt-get update && sudo apt-get install -y --no-install-recommends "
        "postgresql-15 pgbouncer nodejs npm"
    )


def test_make_test_checks_the_packages_before_any_other_step():
    """`make test` runs the check first: a missing package stops it before any other step."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "test"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    steps = [line for line in result.stdout.splitlines() if line.strip()]
    assert "tools/system_packages.py" in steps[0]
