"""The SQL of one model change, sorted into the revisions that will hold it.

Up to five revisions, numbered in this order (make lint wants every expand
revision before the first contract one):

- expand: backward compatible, in a transaction (new columns, triggers, drops
  of constraints nothing needs);
- expand, online steps: `-- Transaction: none`, each statement committed on its
  own (backfills in batches, CREATE INDEX CONCURRENTLY, NOT VALID then VALIDATE);
- contract, first online steps: `-- Transaction: none`, the constraints, indexes
  and NOT NULL of a column the contract drops taken off it first, so that the
  down, run once the contract's down has put the column back, rebuilds them
  online instead of inside that transaction;
- contract: `-- Phase: contract`, after the new code is live everywhere, in a
  transaction (drops, the swap of a retyped column);
- contract, online steps: the same, outside a transaction (NOT NULL by way of a
  validated CHECK on a column the old code left NULL).
"""

import re
from dataclasses import dataclass, field

from migration_runner.steps.phases import CONTRACT, EXPAND

QUOTED_NAME = re.compile(r'"((?:[^"]|"")+)"')
# sqlfluff's RF05 refuses an identifier with any other character (a space, a dash): where the
# models chose such a name, the statement says that it is meant.
PLAIN_CHARACTER = re.compile(r"[A-Za-z0-9_]")
SPECIAL_NAMES_MEANT = (
    "-- The models name objects with characters sqlfluff's RF05 refuses: they are meant.\n"
    "-- noqa: disable=RF05\n"
)


@dataclass
class Statement:
    sql: str
    comment: str
    # The squawk rules this statement breaks on purpose (the comment says why): one, or a list,
    # kept as the comma-separated list one `-- squawk-ignore` comment takes.
    squawk_ignore: str | list[str] = ""

    def __setattr__(self, name: str, value) -> None:
        if name == "squawk_ignore" and not isinstance(value, str):
            value = ", ".join(dict.fromkeys(value))  # each rule once, in the order given
        super().__setattr__(name, value)


@dataclass
class Part:
    up: list[Statement] = field(default_factory=list)
    down: list[Statement] = field(default_factory=list)  # in the order it runs
    down_warnings: list[str] = field(default_factory=list)  # the down file's header says them


# The online value of the contract's first revision, `-- Transaction: none`, numbered before
# its transaction: its up takes a dropped column's constraints, indexes and NOT NULL off it
# first; its down, which runs after the transaction's down has put the column back, rebuilds
# them online (NOT VALID + VALIDATE, CONCURRENTLY; expand_contract.write_contract_prelude).
BEFORE_SWAP = "before the swap"
# (phase, online) of each revision, in the order they are numbered.
PARTS = (
    (EXPAND, False),
    (EXPAND, True),
    (CONTRACT, BEFORE_SWAP),
    (CONTRACT, False),
    (CONTRACT, True),
)


@dataclass
class Plan:
    parts: dict[tuple[str, bool], Part] = field(default_factory=lambda: {p: Part() for p in PARTS})
    drops_columns: bool = False  # the down files then put them back as their table's last columns
    warnings: list[str] = field(default_factory=list)

    def pair(
        self,
        up: list[Statement],
        down: list[Statement],
        online: bool | str = False,
        phase: str = EXPAND,
    ) -> None:
        """up runs in that revision; down undoes it, in the order given, and the downs of a
        revision run in reverse order of their ups."""
        part = self.parts[(phase, online)]
        part.up += [_special_names_meant(statement) for statement in up]
        part.down[:0] = [_special_names_meant(statement) for statement in down]

    def is_empty(self) -> bool:
        return not any(part.up for part in self.parts.values())


def _special_names_meant(statement: Statement) -> Statement:
    """statement, preceded by sqlfluff's RF05 exemption when it names such an object (and by
    its squawk-ignore line, which squawk wants right above the statement)."""
    special = any(PLAIN_CHARACTER.sub("", name) for name in QUOTED_NAME.findall(statement.sql))
    if special and not statement.sql.startswith(SPECIAL_NAMES_MEANT):
        ignore = f"-- squawk-ignore {statement.squawk_ignore}\n" if statement.squawk_ignore else ""
        statement.sql = SPECIAL_NAMES_MEANT + ignore + statement.sql
        statement.squawk_ignore = ""
    return statement
