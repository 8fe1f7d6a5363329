"""bench/report.py renders results.md from fixed figures, with no database: the tables the
docs quote, the goals met or missed, and the load sections kept or replaced per major."""

import re
import sys
from types import SimpleNamespace

from support.project import ROOT

sys.path.insert(0, str(ROOT))  # bench/ is a folder of the repository, not an installed package
from bench import report
from bench.deploy_paths import Paths
from bench.lock_queue import Outcome
from bench.measure import Figures
from bench.network import Network
from bench.output import kept_load_sections
from bench.under_load import Run

LABELS = {"psql": "psql -1 -f (floor)", "ours": "our runner", "dbmate": "dbmate"}


def _data(ours_up=3.0, ours_noop=0.4, dbmate_up=2.0, dbmate_noop=0.02) -> dict:
    return {
        "results": {
            1: {"psql": Figures([0.05, 0.07]), "ours": Figures([0.4], [0.36])},
            300: {
                "psql": Figures([1.0, 1.0, 1.0]),
                "ours": Figures([ours_up, 9.0, 1.0], [ours_noop, 1.0, 0.1]),
                "dbmate": Figures([dbmate_up], [dbmate_noop]),
            },
        },
        "labels": LABELS,
        "floors": {
            1: {"imports": 0.3, "interpreter": 0.02},
            300: {"imports": 0.4, "interpreter": 0.025},
        },
    }


def test_overhead_tables_from_fixed_figures():
    lines = report.overhead_tables(_data())
    text = "\n".join(lines)
    assert lines[:6] == [
        "### 1. Base to head (median seconds; ratio to psql at the same N)",
        "",
        "| tool | N=1 | N=300 |",
        "| --- | ---: | ---: |",
        "| psql -1 -f (floor) | 0.06 (1.00x) | 1.00 (1.00x) |",
        "| our runner | 0.40 (6.67x) | 3.00 (3.00x) |",
    ]
    assert "| dbmate | — | 2.00 (2.00x) |" in lines
    # Marginal: base to head less the no-op; psql has no row.
    marginal = text.split("### Marginal cost")[1].split("### 2.")[0]
    assert "| our runner | 0.04 (0.67x) | 2.60 (2.60x) |" in marginal
    assert "| dbmate | — | 1.98 (1.98x) |" in marginal
    assert "psql -1 -f" not in marginal
    noop = text.split("### 2. No-op at head")[1]
    assert "| import floor | 0.300 | 0.400 |" in noop
    assert "| bare interpreter | 0.020 | 0.025 |" in noop
    assert "| our runner | 0.360 (1.20x) | 0.400 (1.00x) |" in noop
    assert lines[-1].startswith("Runs per median: N=1: 2, N=300: 3 (sqitch: 1,")


def test_goals_met_and_missed():
    outcome = Outcome("ours", 100, 0.5, 0.1, 0.001, 9.0, True, "3 retries")
    suite = {"make test": 200.0, "ok": True, "summary": "1 passed"}
    lines = report.goals(_data(), [outcome], suite)
    assert lines[4:] == [
        "| N=300 marginal cost within 1.10x psql | 2.60x | no |",
        "| N=300 marginal cost below dbmate's | 2.60x against 1.98x | no |",
        "| N=300 no-op within 1.10x import floor | 1.00x | yes |",
        (
            f"| app blocked at most the longest lock timeout + 0.5 s ({report.LOCK_GOAL:g} s) "
            "| worst 0.50 s | yes |"
        ),
        "| make test within 3 minutes | 200 s | no |",
    ]
    met = report.goals(_data(ours_up=1.4, ours_noop=0.4, dbmate_up=1.6), [], {})
    assert met[4:6] == [
        "| N=300 marginal cost within 1.10x psql | 1.00x | yes |",
        "| N=300 marginal cost below dbmate's | 1.00x against 1.58x | yes |",
    ]


def _paths() -> Paths:
    paths = Paths(sizes=[300, 1000], rehearsal_size=300)
    for name, n, seconds in [
        ("at-head check", 300, 0.002),
        ("revision map", 300, 0.010),
        ("checksums", 300, 0.030),
        ("hashing floor", 300, 0.015),
        ("rehearsal, a run per revision", 300, 5.0),
        ("one upgrade head", 300, 1.0),
        ("revision strings", 300, 0.55),
        ("psql -1", 300, 0.50),
    ]:
        paths.add(name, n, seconds)
    return paths


def test_paths_section_ratios_and_missing_figures():
    lines = report.paths_section(_paths())
    assert (
        "| at-head check (a run at head) | 300 | 2.0 ms | Alembic's revision map "
        "(imports every shim) | 10.0 ms | 0.20x |" in lines
    )
    assert (
        "| checksum verification (a run at head) | 300 | 30.0 ms | reading and hashing "
        "the 300 up files | 15.0 ms | 2.00x |" in lines
    )
    assert (
        "| at-head check (a run at head) | 1000 | — | Alembic's revision map "
        "(imports every shim) | — | — |" in lines
    )
    assert any(
        line.startswith("| rehearsal of the last 10 revisions") and "5.00x" in line
        for line in lines
    )
    assert (
        "| revision strings' round trips (a run from base: file, history row, version, commit) "
        "| 300 | 550.0 ms | `psql -1 -f` of the same files, one transaction | 500.0 ms | 1.10x |"
        in lines
    )
    assert lines[-1] == "Rounds: 0."


def _network() -> Network:
    return Network(
        300,
        0.001,
        {"psql": [2.0, 1.8, 1.9], "ours": [1.2, 1.1, 1.4], "dbmate": [6.5]},
        {"psql": "psql -1 -f (floor)", "ours": "our runner", "dbmate": "dbmate"},
    )


def test_network_section_gives_each_tool_beside_psql():
    lines = report.network_section(_network())
    assert lines[0] == (
        "### 6. Base to head over a network (N=300, 1 ms added each way; median seconds, "
        "ratio to psql)"
    )
    assert "| psql -1 -f (floor) | 1.90 | 1.00x |" in lines
    assert "| our runner | 1.20 | 0.63x |" in lines
    assert "| dbmate | 6.50 | 3.42x |" in lines
    assert lines[-1] == "Rounds: 3."


def test_the_whole_report_has_the_committed_results_sections_in_order():
    """tests/test_bench_quotes.py reads results.md by these headings and table rows (a full
    make bench times make test too: section 4)."""
    outcome = Outcome("ours", 100, 0.5, 0.1, 0.001, 9.0, True, "3 retries")
    suite = {"make test": 475.0, "ok": True, "summary": "287 passed"}
    lines = report.overhead_report(
        _data(),
        ["sqitch"],
        [outcome],
        suite,
        _paths(),
        _network(),
        date="2026-11-30",
        seconds=412.4,
        machine="2 cores",
        versions=["PostgreSQL 15"],
    )
    text = "\n".join(lines)
    committed = (ROOT / "bench" / "results.md").read_text()
    headings = re.compile(r"^#+ .*$", re.MULTILINE)
    make_bench = committed.split(report.LOAD_SECTION)[0]
    assert headings.findall(text) == headings.findall(make_bench)
    assert lines[2] == "Produced by `make bench` on 2026-11-30 in 412 s."
    assert "- Machine: 2 cores\n- PostgreSQL 15\n- Trees: " in text
    assert "- Not measured (not installed): sqitch; see bench/README.md." in lines
    assert lines[-2] == "![time against number of revisions](time_vs_revisions.png)"


def _run(pair, way, window, ok=True, failed=0, wait=0.0) -> Run:
    run = Run(
        pair,
        way,
        seconds=2.25,
        wal_bytes=3 * 2**20,
        longest_lock_wait=wait,
        failed=failed,
        ok=ok,
        window=list(window),
    )
    run.timeline = [(i / len(window), value) for i, value in enumerate(window)]
    return run


def test_load_section_rows_goals_and_verdict():
    baseline = _run("no migration (an empty revision)", "baseline", [1.0] * 99 + [4.0])
    naive = _run("index", "naive", [2.0] * 98 + [700.0, 1200.0], wait=1.5)
    safe = _run("index", "safe", [1.5] * 99 + [6.0])
    late = _run("index", "safe, one core", [1.0] * 100, failed=2)
    bench = SimpleNamespace(settings={"shared_buffers": "1GB"}, lead=3.0, tail=3.0)
    lines = report.load_section(
        [baseline, naive, safe, late], 1_000_000, 15, 42.0, "1234 MB", 3.4, bench, "2026-11-30"
    )
    assert lines[0] == "## Migrations under load (PostgreSQL 15, 1,000,000 responses, quick mode)"
    assert "Server settings: shared_buffers=1GB." in lines[2]
    assert lines[6:] == [
        (
            "| no migration (an empty revision) | baseline | 2.2 s | 1.0 / 4.0 / 4.0 ms | 4.0 ms"
            " | 1.0x | 0.00 s | 0 | 3 MB |  |"
        ),
        (
            "| index | naive | 2.2 s | 2.0 / 1,200 / 1,200 ms | 1,200 ms | 300.0x | 1.50 s | 0"
            " | 3 MB | missed |"
        ),
        "| index | safe | 2.2 s | 1.5 / 6.0 / 6.0 ms | 6.0 ms | 1.5x | 0.00 s | 0 | 3 MB | met |",
        (
            "| index | safe, one core | 2.2 s | 1.0 / 1.0 / 1.0 ms | 1.0 ms | 0.2x | 0.00 s | 2"
            " | 3 MB | missed |"
        ),
        "",
        (
            "Goals for the safe forms: p99 within 2x the baseline's, no transaction waiting over"
            " 0.5 s, no failed transaction. Met by 1 of 2; missed: index (safe, one core): 2 failed"
            " transactions. Latency over time: [load_latency_pg15.png](load_latency_pg15.png);"
            " second by second (p50, p99, max): [load_latency_pg15.csv](load_latency_pg15.csv)."
        ),
        "",
    ]
    assert report.goals_missed(naive, baseline) == [
        "a lock wait of 1.50 s",
        "a 1,200 ms transaction",
        "p99 300.0x the baseline's",
    ]
    assert report.run_summary(safe) == (
        "index, safe: 2.2 s, p50/p99/max 2/6/6 ms, lock wait 0.00 s, failed 0, WAL 3 MB"
    )


def test_a_load_section_replaces_only_its_own_major(tmp_path):
    results = tmp_path / "results.md"
    results.write_text(
        "# Benchmark results\n\nmake bench's part\n\n"
        "## Migrations under load (PostgreSQL 15, 5 responses)\n\nold 15\n\n"
        "## Migrations under load (PostgreSQL 18, 5 responses)\n\nold 18\n"
    )
    lines = ["## Migrations under load (PostgreSQL 15, 9 responses)", "", "new 15", ""]
    report.write_load_section(results, lines, 15)
    text = results.read_text()
    assert "old 15" not in text and "new 15" in text and "old 18" in text
    assert text.startswith("# Benchmark results\n\nmake bench's part\n\n")
    # make bench rewrites its own part and keeps both load sections.
    kept = kept_load_sections(results)
    assert kept.count("## Migrations under load") == 2 and "make bench's part" not in kept
