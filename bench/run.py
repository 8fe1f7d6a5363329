"""`make bench`: our runner against psql and its peers, on a throwaway local PostgreSQL.

    python -m bench.run [--sizes 1,100,300,1000] [--repeats 5] [--no-tests] [--quick]

Prints a table and writes bench/results.md and bench/time_vs_revisions.png.
See bench/README.md for what each measurement means. This file wires the parts:
scenarios.py (what runs), measure.py, lock_queue.py and deploy_paths.py (timing),
report.py (results.md) and plots.py.
"""

import argparse
import datetime
import sys
import time

from bench import deploy_paths, lock_queue, measure, network, plots, report, scenarios
from bench.output import kept_load_sections, output_folder, require_matplotlib
from migration_runner.servers import local_postgres


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, scenarios.SIZES)))
    parser.add_argument("--repeats", type=int, default=scenarios.REPEATS)
    parser.add_argument("--no-tests", action="store_true", help="skip timing the test suite")
    parser.add_argument("--no-lock", action="store_true", help="skip the lock-queue scenario")
    parser.add_argument(
        "--no-paths", action="store_true", help="skip the other deploy paths (section 5)"
    )
    parser.add_argument(
        "--no-network", action="store_true", help="skip the run over a network (section 6)"
    )
    parser.add_argument("--pg", default=local_postgres.default_version())
    parser.add_argument("--tools", help="only these, e.g. ours,plain (psql always runs)")
    parser.add_argument(
        "--commit",
        action="store_true",
        help="write bench/results.md and its plot (else a run folder)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    require_matplotlib()  # before minutes of measuring, not after
    output = output_folder(args.commit) / "results.md"
    sizes = [int(size) for size in args.sizes.split(",")]
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    server = measure.Server(args.pg)
    try:
        log(f"PostgreSQL {server.version()} on port {server.local.port}")
        only = set(args.tools.split(",")) if args.tools else None
        data, missing = measure.measure_overhead(server, sizes, args.repeats, log, only)
        outcomes = [] if args.no_lock else lock_queue.measure_runners(server, log)
        paths = None if args.no_paths else deploy_paths.measure(server, sizes, args.repeats, log)
        over_network = (
            None if args.no_network else network.measure(server, sizes, args.repeats, log, only)
        )
        versions = measure.versions(server)
    finally:
        server.stop()
    suite = {} if args.no_tests else measure.measure_test_suite(log)

    lines = report.overhead_report(
        data,
        missing,
        outcomes,
        suite,
        paths,
        over_network,
        date=datetime.date.today().isoformat(),
        seconds=time.perf_counter() - started,
        machine=measure.machine(),
        versions=versions,
    )
    plots.time_vs_revisions(data, output.parent / "time_vs_revisions.png")
    output.write_text("\n".join(lines) + kept_load_sections(output))
    print(f"written: {output}", file=sys.stderr)
    print("\n".join(lines))
    if missing:
        print(
            f"\nnot measured: {', '.join(missing)} (see bench/README.md to install)",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
