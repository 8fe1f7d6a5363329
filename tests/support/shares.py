"""make test's shares: each test runs on one of the two PostgreSQL versions, balanced by time.

make test runs PostgreSQL 15 and 18 side by side on a 2-core machine, and issue 19 asks it
to finish within 5 minutes: running the whole suite twice did not fit. With SHARE_VARIABLE
set, each run keeps its share of the tests collected: the longest first, each to the version
whose share is shorter so far, by the times recorded in DURATIONS (a test not recorded counts
as the median of those recorded). Both runs compute the same split from the same collection
and file, so each test runs on exactly one version and the two end within about the longest
test of each other (split by position, three 21 s tests once landed on one side: 398 s
against 460 s). What the server version itself changes runs on both, marked `every_version`:
the lock level and rewrite of each kind of statement (lock_facts), pg_dump's output (the
schema snapshot, backups), the catalog read by drift detection, the server binaries. Unset,
as in a developer's plain `pytest`, every test runs on the version under test.

`TEST_RECORD_DURATIONS=1 make test` refreshes DURATIONS: each pytest it starts (the past-head
copies' too) writes there what each test it ran took, setup to teardown, under make test's
coverage and with both versions running, over that test's old entry. The file has
pytest-split's format (node id: seconds), so its tools read it.
"""

import fcntl
import json
import os
import statistics
from collections.abc import Iterable
from pathlib import Path

import pytest

SHARE_VARIABLE = "TEST_ONE_VERSION_EACH"
RECORD_VARIABLE = "TEST_RECORD_DURATIONS"
VERSIONS = ("15", "18")
MARKER = "every_version"
DURATIONS = Path(__file__).with_name("test_durations.json")
# What each test counts for when none of those split is recorded: then all weigh the same.
UNRECORDED = 1.0


def recorded(path: Path = DURATIONS) -> dict[str, float]:
    """The recorded durations: node id to seconds."""
    return json.loads(path.read_text()) if path.exists() else {}


def expected(nodeids: Iterable[str], durations: dict[str, float]) -> dict[str, float]:
    """Each test's expected seconds: its recorded duration, else the median recorded among
    these tests (so a test that no longer exists weighs nothing)."""
    nodeids = list(nodeids)
    known = [durations[nodeid] for nodeid in nodeids if nodeid in durations]
    default = statistics.median(known) if known else UNRECORDED
    return {nodeid: durations.get(nodeid, default) for nodeid in nodeids}


def split(nodeids: Iterable[str], durations: dict[str, float]) -> dict[str, str]:
    """The version each test runs on: the longest first (equal ones by node id), each to the
    version whose total is smaller so far (the first on a tie). A function of the set of
    node ids and the durations alone, so both versions' runs compute the same split."""
    seconds = expected(nodeids, durations)
    totals = dict.fromkeys(VERSIONS, 0.0)
    versions = {}
    for nodeid in sorted(seconds, key=lambda nodeid: (-seconds[nodeid], nodeid)):
        version = min(VERSIONS, key=totals.__getitem__)
        versions[nodeid] = version
        totals[version] += seconds[nodeid]
    return versions


def share_of(items: list[pytest.Item], version: str) -> tuple[list, list]:
    """items split into (run on version, left to the other): every_version items are kept,
    the others split by recorded durations."""
    shared = [item.nodeid for item in items if item.get_closest_marker(MARKER) is None]
    versions = split(shared, recorded())
    kept, left = [], []
    for item in items:
        (kept if versions.get(item.nodeid, version) == version else left).append(item)
    return kept, left


class DurationRecorder:
    """A pytest plugin: adds up each test's setup, call and teardown, and at the end writes
    them into the durations file over their old entries."""

    def __init__(self, path: Path):
        self.path = path
        self.took: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.took[report.nodeid] = self.took.get(report.nodeid, 0.0) + report.duration

    def pytest_sessionfinish(self) -> None:
        if not self.took:
            return
        # Both versions' runs and their past-head copies write the one file: one at a time,
        # each replacing it whole, so a copy of the project made meanwhile reads a whole file.
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            fcntl.flock(folder, fcntl.LOCK_EX)
            durations = recorded(self.path)
            durations.update({nodeid: round(took, 3) for nodeid, took in self.took.items()})
            written = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            written.write_text(json.dumps(durations, indent=4, sort_keys=True) + "\n")
            os.replace(written, self.path)
        finally:
            os.close(folder)


def recorder() -> DurationRecorder | None:
    """The recorder when RECORD_VARIABLE is set, writing to this tree's DURATIONS unless the
    variable holds a file's absolute path. It is set to that path for the processes this one
    starts, so the past-head copies' tests land in the tree's file, not their copy's."""
    value = os.environ.get(RECORD_VARIABLE)
    if not value:
        return None
    path = Path(value) if os.path.isabs(value) else DURATIONS
    os.environ[RECORD_VARIABLE] = str(path)
    return DurationRecorder(path)
