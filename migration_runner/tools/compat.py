"""`make compat`: the running release's code, proved to work after this tree's expand phase.

    migrations compat [--ref REF] [--tree DIR] [--scratch-url URL]

The running release is a git ref: --ref, else COMPAT_REF, else the merge base of HEAD
and origin/main, else main (tools/release.py). Its files (models and migration tree)
are taken out with `git archive` into a temporary folder; this tree is the working
tree as it is, uncommitted changes included.

1. Static pass, before anything runs (tools/compat_static.py): the expand revisions
   the release lacks must not drop, rename or narrow what the old models map, nor
   leave a column their INSERT leaves out NOT NULL without a default.
2. On a scratch database (one per run; SCHEMA_SCRATCH_URL's server, or a throwaway
   one), each step in its own process: the release's own tree migrates to the
   release's head; the old models seed a row of every class, then insert, select,
   update and delete one (the baseline; tools/compat_probe.py); this tree's expand
   phase runs (`alembic -x phase=expand upgrade head`); the old models repeat the
   baseline's rows, and the new models do the same; the contract phase runs (the
   rest) and the new models once more. The scratch migrations may drop the seeded
   rows' columns (`-x allow-data-loss=true`, its backups in the temporary folder).

What counts: a refusal the baseline met already is the schema's design, not an
incompatibility. audit_logs refuses UPDATE and DELETE at the release's head, so the
same refusal (same SQLSTATE and message) for the same table and operation later is
expected; a new kind of failure counts. A table the release does not have has no
baseline: there a refusal raised on purpose by a trigger (PL/pgSQL RAISE) is the
design, anything else counts. An old-code failure about what a static finding named
is added to that finding's line as its proof, not printed again.

Exit status: 0 compatible; 1 incompatible (one FAILED line per problem); 2 it could
not check (no release to compare with, git, the server, or rows it cannot generate).
"""

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from migration_runner.errors import MigrationError, interrupt_on_sigterm
from migration_runner.tools import compat_static, scratch
from migration_runner.tools.release import release_ref
from migration_runner.tools.scaffold import revision_ids

PROBE = Path(__file__).with_name("compat_probe.py")
OPERATIONS = ("INSERT", "SELECT", "UPDATE", "DELETE")
MISSING = ("42703", "42P01")  # undefined column, undefined table
NOT_NULL = "23502"
CONSTRAINTS = ("23514", "23505", "23503")  # check, unique, foreign key
OLD, NEW = "old code", "new code"


@dataclass
class Problem:
    text: str  # the FAILED line, without `FAILED: `
    subject: tuple[str, str | None] | None = None  # (table, column) it is about
    unchecked: bool = False  # could not check (exit 2), rather than incompatible (exit 1)
    seen: str | None = None  # the old code's failure as the ORM check saw it
    proofs: list[str] = field(default_factory=list)  # those seen of a static finding's subject

    @property
    def line(self) -> str:
        if not self.proofs:
            return self.text
        return f"{self.text}. The ORM check agrees: {'; '.join(self.proofs)}"


@dataclass(frozen=True)
class Release:
    ref: str
    tree: Path  # its files, taken out of git
    head: str


@dataclass(frozen=True)
class Stage:
    """Where the scratch database stands when a check runs: `after 004 (expand)`."""

    revision: str
    phase: str
    held_back: tuple[str, ...] = ()  # this tree's revisions after it: the contract phase's

    def __str__(self) -> str:
        return f"after {self.revision} ({self.phase})"

    @property
    def progress(self) -> str:
        held = f"; held back: {', '.join(self.held_back)}" if self.held_back else ""
        return f"after {self.revision} ({self.phase}{held})"


# --- the running release ---------------------------------------------------------------------


def running_release_ref(tree: Path, ref: str | None) -> str:
    found = ref or release_ref(tree)
    if not found:
        raise MigrationError(
            "No running release to compare with: set COMPAT_REF (or --ref) to its git ref, "
            "e.g. COMPAT_REF=origin/main."
        )
    return found


def extract(tree: Path, ref: str, folder: Path) -> Path:
    """The ref's files in folder/release: `git archive <ref> | tar -x`."""
    target = folder / "release"
    target.mkdir()
    archive = subprocess.Popen(
        ["git", "archive", "--format=tar", ref],
        cwd=tree,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    unpacked = subprocess.run(
        ["tar", "-x", "-C", str(target)], stdin=archive.stdout, capture_output=True, check=False
    )
    archive.stdout.close()
    error = (archive.stderr.read().decode().strip().splitlines() or ["no message"])[-1]
    if archive.wait() != 0:
        raise MigrationError(
            f"git cannot read the running release {ref!r} ({error}): set "
            "COMPAT_REF to a commit, branch or tag of this repository."
        )
    if unpacked.returncode != 0:
        raise MigrationError(f"tar could not unpack {ref}: {unpacked.stderr.decode().strip()}")
    return target


def new_revisions(tree: Path, release_tree: Path) -> list[str]:
    """This tree's revisions after the release's head; the release's history must be its start."""
    released, current = revision_ids(release_tree), revision_ids(tree)
    if not released or current[: len(released)] != released:
        raise MigrationError(
            f"This tree's revisions ({', '.join(current)}) do not continue the running "
            f"release's ({', '.join(released) or 'none'}): rebase on it first."
        )
    return current[len(released) :]


# --- the ORM probe, in its own interpreter ----------------------------------------------------


def probe(who: str, models: Path, url: str | None = None, seed: bool = False, recipes=None) -> dict:
    """compat_probe.py run with these models first on sys.path; its JSON report."""
    request = {"models": str(models), "url": url, "seed": seed, "recipes": recipes}
    environ = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, str(PROBE)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=environ,
        cwd=models,
        check=False,
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise MigrationError(f"The ORM check of the {who} stopped: {last}")
    return json.loads(result.stdout)


# --- migrating the scratch database ----------------------------------------------------------


def failed_line(error: MigrationError) -> str:
    """Alembic's own FAILED line out of a migration's output, else its last line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    failed = [line.removeprefix("FAILED: ") for line in lines if line.startswith("FAILED:")]
    return (failed or lines or ["no output"])[-1]


def database_revision(url: str) -> str:
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg2"), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()


def apply_phase(tree: Path, url: str, phase: str, backups: Path) -> Stage:
    """This tree's expand or contract phase on the scratch database; where it stopped."""
    scratch.migrate(
        tree,
        url,
        "head",
        "-x",
        f"phase={phase}",
        "-x",
        "allow-data-loss=true",
        "-x",
        f"backup-dir={backups}",
    )
    revision = database_revision(url)
    revisions = revision_ids(tree)
    return Stage(revision, phase, tuple(revisions[revisions.index(revision) + 1 :]))


# --- judging the probe's results ---------------------------------------------------------------


def baseline_of(results: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["table"], r["operation"]): r for r in results if r["operation"] in OPERATIONS}


def expected(result: dict, baseline: dict[tuple[str, str], dict]) -> bool:
    """A failure that is the schema's design: met by the baseline, or a trigger's RAISE."""
    before = baseline.get((result["table"], result["operation"]))
    if before is None:
        return bool(result.get("raised"))
    same = (before.get("sqlstate"), before.get("message"))
    return not before["ok"] and same == (result.get("sqlstate"), result.get("message"))


def hint(who: str, phase: str, sqlstate: str | None) -> str:
    """What to do about it, from who failed, after which phase, and how."""
    if who == OLD and sqlstate in MISSING:
        return "move the drop (or rename) to a contract revision"
    if who == OLD and sqlstate == NOT_NULL:
        return "keep the column nullable or with a DEFAULT until a contract revision"
    if who == OLD and sqlstate in CONSTRAINTS:
        return "add that constraint in a contract revision, once the new code is live"
    if who == OLD:
        return "keep what the old code uses until a contract revision"
    if phase == "expand" and sqlstate in MISSING:
        return "the new code runs before the contract phase: create it in an expand revision"
    if phase == "expand":
        return "the new code runs between the two phases: make the expand phase give it its schema"
    return "the contract phase must leave what the new code uses: drop it in a later release"


def failures(results: list[dict], baseline: dict, who: str, stage: Stage) -> list[Problem]:
    """One problem per kind of failure of a class: its operations grouped in one line."""
    groups: dict[tuple, list[dict]] = {}
    for result in results:
        if result["operation"] not in OPERATIONS or result["ok"] or result.get("skipped"):
            continue
        if result.get("unchecked") or expected(result, baseline):
            continue
        column = result.get("column")
        key = (
            result["class"],
            result["table"],
            result.get("sqlstate"),
            column or result["message"],
        )
        groups.setdefault(key, []).append(result)
    return [failure_problem(group, who, stage) for group in groups.values()]


def failure_problem(group: list[dict], who: str, stage: Stage) -> Problem:
    first = group[0]
    table, column = first["table"], first.get("column")
    operations = ", ".join(result["operation"] for result in group)
    what = (
        f"the {who}'s {operations} of {first['class']} {'fails' if len(group) == 1 else 'fail'} "
        f"{stage}: {first['message']}"
    )
    return Problem(
        f"{f'{table}.{column}' if column else table}: {what}; "
        f"{hint(who, stage.phase, first.get('sqlstate'))}",
        subject=(table, column),
        seen=what if who == OLD else None,
    )


def merged(static: list[Problem], found: list[Problem]) -> list[Problem]:
    """The ORM check's failures, those about what a static finding named added to it as proof."""
    by_subject = {problem.subject: problem for problem in static}
    rest = []
    for problem in found:
        table, _ = problem.subject or (None, None)
        named = by_subject.get(problem.subject) or by_subject.get((table, None))
        if named is not None and problem.seen:
            named.proofs.append(problem.seen)
        else:
            rest.append(problem)
    return static + rest


def cannot_check(result: dict, who: str, where: str) -> Problem:
    return Problem(
        f"{result['table']}: could not check {result['class']}: the {who} cannot make a row "
        f"{where}: {result['message']}",
        unchecked=True,
    )


def unwritable(results: list[dict], who: str, where: str) -> list[Problem]:
    """Classes the release's own code cannot insert at its own head: they cannot be checked."""
    return [
        cannot_check(result, who, where)
        for result in results
        if result["operation"] == "INSERT" and not result["ok"] and not result.get("skipped")
    ]


def unchecked(results: list[dict], who: str, where: str) -> list[Problem]:
    """Classes whose constraints no generated row satisfied."""
    return [cannot_check(result, who, where) for result in results if result.get("unchecked")]


def refused_by_design(baseline: dict[tuple[str, str], dict]) -> str:
    refused: dict[str, list[str]] = {}
    for (_, operation), result in baseline.items():
        if not result["ok"] and operation != "INSERT":
            refused.setdefault(result["class"], []).append(operation)
    listed = "; ".join(f"{name}: {', '.join(ops)}" for name, ops in refused.items())
    return f" (refused by design: {listed})" if listed else ""


# --- the check ------------------------------------------------------------------------------------


def check(tree: Path, ref: str | None, scratch_url: str | None) -> list[Problem]:
    """Everything `make compat` proves, in order; the problems found."""
    ref = running_release_ref(tree, ref)
    with tempfile.TemporaryDirectory(prefix="compat-") as folder:
        release_tree = extract(tree, ref, Path(folder))
        revisions = new_revisions(tree, release_tree)
        release = Release(ref, release_tree, revision_ids(release_tree)[-1])
        print(
            f"compat: running release {ref} (at {release.head}); this tree adds "
            f"{', '.join(revisions) or 'no revision'}"
        )
        static = static_pass(tree, release, revisions)
        with scratch.scratch_database(scratch_url) as url:
            return merged(static, on_scratch_database(tree, release, url, Path(folder)))


def static_pass(tree: Path, release: Release, revisions: list[str]) -> list[Problem]:
    old_models = compat_static.OldModels(probe(OLD, release.tree)["classes"])
    found = compat_static.findings(tree, revisions, old_models)
    print(f"compat: static pass: {len(found) or 'no'} problem(s) in the expand revisions")
    return [Problem(finding.text, (finding.table, finding.column)) for finding in found]


def on_scratch_database(tree: Path, release: Release, url: str, backups: Path) -> list[Problem]:
    """The ORM checks at the release's head, after the expand phase, after the contract one."""
    try:
        scratch.migrate(release.tree, url, "head")
    except MigrationError as error:
        raise MigrationError(
            f"The running release's migrations fail: {failed_line(error)}"
        ) from None
    where = f"at {release.head} (the running release)"
    first = probe(OLD, release.tree, url, seed=True)
    baseline = baseline_of(first["results"])
    problems = unwritable(list(baseline.values()), OLD, where)
    verdict = (
        "cannot write every class (FAILED below)" if problems else "writes and reads every class"
    )
    print(f"compat: {where}: the {OLD} {verdict}{refused_by_design(baseline)}")
    old_rows = (OLD, release.tree, first["recipes"])  # the very rows it wrote before
    new_rows = (NEW, tree, None)
    phase = "expand"
    try:
        expand = apply_phase(tree, url, phase, backups)
        problems += stage_problems(expand, baseline, url, old_rows, new_rows)
        if not expand.held_back:
            print(f"compat: no contract revision: nothing more to apply after {expand.revision}")
            return problems
        phase = "contract"
        contract = apply_phase(tree, url, phase, backups)
    except MigrationError as error:
        failed = f"this tree's {phase} phase fails on the rows the old code wrote"
        return [*problems, Problem(f"{failed}: {failed_line(error)}")]
    return problems + stage_problems(contract, baseline, url, new_rows)


def stage_problems(
    stage: Stage, baseline: dict, url: str, *checks: tuple[str, Path, dict | None]
) -> list[Problem]:
    """Each (who, models, recipes) probed at this stage; what failed that did not before."""
    problems, verdicts = [], []
    for who, models, recipes in checks:
        results = probe(who, models, url, recipes=recipes)["results"]
        found = failures(results, baseline, who, stage)
        if recipes is None:  # with recipes, a class lacking one was reported at the release's head
            found = unchecked(results, who, str(stage)) + found
        verdicts.append(f"the {who} {'fails (FAILED below)' if found else 'works'}")
        problems += found
    print(f"compat: {stage.progress}: {', '.join(verdicts)}")
    return problems


# --- command line -------------------------------------------------------------------------------


def run(tree: Path, ref: str | None, scratch_url: str | None) -> int:
    """`migrations compat`: 0 compatible, 1 incompatible, 2 some of it could not be checked."""
    interrupt_on_sigterm()  # CI's cancel still drops the scratch database
    problems = check(tree, ref, scratch_url)
    for problem in problems:
        print(f"FAILED: {problem.line}", file=sys.stderr)
    if any(not problem.unchecked for problem in problems):
        return 1
    if problems:
        return 2
    print("compat: the running release's code works after the expand phase; this tree's after both")
    return 0
