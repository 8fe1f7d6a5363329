"""The SQL file pair behind a revision, found from the migration tree itself.

A shim at <tree>/alembic/versions/NNN_slug.py owns <tree>/sql/up/NNN_slug.sql
and <tree>/sql/down/NNN_slug.sql, so a copy of the tree runs its own files.

A file's leading comment block may carry `-- Key: value` headers. The runner
reads one of them: `-- Transaction: none` runs the file outside a transaction
(CREATE INDEX CONCURRENTLY, ALTER TYPE ... ADD VALUE).
"""

import hashlib
import re
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

import pglast

from migration_runner.errors import MigrationError

DIRECTIONS = ("up", "down")
HEADER = re.compile(r"^--\s*([A-Za-z-]+):\s*(.*?)\s*$")
# Whitespace and comments between the end of one statement and the next.
LEADING_NOISE = re.compile(r"(\s+|--[^\n]*|/\*.*?\*/)*", re.DOTALL)


@dataclass(frozen=True)
class Statement:
    line: int  # where the statement starts in its file, 1-based
    text: str  # exactly as written, without the closing semicolon
    node: object  # pglast's parse tree of it


@dataclass(frozen=True)
class SqlFile:
    path: Path
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def headers(self) -> dict[str, str]:
        found = {}
        for line in self.text.splitlines():
            if not line.startswith("--"):
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
        """The file's statements as PostgreSQL's own parser splits them."""
        try:
            parsed = pglast.parse_sql(self.text)
        except pglast.parser.ParseError as error:
            raise MigrationError(f"{self.shown} is not valid PostgreSQL: {error}") from None
        data = self.text.encode()
        statements = []
        for raw in parsed:
            # The parser reports byte offsets; a length of 0 means "to the end".
            end = raw.stmt_location + raw.stmt_len if raw.stmt_len else len(data)
            chunk = data[raw.stmt_location : end].decode()
            start = LEADING_NOISE.match(chunk).end()
            line = data[: raw.stmt_location].count(b"\n") + chunk[:start].count("\n") + 1
            statements.append(Statement(line=line, text=chunk[start:].rstrip(), node=raw.stmt))
        return statements

    @property
    def shown(self) -> str:
        """The path as a reviewer knows it: sql/up/NNN_slug.sql."""
        return "/".join(self.path.parts[-3:])


def sql_path(shim_file: str | Path, direction: str) -> Path:
    shim = Path(shim_file)
    return shim.parents[2] / "sql" / direction / f"{shim.stem}.sql"


@cache
def load(path: Path) -> SqlFile:
    """Read a SQL file once per process."""
    try:
        return SqlFile(path=path, text=path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MigrationError(
            f"Missing SQL file {'/'.join(path.parts[-3:])}: every revision needs both "
            "sql/up/NNN_slug.sql and sql/down/NNN_slug.sql."
        ) from None


def for_revision(shim_file: str | Path, direction: str) -> SqlFile:
    return load(sql_path(shim_file, direction))
