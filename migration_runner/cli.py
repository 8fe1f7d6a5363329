"""`migrations`: every tool of the runner behind one command, one parser, one error edge.

    migrations --help                  # the subcommands
    migrations drift                   # make drift
    migrations rehearse                # make rehearse
    migrations restore FILE            # make restore BACKUP=FILE

The `make` targets call it as `.venv/bin/migrations SUBCOMMAND` (pyproject.toml's
[project.scripts]). Each subcommand calls a function of its tool module; this
module alone parses arguments and turns what goes wrong into one line on stderr,
`FAILED: <what to fix>`, with no traceback and a password masked as the tools
mask it. Exit status, the same for every subcommand (docs/commands-and-variables.md
has this table):

    0    done, nothing to fix
    1    it ran and found a problem or refused: drift, a stale sql/schema.sql, an
         incompatibility, a lint finding, a revision that failed in a rehearsal, a
         schema adopt will not stamp, a backup restore will not load
    2    it could not run: a usage error, or what it needs is missing or unreachable
         (the database, the local server, a file, a running release to compare with)
    130  interrupted (Ctrl-C, SIGTERM), after the tool's own cleanup

The codes are the ones the tools already agreed on: drift, adopt, rehearse, compat and
schema exited 2 when they could not run and 1 for a finding, and argparse exits 2 for
a usage error. Restore refusing a backup stays 1 (it is restore's finding); the local
server commands and status, which exited 1 when they could not run, now exit 2.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from migration_runner.steps.quick_exit import skip_exit_collections

OK, FOUND, CANNOT_RUN, INTERRUPTED = 0, 1, 2, 130
NEW_LINES = re.compile(r"\s*\n\s*")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one `FAILED:` line too (exit 2, CANNOT_RUN)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"FAILED: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(CANNOT_RUN)


def _existing_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{value}: no such file")
    return path


def _tree(parser: argparse.ArgumentParser, scratch: bool = True) -> None:
    parser.add_argument("--tree", type=Path, default=Path.cwd(), help="the migration tree")
    if scratch:
        parser.add_argument(
            "--scratch-url",
            default=os.environ.get("SCHEMA_SCRATCH_URL"),
            help="a server where a temporary database may be created (default: a throwaway one)",
        )


# --- the subcommands: each imports its tool only when it runs (`--help` stays quick) -------


def _rehearse(options: argparse.Namespace) -> int:
    from migration_runner.tools import rehearse

    return rehearse.run(options.tree.resolve())


def _drift(options: argparse.Namespace) -> int:
    from migration_runner.tools import drift

    return drift.run(options.tree.resolve(), options.scratch_url)


def _adopt(options: argparse.Namespace) -> int:
    from migration_runner.tools import adopt

    return adopt.run(options.tree.resolve(), options.revision, options.scratch_url)


def _restore(options: argparse.Namespace) -> int:
    from migration_runner.tools import restore

    return restore.run(options.backup, options.overwrite)


def _status(options: argparse.Namespace) -> int:
    from migration_runner.tools import status

    return status.run()


def _schema(options: argparse.Namespace) -> int:
    from migration_runner.tools import schema_snapshot

    return schema_snapshot.run(options.action, options.tree.resolve(), options.scratch_url)


def _compat(options: argparse.Namespace) -> int:
    from migration_runner.tools import compat

    return compat.run(options.tree.resolve(), options.ref, options.scratch_url)


def _linear_history(options: argparse.Namespace) -> int:
    from migration_runner.tools import linear_history

    return linear_history.run(options.tree)


def _sql_headers(options: argparse.Namespace) -> int:
    from migration_runner.tools import sql_headers

    return sql_headers.run(options.tree)


def _phase_order(options: argparse.Namespace) -> int:
    from migration_runner.tools import phase_order

    return phase_order.run(options.tree)


def _db(options: argparse.Namespace) -> int:
    from migration_runner.servers import local_postgres

    return local_postgres.run(options.action, options.project, options.quiet)


def _vercel_local(options: argparse.Namespace) -> int:
    from migration_runner.servers import vercel_local

    return vercel_local.run(options.action, options.project, options.version)


def parser() -> Parser:
    top = Parser(
        prog="migrations",
        description="The runner's tools: migrations SUBCOMMAND --help says each one's options.",
        epilog="exit status: 0 done; 1 found a problem or refused; 2 could not run "
        "(a usage error, a database, server or file missing or unreachable); 130 interrupted",
    )
    commands = top.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str, **how):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(**{"handler": handler, "refusal": CANNOT_RUN, "interrupted": "", **how})
        return sub

    sub = command(
        "rehearse",
        _rehearse,
        "apply the pending revisions to a copy of the target",
        interrupted="the target was not changed",
    )
    _tree(sub, scratch=False)
    sub = command("drift", _drift, "list how the live database differs from its revision")
    _tree(sub)
    sub = command("adopt", _adopt, "stamp a database made before migrations, if it is exactly v001")
    sub.add_argument("--revision", help="the revision it matches (default: the first)")
    _tree(sub)
    # Its refusals (not at the backup's revision, a table changed shape) are its finding: 1.
    sub = command(
        "restore", _restore, "put back the rows a destructive revision removed", refusal=FOUND
    )
    sub.add_argument("backup", type=_existing_file, help="a .dump file the runner wrote")
    sub.add_argument(
        "--overwrite",
        action="store_true",
        help="restore although the database is not at the backup's revision or its tables "
        "changed shape: the backup's values replace the current ones",
    )
    command("status", _status, "print the target, its revision and its tables")
    sub = command("schema", _schema, "write sql/schema.sql, or check it matches the migrations")
    sub.add_argument("action", choices=("write", "check"))
    _tree(sub)
    sub = command(
        "compat",
        _compat,
        "prove the running release's code works after the expand",
        interrupted="the scratch database was dropped",
    )
    sub.add_argument(
        "--ref",
        help="the running release's git ref (default: COMPAT_REF, origin/main's merge base)",
    )
    _tree(sub)
    for name, handler, help_text in (
        ("linear-history", _linear_history, "check the history is one line: 001, 002, ..."),
        ("sql-headers", _sql_headers, "check each SQL file's header lines say what it does"),
        ("phase-order", _phase_order, "check no pending expand revision follows a contract one"),
    ):
        sub = command(name, handler, help_text)
        sub.add_argument("tree", nargs="?", type=Path, default=Path.cwd())
    sub = command("db", _db, "the local development PostgreSQL: start, stop, url, remove")
    sub.add_argument("action", choices=("start", "stop", "url", "remove"))
    sub.add_argument("--quiet", action="store_true", help="start: print nothing")
    sub.add_argument("--project", type=Path, default=Path.cwd())
    sub = command("vercel-local", _vercel_local, "a local Vercel Postgres stand-in: start, stop")
    sub.add_argument("action", choices=("start", "stop", "env"))
    sub.add_argument("--project", type=Path, default=Path.cwd())
    sub.add_argument("--version", default=None, help="PostgreSQL major version (15 or 18)")
    return top


def failure(error: BaseException, options: argparse.Namespace) -> tuple[str, int] | None:
    """The FAILED line's text and exit status for an error the tools let through; None for a
    programming error, which keeps its traceback."""
    from sqlalchemy.exc import DBAPIError

    from migration_runner.errors import MigrationError, reason_of
    from migration_runner.servers.local_postgres import LocalServerError

    if isinstance(error, KeyboardInterrupt):
        signal_name = f" ({error})" if str(error) else ""
        note = f"; {options.interrupted}" if options.interrupted else ""
        return f"interrupted{signal_name}{note}", INTERRUPTED
    if isinstance(error, MigrationError):
        return str(error), options.refusal
    if isinstance(error, LocalServerError):
        return str(error), CANNOT_RUN
    if isinstance(error, DBAPIError):
        return reason_of(error), CANNOT_RUN
    import psycopg2

    if isinstance(error, psycopg2.Error):
        return (str(error).strip().splitlines() or [type(error).__name__])[0], CANNOT_RUN
    return None


def main(argv: Sequence[str] | None = None) -> int:
    options = parser().parse_args(argv)
    try:
        return options.handler(options)
    except (Exception, KeyboardInterrupt) as error:
        found = failure(error, options)
        if found is None:
            raise
        message, status = found
        # One line, though libpq's reasons (and a few tools' messages) span several.
        print(f"FAILED: {NEW_LINES.sub(' ', message.strip())}", file=sys.stderr)
        return status
    finally:
        skip_exit_collections(argv is None)  # the `migrations` command, not a caller's main([...])


if __name__ == "__main__":
    sys.exit(main())
