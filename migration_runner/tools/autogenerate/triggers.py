"""The triggers that keep the old code's writes and the new schema in step during expand.

Each is a plpgsql function named after its table and columns, run BEFORE INSERT
OR UPDATE FOR EACH ROW, so every write, from the old code or the new, leaves
both columns right in the same statement; the contract phase drops it.
"""

from dataclasses import dataclass

from migration_runner.tools.autogenerate.identifiers import fitted_name, literal, quoted
from migration_runner.tools.autogenerate.lock_facts import describe
from migration_runner.tools.autogenerate.plan import Statement


@dataclass(frozen=True)
class Trigger:
    table: str
    name: str  # the function's and the trigger's
    body: str  # the function's statements, before RETURN NEW
    purpose: str  # what it does, for the comments: "keeps users.a and users.b equal"

    def create(self) -> list[Statement]:
        name, table = quoted(self.name), quoted(self.table)
        function = (
            f"CREATE FUNCTION {name}() RETURNS trigger\nLANGUAGE plpgsql AS $sync$\n"
            f"BEGIN\n{self.body}\n    RETURN NEW;\nEND;\n$sync$"
        )
        return [
            Statement(function, f"The trigger function: {self.purpose}, on every row written."),
            Statement(
                f"COMMENT ON FUNCTION {name}() IS\n" + literal(f"Expand/contract: {self.purpose}."),
                "Say what it is for: the contract phase drops it.",
            ),
            Statement(
                f"CREATE TRIGGER {name}\nBEFORE INSERT OR UPDATE ON {table}\n"
                f"FOR EACH ROW EXECUTE FUNCTION {name}()",
                f"Fire it on every write to {self.table}: "
                f"{describe('create_trigger', self.table)}.",
            ),
        ]

    def drop(self, why: str) -> list[Statement]:
        name, table = quoted(self.name), quoted(self.table)
        return [
            Statement(
                f"DROP TRIGGER {name} ON {table}",
                f"{why}: drop the trigger that {self.purpose}; "
                f"{describe('drop_trigger', self.table)}.",
            ),
            Statement(
                f"DROP FUNCTION {name}()",
                "And its function, which nothing else calls.",
                "ban-drop-function",
            ),
        ]


def both_ways(table: str, old: str, new: str, to_new: str, to_old: str) -> Trigger:
    """A renamed column: the old code writes old, the new code writes new; whichever a write
    sets, the other follows (to_new and to_old: the value converted, over NEW)."""
    old_column, new_column = quoted(old), quoted(new)
    body = f"""\
    IF TG_OP = 'UPDATE' THEN
        IF NEW.{new_column} IS DISTINCT FROM OLD.{new_column} THEN
            NEW.{old_column} := {to_old};  -- the new code wrote it
        ELSE
            NEW.{new_column} := {to_new};  -- the old code wrote it, or neither did
        END IF;
    ELSIF NEW.{new_column} IS NULL THEN
        NEW.{new_column} := {to_new};
    ELSE
        NEW.{old_column} := {to_old};
    END IF;"""
    return Trigger(
        table,
        fitted_name(table, old, new, suffix="_sync"),
        body,
        f"keeps {table}.{old} and {table}.{new} equal",
    )


def one_way(table: str, source: str, copy: str, to_copy: str) -> Trigger:
    """A retyped column: every write sets source (old and new code both use its name); the copy
    of the new type follows it until the contract swaps them."""
    body = f"    NEW.{quoted(copy)} := {to_copy};"
    return Trigger(
        table,
        fitted_name(table, source, copy, suffix="_sync"),
        body,
        f"copies {table}.{source} into {table}.{copy}",
    )


def fill(table: str, column: str, default: str) -> Trigger:
    """A column becoming NOT NULL with a default: the old code may still write NULL."""
    body = f"""\
    IF NEW.{quoted(column)} IS NULL THEN
        NEW.{quoted(column)} := {default};
    END IF;"""
    return Trigger(
        table,
        fitted_name(table, column, suffix="_fill"),
        body,
        f"gives {table}.{column} its default for a NULL",
    )
