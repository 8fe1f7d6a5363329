"""Runs one acceptance case through every stage, in this process, on a real PostgreSQL.

The stages: autogenerate (alembic.command.revision with the case's MetaData in
config.attributes["target_metadata"]); the expand revisions while the old release writes
through its own models (a thread of short ORM transactions, none may fail); the
contract revisions; `alembic check` (command.check) clean; at each statement of each
`Transaction: none` file a fault, then a rerun; a downgrade to head, whose pg_dump must be
head's. Lint (sqlfluff, squawk) runs once over the drafts of every case (lint_drafts).

The fault: a trigger on the runner's migration_statements terminates the runner's own
backend when the record of the chosen statement is written, as a failover would. A
statement sent with its record (one implicit transaction) is rolled back with it; one
that runs alone (CREATE INDEX CONCURRENTLY, a backfill's DO block) has committed and is
run again by the rerun, which must cope. A statement that commits inside itself (a DO
block with COMMIT) is struck first at each of its DDL commands in turn, by an event
trigger, so that the rerun meets the half it committed. Each faulted run must end in one
line, struck by its fault, and leave the database at the revision before; the run after
the last fault must finish.

One tree copy serves the session (its generated files are removed after each case); each
case gets a database cloned from a template at head with rows in every table.
"""

from __future__ import annotations

import io
import os
import random
import re
import shutil
import subprocess
import sys
import time
import traceback
import uuid
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import MetaData, text
from sqlalchemy.orm import Session

import assessment_models
from assessment_models import (
    Assessment,
    AssessmentResult,
    AuditLog,
    Evidence,
    Framework,
    Organization,
    Question,
    Response,
    User,
)
from migration_runner.errors import MigrationError
from migration_runner.steps.sql_files import SqlFile
from migration_runner.tools.autogenerate.draft import same_but_column_order
from migration_runner.tools.schema_snapshot import differences, snapshot
from support.database import Server, admin, engine_for, query
from support.processes import unmeasured
from support.project import ROOT, V001_TABLE_ORDER
from support.writer import OldCodeWriter

VENV_BIN = Path(sys.executable).parent
HEADER = re.compile(r"^-- (Phase|Transaction): (\w+)$", re.MULTILINE)
# A one-line refusal never shows Python's insides.
PYTHON_INSIDES = re.compile(r"Traceback|<[\w.]+ object at 0x|\b\w+(Error|Exception)\(")
# How the runner words a failed run or connection: from autogenerate, a crash, not a refusal.
CRASHES = ("the migration run failed", "the database connection failed")
FAULT_SCHEMA = "acceptance_fault"
FAULT_SQL = f"""
CREATE SCHEMA {FAULT_SCHEMA};
-- The record whose insert strikes (its statement has run), and the DDL command that strikes
-- inside a statement that commits inside itself (the snippet is the statement's text).
CREATE TABLE {FAULT_SCHEMA}.target (sql_file text NOT NULL, line integer NOT NULL);
CREATE TABLE {FAULT_SCHEMA}.ddl_target (snippet text NOT NULL, n integer NOT NULL);
CREATE SEQUENCE {FAULT_SCHEMA}.ddl_seen;
-- How many faults struck at records and at DDL commands: sequences, not rolled back.
CREATE SEQUENCE {FAULT_SCHEMA}.records_struck;
CREATE SEQUENCE {FAULT_SCHEMA}.ddl_struck;
CREATE FUNCTION {FAULT_SCHEMA}.strike() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM {FAULT_SCHEMA}.target t
               WHERE NEW.sql_file LIKE '%' || t.sql_file AND NEW.statement_line = t.line) THEN
        PERFORM nextval('{FAULT_SCHEMA}.records_struck');
        PERFORM pg_terminate_backend(pg_backend_pid());
        PERFORM pg_sleep(30);  -- the termination lands here
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER acceptance_fault BEFORE INSERT ON migration_statements
    FOR EACH ROW EXECUTE FUNCTION {FAULT_SCHEMA}.strike();
CREATE FUNCTION {FAULT_SCHEMA}.strike_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE
    aim record;
BEGIN
    SELECT * INTO aim FROM {FAULT_SCHEMA}.ddl_target LIMIT 1;
    IF aim.snippet IS NOT NULL AND position(aim.snippet IN current_query()) > 0 THEN
        IF nextval('{FAULT_SCHEMA}.ddl_seen') = aim.n THEN
            PERFORM nextval('{FAULT_SCHEMA}.ddl_struck');
            PERFORM pg_terminate_backend(pg_backend_pid());
            PERFORM pg_sleep(30);
        END IF;
    END IF;
END
$$;
CREATE EVENT TRIGGER acceptance_fault_ddl ON ddl_command_end
    EXECUTE FUNCTION {FAULT_SCHEMA}.strike_ddl();
"""
# Rows in every table of the template (ids are looked up for the old code's updates).
SEED_SQL = """
INSERT INTO organizations (name, slug) SELECT 'Org ' || i, 'org-' || i FROM generate_series(1, 300) i;
INSERT INTO users (organization_id, email, full_name, last_login_at)
    SELECT o.id, 'user-' || o.slug || '@example.com',
           CASE WHEN right(o.slug, 1) <> '4' THEN 'Person ' || o.slug END, now()
    FROM organizations o;
INSERT INTO frameworks (key, name, version, description)
    SELECT 'fw-' || i, 'Framework ' || i, '1.' || i, CASE WHEN i % 3 <> 0 THEN 'About ' || i END
    FROM generate_series(1, 30) i;
INSERT INTO questions (framework_id, code, prompt, category, position, answer_type)
    SELECT f.id, 'Q' || i, 'Question ' || i || '?', 'category ' || i % 5, i, 'text'
    FROM frameworks f, generate_series(1, 10) i;
INSERT INTO assessments (organization_id, framework_id, title)
    SELECT o.id, (SELECT id FROM frameworks ORDER BY key LIMIT 1), 'Assessment of ' || o.name
    FROM organizations o;
INSERT INTO responses (assessment_id, question_id, answer)
    SELECT a.id, (SELECT id FROM questions ORDER BY code, framework_id LIMIT 1),
           jsonb_build_object('value', a.title)
    FROM assessments a;
INSERT INTO evidence (response_id, file_name, content_type, byte_size, storage_key, sha256)
    SELECT r.id, 'file-' || r.id || '.pdf', 'application/pdf', 1024, 'blob/' || r.id, repeat('a', 64)
    FROM responses r;
INSERT INTO assessment_results (assessment_id, overall_score, maturity_level)
    SELECT a.id, 50, 3 FROM assessments a LIMIT 150;
INSERT INTO audit_logs (organization_id, action, entity_type)
    SELECT o.id, 'organization.created', 'organization' FROM organizations o;
ANALYZE;
"""
# The runner's settings for every run of the corpus: backfills in a few small batches, so
# that the old code writes between them; drops of tables and columns with rows allowed
# (their backups go to a temporary folder).
RUN_ENVIRONMENT = {
    "MIGRATION_BATCH_SIZE": "100",
    "MIGRATION_BATCH_PAUSE": "2ms",
    "MIGRATION_ALLOW_DATA_LOSS": "true",
    "MIGRATION_CONNECT_TIMEOUT": "5",
}


@dataclass
class Revision:
    rev_id: str
    stem: str
    phase: str
    transactional: bool
    up: Path

    @property
    def kind(self) -> str:
        return self.phase + ("" if self.transactional else " online")


@dataclass
class Outcome:
    name: str
    kind: str  # written, refused or wrong
    message: str = ""  # the refusal, or what went wrong
    stage: str = ""  # where a wrong case went wrong
    writes: str = ""  # the revisions written, e.g. "expand, expand online"
    files: list[Path] = field(default_factory=list)
    faults: int = 0
    old_code_commits: int = 0
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)  # seconds each stage took

    def timing(self) -> str:
        parts = ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in self.stages.items())
        return f"{self.seconds:.1f} s: {parts}" if parts else f"{self.seconds:.1f} s"


class Wrong(Exception):
    """A stage failed: the case is wrong."""

    def __init__(self, stage: str, message: str):
        super().__init__(f"{stage}: {message}")
        self.stage, self.message = stage, message


# -- the session's corpus ----------------------------------------------------------------


class Corpus:
    """The server, the tree copy, the template database at head with rows, head's pg_dump."""

    def __init__(self, server: Server, workdir: Path):
        self.server = server
        self.tree = workdir / "tree"
        self.lint_dir = self.tree / "lint"
        self.backups = workdir / "backups"
        self.backups.mkdir()
        self._copy_tree()
        self.template = f"acceptance_{uuid.uuid4().hex[:10]}"
        self.outcomes: dict[str, Outcome] = {}
        self.head = self._head_id()
        engine = admin(server)
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.template}" TEMPLATE template0'))
        engine.dispose()
        url = server.url_for(self.template)
        with self.environment(url):
            command.upgrade(self.config(), "head")
        query(url, SEED_SQL)
        self.head_schema = snapshot(url)
        self.seeded = {
            table: query(url, f"SELECT count(*) FROM {table}")[0][0] for table in V001_TABLE_ORDER
        }
        query(url, FAULT_SQL)
        self.ids = {
            model.__tablename__: [
                row[0] for row in query(url, f"SELECT id FROM {model.__tablename__}")
            ]
            for model in (
                Organization,
                User,
                Framework,
                Question,
                Assessment,
                Response,
                Evidence,
                AssessmentResult,
            )
        }

    def _copy_tree(self) -> None:
        """The migration tree (alembic/, sql/) and its configuration; the runner and the models
        are this checkout's, linked."""
        self.tree.mkdir()
        for name in ("alembic", "sql"):
            shutil.copytree(
                ROOT / name, self.tree / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        for name in ("alembic.ini", ".sqlfluff", ".squawk.toml"):
            shutil.copy(ROOT / name, self.tree / name)
        for name in ("migration_runner", "assessment_models"):
            (self.tree / name).symlink_to(ROOT / name)
        self.lint_dir.mkdir()

    def _head_id(self) -> str:
        return max(p.name[:3] for p in (self.tree / "sql" / "up").glob("[0-9][0-9][0-9]_*.sql"))

    def config(self, metadata: MetaData | None = None) -> Config:
        config = Config(str(self.tree / "alembic.ini"))
        if metadata is not None:
            config.attributes["target_metadata"] = metadata
        return config

    @contextmanager
    def environment(self, url: str):
        """DATABASE_URL and the corpus's runner settings, for the commands run in this process;
        afterwards the environment and sys.path as they were (alembic.ini's prepend_sys_path
        puts the tree copy first, whose alembic/ folder must not shadow the package later)."""
        saved, saved_path = dict(os.environ), list(sys.path)
        os.environ.update(
            DATABASE_URL=url,
            SCHEMA_SCRATCH_URL=self.server.admin_url,
            MIGRATION_BACKUP_DIR=str(self.backups),
            **RUN_ENVIRONMENT,
        )
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)
            sys.path[:] = saved_path

    @contextmanager
    def clone(self):
        """A database of its own for a case: the template's schema at head and its rows."""
        name = f"{self.template}_{uuid.uuid4().hex[:6]}"
        engine = admin(self.server)
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        try:
            yield self.server.url_for(name)
        finally:
            with engine.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            engine.dispose()

    def drop(self) -> None:
        engine = admin(self.server)
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)'))
        engine.dispose()

    def new_files(self) -> list[Path]:
        return sorted(
            p
            for p in (self.tree / "sql").glob("*/*.sql")
            if p.name[:3].isdigit() and p.name[:3] > self.head
        )

    def new_shims(self) -> list[Path]:
        versions = self.tree / "alembic" / "versions"
        return sorted(
            p for p in versions.glob("*.py") if p.name[:3].isdigit() and p.name[:3] > self.head
        )

    def remove_generated(self) -> None:
        for path in [*self.new_files(), *self.new_shims()]:
            path.unlink()
        versions = self.tree / "alembic" / "versions"
        shutil.rmtree(versions / "__pycache__", ignore_errors=True)
        shutil.rmtree(self.tree / "drafts", ignore_errors=True)  # a refused draft's files


def fresh_metadata() -> MetaData:
    """A copy of the models' MetaData that a case may edit."""
    copy = MetaData(naming_convention=assessment_models.metadata.naming_convention)
    for table in assessment_models.metadata.tables.values():
        table.to_metadata(copy)
    return copy


# -- the old release at work ----------------------------------------------------------------


def old_code(url: str, tables: tuple[str, ...], ids: dict[str, list]) -> OldCodeWriter:
    """The release before the model edit, writing through its own models (assessment_models):
    short ORM transactions that insert and update rows of the given tables in turn, about 50
    a second (enough, and cheap), each failure counted under its table's name."""
    tag = uuid.uuid4().hex[:6]

    def table(n: int) -> str:
        return tables[n % len(tables)]

    def write(session: Session, n: int) -> None:
        WRITES[table(n)](session, f"{tag}-{n}", n % 2 == 1, ids)

    return OldCodeWriter(url, write, warm_up=5, warm_up_seconds=10, pause=0.01, label=table)


def _new_assessment(session: Session, tag: str, ids) -> Assessment:
    assessment = Assessment(
        organization_id=random.choice(ids["organizations"]),
        framework_id=random.choice(ids["frameworks"]),
        title=f"Writer {tag}",
    )
    session.add(assessment)
    session.flush()
    return assessment


def _organizations(session, tag, insert, ids):
    if insert:
        session.add(Organization(name=f"Writer {tag}", slug=f"w-{tag}"))
    else:
        session.get(Organization, random.choice(ids["organizations"])).name = f"Renamed {tag}"


def _users(session, tag, insert, ids):
    if insert:
        session.add(
            User(
                organization_id=random.choice(ids["organizations"]),
                email=f"w-{tag}@example.com",
                full_name=f"Writer {tag}",
            )
        )
    else:
        session.get(User, random.choice(ids["users"])).full_name = f"Renamed {tag}"


def _frameworks(session, tag, insert, ids):
    if insert:
        session.add(
            Framework(
                key=f"w-{tag}", name=f"Writer {tag}", version="1", description="By the writer"
            )
        )
    else:
        session.get(Framework, random.choice(ids["frameworks"])).description = f"Changed {tag}"


def _questions(session, tag, insert, ids):
    if insert:
        session.add(
            Question(
                framework_id=random.choice(ids["frameworks"]),
                code=f"W{tag}",
                prompt="Written?",
                category="writer",
                position=1000 + int(tag.split("-")[1]),
                answer_type="text",
            )
        )
    else:
        session.get(Question, random.choice(ids["questions"])).prompt = f"Changed {tag}?"


def _assessments(session, tag, insert, ids):
    if insert:
        _new_assessment(session, tag, ids)
    else:
        session.get(Assessment, random.choice(ids["assessments"])).title = f"Changed {tag}"


def _responses(session, tag, insert, ids):
    if insert:
        assessment = _new_assessment(session, tag, ids)
        session.add(
            Response(
                assessment_id=assessment.id,
                question_id=random.choice(ids["questions"]),
                answer={"value": tag},
            )
        )
    else:
        session.get(Response, random.choice(ids["responses"])).answer = {"value": tag}


def _evidence(session, tag, insert, ids):
    if insert:
        session.add(
            Evidence(
                response_id=random.choice(ids["responses"]),
                file_name=f"w-{tag}.txt",
                content_type="text/plain",
                byte_size=10,
                storage_key=f"w/{tag}",
                sha256="b" * 64,
            )
        )
    else:
        session.get(Evidence, random.choice(ids["evidence"])).file_name = f"changed-{tag}.pdf"


def _results(session, tag, insert, ids):
    if insert:
        assessment = _new_assessment(session, tag, ids)
        session.add(
            AssessmentResult(assessment_id=assessment.id, overall_score=40, maturity_level=2)
        )
    else:
        session.get(AssessmentResult, random.choice(ids["assessment_results"])).overall_score = 60


def _audit_logs(session, tag, insert, ids):
    """Append-only: the old code only inserts."""
    session.add(
        AuditLog(
            organization_id=random.choice(ids["organizations"]),
            action="writer.wrote",
            entity_type="writer",
            details={"tag": tag},
        )
    )


WRITES = {
    "organizations": _organizations,
    "users": _users,
    "frameworks": _frameworks,
    "questions": _questions,
    "assessments": _assessments,
    "responses": _responses,
    "evidence": _evidence,
    "assessment_results": _results,
    "audit_logs": _audit_logs,
}


# -- one case ----------------------------------------------------------------------------


def _one_line_refusal(error: BaseException) -> str | None:
    """The message, if it is one line that shows nothing of Python's insides."""
    message = str(error).strip()
    if not message or "\n" in message or PYTHON_INSIDES.search(message):
        return None
    return message


def _refusal(error: BaseException) -> str | None:
    """A refusal says what autogenerate does not do; a database error passed through as one
    line (the runner's words for any failed run) is a crash."""
    message = _one_line_refusal(error)
    if message is None or message.startswith(CRASHES):
        return None
    return message


def _revisions(files: list[Path]) -> list[Revision]:
    revisions = []
    for up in (f for f in files if f.parent.name == "up"):
        headers = dict(HEADER.findall(up.read_text()))
        revisions.append(
            Revision(
                up.name[:3],
                up.stem,
                headers.get("Phase", "?"),
                headers.get("Transaction") != "none",
                up,
            )
        )
    return revisions


def _version(url: str) -> str:
    return query(url, "SELECT version_num FROM alembic_version")[0][0]


def _run(corpus: Corpus, stage: str, step, *args, metadata: MetaData | None = None) -> str:
    """An alembic command in this process; its output. Any exception: the case is wrong."""
    output = io.StringIO()
    try:
        with redirect_stdout(output):
            step(corpus.config(metadata), *args)
    except (Exception, SystemExit) as error:  # noqa: BLE001 - the stage fails, with the reason
        raise Wrong(stage, f"{type(error).__name__}: {str(error).strip()[:1500]}") from None
    return output.getvalue()


def _commits_inside(statement) -> bool:
    """A DO block or CALL that commits part of its work (a backfill, a NOT VALID constraint
    then its validation): a fault between its commits leaves a state of its own."""
    return statement.keyword in {"DO", "CALL"} and "COMMIT;" in statement.text.upper()


def _aim(url: str, revision: Revision, statement, n: int | None) -> tuple[int, int]:
    """Strike when statement's record is written, or at its n-th DDL command; how many
    faults struck so far at records, and at DDL commands."""
    engine = engine_for(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {FAULT_SCHEMA}.target, {FAULT_SCHEMA}.ddl_target"))
            connection.execute(text(f"SELECT setval('{FAULT_SCHEMA}.ddl_seen', 1, false)"))
            if statement is not None:
                connection.execute(
                    text(f"INSERT INTO {FAULT_SCHEMA}.target VALUES (:file, :line)"),
                    {"file": f"{revision.stem}.sql", "line": statement.line},
                )
            if n is not None:
                connection.execute(
                    text(f"INSERT INTO {FAULT_SCHEMA}.ddl_target VALUES (:snippet, :n)"),
                    {"snippet": statement.text, "n": n},
                )
            return tuple(
                connection.execute(
                    text(
                        f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END"
                        f" FROM {FAULT_SCHEMA}.{name}"
                    )
                ).scalar()
                for name in ("records_struck", "ddl_struck")
            )
    finally:
        engine.dispose()


def _faulted_run(corpus: Corpus, url: str, revision: Revision, before: str, where: str) -> None:
    """A run struck by the fault: it must fail in one line, at the revision before."""
    output = io.StringIO()
    try:
        with redirect_stdout(output):
            command.upgrade(corpus.config(), revision.rev_id)
    except (MigrationError, CommandError) as error:
        if _one_line_refusal(error) is None:
            raise Wrong(where, f"not one line: {str(error)[:800]}") from None
    except (Exception, SystemExit) as error:  # noqa: BLE001
        raise Wrong(where, f"{type(error).__name__}: {str(error)[:800]}") from None
    else:
        raise Wrong(where, "the run did not fail")
    if _version(url) != before:
        raise Wrong(where, f"left the database at {_version(url)}, not {before}")


def _upgrade_with_faults(corpus: Corpus, url: str, revision: Revision, before: str) -> int:
    """Faults at each statement of a Transaction: none revision, each followed by a run
    (faulted further on), then a plain run that must finish. The number of faults.

    A statement is struck as its record is written (after it ran); one that commits inside
    itself is struck first at each of its DDL commands in turn, until a run gets through it."""
    sql_file = SqlFile(revision.up, revision.up.read_text())
    faults = 0
    for statement in sql_file.statements:
        inside = _commits_inside(statement)
        for n in range(1, 21) if inside else [None]:
            records, ddl = _aim(url, revision, statement, n)
            where = f"fault at {revision.stem} line {statement.line}"
            _faulted_run(
                corpus, url, revision, before, where + (f", its DDL command {n}" if n else "")
            )
            faults += 1
            records_after, ddl_after = _aim(url, revision, None, None)
            if records_after > records:  # struck at its record: it ran through
                break
            if ddl_after == ddl:
                raise Wrong(where, "the run failed before its fault struck")
        else:
            raise Wrong(where, "20 faults inside the statement and it never got through")
    _aim(url, revision, None, None)
    _run(corpus, f"rerun of {revision.stem} after the faults", command.upgrade, revision.rev_id)
    return faults


def run_case(corpus: Corpus, case, record: bool = True) -> Outcome:
    started = time.monotonic()
    outcome = Outcome(case.name, "wrong")
    metadata = fresh_metadata()
    case.edit(metadata)
    try:
        with corpus.clone() as url, corpus.environment(url):
            _stages(corpus, case, url, metadata, outcome)
    except Wrong as wrong:
        outcome.kind, outcome.stage, outcome.message = "wrong", wrong.stage, wrong.message
    except Exception as error:  # noqa: BLE001 - the harness names it
        outcome.kind, outcome.stage = "wrong", "harness"
        outcome.message = "".join(traceback.format_exception(error))[-2000:]
    finally:
        if outcome.kind == "written" and record:
            _keep_for_lint(corpus, case.name, outcome)
        corpus.remove_generated()
        outcome.seconds = time.monotonic() - started
    if record:
        corpus.outcomes[case.name] = outcome
    return outcome


def _stages(corpus: Corpus, case, url: str, metadata: MetaData, outcome: Outcome) -> None:
    # 1. autogenerate
    clock = time.monotonic()

    def lap(stage: str) -> None:
        nonlocal clock
        outcome.stages[stage] = time.monotonic() - clock
        clock = time.monotonic()

    output = io.StringIO()
    try:
        with redirect_stdout(output):
            command.revision(
                corpus.config(metadata), autogenerate=True, message=case.name.replace("_", " ")
            )
    except (MigrationError, CommandError) as error:
        refusal = _refusal(error)
        if refusal is None:
            raise Wrong("autogenerate", f"not a one-line refusal: {str(error)[:1500]}") from None
        if corpus.new_files() or corpus.new_shims():
            raise Wrong(
                "autogenerate", f"refused but wrote {corpus.new_files() + corpus.new_shims()}"
            ) from error
        outcome.kind, outcome.message = "refused", refusal
        return
    except (Exception, SystemExit) as error:  # noqa: BLE001
        raise Wrong("autogenerate", "".join(traceback.format_exception(error))[-1500:]) from None
    if "No changes" in output.getvalue():
        raise Wrong("autogenerate", "No changes detected for a real change")
    lap("autogenerate")
    outcome.files = corpus.new_files()
    revisions = _revisions(outcome.files)
    if not revisions:
        raise Wrong("autogenerate", f"wrote no revision: {output.getvalue()[-500:]}")
    outcome.writes = ", ".join(r.kind for r in revisions)

    # 2. expand under the old code's writes, faults at each statement of its online steps
    expand = [r for r in revisions if r.phase == "expand"]
    contract = [r for r in revisions if r.phase != "expand"]
    before = corpus.head
    with old_code(url, case.writers, corpus.ids) as old:
        if old.failures:
            raise Wrong("old code before the upgrade", old.failures[0])
        at_start = old.committed
        for revision in expand:
            outcome.faults += _apply(corpus, url, revision, before)
            before = revision.rev_id
        # It wrote while the expand ran (a short one may end between two of its writes on a
        # busy machine), or at least right after: the old release keeps working on the new
        # schema. Then a few more writes on it.
        deadline = time.monotonic() + 10
        while old.committed < at_start + 3 and not old.failures and time.monotonic() < deadline:
            time.sleep(0.01)
    outcome.old_code_commits = old.committed
    lap("expand")
    if old.failures:
        raise Wrong(
            "expand under the old code's writes",
            f"{len(old.failures)} failed transactions: {old.failures[:3]}",
        )
    if old.committed < at_start + 3:
        raise Wrong("expand under the old code's writes", "the old code could not write")

    # 3. the contract, after the values the warning asks for
    if case.before_contract:
        query(url, case.before_contract)
    for revision in contract:
        outcome.faults += _apply(corpus, url, revision, before)
        before = revision.rev_id
    _rows_kept(url, corpus.seeded)

    lap("contract")
    # 4. alembic check: the models and the database agree
    _run(corpus, "alembic check", command.check, metadata=metadata)
    lap("check")

    # 5. downgrade to head: head's schema again (after the fill its refusal asks for)
    if case.fill_before_downgrade:
        _refused_downgrade(corpus)
        query(url, case.fill_before_downgrade)
    _run(corpus, "downgrade to head", command.downgrade, corpus.head)
    query(url, f"DROP SCHEMA {FAULT_SCHEMA} CASCADE")
    after = snapshot(url)
    if after != corpus.head_schema and not (
        case.columns_dropped and same_but_column_order(corpus.head_schema, after)
    ):
        found = "; ".join(differences(corpus.head_schema, after))
        raise Wrong("downgrade to head", f"pg_dump differs from head's: {found[:1500]}")
    lap("downgrade")
    outcome.kind = "written"


def _refused_downgrade(corpus: Corpus) -> None:
    """The downgrade stops in one line, naming the rows left NULL, until they are filled."""
    where = "downgrade before the fill"
    try:
        with redirect_stdout(io.StringIO()):
            command.downgrade(corpus.config(), corpus.head)
    except (MigrationError, CommandError) as error:
        message = _one_line_refusal(error)
        if message is None or "is NULL in some rows" not in message:
            raise Wrong(where, f"not a one-line refusal naming NULL rows: {error}") from None
    except (Exception, SystemExit) as error:  # noqa: BLE001
        raise Wrong(where, f"{type(error).__name__}: {str(error)[:800]}") from None
    else:
        raise Wrong(where, "the downgrade did not refuse")


def _rows_kept(url: str, seeded: dict[str, int]) -> None:
    """Every seeded table still there has at least the rows it was seeded with."""
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            present = [
                t
                for t in seeded
                if connection.execute(text("SELECT to_regclass(:t)"), {"t": t}).scalar()
            ]
            counts = connection.execute(
                text("SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}")' for t in present))
            ).one()
    finally:
        engine.dispose()
    lost = [
        f"{t} ({n} of {seeded[t]})" for t, n in zip(present, counts, strict=True) if n < seeded[t]
    ]
    if lost:
        raise Wrong("upgrade", f"rows lost: {', '.join(lost)}")


def _apply(corpus: Corpus, url: str, revision: Revision, before: str) -> int:
    """Upgrade to revision; with faults if it runs outside a transaction. The faults."""
    if revision.transactional:
        _run(corpus, f"upgrade to {revision.stem}", command.upgrade, revision.rev_id)
        return 0
    return _upgrade_with_faults(corpus, url, revision, before)


# -- lint, once for every case's drafts ------------------------------------------------------


def _keep_for_lint(corpus: Corpus, name: str, outcome: Outcome) -> None:
    kept = []
    for path in outcome.files:
        target = corpus.lint_dir / name / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
        kept.append(target)
    outcome.files = kept


def _lint_failures(corpus: Corpus, files: list[Path]) -> str:
    """sqlfluff on every file, squawk on the up files as `make lint` runs them; '' if clean.

    sqlfluff in one process: make test keeps both cores busy, and each worker of its
    --processes would import sqlfluff and load the dialect again."""
    found = []
    sqlfluff = subprocess.run(
        [str(VENV_BIN / "sqlfluff"), "lint", *map(str, files)],
        cwd=corpus.tree,
        env=unmeasured(),
        capture_output=True,
        text=True,
        check=False,
    )
    if sqlfluff.returncode != 0:
        found.append(sqlfluff.stdout[-3000:])
    ups = [f for f in files if f.parent.name == "up"]
    none = [f for f in ups if "\n-- Transaction: none" in f.read_text()]
    for group, options in (
        ([f for f in ups if f not in none], []),
        (none, ["--no-assume-in-transaction"]),
    ):
        if group:
            squawk = subprocess.run(
                [str(VENV_BIN / "squawk"), *options, *map(str, group)],
                cwd=corpus.tree,
                env=unmeasured(),
                capture_output=True,
                text=True,
                check=False,
            )
            if squawk.returncode != 0:
                found.append(squawk.stdout[-3000:])
    return "\n".join(found)


def lint_drafts(corpus: Corpus) -> dict[str, str]:
    """Lint every written case's drafts at once; where that fails, each case's alone, to name
    the cases whose drafts do not lint. {case: what the linters said}."""
    written = {name: o.files for name, o in corpus.outcomes.items() if o.kind == "written"}
    everything = [f for files in written.values() for f in files]
    if not everything or not _lint_failures(corpus, everything):
        return {}
    failing = {}
    for name, files in written.items():
        said = _lint_failures(corpus, files)
        if said:
            failing[name] = said
            outcome = corpus.outcomes[name]
            outcome.kind, outcome.stage, outcome.message = "wrong", "lint", said[-1500:]
    return failing
