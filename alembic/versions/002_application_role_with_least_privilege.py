"""application role with least privilege

Revision ID: 002
Revises: 001
Create Date: 2026-11-30 11:32:03.833007
"""

from migration_runner.steps.revision import run_down, run_up

revision = "002"
down_revision = "001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Run sql/up/ for this revision."""
    run_up(__file__)


def downgrade() -> None:
    """Run sql/down/ for this revision."""
    run_down(__file__)
