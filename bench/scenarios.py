"""What the benchmarks run: the tools and their commands, the N values, the lock-queue
scenario, the deploy paths' rehearsal, and the load benchmark's data set, workload and
migration pairs. Data only: measure.py times these, report.py and plots.py show them.

The synthetic trees each tool reads are laid out by trees.py.
"""

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench import trees
from migration_runner.steps.settings import OPTIONS

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable

# make bench, sections 1 and 2: base to head and the no-op at head, per N.
SIZES = (1, 100, 300, 1000)
REPEATS = 5
# Fewer repeats where one run is long, to keep `make bench` under 10 minutes.
REPEATS_AT_1000 = 3
# The goals are read at N=300 from a difference of two medians of about half a second each
# (base to head less the no-op): five rounds left it to chance, the same code reading 0.88x
# and 1.23x psql two minutes apart (2026-12-02). Three times the rounds there.
GOAL_SIZE = 300
GOAL_ROUNDS = 3
SQITCH_REPEATS = 1
# A peer whose first run at some N takes longer than this runs once at that N.
SLOW_RUN = 8.0
# Never cut short by SLOW_RUN: the floor and the two Alembic runners.
ALWAYS_REPEATED = ("psql", "ours", "plain")
FLOOR_IMPORT = "import alembic, sqlalchemy, psycopg2"


@dataclass
class Tool:
    name: str
    label: str
    has_noop: bool = True
    # filled per N
    command: list[str] = field(default_factory=list)
    cwd: Path | None = None


def selected(tools: list[Tool], only: set[str] | None) -> list[Tool]:
    """The tools `--tools` (only) names, psql, the floor, always among them; all when None."""
    return [tool for tool in tools if only is None or tool.name in only | {"psql"}]


def rounds_at(n: int, repeats: int) -> int:
    """How many interleaved rounds run at N."""
    if n >= 1000:
        return REPEATS_AT_1000
    return repeats * GOAL_ROUNDS if n == GOAL_SIZE else repeats


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


def alembic_upgrade(tree: Path) -> list[str]:
    return [PYTHON, "-m", "alembic", "-c", str(tree / "alembic.ini"), "upgrade", "head"]


def psql_floor(server, script: Path, database: str) -> list[str]:
    """`psql -1 -f script` on database: the floor every tool is measured against."""
    psql = str(server.local.bindir / "psql")
    return [
        psql,
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-1",
        "-f",
        str(script),
        server.url(database),
    ]


def build_tools(server, base: Path, n: int, missing: list[str]) -> list[Tool]:
    """Every tool's tree for N revisions under base, and the command that runs it."""
    psql = str(server.local.bindir / "psql")
    script = trees.psql_script(base / "psql" / "all.sql", n)
    ours = trees.ours(base / "ours", n)
    plain = trees.plain_alembic(base / "plain", n, server.url("bench_plain"))
    tools = [
        Tool(
            "psql",
            "psql -1 -f (floor)",
            has_noop=False,
            command=psql_floor(server, script, "bench_psql"),
        ),
        Tool("ours", "our runner", command=alembic_upgrade(ours), cwd=ours),
        Tool("plain", "plain Alembic shims", command=alembic_upgrade(plain), cwd=plain),
    ]

    def peer(name: str, binary, build) -> None:
        """A peer that may not be installed: its tool when it is, else named as missing."""
        if binary:
            tools.append(build(str(binary)))
        elif name not in missing:
            missing.append(name)

    peer(
        "dbmate",
        dbmate_binary(),
        lambda binary: Tool(
            "dbmate",
            "dbmate",
            command=[
                binary,
                "--url",
                server.url("bench_dbmate") + "?sslmode=disable",
                "--migrations-dir",
                str(trees.dbmate(base / "dbmate", n)),
                "--no-dump-schema",
                "up",
            ],
        ),
    )
    peer(
        "yoyo",
        yoyo_binary(),
        lambda binary: Tool(
            "yoyo",
            "yoyo-migrations",
            command=[
                binary,
                "apply",
                "--batch",
                "--no-config-file",
                "--database",
                server.url("bench_yoyo"),
                str(trees.yoyo(base / "yoyo", n)),
            ],
        ),
    )
    peer(
        "sqitch",
        shutil.which("sqitch"),
        lambda binary: Tool(
            "sqitch",
            "sqitch",
            command=[
                binary,
                "--quiet",
                "deploy",
                "--client",
                psql,
                f"db:pg://postgres@127.0.0.1:{server.local.port}/bench_sqitch",
            ],
            cwd=trees.sqitch(base / "sqitch", n),
        ),
    )
    return tools


# make bench, section 3: the lock queue (lock_queue.py measures it), our runner with
# the defaults of today against plain Alembic.
DEFAULTS = {option.name: option.default for option in OPTIONS}
OUR_LABEL = (
    f"our runner (lock_timeout {DEFAULTS['lock-timeout']} growing to "
    f"{DEFAULTS['lock-timeout-max']}, {DEFAULTS['lock-retries']} retries)"
)
PLAIN_LABEL = "plain Alembic (no lock_timeout)"


@dataclass(frozen=True)
class LockQueue:
    table: str = "app_items"
    rows: int = 1000
    app_threads: int = 4
    app_interval: float = 0.02  # seconds between one thread's queries: 4 x 50 = 200 queries/s
    hold_from: float = 1.0  # seconds after the start
    hold_for: float = 8.0
    migrate_from: float = 1.5
    tail: float = 2.0  # keep measuring after the migration ends and the holder is gone
    hard_limit: float = 60.0  # no phase runs longer than this, whatever happens

    @property
    def up(self) -> str:
        return (
            f"-- 0001_add_{self.table}_note (up): needs ACCESS EXCLUSIVE on {self.table}.\n"
            "-- Destructive: no\n"
            "-- Transaction: yes\n"
            f"ALTER TABLE {self.table} ADD COLUMN note text;\n"
        )

    @property
    def down(self) -> str:
        return (
            f"-- 0001_add_{self.table}_note (down).\n"
            "-- Destructive: yes\n"
            "-- Transaction: yes\n"
            f"ALTER TABLE {self.table} DROP COLUMN note;\n"
        )


LOCK_QUEUE = LockQueue()

# make bench, section 5: the rehearsal's pending revisions, on top of a long history.
REHEARSED = 10


def deploy_path_sizes(sizes) -> tuple[list[int], int]:
    """The N values the deploy paths run at, and the smaller one (preflight, backup, rehearsal)."""
    top = max(sizes)
    return sorted({min(300, top), top}), min(300, top)


# make bench-load: common migrations on a big `responses` table under pgbench load.
QUESTIONS = 100
RATE = 200  # application transactions per second
CLIENTS = 4
LEAD = 3.0  # seconds of load before each migration
TAIL = 3.0  # and after it: transactions it queued finish then, so they count
FLUSH = 2.0  # more load after the measure: what the stopped pgbench loses is not in it
RESPONSES = 10_000_000
QUICK_RESPONSES = 1_000_000
# The baseline: the same load while the runner applies a revision that changes
# nothing, so the runner's own start (Python on 2 cores) is in both.
NO_MIGRATION = "SELECT 1;"
# For the benchmark server only; the values are reported with the results.
SERVER_SETTINGS = {
    "shared_buffers": "1GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "maintenance_work_mem": "256MB",
}


def dataset_sizes(responses: int) -> dict[str, int]:
    """Rows of each table for a data set of this many responses."""
    assessments = max(1, responses // QUESTIONS)
    return {
        "assessments": assessments,
        "organizations": max(10, assessments // 50),
        "users": max(20, assessments // 10),
        "questions": QUESTIONS,
    }


# The application: ids are md5 of a number, so pgbench can name rows.
WORKLOAD = {
    "read_answers": (
        5,
        (
            "\\set a random(1, :assessments)\n"
            "SELECT question_id, answer FROM responses"
            " WHERE assessment_id = md5('a' || :a)::uuid;\n"
        ),
    ),
    "update_answer": (
        2,
        (
            "\\set a random(1, :assessments)\n\\set q random(1, 100)\n"
            "UPDATE responses SET answer = '{\"value\": 3}', updated_at = now()"
            " WHERE assessment_id = md5('a' || :a)::uuid AND question_id = md5('q' || :q)::uuid;\n"
        ),
    ),
    "read_organization": (
        2,
        (
            "\\set o random(1, :organizations)\n"
            "SELECT name, plan FROM organizations WHERE id = md5('o' || :o)::uuid;\n"
        ),
    ),
    "audit": (
        1,
        (
            "\\set o random(1, :organizations)\n"
            "INSERT INTO audit_logs (organization_id, action, entity_type)"
            " VALUES (md5('o' || :o)::uuid, 'response.updated', 'response');\n"
        ),
    ),
}
DATASET = """
SET session_replication_role = replica;  -- load without per-row foreign key checks
INSERT INTO organizations (id, name, slug)
SELECT md5('o' || i)::uuid, 'Organization ' || i, 'org-' || i FROM generate_series(1, {organizations}) AS i;
INSERT INTO users (id, organization_id, email, role)
SELECT md5('u' || i)::uuid, md5('o' || (1 + i % {organizations}))::uuid, 'user' || i || '@example.com', 'member'
FROM generate_series(1, {users}) AS i;
INSERT INTO frameworks (id, key, name, version) VALUES (md5('f1')::uuid, 'iso-27001', 'ISO 27001', '2022');
INSERT INTO questions (id, framework_id, code, prompt, category, position, answer_type)
SELECT md5('q' || i)::uuid, md5('f1')::uuid, 'Q' || i, 'Question ' || i, 'category ' || i % 10, i, 'scale'
FROM generate_series(1, {questions}) AS i;
INSERT INTO assessments (id, organization_id, framework_id, title, status, started_at)
SELECT md5('a' || i)::uuid, md5('o' || (1 + i % {organizations}))::uuid, md5('f1')::uuid,
       'Assessment ' || i, 'in_progress', now()
FROM generate_series(1, {assessments}) AS i;
INSERT INTO responses (assessment_id, question_id, answer, answered_by)
SELECT md5('a' || a)::uuid, md5('q' || q)::uuid, jsonb_build_object('value', (a + q) % 5),
       md5('u' || (1 + (a * 7 + q) % {users}))::uuid
FROM generate_series(1, {assessments}) AS a, generate_series(1, {questions}) AS q;
RESET session_replication_role;
-- Setup for the pairs below: a foreign key to add back, a column to backfill.
ALTER TABLE responses DROP CONSTRAINT responses_answered_by_fkey;
ALTER TABLE responses ADD COLUMN score integer;
VACUUM ANALYZE;
"""
BACKFILL_SAFE = (ROOT / "docs" / "templates" / "batched_backfill.sql").read_text()
BACKFILL_SAFE = (
    BACKFILL_SAFE.replace("organizations.score", "responses.score")
    .replace("FROM organizations", "FROM responses")
    .replace("UPDATE organizations AS o", "UPDATE responses AS o")
    .replace("SET score = length(o.slug)", "SET score = (o.answer ->> 'value')::integer")
)


@dataclass(frozen=True)
class Variant:
    up: str
    transactional: bool = True
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pair:
    naive: Variant
    safe: Variant
    undo: str  # run directly between the measured runs, then `alembic stamp` back to the head
    more: tuple[tuple[str, Variant], ...] = ()  # other safe forms, measured beside the first

    def ways(self) -> list[tuple[str, Variant]]:
        return [("naive", self.naive), ("safe", self.safe), *self.more]


NAIVE = ("-x", "lock-timeout=0")  # what a runner without our steps does: wait, however long
NEW_CONSTRAINT = "ALTER TABLE responses DROP CONSTRAINT IF EXISTS {};"
# Not formatted: a migration a block, its naive and safe forms one under the other.
PAIRS = {
    # Safe: the column without a default, then the default for new rows; existing
    # rows are filled by a batched backfill (the last pair), not by a table rewrite.
    "add column, volatile default": Pair(
        Variant(
            "ALTER TABLE responses ADD COLUMN token uuid DEFAULT gen_random_uuid();", options=NAIVE
        ),
        Variant(
            "ALTER TABLE responses ADD COLUMN token uuid;\n"
            "ALTER TABLE responses ALTER COLUMN token SET DEFAULT gen_random_uuid();"
        ),
        "ALTER TABLE responses DROP COLUMN IF EXISTS token;",
    ),
    # Safe: a NOT VALID CHECK validated without blocking writes lets SET NOT NULL skip its scan.
    "SET NOT NULL": Pair(
        Variant("ALTER TABLE responses ALTER COLUMN answered_by SET NOT NULL;", options=NAIVE),
        Variant(
            "ALTER TABLE responses ADD CONSTRAINT responses_answered_by_not_null"
            " CHECK (answered_by IS NOT NULL) NOT VALID;\n"
            "ALTER TABLE responses VALIDATE CONSTRAINT responses_answered_by_not_null;\n"
            "ALTER TABLE responses ALTER COLUMN answered_by SET NOT NULL;\n"
            "ALTER TABLE responses DROP CONSTRAINT responses_answered_by_not_null;",
            False,
        ),
        "ALTER TABLE responses ALTER COLUMN answered_by DROP NOT NULL;\n"
        + NEW_CONSTRAINT.format("responses_answered_by_not_null"),
    ),
    "foreign key": Pair(
        Variant(
            "ALTER TABLE responses ADD CONSTRAINT responses_answered_by_fkey FOREIGN KEY"
            " (answered_by) REFERENCES users (id) ON DELETE SET NULL;",
            options=NAIVE,
        ),
        Variant(
            "ALTER TABLE responses ADD CONSTRAINT responses_answered_by_fkey FOREIGN KEY"
            " (answered_by) REFERENCES users (id) ON DELETE SET NULL NOT VALID;\n"
            "ALTER TABLE responses VALIDATE CONSTRAINT responses_answered_by_fkey;",
            False,
        ),
        NEW_CONSTRAINT.format("responses_answered_by_fkey"),
    ),
    "CHECK": Pair(
        Variant(
            "ALTER TABLE responses ADD CONSTRAINT responses_answer_check"
            " CHECK (jsonb_typeof(answer) = 'object');",
            options=NAIVE,
        ),
        Variant(
            "ALTER TABLE responses ADD CONSTRAINT responses_answer_check"
            " CHECK (jsonb_typeof(answer) = 'object') NOT VALID;\n"
            "ALTER TABLE responses VALIDATE CONSTRAINT responses_answer_check;",
            False,
        ),
        NEW_CONSTRAINT.format("responses_answer_check"),
    ),
    "index": Pair(
        Variant(
            "CREATE INDEX responses_answered_at_idx ON responses (answered_at);", options=NAIVE
        ),
        Variant(
            "CREATE INDEX CONCURRENTLY responses_answered_at_idx ON responses (answered_at);", False
        ),
        "DROP INDEX IF EXISTS responses_answered_at_idx;",
        # On a server with few cores: a build without parallel workers leaves the
        # application a core (PostgreSQL 11+ builds B-trees in parallel by default).
        (
            (
                "safe, one core",
                Variant(
                    "SET max_parallel_maintenance_workers = 0;\n"
                    "CREATE INDEX CONCURRENTLY responses_answered_at_idx ON responses (answered_at);",
                    False,
                ),
            ),
        ),
    ),
    "backfill a new column": Pair(
        Variant("UPDATE responses SET score = (answer ->> 'value')::integer;", options=NAIVE),
        Variant(BACKFILL_SAFE, False, ("-x", "batch-size=5000", "-x", "batch-pause=20ms")),
        "ALTER TABLE responses DROP COLUMN score;\nALTER TABLE responses ADD COLUMN score integer;",
    ),
}
