"""The load benchmark (make bench-load) measures a migration pair and puts the table back.

A small run of one pair on the test server: pgbench load, the naive and the
safe index build through the runner, their rows in the report, and the
database left at the tree's head with every generated row and no index of the
bench's.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

from support.database import current_version, fresh_database, query
from support.project import HEAD

ROOT = Path(__file__).resolve().parents[1]
RESPONSES = 20_000


def test_load_benchmark_reports_naive_and_safe_and_leaves_the_table_as_it_was(
    postgres_server, tmp_path
):
    committed = {path: path.read_bytes() for path in (ROOT / "bench").glob("*.*")}
    with fresh_database(postgres_server) as url:
        bench = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.load",
                "--url",
                url,
                "--responses",
                str(RESPONSES),
                "--only",
                "index",
                "--lead",
                "1",
                "--tail",
                "0.5",
                "--no-plot",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert bench.returncode == 0, bench.stdout + bench.stderr
        results = Path(re.search(r"done in [\d.]+ min: (\S+)", bench.stdout).group(1))
        assert results.parent.parent == ROOT / "bench" / "runs"  # a run folder, git-ignored
        report = results.read_text()
        shutil.rmtree(results.parent)
        # Nothing committed was touched: figures change only with --commit (make COMMIT=1).
        assert {path: path.read_bytes() for path in (ROOT / "bench").glob("*.*")} == committed

        rows = [line.split(" | ") for line in report.splitlines() if "| index |" in line]
        assert [row[1] for row in rows] == ["naive", "safe", "safe, one core"]
        assert "| no migration (an empty revision) | baseline |" in report
        for row in rows:
            assert row[7] == "0", row  # no failed application transaction
            assert float(row[2].removesuffix(" s")) > 0
            p50, p99, worst = (
                float(ms.replace(",", "")) for ms in row[3].removesuffix(" ms").split(" / ")
            )
            assert 0 <= p50 <= p99 <= worst
        assert current_version(url) == HEAD
        assert query(url, "SELECT count(*) FROM responses") == [(RESPONSES,)]
        assert query(url, "SELECT count(*) FROM audit_logs")[0][0] > 0  # the load wrote
        assert query(
            url, "SELECT count(*) FROM pg_indexes WHERE indexname = 'responses_answered_at_idx'"
        ) == [(0,)]
