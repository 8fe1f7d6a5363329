"""make test's shares: each test runs on one of the two PostgreSQL versions, alternating.

make test runs PostgreSQL 15 and 18 side by side on a 2-core machine, and issue 19 asks it
to finish within 5 minutes: running the whole suite twice did not fit. With SHARE_VARIABLE
set, the tests collected (in pytest's order) alternate between the versions, so each run
pays for half, and every file's tests land on both. What the server version itself changes
runs on both, marked `every_version`: the lock level and rewrite of each kind of statement
(lock_facts), pg_dump's output (the schema snapshot, backups), the catalog read by drift
detection, the server binaries. Unset, as in a developer's plain `pytest`, every test runs
on the version under test.
"""

import pytest

SHARE_VARIABLE = "TEST_ONE_VERSION_EACH"
VERSIONS = ("15", "18")
MARKER = "every_version"


def version_of(position: int) -> str:
    """The version a test runs on in make test, by its position among the shared tests."""
    return VERSIONS[position % len(VERSIONS)]


def share_of(items: list[pytest.Item], version: str) -> tuple[list, list]:
    """items split into (run on version, left to the other): every_version items are kept,
    the others alternate between the versions in collection order."""
    kept, left = [], []
    shared = 0
    for item in items:
        if item.get_closest_marker(MARKER) is not None:
            kept.append(item)
            continue
        (kept if version_of(shared) == version else left).append(item)
        shared += 1
    return kept, left
