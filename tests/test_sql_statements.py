"""How a SQL file is split into statements: lines, exact text, parse trees only on demand."""

from pathlib import Path

import pytest

from migration_runner.errors import MigrationError
from migration_runner.steps.data_loss_guard import find_destruction
from migration_runner.steps.sql_files import SqlFile

NON_ASCII = """-- accents (up): é, ü and ß before the statements must not shift them.
COMMENT ON TABLE organizations IS 'Organisationen (ß)';
/* nested /* comment */ ü */ ALTER TABLE organizations DROP COLUMN country;

DROP TABLE audit.évidence;
"""


def sql_file(text: str) -> SqlFile:
    return SqlFile(path=Path("tree/sql/up/accents.sql"), text=text)


def test_statements_keep_their_text_and_line_after_non_ascii_characters():
    statements = sql_file(NON_ASCII).statements
    assert [(s.line, s.text) for s in statements] == [
        (2, "COMMENT ON TABLE organizations IS 'Organisationen (ß)'"),
        (3, "ALTER TABLE organizations DROP COLUMN country"),
        (5, "DROP TABLE audit.évidence"),
    ]


def test_the_guard_parses_only_statements_that_can_destroy():
    file = sql_file(NON_ASCII)
    statements = file.statements
    assert [d.what for d in find_destruction(file)] == [
        "drops column country of",
        "drops",
    ]
    assert "node" not in vars(statements[0])  # the COMMENT was never turned into a parse tree


def test_a_syntax_error_anywhere_in_the_file_is_reported():
    with pytest.raises(MigrationError, match="is not valid PostgreSQL"):
        _ = sql_file("SELECT 1;\nCREAT TABLE x ();\n").statements
