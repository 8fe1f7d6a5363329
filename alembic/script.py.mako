"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from migration_runner.steps.revision import run_down, run_up

## The ids in double quotes, as ruff formats them: a new shim lints clean as written.
revision = "${up_revision}"
down_revision = ${repr(down_revision).replace("'", '"')}
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Run sql/up/ for this revision."""
    run_up(__file__)


def downgrade() -> None:
    """Run sql/down/ for this revision."""
    run_down(__file__)
