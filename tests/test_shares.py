"""make test runs every test once, on PostgreSQL 15 or 18, and the every_version tests on both;
the two versions' shares take about as long.

Collected for real with the variables the Makefile sets for each version: the tree's own run
(the revision-sensitive files left to the past-head copy) plus that copy's run of them, each
collection listing what it collected, what it kept and which tests are every_version.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.past_head import REVISION_SENSITIVE, SPLIT_VARIABLE
from support.processes import make_variable, unmeasured
from support.project import ROOT
from support.shares import MARKER, SHARE_VARIABLE, VERSIONS, expected, recorded, split


class Listing:
    """A pytest plugin: writes to path what the run collected, what it kept after the
    conftest's share, and which of them are every_version."""

    def __init__(self, path: str):
        self.path = path
        self.collected: list[str] = []
        self.on_both: list[str] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items):
        self.collected = [item.nodeid for item in items]
        self.on_both = [item.nodeid for item in items if item.get_closest_marker(MARKER)]

    def pytest_collection_finish(self, session):
        kept = [item.nodeid for item in session.items]
        listing = {"collected": self.collected, "kept": kept, "on_both": self.on_both}
        Path(self.path).write_text(json.dumps(listing))


def listed(listing: Path, *args: str, **variables: str) -> dict[str, set[str]]:
    """What pytest collects in ROOT with these variables set (Listing's three sets)."""
    environ = {
        key: value
        for key, value in unmeasured().items()  # a collection runs no code other tests do not
        if key not in {SHARE_VARIABLE, SPLIT_VARIABLE, "TEST_POSTGRES_VERSION"}
    }
    # The child imports this module (tests/) before pytest puts tests/ on its path.
    environ["PYTHONPATH"] = str(ROOT / "tests")
    run = "import sys, pytest, test_shares; sys.exit(pytest.main(sys.argv[2:], [test_shares.Listing(sys.argv[1])]))"
    collection = subprocess.run(
        [
            sys.executable,
            "-c",
            run,
            str(listing),
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=ROOT,
        env=environ | variables,
        capture_output=True,
        text=True,
        check=False,
    )
    assert collection.returncode == 0, collection.stdout[-3000:] + collection.stderr[-3000:]
    return {name: set(nodeids) for name, nodeids in json.loads(listing.read_text()).items()}


def runs_of_make_test(version: str, folder: Path) -> list[dict[str, set[str]]]:
    """The two runs make test's pytest on version splits: the tree's, and its past-head copy's."""
    shared = {"TEST_POSTGRES_VERSION": version, SHARE_VARIABLE: "1"}
    tree = listed(folder / f"tree-{version}.json", **shared, **{SPLIT_VARIABLE: "past-head"})
    copy = listed(
        folder / f"copy-{version}.json",
        *(f"tests/{name}" for name in REVISION_SENSITIVE),
        **shared,
    )
    return [tree, copy]


def test_each_test_runs_on_one_version_and_the_two_shares_take_about_as_long(tmp_path):
    """Each version's run computes the split by itself: they must agree on every test.
    (The acceptance corpus, every_version, shares its cases between the versions itself.)"""
    durations = recorded()
    first, second = (runs_of_make_test(version, tmp_path) for version in VERSIONS)
    for one, other in zip(first, second, strict=True):
        shared = one["collected"] - one["on_both"]
        assert shared == other["collected"] - other["on_both"]
        # Every test on one version at least, every_version tests on both, the rest on one.
        assert one["kept"] >= one["on_both"] and other["kept"] >= other["on_both"]
        assert one["kept"] & other["kept"] & shared == set()
        assert (one["kept"] | other["kept"]) & shared == shared
        # Longest first to the shorter share: they end within the longest test of each other.
        seconds = expected(shared, durations)
        totals = [sum(seconds[nodeid] for nodeid in run["kept"] & shared) for run in (one, other)]
        assert abs(totals[0] - totals[1]) <= max(seconds.values(), default=0), totals
    # The tree's runs leave out the revision-sensitive files, and their copies' runs collect them.
    assert {nodeid.split("::")[0] for nodeid in first[1]["collected"]} == {
        f"tests/{name}" for name in REVISION_SENSITIVE
    }
    on_both = {nodeid for run in first + second for nodeid in run["on_both"]}
    assert {nodeid.split("::")[0] for nodeid in on_both} >= {
        "tests/test_lock_facts.py",
        "tests/test_past_head.py",
    }


def test_the_longest_tests_are_spread_whatever_their_order_and_unrecorded_ones_count_the_median():
    """The three 21 s tests of one make test run sat at even positions: alternating put
    them all on one version. Longest first puts two on one side and fills the other up."""
    durations = {f"t{position:02}": 21.0 for position in (0, 2, 4)}
    durations |= {f"t{position:02}": 0.5 for position in range(6, 40)}
    nodeids = [*durations, "new_a", "new_b"]
    seconds = expected(nodeids, durations)
    assert seconds["new_a"] == seconds["new_b"] == 0.5
    versions = split(nodeids, durations)
    assert versions == split(reversed(nodeids), durations)
    assert sorted(versions[f"t{position:02}"] for position in (0, 2, 4)) == ["15", "15", "18"]
    totals = [sum(seconds[n] for n in nodeids if versions[n] == v) for v in VERSIONS]
    assert totals == [42.0, 39.0]


def test_the_makefile_runs_each_version_on_its_share_with_the_past_head_copy():
    makefile = (ROOT / "Makefile").read_text()
    for version in VERSIONS:
        assert (
            f"TEST_POSTGRES_VERSION={version} {SPLIT_VARIABLE}=past-head {SHARE_VARIABLE}=1"
            in makefile
        )


def test_make_test_puts_its_temporary_files_in_memory_when_dev_shm_has_4_gib_free():
    room = os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK)
    room = room and shutil.disk_usage("/dev/shm").free > 4 * 2**30
    assert make_variable(ROOT, "TEST_TMPDIR") == ("/dev/shm" if room else "")
    assert make_variable(ROOT, "TEST_TMPDIR", TEST_TMPDIR="/var/tmp") == "/var/tmp"
    recipe = subprocess.run(
        ["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    # Exported before both pytest runs, which the recipe starts after it.
    if room:
        assert recipe.index("export TMPDIR=/dev/shm;") < recipe.index("TEST_POSTGRES_VERSION=15")
    else:
        assert "export TMPDIR=" not in recipe
