"""Where a benchmark run writes: a run folder of its own, unless figures are to be committed.

A run writes into a new git-ignored `bench/runs/<UTC time>-<suffix>/`, so a quick or
partial run never overwrites the figures the docs quote. `--commit` (make
`COMMIT=1`) writes into `bench/` itself: results.md and the plots beside it.
"""

import datetime
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RUNS = BENCH / "runs"


def output_folder(commit: bool) -> Path:
    """bench/ when committing figures; else a new run folder, created."""
    if commit:
        return BENCH
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    RUNS.mkdir(parents=True, exist_ok=True)
    # Two runs started in the same second (make test's two suites) get folders of their own.
    return Path(tempfile.mkdtemp(prefix=f"{stamp}-", dir=RUNS))


def require_matplotlib() -> None:
    """The plots need the [bench] extra; say how to get it instead of a traceback."""
    try:
        import matplotlib  # noqa: F401
    except ModuleNotFoundError:
        raise SystemExit(
            "FAILED: the plots need matplotlib, from the [bench] extra: run the benchmark through "
            "make (make bench, make bench-load), which installs it."
        ) from None


# make bench-load's sections of results.md, one per PostgreSQL major (bench/load.py).
LOAD_SECTION = "## Migrations under load"


def load_plot_name(major: int) -> str:
    """make bench-load's plot of one PostgreSQL major, beside results.md."""
    return f"load_latency_pg{major}.png"


def load_csv_name(major: int) -> str:
    """make bench-load's latencies second by second, of one PostgreSQL major."""
    return f"load_latency_pg{major}.csv"


def kept_load_sections(results: Path) -> str:
    """The bench-load sections of an existing results.md: make bench rewrites only its own."""
    if not results.exists():
        return ""
    blocks = ["## " + block for block in results.read_text().split("\n## ")[1:]]
    kept = [block.rstrip() for block in blocks if block.startswith(LOAD_SECTION)]
    return "".join(f"\n\n{block}" for block in kept) + ("\n" if kept else "")
