"""sqlfluff lints with its Rust parser (pyproject.toml: sqlfluff[rs]), and it finds and fixes
what the Python parser does.

`make lint`, `make fmt` and autogenerate's lint of each draft all go through sqlfluff, which
uses the sqlfluffrs package's lexer and parser when it is installed (its use_rust_parser
setting, "auto" unless a configuration turns it off). That parser is younger than the Python
one: it is kept only while it agrees with it on the tree's SQL, as written and mangled into
the shapes a hand-written file has before `make fmt` (lower-case keywords, no indentation,
long lines), violation for violation and fixed text for fixed text.
"""

import re

from sqlfluff.core import FluffConfig, Linter
from sqlfluff.core.parser.rust_parser import RustParser

from migration_runner.tools.autogenerate import draft
from support.project import ROOT

# What `make lint` lints (sql/schema.sql is pg_dump's output, in .sqlfluffignore).
SQL_FILES = sorted(
    [
        *(ROOT / "sql" / "up").glob("*.sql"),
        *(ROOT / "sql" / "down").glob("*.sql"),
        *(ROOT / "migration_runner" / "steps" / "sql").glob("*.sql"),
    ]
)
KEYWORDS = re.compile(r"\b(ALTER|TABLE|ADD|COLUMN|CREATE|INDEX|ON|NOT|NULL|DEFAULT|SELECT|FROM)\b")


def _linter(parser: str) -> Linter:
    """A linter with the tree's configuration and use_rust_parser set to parser."""
    config = FluffConfig.from_path(str(ROOT), overrides={"use_rust_parser": parser})
    return Linter(config=config)


def _mangled(text: str) -> str:
    """text as a hand-written draft may have it: keywords in lower case, no indentation, and
    one line joined onto the next to run past the length limit."""
    text = KEYWORDS.sub(lambda keyword: keyword.group().lower(), text)
    text = re.sub(r"^[ \t]+", "", text, flags=re.MULTILINE)
    return text.replace(";\n", "; ", 1)


def _outcome(linter: Linter, text: str) -> tuple[list, str]:
    linted = linter.lint_string_wrapped(text, fix=True)
    violations = sorted(
        (violation.rule_code(), violation.line_no, violation.line_pos)
        for violation in linted.get_violations()
    )
    return violations, linted.paths[0].files[0].fix_string()[0]


def test_sqlfluff_uses_its_rust_parser_with_the_trees_configuration():
    assert RustParser is not None, "sqlfluffrs is not installed: pip install 'sqlfluff[rs]'"
    config = FluffConfig.from_path(str(ROOT))
    assert config.get("use_rust_parser") == "auto"
    # Autogenerate's configuration is the tree's too.
    assert draft._config_of(*draft._config_source(ROOT)).get("use_rust_parser") == "auto"


def test_the_rust_parser_finds_and_fixes_what_the_python_parser_does():
    rust, python = _linter("auto"), _linter("False")
    assert len(SQL_FILES) >= 4
    found = 0
    for path in SQL_FILES:
        for text in (path.read_text(), _mangled(path.read_text())):
            expected = _outcome(python, text)
            assert _outcome(rust, text) == expected, path.relative_to(ROOT)
            found += len(expected[0])
    assert found > len(SQL_FILES)  # the mangled texts did break rules, and both saw them
