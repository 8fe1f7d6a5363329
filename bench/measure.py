"""Measuring: the statistics, timed runs in a clean environment, the throwaway server, the
interleaved rounds of `make bench`'s sections 1 and 2, the test suite's wall time, and the
machine and versions a run measured on.

Every median and percentile of the benchmarks is computed here, one formula each.
"""

import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

from bench import scenarios
from bench.scenarios import PYTHON, ROOT
from migration_runner.servers import local_postgres


def median(values: list[float]) -> float:
    """The middle value; the mean of the two middle ones for an even count."""
    return statistics.median(values)


def percentile(values: list[float], q: float) -> float:
    """The smallest value with more than q of the values at or below it (0 for no values).

    Always a value that was measured: with 100 values, p50 is the 51st smallest and p99
    the largest; with 1,000, p99 is the 991st.
    """
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.floor(q * len(ordered)))]


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


def run_quietly(
    command: list[str], env: dict, cwd: Path | None, timeout: float | None = None
) -> subprocess.CompletedProcess:
    """Run a command with its output (stderr too) captured as text, whatever its exit."""
    return subprocess.run(
        command,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


def timed(command: list[str], env: dict, cwd: Path | None) -> float:
    """Wall seconds of one run of a command that must succeed."""
    started = time.perf_counter()
    result = run_quietly(command, env, cwd)
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


@dataclass
class Figures:
    up: list[float] = field(default_factory=list)
    noop: list[float] = field(default_factory=list)

    @property
    def up_median(self) -> float:
        return median(self.up)

    @property
    def noop_median(self) -> float | None:
        return median(self.noop) if self.noop else None


def _skipped(tool: scenarios.Tool, number: int, figures: Figures) -> bool:
    """A round a slow peer sits out: sqitch after its repeats, any peer after a slow first run."""
    if tool.name == "sqitch" and number >= scenarios.SQITCH_REPEATS:
        return True
    slow = figures.up and figures.up[0] > scenarios.SLOW_RUN
    return bool(number >= 1 and slow and tool.name not in scenarios.ALWAYS_REPEATED)


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
            tools = scenarios.build_tools(server, Path(temp) / f"n{n}", n, missing)
            tools = scenarios.selected(tools, only)
            figures = {tool.name: Figures() for tool in tools}
            labels.update({tool.name: tool.label for tool in tools})
            rounds = scenarios.rounds_at(n, repeats)
            imports, interpreter = [], []
            for number in range(rounds):
                # The floors are timed in every round too: this machine's load varies.
                imports.append(timed([PYTHON, "-c", scenarios.FLOOR_IMPORT], bare, None))
                interpreter.append(timed([PYTHON, "-c", "pass"], bare, None))
                for tool in tools:
                    if _skipped(tool, number, figures[tool.name]):
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
            floors[n] = {"imports": median(imports), "interpreter": median(interpreter)}
            shown = ", ".join(f"{name} {fig.up_median:.2f}s" for name, fig in figures.items())
            log(
                f"N={n}: {shown}; no-op ours {figures['ours'].noop_median:.3f}s, "
                f"import floor {floors[n]['imports']:.3f}s"
            )
    return {"results": results, "labels": labels, "floors": floors}, missing


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


# The setting a run measured in, for the report's header.


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


def _number(text: str) -> str:
    found = re.search(r"\d+(\.\d+)+", text)
    return found.group(0) if found else text


def file_system(path: Path) -> str:
    """The type of the file system path is on, from the longest mount point holding it
    ("tmpfs": memory)."""
    resolved, found, longest = os.path.realpath(path), "unknown", -1
    with open("/proc/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            _, mount_point, kind = line.split()[:3]
            mount_point = mount_point.replace("\\040", " ")
            inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) > longest:
                found, longest = kind, len(mount_point)
    return found


def versions(server: Server) -> list[str]:
    dbmate = scenarios.dbmate_binary()
    yoyo = scenarios.yoyo_binary()
    return [
        (
            f"PostgreSQL {server.version()} (throwaway local server, fsync off, "
            f"data on {file_system(server.local.datadir)}), "
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
