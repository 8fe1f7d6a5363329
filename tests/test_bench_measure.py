"""The benchmarks' statistics, one formula each (bench/measure.py), with no database.

Every percentile in bench/ (the lock queue's p99, the load benchmark's p50/p99 and its
per-second figures) comes from measure.percentile; every median from measure.median.
"""

import re
import sys
from pathlib import Path

import pytest

from support.processes import make_variable, run_make
from support.project import ROOT

sys.path.insert(0, str(ROOT))  # bench/ is a folder of the repository, not an installed package
from bench import scenarios
from bench.measure import Figures, _skipped, clean_env, file_system, median, percentile
from bench.under_load import Run


def test_percentile_is_a_measured_value_with_more_than_q_at_or_below_it():
    hundred = list(range(1, 101))
    assert percentile(hundred, 0.5) == 51
    assert percentile(hundred, 0.99) == 100
    assert percentile(hundred, 0.0) == 1
    assert percentile(hundred, 1.0) == 100
    thousand = list(range(1, 1001))
    assert percentile(thousand, 0.99) == 991
    assert percentile(thousand, 0.5) == 501
    assert percentile([7.5], 0.99) == 7.5
    assert percentile([], 0.99) == 0.0  # a run with no transaction in its window
    # Unordered input, repeated values.
    assert percentile([3.0, 1.0, 2.0, 2.0], 0.5) == 2.0
    assert percentile([3.0, 1.0, 2.0, 2.0], 0.75) == 3.0
    assert percentile([3.0, 1.0, 2.0, 2.0], 0.74) == 2.0


def test_median_interpolates_between_the_two_middle_values():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert Figures(up=[1.0, 3.0], noop=[]).up_median == 2.0
    assert Figures(up=[1.0], noop=[]).noop_median is None


def test_no_other_bench_module_computes_a_percentile_or_median_of_its_own():
    for path in sorted((ROOT / "bench").glob("*.py")):
        text = path.read_text()
        if path.name != "measure.py":
            assert not re.search(r"^def \w*(percentile|median)", text, re.MULTILINE), path.name
            assert "statistics." not in text, path.name


def test_a_runs_seconds_show_their_count_p50_p99_and_max():
    run = Run("index", "safe")
    run.timeline = [(-0.5, 2.0), (0.1, 1.0), (0.2, 3.0), (0.9, 2.0), (1.5, 40.0)]
    assert run.per_second() == [
        (-1, 1, 2.0, 2.0, 2.0),
        (0, 3, 2.0, 3.0, 3.0),
        (1, 1, 40.0, 40.0, 40.0),
    ]
    assert run.worst_second_p99() == 40.0
    run.timeline = [(-0.5, 90.0), (0.5, 1.0)]
    assert run.worst_second_p99() == 1.0  # a second before the migration is not its worst


@pytest.mark.parametrize(
    ("name", "number", "first", "skipped"),
    [
        ("sqitch", 0, None, False),
        ("sqitch", 1, 0.5, True),  # sqitch runs SQITCH_REPEATS times
        ("yoyo", 1, 0.5, False),
        ("yoyo", 1, 9.0, True),  # a peer slower than SLOW_RUN runs once
        ("yoyo", 0, 9.0, False),
        ("ours", 1, 9.0, False),  # ours, plain and psql always run every round
        ("psql", 2, 9.0, False),
    ],
)
def test_the_interleaving_cuts_only_slow_peers_short(name, number, first, skipped):
    figures = Figures(up=[] if first is None else [first])
    assert _skipped(scenarios.Tool(name, name), number, figures) is skipped


def test_rounds_and_clean_environment(monkeypatch):
    assert scenarios.rounds_at(100, 5) == 5
    assert scenarios.rounds_at(300, 5) == 5 * scenarios.GOAL_ROUNDS  # where the goals are read
    assert scenarios.rounds_at(1000, 5) == scenarios.REPEATS_AT_1000
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/db")
    monkeypatch.setenv("PGHOST", "elsewhere")
    monkeypatch.setenv("MIGRATION_LOCK_TIMEOUT", "1s")
    env = clean_env(DATABASE_URL="postgresql://here/db")
    assert env["DATABASE_URL"] == "postgresql://here/db"
    assert "PGHOST" not in env and "MIGRATION_LOCK_TIMEOUT" not in env
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


def _bench_command(**extra: str) -> str:
    """The line of `make -n bench` that runs the benchmarks (extra: variables to add)."""
    recipe = run_make(ROOT, "-n", "bench", **extra)
    assert recipe.returncode == 0, recipe.stdout + recipe.stderr
    return next(line for line in recipe.stdout.splitlines() if "-m bench.run" in line)


def test_make_bench_puts_its_server_and_trees_where_make_test_puts_its_files():
    # TMPDIR is where bench.run's throwaway server (local_postgres.throwaway_datadir) and
    # its trees (tempfile) go; TEST_TMPDIR is /dev/shm when that has 4 GiB free
    # (tests/test_shares.py proves the rule).
    in_memory = make_variable(ROOT, "TEST_TMPDIR")
    if in_memory:
        assert _bench_command().startswith(f"TMPDIR={in_memory} ")
    else:
        assert not _bench_command().startswith("TMPDIR=")
    assert _bench_command(TEST_TMPDIR="/var/tmp").startswith("TMPDIR=/var/tmp ")


def test_the_report_names_the_file_system_the_servers_data_is_on():
    assert file_system(Path("/proc/self/status")) == "proc"
    assert file_system(Path("/proc")) == "proc"
    with open("/proc/mounts", encoding="utf-8") as mounts:
        root = next(line.split()[2] for line in mounts if line.split()[1] == "/")
    assert file_system(Path("/")) == root
