"""The other paths a deploy pays for, each timed beside its peer (section 5 of `make bench`).

- the at-head check (steps/at_head.py) against Alembic's own way to learn the
  heads, its revision map (it imports every shim);
- checksum verification (steps/history.py) in a run at head, the preflight
  (steps/preflight.py) and the backup scan with `-x allow-data-loss=true` and
  nothing destructive (steps/backup.py), each against reading and hashing the
  same files in a plain loop, the floor of work that reads every file once;
- the rehearsal's run per revision (tools/rehearse.py, `alembic upgrade <rev>`
  each) against one `alembic upgrade head` of the same revisions;
- in a run from base, the round trips that send each revision's string (its file, its
  history row and version, its commit: steps/transaction.py) against `psql -1 -f` of the
  same files in one transaction: the server's share of the marginal cost of section 1,
  which no client that commits each revision with its bookkeeping goes below.

The steps are timed inside real runs: a driver wraps the named steps with a
timer before Alembic loads env.py (which imports them by name), then runs
Alembic's own command line. A step's time leaves out Alembic's revision map
when the step happens to be the first to ask for it (the run builds it anyway).
Every figure is a median of interleaved rounds; report.paths_section shows them.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import trees
from bench.measure import clean_env, median
from bench.scenarios import REHEARSED, deploy_path_sizes, psql_floor

PYTHON = sys.executable
# `alembic ARGS` with the named steps timed; their seconds go to the file named first.
DRIVER = """
import functools, json, sys, time
from importlib import import_module
from alembic.config import main
from alembic.script.revision import RevisionMap
from alembic.util import memoized_property

spent = {"revision map": 0.0}

def timed_map(build):
    @functools.wraps(build)
    def revision_map(self):
        started = time.perf_counter()
        try:
            return build(self)
        finally:
            spent["revision map"] += time.perf_counter() - started
    return revision_map

def timed(module, name):
    inner = getattr(module, name)
    def step(*args, **kwargs):
        started, map_before = time.perf_counter(), spent["revision map"]
        try:
            return inner(*args, **kwargs)
        finally:
            map_built = spent["revision map"] - map_before  # the run needs it anyway
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - started - map_built
    setattr(module, name, step)

RevisionMap._revision_map = memoized_property(timed_map(RevisionMap._revision_map.fget))
for module, name in (
    ("at_head", "nothing_to_apply"),
    ("history", "verify_checksums"),
    ("preflight", "refuse_before_any_change"),
    ("backup", "back_up_before_data_loss"),
    ("transaction", "emit"),  # the round trips of transaction.py besides the strings below
    ("revision_sender", "emit"),  # each revision's string, from the run's sender thread
):
    timed(import_module("migration_runner.steps." + module), name)
try:
    main(argv=sys.argv[2:], prog="alembic")
finally:
    with open(sys.argv[1], "w") as out:
        json.dump(spent, out)
"""
REVISION_MAP = """
import time
from alembic.config import Config
from alembic.script import ScriptDirectory
started = time.perf_counter()
ScriptDirectory.from_config(Config("alembic.ini")).get_heads()
print(time.perf_counter() - started)
"""
HASH_FILES = """
import hashlib, sys, time
from pathlib import Path
started = time.perf_counter()
for path in sorted(Path("sql", "up").glob("*.sql"))[: int(sys.argv[1])]:
    hashlib.sha256(path.read_text(encoding="utf-8").encode()).hexdigest()
print(time.perf_counter() - started)
"""


@dataclass
class Paths:
    sizes: list[int]
    rehearsal_size: int
    # name -> n -> seconds of each round
    times: dict[str, dict[int, list[float]]] = field(default_factory=dict)

    def add(self, name: str, n: int, seconds: float) -> None:
        self.times.setdefault(name, {}).setdefault(n, []).append(seconds)

    def median(self, name: str, n: int) -> float | None:
        values = self.times.get(name, {}).get(n)
        return median(values) if values else None


def _output(command: list[str], env: dict, cwd: Path) -> str:
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[:4])} failed:\n{(result.stdout + result.stderr)[-3000:]}"
        )
    return result.stdout


def _steps(tree: Path, env: dict, *alembic_args: str) -> dict[str, float]:
    """The named steps' seconds inside one real `alembic ...` run of the tree."""
    with tempfile.NamedTemporaryFile(suffix=".json") as spent:
        _output([PYTHON, "-c", DRIVER, spent.name, *alembic_args], env, tree)
        return json.loads(Path(spent.name).read_text())


def _seconds(snippet: str, env: dict, tree: Path, *args: str) -> float:
    return float(_output([PYTHON, "-c", snippet, *args], env, tree).split()[-1])


def measure(server, sizes, rounds: int, log) -> Paths:
    """At each size: a run at head (at-head check, checksums) beside the revision map and the
    hashing floor; at the smaller one also a run from base (preflight; backup scan) and the
    rehearsal of its last REHEARSED revisions beside one upgrade."""
    paths = Paths(*deploy_path_sizes(sizes))
    upgrade = ["-c", "alembic.ini", "upgrade", "head"]
    with tempfile.TemporaryDirectory(prefix="bench-paths-") as temp:
        built = {n: trees.ours(Path(temp) / f"n{n}", n) for n in paths.sizes}
        for number in range(rounds):
            for n, tree in built.items():
                env = clean_env(DATABASE_URL=server.fresh("bench_paths"))
                if n == paths.rehearsal_size:
                    allowed = _steps(tree, env, "-x", "allow-data-loss=true", *upgrade)
                    paths.add("backup scan", n, allowed["back_up_before_data_loss"])
                    env = clean_env(DATABASE_URL=server.fresh("bench_paths"))
                    guarded = _steps(tree, env, *upgrade)
                    paths.add("preflight", n, guarded["refuse_before_any_change"])
                    paths.add("revision strings", n, guarded["emit"])
                    paths.add("psql -1", n, _psql_one_transaction(server, Path(temp), n))
                else:
                    _output([PYTHON, "-m", "alembic", *upgrade], env, tree)
                at_head = _steps(tree, env, *upgrade)
                paths.add("at-head check", n, at_head["nothing_to_apply"])
                paths.add("checksums", n, at_head["verify_checksums"])
                paths.add("revision map", n, _seconds(REVISION_MAP, env, tree))
                paths.add("hashing floor", n, _seconds(HASH_FILES, env, tree, str(n)))
            _rehearsal_round(server, built[paths.rehearsal_size], paths)
            log(f"  deploy paths round {number + 1}/{rounds} done")
    server.drop("bench_paths")
    return paths


def _psql_one_transaction(server, temp: Path, n: int) -> float:
    """Seconds of `psql -1 -f` of the same n files on a fresh database (section 1's floor)."""
    script = temp / f"psql-{n}.sql"
    if not script.exists():
        trees.psql_script(script, n)
    server.fresh("bench_paths_psql")
    started = time.perf_counter()
    _output(psql_floor(server, script, "bench_paths_psql"), clean_env(), temp)
    elapsed = time.perf_counter() - started
    server.drop("bench_paths_psql")
    return elapsed


def _rehearsal_round(server, tree: Path, paths: Paths) -> None:
    """The last REHEARSED revisions as make rehearse runs them, then as one deploy runs them."""
    from sqlalchemy.engine import make_url

    from migration_runner.tools.rehearse import rehearse_revision

    n = paths.rehearsal_size
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # its runs inherit this process's environment
    pending = [trees.rev_id(i) for i in range(n - REHEARSED + 1, n + 1)]
    start = ["-c", "alembic.ini", "upgrade", trees.rev_id(n - REHEARSED)]
    url = server.fresh("bench_paths")
    _output([PYTHON, "-m", "alembic", *start], clean_env(DATABASE_URL=url), tree)
    scratch = make_url(url).set(drivername="postgresql+psycopg2")  # as the tool resolves it
    started = time.perf_counter()
    for revision in pending:
        step = rehearse_revision(tree, scratch, revision)
        if not step.ok:
            raise RuntimeError(f"rehearsing {revision} failed: {step.message}")
    paths.add("rehearsal, a run per revision", n, time.perf_counter() - started)
    url = server.fresh("bench_paths")
    env = clean_env(DATABASE_URL=url)
    _output([PYTHON, "-m", "alembic", *start], env, tree)
    started = time.perf_counter()
    _output([PYTHON, "-m", "alembic", "-c", "alembic.ini", "upgrade", "head"], env, tree)
    paths.add("one upgrade head", n, time.perf_counter() - started)
