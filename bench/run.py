"""`make bench`: our runner against psql and its peers, on a throwaway local PostgreSQL.

    python -m bench.run [--sizes 1,100,300,1000] [--repeats 5] [--no-tests] [--quick]

Prints a table and writes bench/results.md and bench/time_vs_revisions.png.
See bench/README.md for what each measurement means.
"""

import argparse
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

from bench import deploy_paths, lock_queue, trees
from bench.output import kept_load_sections, output_folder, require_matplotlib
from migration_runner.servers import local_postgres
from migration_runner.steps.settings import OPTIONS, milliseconds

BENCH = Path(__file__).resolve().parent
# The report's texts and goals come from the runner's defaults of today.
DEFAULTS = {option.name: option.default for option in OPTIONS}
LOCK_WAIT_MAX = milliseconds(DEFAULTS["lock-timeout-max"]) / 1000  # one attempt's longest wait
LOCK_GOAL = LOCK_WAIT_MAX + 0.5
OUR_LABEL = (
    f"our runner (lock_timeout {DEFAULTS['lock-timeout']} growing to "
    f"{DEFAULTS['lock-timeout-max']}, {DEFAULTS['lock-retries']} retries)"
)
ROOT = BENCH.parent
PYTHON = sys.executable
SIZES = (1, 100, 300, 1000)
FLOOR_IMPORT = "import alembic, sqlalchemy, psycopg2"
# Fewer repeats where one run is long, to keep `make bench` under 10 minutes.
REPEATS_AT_1000 = 3
SQITCH_REPEATS = 1
# A peer whose first run at some N takes longer than this runs once at that N.
SLOW_RUN = 8.0
# Goals at N=300 (ISSUE 20): the marginal cost, with a commit per revision, against psql's,
# and ahead of dbmate's (which commits per migration too); the no-op against the import floor.
MARGINAL_GOAL = 1.10
NOOP_GOAL = 1.10


@dataclass
class Tool:
    name: str
    label: str
    has_noop: bool = True
    # filled per N
    command: list[str] = field(default_factory=list)
    cwd: Path | None = None


@dataclass
class Figures:
    up: list[float] = field(default_factory=list)
    noop: list[float] = field(default_factory=list)

    @property
    def up_median(self) -> float:
        return statistics.median(self.up)

    @property
    def noop_median(self) -> float | None:
        return statistics.median(self.noop) if self.noop else None


def clean_env(**extra: str) -> dict[str, str]:
    """No database URL or runner setting from the caller; no bytecode written.

    PYTHONDONTWRITEBYTECODE models a deploy: a fresh checkout has no compiled
    shims, so every run compiles them, as on Vercel.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MIGRATION_", "POSTGRES_", "DATABASE_URL", "PG"))
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def timed(command: list[str], env: dict, cwd: Path | None) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        command,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed:\n{result.stdout[-3000:]}")
    return elapsed


class Server:
    """The throwaway server and an admin connection to recreate databases."""

    def __init__(self, version: str) -> None:
        self.local = local_postgres.start_throwaway(version)
        self.admin = psycopg2.connect(self.local.url())
        self.admin.autocommit = True

    def url(self, database: str) -> str:
        return self.local.url(database)

    def fresh(self, database: str) -> str:
        with self.admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{database}" TEMPLATE template0')
        return self.url(database)

    def drop(self, database: str) -> None:
        with self.admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    def version(self) -> str:
        with self.admin.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return cursor.fetchone()[0]

    def stop(self) -> None:
        self.admin.close()
        local_postgres.remove_throwaway(self.local)


def dbmate_binary() -> Path | None:
    """dbmate's own binary from its npm package (not the node launcher in front of it)."""
    found = sorted((BENCH / "node_modules" / "@dbmate").glob("*/bin/dbmate"))
    if found:
        return found[0]
    launcher = BENCH / "node_modules" / ".bin" / "dbmate"
    return launcher if launcher.exists() else None


def yoyo_binary() -> Path | None:
    candidate = Path(PYTHON).parent / "yoyo"
    return candidate if candidate.exists() else None


def tool_version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "?"


def python_package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def build_tools(server: Server, base: Path, n: int, missing: list[str]) -> list[Tool]:
    """Every tool's tree for N revisions under base, and the command that runs it."""
    psql = str(server.local.bindir / "psql")
    tools = []
    script = trees.psql_script(base / "psql" / "all.sql", n)
    tools.append(
        Tool(
            "psql",
            "psql -1 -f (floor)",
            has_noop=False,
            command=[
                psql,
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-1",
                "-f",
                str(script),
                server.url("bench_psql"),
            ],
        )
    )
    ours = trees.ours(base / "ours", n)
    tools.append(
        Tool(
            "ours",
            "our runner",
            command=[PYTHON, "-m", "alembic", "-c", str(ours / "alembic.ini"), "upgrade", "head"],
            cwd=ours,
        )
    )
    plain = trees.plain_alembic(base / "plain", n, server.url("bench_plain"))
    tools.append(
        Tool(
            "plain",
            "plain Alembic shims",
            command=[PYTHON, "-m", "alembic", "-c", str(plain / "alembic.ini"), "upgrade", "head"],
            cwd=plain,
        )
    )
    dbmate = dbmate_binary()
    if dbmate:
        folder = trees.dbmate(base / "dbmate", n)
        tools.append(
            Tool(
                "dbmate",
                "dbmate",
                command=[
                    str(dbmate),
                    "--url",
                    server.url("bench_dbmate") + "?sslmode=disable",
                    "--migrations-dir",
                    str(folder),
                    "--no-dump-schema",
                    "up",
                ],
            )
        )
    elif "dbmate" not in missing:
        missing.append("dbmate")
    yoyo = yoyo_binary()
    if yoyo:
        folder = trees.yoyo(base / "yoyo", n)
        tools.append(
            Tool(
                "yoyo",
                "yoyo-migrations",
                command=[
                    str(yoyo),
                    "apply",
                    "--batch",
                    "--no-config-file",
                    "--database",
                    server.url("bench_yoyo"),
                    str(folder),
                ],
            )
        )
    elif "yoyo" not in missing:
        missing.append("yoyo")
    sqitch = shutil.which("sqitch")
    if sqitch:
        folder = trees.sqitch(base / "sqitch", n)
        tools.append(
            Tool(
                "sqitch",
                "sqitch",
                command=[
                    sqitch,
                    "--quiet",
                    "deploy",
                    "--client",
                    psql,
                    f"db:pg://postgres@127.0.0.1:{server.local.port}/bench_sqitch",
                ],
                cwd=folder,
            )
        )
    elif "sqitch" not in missing:
        missing.append("sqitch")
    return tools


def measure_overhead(
    server: Server, sizes, repeats: int, log, only: set[str] | None = None
) -> tuple[dict, list[str]]:
    """results[n][tool name] = Figures; tools run round-robin so noise spreads evenly."""
    results: dict[int, dict[str, Figures]] = {}
    floors: dict[int, dict[str, float]] = {}
    labels: dict[str, str] = {}
    missing: list[str] = []
    bare = clean_env()
    with tempfile.TemporaryDirectory(prefix="bench-trees-") as temp:
        for n in sizes:
            tools = build_tools(server, Path(temp) / f"n{n}", n, missing)
            tools = [tool for tool in tools if only is None or tool.name in only | {"psql"}]
            figures = {tool.name: Figures() for tool in tools}
            labels.update({tool.name: tool.label for tool in tools})
            rounds = REPEATS_AT_1000 if n >= 1000 else repeats
            imports, interpreter = [], []
            for number in range(rounds):
                # The floors are timed in every round too: this machine's load varies.
                imports.append(timed([PYTHON, "-c", FLOOR_IMPORT], bare, None))
                interpreter.append(timed([PYTHON, "-c", "pass"], bare, None))
                for tool in tools:
                    if tool.name == "sqitch" and number >= SQITCH_REPEATS:
                        continue
                    slow = figures[tool.name].up and figures[tool.name].up[0] > SLOW_RUN
                    if number >= 1 and slow and tool.name not in ("psql", "ours", "plain"):
                        continue
                    database = f"bench_{tool.name}"
                    url = server.fresh(database)
                    env = clean_env(DATABASE_URL=url)
                    figures[tool.name].up.append(timed(tool.command, env, tool.cwd))
                    if tool.has_noop:
                        figures[tool.name].noop.append(timed(tool.command, env, tool.cwd))
                    server.drop(database)
                log(f"  N={n} round {number + 1}/{rounds} done")
            results[n] = figures
            floors[n] = {
                "imports": statistics.median(imports),
                "interpreter": statistics.median(interpreter),
            }
            shown = ", ".join(f"{name} {fig.up_median:.2f}s" for name, fig in figures.items())
            log(
                f"N={n}: {shown}; no-op ours {figures['ours'].noop_median:.3f}s, "
                f"import floor {floors[n]['imports']:.3f}s"
            )
    return {"results": results, "labels": labels, "floors": floors}, missing


def measure_lock_queue(server: Server, log) -> list[lock_queue.Outcome]:
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="bench-lock-") as temp:
        url = server.fresh("bench_lock")
        ours = trees.ours(
            Path(temp) / "ours", 1, lambda i: lock_queue.UP, lambda i: lock_queue.DOWN
        )
        plain = trees.plain_alembic(
            Path(temp) / "plain", 1, url, lambda i: lock_queue.UP, lambda i: lock_queue.DOWN
        )
        for name, tree in (
            (OUR_LABEL, ours),
            ("plain Alembic (no lock_timeout)", plain),
        ):
            command = [PYTHON, "-m", "alembic", "-c", str(tree / "alembic.ini"), "upgrade", "head"]
            outcome = lock_queue.measure(name, url, command, clean_env(DATABASE_URL=url), tree)
            log(
                f"lock queue, {name}: worst {outcome.worst:.2f}s, p99 {outcome.p99:.3f}s, "
                f"migration {outcome.migration_seconds:.1f}s ({outcome.attempts_note})"
            )
            outcomes.append(outcome)
        server.drop("bench_lock")
    return outcomes


def measure_test_suite(log) -> dict[str, float]:
    """Wall time of `make test` (lint, checks, the suite on PostgreSQL 15 and 18), run once."""
    env = {key: value for key, value in os.environ.items() if key != "TEST_DATABASE_URL"}
    started = time.perf_counter()
    result = subprocess.run(
        ["make", "-s", "test"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    summaries = [
        line.strip("= ")
        for line in result.stdout.splitlines()
        if re.search(r"\d+ (passed|failed)", line)
    ]
    log(f"make test: {elapsed:.0f}s, exit {result.returncode}: {'; '.join(summaries)}")
    return {
        "make test": elapsed,
        "ok": result.returncode == 0,
        "summary": "; ".join(summaries) or "no pytest summary",
    }


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "?"
    try:
        total = Path("/proc/meminfo").read_text().split()[1]
        memory = f"{int(total) / 1024 / 1024:.0f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    distro = "?"
    try:
        distro = re.search(r'PRETTY_NAME="([^"]+)"', Path("/etc/os-release").read_text()).group(1)
    except (OSError, AttributeError):
        pass
    return f"{os.cpu_count()} cores ({cpu}), {memory} RAM, {distro}, {platform.machine()}"


def fmt(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.2f}"


def ratio(value: float | None, base: float | None) -> str:
    return "—" if value is None or not base else f"{value / base:.2f}x"


def overhead_tables(data: dict) -> list[str]:
    results, labels, floors = data["results"], data["labels"], data["floors"]
    sizes = sorted(results)
    names = [name for name in labels if any(name in results[n] for n in sizes)]
    lines = [
        "### 1. Base to head (median seconds; ratio to psql at the same N)",
        "",
        "| tool | " + " | ".join(f"N={n}" for n in sizes) + " |",
        "| --- | " + " | ".join("---:" for _ in sizes) + " |",
    ]
    for name in names:
        cells = []
        for n in sizes:
            fig = results[n].get(name)
            base = results[n]["psql"].up_median
            cells.append(
                "—" if fig is None else f"{fig.up_median:.2f} ({ratio(fig.up_median, base)})"
            )
        lines.append(f"| {labels[name]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "### Marginal cost: base to head minus the no-op at head (ratio to psql)",
        "",
        (
            f"The work a run does beyond starting up: the goal is within {MARGINAL_GOAL:.2f}x of "
            "psql at N=300, and below dbmate's."
        ),
        "",
        "| tool | " + " | ".join(f"N={n}" for n in sizes) + " |",
        "| --- | " + " | ".join("---:" for _ in sizes) + " |",
    ]
    for name in names:
        if name == "psql":
            continue
        cells = []
        for n in sizes:
            fig = results[n].get(name)
            base = results[n]["psql"].up_median
            if fig is None or fig.noop_median is None:
                cells.append("—")
            else:
                marginal = fig.up_median - fig.noop_median
                cells.append(f"{marginal:.2f} ({ratio(marginal, base)})")
        lines.append(f"| {labels[name]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "### 2. No-op at head, what every deploy pays (median seconds; ratio to the import floor)",
        "",
        (
            f'The import floor, `python -c "{FLOOR_IMPORT}"`, is timed in the same rounds '
            f"(the bare interpreter too). The goal is within {NOOP_GOAL:.2f}x of it at N=300."
        ),
        "",
        "| tool | " + " | ".join(f"N={n}" for n in sizes) + " |",
        "| --- | " + " | ".join("---:" for _ in sizes) + " |",
        "| import floor | " + " | ".join(f"{floors[n]['imports']:.3f}" for n in sizes) + " |",
        "| bare interpreter | "
        + " | ".join(f"{floors[n]['interpreter']:.3f}" for n in sizes)
        + " |",
    ]
    for name in names:
        if name == "psql":
            continue
        cells = []
        for n in sizes:
            fig = results[n].get(name)
            noop = None if fig is None else fig.noop_median
            base = floors[n]["imports"]
            cells.append("—" if noop is None else f"{noop:.3f} ({ratio(noop, base)})")
        lines.append(f"| {labels[name]} | " + " | ".join(cells) + " |")
    runs = {n: max(len(fig.up) for fig in results[n].values()) for n in sizes}
    lines += [
        "",
        "Runs per median: "
        + ", ".join(f"N={n}: {runs[n]}" for n in sizes)
        + f" (sqitch: {SQITCH_REPEATS}, it starts psql once per change; a peer whose first run "
        f"took over {SLOW_RUN:.0f} s: 1).",
    ]
    return lines


def goals(data: dict, outcomes: list[lock_queue.Outcome], suite: dict) -> list[str]:
    """The issue's four goals, met or missed, from this run's figures."""
    lines = ["### Goals", "", "| goal | measured | met |", "| --- | --- | --- |"]
    results, floors = data["results"], data["floors"]
    if 300 in results and "ours" in results[300]:
        ours, psql = results[300]["ours"], results[300]["psql"].up_median
        marginal = (ours.up_median - ours.noop_median) / psql
        noop = ours.noop_median / floors[300]["imports"]
        lines.append(
            f"| N=300 marginal cost within {MARGINAL_GOAL:.2f}x psql | {marginal:.2f}x | "
            f"{'yes' if marginal <= MARGINAL_GOAL else 'no'} |"
        )
        dbmate = results[300].get("dbmate")
        if dbmate is not None:
            theirs = (dbmate.up_median - dbmate.noop_median) / psql
            lines.append(
                f"| N=300 marginal cost below dbmate's | {marginal:.2f}x against {theirs:.2f}x | "
                f"{'yes' if marginal < theirs else 'no'} |"
            )
        lines.append(
            f"| N=300 no-op within {NOOP_GOAL:.2f}x import floor | {noop:.2f}x | "
            f"{'yes' if noop <= NOOP_GOAL else 'no'} |"
        )
    for outcome in outcomes[:1]:
        lines.append(
            f"| app blocked at most the longest lock timeout + 0.5 s ({LOCK_GOAL:g} s) | "
            f"worst {outcome.worst:.2f} s | {'yes' if outcome.worst <= LOCK_GOAL else 'no'} |"
        )
    if suite:
        total = suite["make test"]
        lines.append(
            f"| make test within 3 minutes | {total:.0f} s | {'yes' if total <= 180 else 'no'} |"
        )
    return lines


def lock_table(outcomes: list[lock_queue.Outcome]) -> list[str]:
    lines = [
        "### 3. Lock-queue impact (application read latency while the migration runs)",
        "",
        (
            f"{lock_queue.APP_THREADS} application threads read `{lock_queue.TABLE}` "
            f"every {lock_queue.APP_INTERVAL * 1000:.0f} ms; a transaction holds ACCESS SHARE on it "
            f"for {lock_queue.HOLD_FOR:.0f} s; the migration runs "
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


def plot(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results, labels = data["results"], data["labels"]
    sizes = sorted(results)
    figure, axis = plt.subplots(figsize=(8, 5), dpi=110)
    for name, label in labels.items():
        points = [(n, results[n][name]) for n in sizes if name in results[n]]
        line = axis.plot(
            [n for n, _ in points],
            [fig.up_median for _, fig in points],
            marker="o",
            label=f"{label}: base to head",
        )
        noop = [(n, fig.noop_median) for n, fig in points if fig.noop_median is not None]
        if noop:
            axis.plot(
                [n for n, _ in noop],
                [value for _, value in noop],
                linestyle="--",
                marker=".",
                color=line[0].get_color(),
                alpha=0.6,
                label=f"{label}: no-op at head",
            )
    floors = data["floors"]
    axis.plot(
        sizes,
        [floors[n]["imports"] for n in sizes],
        color="grey",
        linestyle=":",
        label="import floor (alembic, sqlalchemy, psycopg2)",
    )
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("number of revisions (each: CREATE TABLE + GIN index)")
    axis.set_ylabel("wall time, seconds (median)")
    axis.set_title("Migration time against number of revisions")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _number(text: str) -> str:
    found = re.search(r"\d+(\.\d+)+", text)
    return found.group(0) if found else text


def versions(server: Server) -> list[str]:
    dbmate = dbmate_binary()
    yoyo = yoyo_binary()
    return [
        (
            f"PostgreSQL {server.version()} (throwaway local server, fsync off), "
            f"psql {_number(tool_version([str(server.local.bindir / 'psql'), '--version']))}"
        ),
        (
            f"Python {platform.python_version()}, alembic {python_package_version('alembic')}, "
            f"SQLAlchemy {python_package_version('sqlalchemy')}, "
            f"psycopg2 {python_package_version('psycopg2-binary')}, "
            f"pglast {python_package_version('pglast')}"
        ),
        "dbmate "
        + (_number(tool_version([str(dbmate), "--version"])) if dbmate else "missing")
        + ", yoyo-migrations "
        + (python_package_version("yoyo-migrations") if yoyo else "missing")
        + ", sqitch "
        + (_number(tool_version(["sqitch", "--version"])) if shutil.which("sqitch") else "missing"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-tests", action="store_true", help="skip timing the test suite")
    parser.add_argument("--no-lock", action="store_true", help="skip the lock-queue scenario")
    parser.add_argument(
        "--no-paths", action="store_true", help="skip the other deploy paths (section 5)"
    )
    parser.add_argument("--pg", default=local_postgres.default_version())
    parser.add_argument("--tools", help="only these, e.g. ours,plain (psql always runs)")
    parser.add_argument(
        "--commit",
        action="store_true",
        help="write bench/results.md and its plot (else a run folder)",
    )
    args = parser.parse_args(argv)
    require_matplotlib()  # before minutes of measuring, not after
    output = output_folder(args.commit) / "results.md"
    sizes = [int(size) for size in args.sizes.split(",")]
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    server = Server(args.pg)
    try:
        log(f"PostgreSQL {server.version()} on port {server.local.port}")
        only = set(args.tools.split(",")) if args.tools else None
        data, missing = measure_overhead(server, sizes, args.repeats, log, only)
        outcomes = [] if args.no_lock else measure_lock_queue(server, log)
        paths = (
            None
            if args.no_paths
            else deploy_paths.measure(server, clean_env, sizes, args.repeats, log)
        )
        versions_lines = versions(server)
    finally:
        server.stop()
    suite = {} if args.no_tests else measure_test_suite(log)

    lines = [
        "# Benchmark results",
        "",
        (
            f"Produced by `make bench` on {datetime.date.today().isoformat()} "
            f"in {time.perf_counter() - started:.0f} s."
        ),
        "",
        f"- Machine: {machine()}",
        *(f"- {line}" for line in versions_lines),
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
                f"`make test` (lint, workflow and schema checks, the suite on PostgreSQL 15 and 18 side by side): "
                f"{suite['make test']:.0f} s, {'passed' if suite['ok'] else 'FAILED'} "
                f"({suite['summary']})."
            ),
            "",
        ]
    if paths:
        lines += [*deploy_paths.section(paths), ""]
    lines += [*goals(data, outcomes, suite), ""]
    lines += ["![time against number of revisions](time_vs_revisions.png)", ""]
    plot(data, output.parent / "time_vs_revisions.png")
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
