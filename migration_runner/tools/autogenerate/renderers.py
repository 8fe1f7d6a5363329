"""The dispatch table of autogenerate's SQL: one function per kind of change.

As Alembic registers its own renderers (`renderers.dispatch_for(ops.AddColumnOp)`,
alembic.util.Dispatcher), each function here is registered for the op class it
writes, `@renders(ops.AddColumnOp)`, and called with the op and the Context of
the run; it adds its up and down statements to the context's plan. The CHECK
and index differences Alembic does not see (model_parity.ModelMismatch) are
registered by kind and direction, `@renders(mismatch("CHECK", ADDED))`.

The functions live in render_*.py by concern; render.py imports them (which
registers them) and calls them in order. Nothing here imports render.py or the
render_*.py modules, so there is no import circle.
"""

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from alembic.migration import MigrationContext
from alembic.operations import Operations, ops
from alembic.util import Dispatcher
from sqlalchemy import MetaData

from migration_runner.errors import MigrationError
from migration_runner.tools.autogenerate.catalog import Catalog
from migration_runner.tools.autogenerate.plan import Plan, Statement

ADDED = "in the models only"  # a difference's direction: what to add
DROPPED = "in the database only"  # what to drop

_TABLE = Dispatcher()


@dataclass
class Context:
    """What a renderer needs besides its op: the models, the plan it adds to, and the tables
    this change creates (nobody reads them yet: no online steps for them)."""

    metadata: MetaData
    plan: Plan = field(default_factory=Plan)
    new_tables: set[str] = field(default_factory=set)
    catalog: Catalog | None = None  # the database compared with (a dropped table's triggers)

    def existing(self, table: str) -> bool:
        return table not in self.new_tables

    def plain(self, op: ops.MigrateOperation, comment: str) -> list[Statement]:
        """Alembic's own statements for op, each under comment."""
        return [Statement(sql, comment) for sql in alembic_sql(op, self.metadata)]


Renderer = Callable[[object, Context], None]


def mismatch(kind: str, direction: str) -> str:
    """The dispatch key of a ModelMismatch kind ("CHECK", "index") in one direction."""
    return f"{kind} {direction}"


def renders(*targets: type | str) -> Callable[[Renderer], Renderer]:
    """Register the decorated function as the renderer of each target: an Alembic op class,
    or a mismatch(kind, direction) key. A second function for the same target is refused."""

    def register(function: Renderer) -> Renderer:
        for target in targets:
            _TABLE.dispatch_for(target)(function)
        return function

    return register


def renderer_for(target: object) -> Renderer | None:
    """The function registered for target (an op, by its class; or a mismatch key)."""
    try:
        return _TABLE.dispatch(target)
    except ValueError:
        return None


def render_op(op: ops.MigrateOperation, context: Context) -> None:
    function = renderer_for(op)
    if function is None:
        table = getattr(op, "table_name", None) or getattr(op, "source_table", "")
        raise MigrationError(
            f"autogenerate does not write {type(op).__name__} ({table}) yet: "
            "write this change by hand with `alembic revision -m ...` (MIGRATIONS.md)."
        )
    function(op, context)


def render_mismatch(difference, direction: str, context: Context) -> None:
    """One side of a model_parity.ModelMismatch: the database's object to drop, or the
    models' to add."""
    function = renderer_for(mismatch(difference.kind, direction))
    if function is None:
        raise MigrationError(
            f"autogenerate does not write a {difference.kind} difference ({difference.table}) "
            "yet: write this change by hand with `alembic revision -m ...` (MIGRATIONS.md)."
        )
    function(difference, context)


def alembic_sql(op: ops.MigrateOperation, metadata: MetaData) -> list[str]:
    """The statements Alembic itself would run for op, as its --sql mode writes them
    (with the models' naming convention, so unnamed indexes get our names)."""
    buffer = io.StringIO()
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)  # no "Context impl"
    context = MigrationContext.configure(
        dialect_name="postgresql",
        dialect_opts={"paramstyle": "named"},  # a `%` of a CHECK stays one `%`
        opts={
            "as_sql": True,
            "output_buffer": buffer,
            "literal_binds": True,
            "target_metadata": metadata,
        },
    )
    Operations(context).invoke(op)
    return [part.strip() for part in buffer.getvalue().split(";\n\n") if part.strip()]
