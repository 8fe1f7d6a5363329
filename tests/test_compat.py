"""`make compat`: the running release's code (a git ref) still works after this tree's expand
phase, and this tree's code after both phases, proved with the models themselves.

The project copy's first commit is the running release; each test changes the copy on top
of it as a pull request would (a revision, the model to match) and runs the tool on this
suite's server (`--scratch-url`), one scratch database per run.
"""

import subprocess
import sys

import pytest

from migration_runner.tools import compat_static
from support.database import query
from support.processes import clean_environ, run_make
from support.project import HEAD, ROOT, add_revision

FULL_NAME = "    full_name: Mapped[str | None] = mapped_column(Text)\n"
DROP_FULL_NAME = """\
-- drop_full_name (up): the new code no longer maps users.full_name.
-- Destructive: yes
{phase}ALTER TABLE users DROP COLUMN full_name;
"""
# The same drop where no parser sees it: only the old code's statements can tell.
HIDDEN_DROP = "DO $$ BEGIN EXECUTE 'ALTER TABLE users DROP COLUMN full_name'; END $$;\n"
ADD_FULL_NAME = "ALTER TABLE users ADD COLUMN full_name text;\n"
DROP_NICKNAME = "-- Destructive: yes\nALTER TABLE users DROP COLUMN nickname;\n"
MISSING_COLUMN = 'column "full_name" of relation "users" does not exist'
NICKNAME = FULL_NAME.replace("full_name", "nickname").replace("str | None", "{annotation}")


@pytest.fixture
def release(project_copy):
    """The project copy and its first commit, the release that is running."""
    sha = git(project_copy, "rev-parse", "HEAD")
    return project_copy, sha


def git(project, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def edit_models(project, old: str, new: str) -> None:
    tenancy = project / "assessment_models" / "tenancy.py"
    models = tenancy.read_text()
    assert old in models, "the User model changed: update tests/test_compat.py"
    tenancy.write_text(models.replace(old, new))


def compat(project, server, *args: str) -> subprocess.CompletedProcess:
    """The tool on the project copy, its scratch database on this suite's server."""
    environ = clean_environ()
    environ.pop("COMPAT_REF", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "migration_runner.cli",
            "compat",
            "--tree",
            str(project),
            "--scratch-url",
            server.admin_url,
            *args,
        ],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def scratch_databases(server) -> set[str]:
    rows = query(server.admin_url, "SELECT datname FROM pg_database WHERE datname LIKE 'scratch%'")
    return {name for (name,) in rows}


def failed_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("FAILED")]


def test_an_expand_revision_that_drops_a_mapped_column_is_caught_naming_it(
    release, postgres_server
):
    project, sha = release
    drop = add_revision(project, "drop_full_name", DROP_FULL_NAME.format(phase=""), ADD_FULL_NAME)
    edit_models(project, FULL_NAME, "")
    before = scratch_databases(postgres_server)

    result = compat(project, postgres_server, "--ref", sha)

    assert result.returncode == 1, result.stdout + result.stderr
    where = f"revision {drop} (expand, sql/up/{drop}_drop_full_name.sql line 3)"
    caught = (
        f"FAILED: users.full_name: {where} drops a column the old code maps (User); move the drop "
        "to a contract revision (-- Phase: contract). The ORM check agrees: the old code's "
        f"INSERT, SELECT of User fail after {drop} (expand): {MISSING_COLUMN}"
    )
    assert failed_lines(result) == [caught]
    assert "Traceback" not in result.stderr
    assert scratch_databases(postgres_server) == before


def test_the_same_drop_in_a_contract_revision_passes_and_the_expand_phase_keeps_the_column(
    release, postgres_server
):
    project, sha = release
    contract = DROP_FULL_NAME.format(phase="-- Phase: contract\n")
    drop = add_revision(project, "drop_full_name", contract, ADD_FULL_NAME)
    edit_models(project, FULL_NAME, "")

    result = compat(project, postgres_server, "--ref", sha)

    assert result.returncode == 0, result.stdout + result.stderr
    # The old code's INSERT and SELECT of User write and read full_name: after expand it is there.
    expand = f"after {HEAD} (expand; held back: {drop}): the old code works, the new code works"
    assert f"compat: {expand}" in result.stdout.splitlines()
    assert f"compat: after {drop} (contract): the new code works" in result.stdout.splitlines()


def test_a_drop_no_parser_sees_is_caught_by_the_old_codes_own_statements(release, postgres_server):
    project, sha = release
    drop = add_revision(project, "drop_full_name", HIDDEN_DROP, ADD_FULL_NAME)
    edit_models(project, FULL_NAME, "")

    result = compat(project, postgres_server, "--ref", sha)

    assert result.returncode == 1, result.stdout + result.stderr
    caught = (
        f"FAILED: users.full_name: the old code's INSERT, SELECT of User fail after {drop} "
        f"(expand): {MISSING_COLUMN}; move the drop (or rename) to a contract revision"
    )
    assert failed_lines(result) == [caught]


def test_a_not_null_column_without_default_in_expand_is_caught_for_the_old_codes_insert(
    release, postgres_server
):
    project, sha = release
    up = "ALTER TABLE users ADD COLUMN nickname text NOT NULL;\n"
    added = add_revision(project, "add_nickname", up, DROP_NICKNAME)
    edit_models(project, FULL_NAME, FULL_NAME + NICKNAME.format(annotation="str"))

    result = compat(project, postgres_server, "--ref", sha)

    assert result.returncode == 1, result.stdout + result.stderr
    up_file = f"sql/up/{added}_add_nickname.sql"
    caught = (
        f"FAILED: users.nickname: revision {added} (expand, {up_file} line 1) adds it NOT NULL "
        "without a default: the old code's INSERT leaves it out; keep it nullable or give it a "
        "DEFAULT until a contract revision, once the new code always writes it"
    )
    # The rows the old code wrote refuse it already.
    refused = (
        f"FAILED: this tree's expand phase fails on the rows the old code wrote: {up_file} line 1 "
        'failed: ERROR:  column "nickname" of relation "users" contains null values. The '
        "transaction was rolled back."
    )
    assert failed_lines(result) == [caught, refused]


def test_a_default_dropped_later_is_caught_by_the_old_codes_insert(release, postgres_server):
    """Filled by a default that the next statement drops: the rows pass, the old INSERT fails."""
    project, sha = release
    up = (
        "ALTER TABLE users ADD COLUMN nickname text NOT NULL DEFAULT 'anonymous';\n"
        "ALTER TABLE users ALTER COLUMN nickname DROP DEFAULT;\n"
    )
    added = add_revision(project, "add_nickname", up, DROP_NICKNAME)
    edit_models(project, FULL_NAME, FULL_NAME + NICKNAME.format(annotation="str"))

    result = compat(project, postgres_server, "--ref", sha)

    assert result.returncode == 1, result.stdout + result.stderr
    caught = (
        f"FAILED: users.nickname: revision {added} (expand, sql/up/{added}_add_nickname.sql line "
        "2) drops the default of this NOT NULL column: the old code's INSERT leaves it out; keep "
        "it nullable or give it a DEFAULT until a contract revision, once the new code always "
        "writes it. The ORM check agrees: the old code's INSERT of User fails after "
        f'{added} (expand): null value in column "nickname" of relation "users" violates '
        "not-null constraint"
    )
    assert failed_lines(result) == [caught]


def test_an_additive_revision_with_its_model_passes(release, postgres_server):
    project, sha = release
    up = "ALTER TABLE users ADD COLUMN nickname text;\n"
    added = add_revision(project, "add_nickname", up, DROP_NICKNAME)
    edit_models(project, FULL_NAME, FULL_NAME + NICKNAME.format(annotation="str | None"))

    result = compat(project, postgres_server, "--ref", sha)

    assert result.returncode == 0, result.stdout + result.stderr
    baseline = (
        f"compat: at {HEAD} (the running release): the old code writes and reads every class "
        "(refused by design: AuditLog: UPDATE, DELETE)"
    )
    assert result.stdout.splitlines() == [
        f"compat: running release {sha} (at {HEAD}); this tree adds {added}",
        "compat: static pass: no problem(s) in the expand revisions",
        baseline,
        f"compat: after {added} (expand): the old code works, the new code works",
        f"compat: no contract revision: nothing more to apply after {added}",
        "compat: the running release's code works after the expand phase; this tree's after both",
    ]


def test_make_compat_with_no_change_passes(release, postgres_server):
    project, sha = release
    before = scratch_databases(postgres_server)

    result = run_make(
        project, "compat", f"COMPAT_REF={sha}", f"SCHEMA_SCRATCH_URL={postgres_server.admin_url}"
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"compat: running release {sha} (at {HEAD}); this tree adds no revision" in result.stdout
    assert scratch_databases(postgres_server) == before


def test_without_a_release_to_compare_with_it_says_to_set_compat_ref(release, postgres_server):
    project, _ = release
    git(project, "branch", "-m", "work")  # no main, no origin/main: nothing to default to

    unset = compat(project, postgres_server)
    unknown = compat(project, postgres_server, "--ref", "no-such-ref")

    assert unset.returncode == 2
    no_release = (
        "FAILED: No running release to compare with: set COMPAT_REF (or --ref) to its git ref, "
        "e.g. COMPAT_REF=origin/main."
    )
    assert failed_lines(unset) == [no_release]
    assert unknown.returncode == 2
    not_found = (
        "FAILED: git cannot read the running release 'no-such-ref' (fatal: not a valid object "
        "name: no-such-ref): set COMPAT_REF to a commit, branch or tag of this repository."
    )
    assert failed_lines(unknown) == [not_found]


OLD_MODELS = compat_static.OldModels(
    [
        {
            "class": "User",
            "table": "users",
            "columns": {
                "id": {"type": "UUID", "nullable": False, "default": True},
                "email": {"type": "TEXT", "nullable": False, "default": False},
                "full_name": {"type": "VARCHAR(100)", "nullable": True, "default": False},
                "role": {"type": "TEXT", "nullable": False, "default": True},
                "logins": {"type": "INTEGER", "nullable": False, "default": True},
                "handle": {"type": "TEXT", "nullable": True, "default": False},
                "bio": {"type": "TEXT", "nullable": True, "default": False},
                "legacy": {"type": "TEXT", "nullable": True, "default": False},
                # The ORM always writes it (a Python default): its server default may go.
                "kind": {
                    "type": "TEXT",
                    "nullable": False,
                    "default": True,
                    "python_default": True,
                },
            },
        },
        {"class": "Organization", "table": "organizations", "columns": {}},
        {"class": "Framework", "table": "frameworks", "columns": {}},
    ]
)
DROPPED_DEFAULT = "drops the default of this NOT NULL column: the old code's INSERT leaves it out"
BREAKING = """\
ALTER TABLE users ALTER COLUMN full_name TYPE varchar(50);
ALTER TABLE users ALTER COLUMN logins TYPE bigint;
ALTER TABLE public.users ALTER COLUMN email TYPE varchar(320);
ALTER TABLE users ALTER COLUMN role DROP DEFAULT;
ALTER TABLE users ALTER COLUMN kind DROP DEFAULT;
ALTER TABLE users ALTER COLUMN bio SET NOT NULL;
ALTER TABLE users ADD COLUMN tags text [] NOT NULL DEFAULT '{}', ADD COLUMN code text NOT NULL;
ALTER TABLE users RENAME COLUMN handle TO nickname;
ALTER TABLE users DROP COLUMN legacy;
ALTER TABLE organizations RENAME TO tenants;
DROP TABLE IF EXISTS audit_archive, public.frameworks;
"""


def test_the_static_pass_names_what_breaks_the_old_models_and_nothing_that_widens(tree_copy):
    """No database: each statement of an expand revision read from its parse tree."""
    breaking = add_revision(tree_copy, "breaking", BREAKING, "SELECT 1;\n")
    later = add_revision(
        tree_copy, "later", "-- Phase: contract\nDROP TABLE users;\n", "SELECT 1;\n"
    )

    found = compat_static.findings(tree_copy, [breaking, later], OLD_MODELS)

    assert found[0].text.startswith(
        f"users.full_name: revision {breaking} (expand, sql/up/{breaking}_breaking.sql line 1) "
    )
    # What each finding says, without where and the fix.
    said = [(f.table, f.column, f.text.split(") ", 1)[1].split(";")[0]) for f in found]
    narrowed = "in place, which is not wider: the old code may write what the new type refuses"
    assert said == [
        ("users", "full_name", f"changes its type from VARCHAR(100) to varchar(50) {narrowed}"),
        ("users", "email", f"changes its type from TEXT to varchar(320) {narrowed}"),
        ("users", "role", DROPPED_DEFAULT),
        ("users", "bio", "makes it NOT NULL: the old code's INSERT may leave it NULL"),
        (
            "users",
            "code",
            "adds it NOT NULL without a default: the old code's INSERT leaves it out",
        ),
        ("users", "handle", "renames a column the old code maps (User) to nickname"),
        ("users", "legacy", "drops a column the old code maps (User)"),
        ("organizations", None, "renames a table the old code maps (Organization) to tenants"),
        ("frameworks", None, "drops a table the old code maps (Framework)"),
    ]
