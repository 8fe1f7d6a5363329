"""make test runs every test once, on PostgreSQL 15 or 18, and the every_version tests on both.

Collected for real with the variables the Makefile sets for each version: the tree's own run
(the revision-sensitive files left to the past-head copy) plus that copy's run of them.
"""

import os
import subprocess
import sys

from support.past_head import REVISION_SENSITIVE, SPLIT_VARIABLE
from support.project import ROOT
from support.shares import SHARE_VARIABLE, VERSIONS

# Set by coverage (.coveragerc's patch = subprocess) for each child to measure itself.
COVERAGE = "COVERAGE_PROCESS_CONFIG"


def collected(*args: str, **variables: str) -> set[str]:
    """The test ids pytest collects (and keeps) in ROOT with these variables set."""
    environ = {
        key: value
        for key, value in os.environ.items()
        # make test's coverage too: a collection runs no code that other tests do not.
        if key not in {SHARE_VARIABLE, SPLIT_VARIABLE, "TEST_POSTGRES_VERSION", COVERAGE}
    }
    listing = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=environ | variables,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line for line in listing.splitlines() if "::" in line}


def run_by_make_test(version: str) -> set[str]:
    """What make test's pytest on version runs: the tree's share, and its past-head copy's."""
    shared = {"TEST_POSTGRES_VERSION": version, SHARE_VARIABLE: "1"}
    tree = collected(**shared, **{SPLIT_VARIABLE: "past-head"})
    copy = collected(*(f"tests/{name}" for name in REVISION_SENSITIVE), **shared)
    return tree | copy


def test_every_test_runs_on_one_version_and_every_version_tests_on_both():
    """(The acceptance corpus, every_version, shares its cases between the versions itself.)"""
    everything, on_both = set(), set()
    for version in VERSIONS:
        everything |= collected(TEST_POSTGRES_VERSION=version)
        on_both |= collected("-m", "every_version", TEST_POSTGRES_VERSION=version)
    first, second = (run_by_make_test(version) for version in VERSIONS)
    assert first | second == everything
    assert first & second <= on_both
    assert {test.split("::")[0] for test in first & second} >= {
        "tests/test_lock_facts.py",
        "tests/test_past_head.py",
    }
    # Each version pays for about half of the rest.
    assert abs(len(first - on_both) - len(second - on_both)) <= 1


def test_the_makefile_runs_each_version_on_its_share_with_the_past_head_copy():
    makefile = (ROOT / "Makefile").read_text()
    for version in VERSIONS:
        assert (
            f"TEST_POSTGRES_VERSION={version} {SPLIT_VARIABLE}=past-head {SHARE_VARIABLE}=1"
            in makefile
        )
