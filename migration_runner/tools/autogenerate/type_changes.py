"""Which column type changes PostgreSQL makes in its catalog only, and the casts of the others.

ALTER COLUMN ... TYPE rewrites the whole table under ACCESS EXCLUSIVE unless the
new type keeps every stored value as it is and needs no look at them: a longer
or no length limit, more precision, a binary-compatible type. Those are listed
in NO_REWRITE; every other change is made with a new column (expand/contract).
tests/test_autogenerate_phases.py proves each rule, and a rewrite beside it,
against the table's relfilenode on PostgreSQL 15 and 18.
"""

import re
from collections.abc import Callable

from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeEngine

MODIFIERS = re.compile(r"\(([^)]*)\)")
COLLATE = re.compile(r"\s+COLLATE\s+.*$", re.IGNORECASE | re.DOTALL)
# Bare `char` and `bit` mean a length of 1: their unlimited forms are spelled otherwise.
UNLIMITED = {"char": "bpchar", "bit": "bit varying"}
Modifiers = tuple[int, ...]


def _always(old: Modifiers, new: Modifiers) -> bool:
    return True


def _unlimited(old: Modifiers, new: Modifiers) -> bool:
    return not new


def _not_shorter(old: Modifiers, new: Modifiers) -> bool:
    """A length or precision that grows or goes: every old value fits as it is."""
    return not new or (bool(old) and new[0] >= old[0])


def _scale(modifiers: Modifiers) -> int:
    return modifiers[1] if len(modifiers) > 1 else 0


def _more_digits_same_scale(old: Modifiers, new: Modifiers) -> bool:
    """numeric(p, s) to numeric(q >= p, s), or to unconstrained numeric: no value is rounded."""
    return not new or (bool(old) and new[0] >= old[0] and _scale(new) == _scale(old))


# (type before, type after) -> whether these modifiers keep the stored values as they are.
# timestamp to timestamptz is left out: PostgreSQL skips its rewrite only when the session's
# TimeZone is UTC, which a migration cannot count on.
NO_REWRITE: dict[tuple[str, str], Callable[[Modifiers, Modifiers], bool]] = {
    ("varchar", "varchar"): _not_shorter,
    ("varchar", "text"): _always,
    ("text", "varchar"): _unlimited,
    ("bit varying", "bit varying"): _not_shorter,
    ("numeric", "numeric"): _more_digits_same_scale,
    ("cidr", "inet"): _always,
    ("timestamp without time zone", "timestamp without time zone"): _not_shorter,
    ("timestamp with time zone", "timestamp with time zone"): _not_shorter,
    ("time without time zone", "time without time zone"): _not_shorter,
    ("interval", "interval"): _not_shorter,
}


def spelled(type_: TypeEngine) -> str:
    """The type as PostgreSQL's DDL writes it, in lower case: varchar(200), numeric(10, 2)."""
    return type_.compile(dialect=postgresql.dialect()).lower()


def type_name(type_: TypeEngine) -> str:
    """The type without its modifiers or collation, as NO_REWRITE names it: varchar(200)
    -> varchar."""
    return " ".join(MODIFIERS.sub("", COLLATE.sub("", spelled(type_))).split())


def collation_of(type_: TypeEngine) -> str | None:
    """The collation a string type declares (None: its type's default)."""
    return getattr(type_, "collation", None)


def collation_only(before: TypeEngine, after: TypeEngine) -> bool:
    """The same type, its collation changed: PostgreSQL keeps every row as it is (the table's
    relfilenode stays) and rebuilds the indexes on the column."""
    return collation_of(before) != collation_of(after) and _name_and_modifiers(
        before
    ) == _name_and_modifiers(after)


def _name_and_modifiers(type_: TypeEngine) -> tuple[str, Modifiers]:
    found = MODIFIERS.search(COLLATE.sub("", spelled(type_)))
    modifiers = tuple(int(part) for part in found.group(1).split(",")) if found else ()
    return type_name(type_), modifiers


def rewrites(before: TypeEngine, after: TypeEngine) -> bool:
    """True unless PostgreSQL changes this column type without touching a row."""
    if collation_only(before, after):
        return False
    old_name, old_modifiers = _name_and_modifiers(before)
    new_name, new_modifiers = _name_and_modifiers(after)
    keeps = NO_REWRITE.get((old_name, new_name))
    return keeps is None or not keeps(old_modifiers, new_modifiers)


def cast_type(type_: TypeEngine) -> str:
    """The type without its length or precision: varchar(200) -> varchar.

    A copy casts to it and leaves the limit to the column, so a value that does not fit
    is refused (assignment), never cut as an explicit ::varchar(200) would cut it.
    """
    base, brackets, rest = type_name(type_).partition("[")
    return UNLIMITED.get(base, base) + brackets + rest


def converted(expression: str, before: TypeEngine, after: TypeEngine) -> str:
    """expression, of type before, as a value of type after (as is when they are the same)."""
    if spelled(before) == spelled(after):
        return expression
    return f"{expression}::{cast_type(after)}"
