"""Initial schema: the nine tables of the assessment platform.

Revision ID: 001
Revises:
Create Date: 2026-11-24
"""

from migration_runner.steps.revision import run_down, run_up

revision = "001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create organizations, users, frameworks, questions, assessments, responses, evidence,
    assessment_results and audit_logs, with their indexes, triggers and comments."""
    run_up(__file__)


def downgrade() -> None:
    """Drop everything v001 created, in reverse order."""
    run_down(__file__)
