"""The SQL file pair behind a revision, found from the migration tree itself.

A shim at <tree>/alembic/versions/NNN_slug.py owns <tree>/sql/up/NNN_slug.sql
and <tree>/sql/down/NNN_slug.sql, so a copy of the tree runs its own files.

A file's leading comment block may carry `-- Key: value` headers. The runner
reads one of them: `-- Transaction: none` runs the file outside a transaction
(CREATE INDEX CONCURRENTLY, ALTER TYPE ... ADD VALUE).
"""

import hashlib
import os
import re
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

from migration_runner.errors import MigrationError

DIRECTIONS = ("up", "down")
HEADER = re.compile(r"^--\s*([A-Za-z-]+):\s*(.*?)\s*$")
FIRST_WORD = re.compile(r"[A-Za-z]+")
# The lines that open a file with `--`: where its headers are (the rest is not split).
LEADING_COMMENTS = re.compile(r"(?:--[^\n]*(?:\n|$))*")


@dataclass(frozen=True)
class Statement:
    line: int  # where the statement starts in its file, 1-based
    text: str  # exactly as written, without the closing semicolon

    @property
    def keyword(self) -> str:
        """Its first word, upper-cased ("" if it starts otherwise): the kind of statement."""
        match = FIRST_WORD.match(self.text)
        return match.group(0).upper() if match else ""

    @cached_property
    def node(self) -> object:
        """pglast's parse tree of it, built on first use: building it is the costly part."""
        import pglast

        return pglast.parse_sql(self.text)[0].stmt


@dataclass(frozen=True)
class SqlFile:
    path: Path
    text: str

    @cached_property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @cached_property
    def headers(self) -> dict[str, str]:
        """The `-- Key: value` lines of the leading comment block, keys lower-cased."""
        found = {}
        for line in LEADING_COMMENTS.match(self.text).group(0).splitlines():
            if not line.startswith("--"):  # a line break other than \n ended the block
                break
            match = HEADER.match(line)
            if match:
                found[match.group(1).lower()] = match.group(2)
        return found

    @property
    def transactional(self) -> bool:
        return self.headers.get("transaction", "").lower() != "none"

    @cached_property
    def statements(self) -> list[Statement]:
        """The file's statements as PostgreSQL's own parser splits them.

        The whole file is parsed (a syntax error anywhere is reported here),
        but no Python parse tree is built: Statement.node does that on demand.
        pglast is imported here, not at module level: a run with nothing to
        apply never loads it.
        """
        from pglast.parser import ParseError, split

        try:
            # Character offsets, leading comments and whitespace skipped, no semicolon.
            pieces = split(self.text, with_parser=True, only_slices=True)
        except ParseError as error:
            raise MigrationError(f"{self.shown} is not valid PostgreSQL: {error}") from None
        return [
            Statement(
                line=self.text.count("\n", 0, piece.start) + 1, text=self.text[piece].rstrip()
            )
            for piece in pieces
        ]

    @property
    def shown(self) -> str:
        """The path as a reviewer knows it: sql/up/NNN_slug.sql."""
        return "/".join(self.path.parts[-3:])


def sql_path(shim_file: str | Path, direction: str) -> str:
    """<tree>/sql/<direction>/<stem>.sql for <tree>/alembic/versions/<stem>.py: string
    operations, as a run from base asks this of every revision before its first one starts."""
    versions, name = os.path.split(os.fspath(shim_file))
    tree = os.path.dirname(os.path.dirname(versions))
    return os.path.join(tree, "sql", direction, os.path.splitext(name)[0] + ".sql")


def load(path: str | Path) -> SqlFile:
    """A SQL file, read again only when it changed since it was last read (its size,
    modification time or inode differ): the steps of a run ask for each file several times,
    and a later run in the same process sees an edit made in between."""
    try:
        found = os.stat(path)
    except OSError as error:
        raise _unreadable(Path(path), error) from None
    return _read(os.fspath(path), found.st_size, found.st_mtime_ns, found.st_ino)


@cache
def _read(name: str, size: int, modified: int, inode: int) -> SqlFile:
    """The file as it was at that size, time and inode (the key of the cache)."""
    path = Path(name)
    try:
        with open(name, encoding="utf-8") as sql:
            return SqlFile(path=path, text=sql.read())
    except UnicodeDecodeError as error:
        content = path.read_bytes()
        line = content.count(b"\n", 0, error.start) + 1
        raise MigrationError(
            f"{'/'.join(path.parts[-3:])} is not valid UTF-8: byte 0x{content[error.start]:02x} "
            f"on line {line}. Save the file as UTF-8 (iconv -f LATIN1 -t UTF-8 converts a "
            "Latin-1 file)."
        ) from None
    except OSError as error:
        raise _unreadable(path, error) from None


def _unreadable(path: Path, error: OSError) -> MigrationError:
    shown = "/".join(path.parts[-3:])
    if isinstance(error, FileNotFoundError):
        return MigrationError(
            f"Missing SQL file {shown}: every revision needs both "
            "sql/up/NNN_slug.sql and sql/down/NNN_slug.sql."
        )
    return MigrationError(f"Cannot read {shown}: {error.strerror}.")


def for_revision(shim_file: str | Path, direction: str) -> SqlFile:
    return load(sql_path(shim_file, direction))
