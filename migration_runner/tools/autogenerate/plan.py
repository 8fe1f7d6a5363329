"""The SQL of one model change, sorted into the revisions that will hold it.

Up to four revisions, numbered in this order (make lint wants every expand
revision before the first contract one):

- expand: backward compatible, in a transaction (new columns, triggers, drops
  of constraints nothing needs);
- expand, online steps: `-- Transaction: none`, each statement committed on its
  own (backfills in batches, CREATE INDEX CONCURRENTLY, NOT VALID then VALIDATE);
- contract: `-- Phase: contract`, after the new code is live everywhere, in a
  transaction (drops, the swap of a retyped column);
- contract, online steps: the same, outside a transaction (NOT NULL by way of a
  validated CHECK on a column the old code left NULL).
"""

from dataclasses import dataclass, field

from migration_runner.steps.phases import CONTRACT, EXPAND


@dataclass
class Statement:
    sql: str
    comment: str
    squawk_ignore: str = ""  # a squawk rule this statement breaks on purpose (the comment says why)


@dataclass
class Part:
    up: list[Statement] = field(default_factory=list)
    down: list[Statement] = field(default_factory=list)  # in the order it runs


# (phase, online) of each revision, in the order they are numbered.
PARTS = ((EXPAND, False), (EXPAND, True), (CONTRACT, False), (CONTRACT, True))


@dataclass
class Plan:
    parts: dict[tuple[str, bool], Part] = field(default_factory=lambda: {p: Part() for p in PARTS})
    drops_columns: bool = False  # the down files then put them back as their table's last columns
    warnings: list[str] = field(default_factory=list)

    def pair(
        self,
        up: list[Statement],
        down: list[Statement],
        online: bool = False,
        phase: str = EXPAND,
    ) -> None:
        """up runs in that revision; down undoes it, in the order given, and the downs of a
        revision run in reverse order of their ups."""
        part = self.parts[(phase, online)]
        part.up += up
        part.down[:0] = down

    def is_empty(self) -> bool:
        return not any(part.up for part in self.parts.values())
