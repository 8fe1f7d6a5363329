"""Common migrations on a big `responses` table under application load, naive and safe.

    python -m bench.load             # 10 million responses (make bench-load)
    python -m bench.load --quick     # 1 million (make bench-load QUICK=1)
    python -m bench.load --version 18

A throwaway PostgreSQL gets the schema at head (our runner, the tree's head) and a
generated data set: organizations, users, one framework of 100 questions,
assessments of 100 responses each. `pgbench` plays the application at a fixed
rate (reads of an assessment's answers, answer updates, organization reads,
audit inserts) for the whole time. Each migration runs twice through our runner,
written naively (plain DDL, no lock timeout: what a tool without our steps
does) and the safe way (MIGRATIONS.md, docs/production.md), then is undone
outside the measure. Per run: the application's p50/p99/max latency and worst
one-second p99 from the migration's start to a few seconds after its end,
against a baseline (the runner applying an empty revision under the same load),
failed transactions, the longest lock wait seen in pg_stat_activity, the
migration's duration and the WAL it wrote. Results go to a run folder, bench/runs/<time>/ (with --commit, make COMMIT=1: to
bench/results.md, a section per PostgreSQL major, and bench/load_latency_pg<major>.png).

This file wires the parts: scenarios.py (data set, workload, pairs), under_load.py
(one measure), report.py (the section, the CSV) and plots.py.
"""

import argparse
import datetime
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import plots, report, scenarios
from bench.output import load_csv_name, load_plot_name, output_folder, require_matplotlib
from bench.under_load import (
    HEAD,
    Bench,
    Run,
    alembic,
    execute,
    generate_dataset,
    log,
    measure,
    tree_for,
)
from migration_runner.errors import interrupt_on_sigterm
from migration_runner.pg_programs import find_client
from migration_runner.servers import local_postgres


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 million responses, not 10")
    parser.add_argument("--responses", type=int, help="rows of responses (overrides --quick)")
    parser.add_argument("--version", default="15", help="PostgreSQL 15 (Debian) or 18 (wheel)")
    parser.add_argument("--only", help="run only the pairs whose name contains this")
    parser.add_argument(
        "--url",
        help="an empty database to use instead of a throwaway server (or BENCH_URL, "
        "which keeps a password off this command line)",
        default=os.environ.get("BENCH_URL"),
    )
    parser.add_argument(
        "--lead", type=float, default=scenarios.LEAD, help="seconds of load before each"
    )
    parser.add_argument("--tail", type=float, default=scenarios.TAIL, help="seconds of load after")
    parser.add_argument(
        "--commit",
        action="store_true",
        help="update bench/results.md and its plots (else a run folder)",
    )
    parser.add_argument("--no-plot", action="store_true", help="write no PNG or CSV")
    return parser.parse_args(argv)


def _measured(run: Run, variant: scenarios.Variant, undo: str, bench: Bench) -> Run:
    measure(run, variant, undo, bench)
    log(report.run_summary(run))
    return run


def main(argv: list[str] | None = None) -> int:
    options = arguments(argv)
    if not options.no_plot:
        require_matplotlib()  # before the data set is generated, not after
    folder = output_folder(options.commit)
    interrupt_on_sigterm()  # stopped: the throwaway server goes too
    default = scenarios.QUICK_RESPONSES if options.quick else scenarios.RESPONSES
    responses = options.responses or default
    sizes = scenarios.dataset_sizes(responses)
    began = time.monotonic()
    server = None
    if options.url is None:
        server = local_postgres.start_throwaway(options.version, settings=scenarios.SERVER_SETTINGS)
        execute(server.url(), "CREATE DATABASE bench_load")
    url = options.url or server.url("bench_load")
    base = Path(tempfile.mkdtemp(prefix="bench-load-"))
    try:
        major = int(execute(url, "SHOW server_version_num")) // 10000
        settings = None if server is None else scenarios.SERVER_SETTINGS
        pgbench = find_client("pgbench", major, same_major=True)
        bench = Bench(base, url, pgbench, sizes, options.lead, options.tail, settings)
        schema = alembic(tree_for(base, "SELECT 1;", "SELECT 1;", True), url, "upgrade", HEAD)
        if schema.returncode != 0:
            raise SystemExit(f"could not create the schema: {schema.stdout[-400:]}")
        log(
            f"PostgreSQL {major}: generating {responses:,} responses "
            f"({sizes['assessments']:,} assessments)"
        )
        started = time.monotonic()
        generate_dataset(url, major, sizes)
        generation = time.monotonic() - started
        size = execute(url, "SELECT pg_size_pretty(pg_total_relation_size('responses'))")
        log(f"data set ready in {generation:.0f} s; responses is {size} with its indexes")
        runs = [
            _measured(
                Run("no migration (an empty revision)", "baseline"),
                scenarios.Variant(scenarios.NO_MIGRATION),
                "",
                bench,
            )
        ]
        for name, pair in scenarios.PAIRS.items():
            if options.only and options.only not in name:
                continue
            for way, variant in pair.ways():
                runs.append(_measured(Run(name, way), variant, pair.undo, bench))
        minutes = (time.monotonic() - began) / 60
        lines = report.load_section(
            runs,
            responses,
            major,
            generation,
            size,
            minutes,
            bench,
            datetime.date.today().isoformat(),
        )
        report.write_load_section(folder / "results.md", lines, major)
        if not options.no_plot:
            plots.load_latency(folder / load_plot_name(major), runs, major)
            report.write_per_second(folder / load_csv_name(major), runs)
        log(f"done in {minutes:.1f} min: {folder / 'results.md'}")
    finally:
        if server is not None:
            local_postgres.remove_throwaway(server)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: the benchmark's server and files are removed", file=sys.stderr)
        sys.exit(130)
