"""Writing the reports: bench/results.md's sections, their tables and the goals met or
missed, from figures measured elsewhere (measure.py, lock_queue.py, deploy_paths.py,
under_load.py). Nothing here runs or times anything.
"""

import csv
from pathlib import Path

from bench import scenarios
from bench.measure import percentile
from bench.output import LOAD_SECTION, load_csv_name, load_plot_name
from migration_runner.steps.settings import milliseconds

# The goals. The lock queue's come from the runner's defaults of today.
LOCK_WAIT_MAX = milliseconds(scenarios.DEFAULTS["lock-timeout-max"]) / 1000  # one attempt's wait
LOCK_GOAL = LOCK_WAIT_MAX + 0.5
# At N=300 (ISSUE 20): the marginal cost, with a commit per revision, against psql's,
# and ahead of dbmate's (which commits per migration too); the no-op against the import floor.
MARGINAL_GOAL = 1.10
NOOP_GOAL = 1.10
SUITE_GOAL = 180  # seconds of make test
# Under load, for the safe forms: p99 against the baseline's, the longest wait, one transaction.
LOAD_P99_GOAL = 2
LOAD_WAIT_GOAL = 0.5
LOAD_LATENCY_GOAL = 500  # ms


def ratio(value: float | None, base: float | None) -> str:
    return "—" if value is None or not base else f"{value / base:.2f}x"


def _per_n_header(sizes) -> list[str]:
    return [
        "| tool | " + " | ".join(f"N={n}" for n in sizes) + " |",
        "| --- | " + " | ".join("---:" for _ in sizes) + " |",
    ]


def _per_n_rows(data: dict, names, cell) -> list[str]:
    """A row a tool, a cell an N: cell(figures or None, psql's median, n)."""
    results, labels = data["results"], data["labels"]
    return [
        f"| {labels[name]} | "
        + " | ".join(
            cell(results[n].get(name), results[n]["psql"].up_median, n) for n in sorted(results)
        )
        + " |"
        for name in names
    ]


def overhead_tables(data: dict) -> list[str]:
    """Sections 1 and 2: base to head, the marginal cost and the no-op, a column per N."""
    results, labels, floors = data["results"], data["labels"], data["floors"]
    sizes = sorted(results)
    names = [name for name in labels if any(name in results[n] for n in sizes)]
    peers = [name for name in names if name != "psql"]

    def up(fig, psql, n) -> str:
        return "—" if fig is None else f"{fig.up_median:.2f} ({ratio(fig.up_median, psql)})"

    def marginal(fig, psql, n) -> str:
        if fig is None or fig.noop_median is None:
            return "—"
        cost = fig.up_median - fig.noop_median
        return f"{cost:.2f} ({ratio(cost, psql)})"

    def noop(fig, psql, n) -> str:
        value = None if fig is None else fig.noop_median
        return "—" if value is None else f"{value:.3f} ({ratio(value, floors[n]['imports'])})"

    runs = {n: max(len(fig.up) for fig in results[n].values()) for n in sizes}
    return [
        "### 1. Base to head (median seconds; ratio to psql at the same N)",
        "",
        *_per_n_header(sizes),
        *_per_n_rows(data, names, up),
        "",
        "### Marginal cost: base to head minus the no-op at head (ratio to psql)",
        "",
        (
            f"The work a run does beyond starting up: the goal is within {MARGINAL_GOAL:.2f}x of "
            "psql at N=300, and below dbmate's."
        ),
        "",
        *_per_n_header(sizes),
        *_per_n_rows(data, peers, marginal),
        "",
        "### 2. No-op at head, what every deploy pays (median seconds; ratio to the import floor)",
        "",
        (
            f'The import floor, `python -c "{scenarios.FLOOR_IMPORT}"`, is timed in the same '
            f"rounds (the bare interpreter too). The goal is within {NOOP_GOAL:.2f}x of it "
            "at N=300."
        ),
        "",
        *_per_n_header(sizes),
        "| import floor | " + " | ".join(f"{floors[n]['imports']:.3f}" for n in sizes) + " |",
        "| bare interpreter | "
        + " | ".join(f"{floors[n]['interpreter']:.3f}" for n in sizes)
        + " |",
        *_per_n_rows(data, peers, noop),
        "",
        "Runs per median: "
        + ", ".join(f"N={n}: {runs[n]}" for n in sizes)
        + f" (sqitch: {scenarios.SQITCH_REPEATS}, it starts psql once per change; a peer whose "
        f"first run took over {scenarios.SLOW_RUN:.0f} s: 1).",
    ]


def _met(met: bool) -> str:
    return "yes" if met else "no"


def goals(data: dict, outcomes: list, suite: dict) -> list[str]:
    """The issue's four goals, met or missed, from this run's figures."""
    lines = ["### Goals", "", "| goal | measured | met |", "| --- | --- | --- |"]
    results, floors = data["results"], data["floors"]
    if 300 in results and "ours" in results[300]:
        ours, psql = results[300]["ours"], results[300]["psql"].up_median
        marginal = (ours.up_median - ours.noop_median) / psql
        noop = ours.noop_median / floors[300]["imports"]
        lines.append(
            f"| N=300 marginal cost within {MARGINAL_GOAL:.2f}x psql | {marginal:.2f}x | "
            f"{_met(marginal <= MARGINAL_GOAL)} |"
        )
        dbmate = results[300].get("dbmate")
        if dbmate is not None:
            theirs = (dbmate.up_median - dbmate.noop_median) / psql
            lines.append(
                f"| N=300 marginal cost below dbmate's | {marginal:.2f}x against {theirs:.2f}x | "
                f"{_met(marginal < theirs)} |"
            )
        lines.append(
            f"| N=300 no-op within {NOOP_GOAL:.2f}x import floor | {noop:.2f}x | "
            f"{_met(noop <= NOOP_GOAL)} |"
        )
    for outcome in outcomes[:1]:
        lines.append(
            f"| app blocked at most the longest lock timeout + 0.5 s ({LOCK_GOAL:g} s) | "
            f"worst {outcome.worst:.2f} s | {_met(outcome.worst <= LOCK_GOAL)} |"
        )
    if suite:
        total = suite["make test"]
        lines.append(
            f"| make test within 3 minutes | {total:.0f} s | {_met(total <= SUITE_GOAL)} |"
        )
    return lines


def lock_table(outcomes: list) -> list[str]:
    """Section 3: the application's latency while each runner's migration waits for a lock."""
    scenario = scenarios.LOCK_QUEUE
    lines = [
        "### 3. Lock-queue impact (application read latency while the migration runs)",
        "",
        (
            f"{scenario.app_threads} application threads read `{scenario.table}` "
            f"every {scenario.app_interval * 1000:.0f} ms; a transaction holds ACCESS SHARE on it "
            f"for {scenario.hold_for:.0f} s; the migration runs "
            "`ALTER TABLE app_items ADD COLUMN note text` (ACCESS EXCLUSIVE). "
            f"Goal: worst latency at most the longest lock timeout ({LOCK_WAIT_MAX * 1000:.0f} ms) "
            "+ 0.5 s."
        ),
        "",
        "| runner | app queries | p50 | p99 | worst | migration took | how |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for o in outcomes:
        lines.append(
            f"| {o.runner} | {o.queries} | {o.p50 * 1000:.1f} ms | {o.p99 * 1000:.0f} ms | "
            f"{o.worst:.2f} s | {o.migration_seconds:.1f} s"
            f"{'' if o.migration_ok else ' (failed)'} | {o.attempts_note} |"
        )
    return lines


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:,.1f} ms"


def paths_section(paths) -> list[str]:
    """Section 5: the other paths a deploy pays for (deploy_paths.Paths), each beside its peer."""
    small, top, rehearsed = paths.rehearsal_size, max(paths.sizes), scenarios.REHEARSED
    rows = []
    for n in paths.sizes:
        rows.append(
            (
                "at-head check (a run at head)",
                n,
                "at-head check",
                "Alembic's revision map (imports every shim)",
                "revision map",
            )
        )
        rows.append(
            (
                "checksum verification (a run at head)",
                n,
                "checksums",
                f"reading and hashing the {n} up files",
                "hashing floor",
            )
        )
    rows += [
        (
            "preflight (a run from base, less the revision map)",
            small,
            "preflight",
            f"reading and hashing the {small} up files",
            "hashing floor",
        ),
        (
            "backup scan, -x allow-data-loss=true, nothing destructive",
            small,
            "backup scan",
            f"reading and hashing the {small} up files",
            "hashing floor",
        ),
        (
            "revision strings' round trips (a run from base: file, history row, version, commit)",
            small,
            "revision strings",
            "`psql -1 -f` of the same files, one transaction",
            "psql -1",
        ),
        (
            f"rehearsal of the last {rehearsed} revisions (a run each)",
            small,
            "rehearsal, a run per revision",
            "one `alembic upgrade head` of the same revisions",
            "one upgrade head",
        ),
    ]
    lines = [
        "### 5. Other paths a deploy pays for (median of interleaved rounds)",
        "",
        (
            "Each step is timed inside a real run (a driver wraps it before env.py imports it), "
            "beside its peer: the work it cannot avoid, or the way Alembic alone does the same. "
            f"The rehearsal runs the last {rehearsed} of {small} revisions with "
            "`migration_runner.tools.rehearse.rehearse_revision`, as `make rehearse` does."
        ),
        "",
        "| path | N | ours | peer | peer time | ratio |",
        "| --- | ---: | ---: | --- | ---: | ---: |",
    ]
    for label, n, ours, peer_label, peer in rows:
        mine, theirs = paths.median(ours, n), paths.median(peer, n)
        shown = "—" if not mine or not theirs else f"{mine / theirs:.2f}x"
        lines.append(f"| {label} | {n} | {_ms(mine)} | {peer_label} | {_ms(theirs)} | {shown} |")
    lines += ["", f"Rounds: {len(paths.times.get('at-head check', {}).get(top, []))}."]
    return lines


def network_section(network) -> list[str]:
    """Section 6: runs from base through a proxy that delays every packet (network.Network)."""
    floor = network.median("psql")
    lines = [
        (
            f"### 6. Base to head over a network (N={network.size}, "
            f"{network.delay * 1000:g} ms added each way; median seconds, ratio to psql)"
        ),
        "",
        (
            "Each tool connects through a loopback proxy that holds every chunk "
            f"{network.delay * 1000:g} ms before passing it on, each way (bench/network.py): a "
            "round trip costs what it costs between a deploy and a server in the same region. "
            "`psql -f` sends each statement on a round trip of its own; our runner sends the "
            "revisions waiting for the server in one."
        ),
        "",
        "| tool | base to head | ratio |",
        "| --- | ---: | ---: |",
    ]
    for name, label in network.labels.items():
        lines.append(
            f"| {label} | {network.median(name):.2f} | {ratio(network.median(name), floor)} |"
        )
    lines += ["", f"Rounds: {len(network.times.get('psql', []))}."]
    return lines


def overhead_report(
    data: dict,
    missing: list[str],
    outcomes: list,
    suite: dict,
    paths,
    network=None,
    *,
    date: str,
    seconds: float,
    machine: str,
    versions: list[str],
) -> list[str]:
    """make bench's part of results.md, line by line (the bench-load sections are kept apart)."""
    lines = [
        "# Benchmark results",
        "",
        f"Produced by `make bench` on {date} in {seconds:.0f} s.",
        "",
        f"- Machine: {machine}",
        *(f"- {line}" for line in versions),
        (
            "- Trees: only synthetic revisions (not the project's 001); revision i creates table "
            "bench_i with a jsonb column and a GIN index. Every run gets a fresh database; "
            "Python tools run with PYTHONDONTWRITEBYTECODE=1, as in a fresh deploy checkout."
        ),
    ]
    if missing:
        lines.append(f"- Not measured (not installed): {', '.join(missing)}; see bench/README.md.")
    lines += ["", *overhead_tables(data), ""]
    if outcomes:
        lines += [*lock_table(outcomes), ""]
    if suite:
        lines += [
            "### 4. Test suite wall time on this machine",
            "",
            (
                "`make test` (lint, workflow and schema checks, the suite on PostgreSQL 15 and 18 "
                f"side by side): {suite['make test']:.0f} s, "
                f"{'passed' if suite['ok'] else 'FAILED'} ({suite['summary']})."
            ),
            "",
        ]
    if paths:
        lines += [*paths_section(paths), ""]
    if network:
        lines += [*network_section(network), ""]
    lines += [*goals(data, outcomes, suite), ""]
    lines += ["![time against number of revisions](time_vs_revisions.png)", ""]
    return lines


# make bench-load's section of results.md, one per PostgreSQL major.


def ms(value: float) -> str:
    """Milliseconds as the report shows them: a decimal below 10."""
    return f"{value:.1f}" if value < 10 else f"{value:,.0f}"


def p99_ratio(run, baseline) -> float:
    """The run's p99 against the baseline's (at least 1 ms: below, it is timer noise)."""
    return percentile(run.window, 0.99) / max(percentile(baseline.window, 0.99), 1.0)


def goals_missed(run, baseline) -> list[str]:
    """Which of the issue's goals for a migration under load a run misses."""
    ratio = p99_ratio(run, baseline)
    worst = max(run.window, default=0)
    checks = {
        "it failed": not run.ok,
        f"{run.failed} failed transactions": run.failed > 0,
        f"a lock wait of {run.longest_lock_wait:.2f} s": run.longest_lock_wait > LOAD_WAIT_GOAL,
        f"a {ms(worst)} ms transaction": worst > LOAD_LATENCY_GOAL,
        f"p99 {ratio:.1f}x the baseline's": ratio > LOAD_P99_GOAL,
    }
    return [reason for reason, missed in checks.items() if missed]


def run_summary(run) -> str:
    """One measure in a log line."""
    return (
        f"{run.pair}, {run.way}: {run.seconds:.1f} s, p50/p99/max"
        f" {percentile(run.window, 0.5):.0f}/{percentile(run.window, 0.99):.0f}/"
        f"{max(run.window, default=0):.0f} ms, lock wait {run.longest_lock_wait:.2f} s,"
        f" failed {run.failed}, WAL {run.wal_bytes / 2**20:,.0f} MB"
    )


def load_section(
    runs: list,
    responses: int,
    major: int,
    generation: float,
    size: str,
    minutes: float,
    bench,
    today: str,
) -> list[str]:
    """The section of one PostgreSQL major; runs[0] is the baseline."""
    mode = "" if responses >= scenarios.RESPONSES else ", quick mode"
    settings = bench.settings or {}
    lines = [
        f"{LOAD_SECTION} (PostgreSQL {major}, {responses:,} responses{mode})",
        "",
        f"`make bench-load` on {today}: {minutes:.0f} min in all; the data set was generated in"
        f" {generation:.0f} s (`responses` {size} with its indexes). pgbench plays the application"
        f" at a fixed {scenarios.RATE} transactions/s on {scenarios.CLIENTS} connections (reads of"
        " an assessment's answers, answer updates, organization reads, audit inserts). Each"
        f" migration runs through our runner with {bench.lead:.0f} s of load before it; latencies"
        f" count from its start to {bench.tail:.0f} s after its end, so transactions it queued are"
        " in, and from each transaction's scheduled start, so time queued is in. The baseline is"
        " the same measure while the runner applies an empty revision. Naive is the plain DDL"
        " with no lock timeout; safe is the pattern in docs/production.md with the runner's"
        " defaults (the backfill with 5,000-row batches and 20 ms pauses); safe, one core is the"
        " index built without parallel workers. A naive run's figures are a floor: transactions"
        " it queued that had not finished 5 s after it are not counted."
        " Server settings: "
        + (", ".join(f"{k}={v}" for k, v in settings.items()) or "as found (--url)")
        + ".",
        "",
        (
            "| migration | way | duration | p50 / p99 / max | worst 1-s p99 | p99 vs baseline"
            " | longest lock wait | failed | WAL | goals |"
        ),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    baseline = runs[0]
    safe, misses = 0, []
    for run in runs:
        window = run.window
        missed = goals_missed(run, baseline)
        met = "" if run is baseline else ("missed" if missed else "met")
        if run.way.startswith("safe"):
            safe += 1
            if missed:
                misses.append(f"{run.pair} ({run.way}): {', '.join(missed)}")
        lines.append(
            f"| {run.pair} | {run.way}{'' if run.ok else ' (FAILED)'} | {run.seconds:.1f} s"
            f" | {ms(percentile(window, 0.5))} / {ms(percentile(window, 0.99))} /"
            f" {ms(max(window, default=0))} ms | {ms(run.worst_second_p99())} ms"
            f" | {p99_ratio(run, baseline):,.1f}x | {run.longest_lock_wait:.2f} s | {run.failed}"
            f" | {run.wal_bytes / 2**20:,.0f} MB | {met} |"
        )
    verdict = "; ".join(misses) if misses else "none"
    plot, per_second = load_plot_name(major), load_csv_name(major)
    lines += [
        "",
        (
            f"Goals for the safe forms: p99 within {LOAD_P99_GOAL}x the baseline's, no transaction"
            f" waiting over {LOAD_WAIT_GOAL} s, no failed transaction. Met by"
            f" {safe - len(misses)} of {safe}; missed: {verdict}. Latency over time:"
            f" [{plot}]({plot}); second by second (p50, p99, max): [{per_second}]({per_second})."
        ),
        "",
    ]
    return lines


def write_load_section(target: Path, lines: list[str], major: int) -> None:
    """results.md with this major's load section replacing the one it had, every other kept."""
    text = target.read_text() if target.exists() else ""
    heading = lines[0].split(" (")[0] + f" (PostgreSQL {major},"
    kept = [block for block in text.split("\n## ") if not ("## " + block).startswith(heading)]
    target.write_text("\n## ".join(kept).rstrip() + "\n\n" + "\n".join(lines))


def write_per_second(target: Path, runs: list) -> None:
    """Every run's latency second by second (negative seconds: before the migration)."""
    with target.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(
            ["migration", "way", "second", "transactions", "p50_ms", "p99_ms", "max_ms"]
        )
        for run in runs:
            for second, count, p50, p99, worst in run.per_second():
                writer.writerow(
                    [run.pair, run.way, second, count, f"{p50:.2f}", f"{p99:.2f}", f"{worst:.2f}"]
                )
