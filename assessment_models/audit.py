"""Audit: the append-only log of who did what, where.

The database refuses UPDATE, DELETE and TRUNCATE on audit_logs (triggers in
sql/up/001); the application only ever adds AuditLog rows.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import INET, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from assessment_models.base import Base


class AuditLog(Base):
    __tablename__ = "audit_logs"
    __table_args__ = (
        # Dotted lower-case verbs such as assessment.submitted.
        CheckConstraint(r"action ~ '^[a-z_]+(\.[a-z_]+)*$'", name="action"),
        CheckConstraint("entity_type ~ '^[a-z_]+$'", name="entity_type"),
        CheckConstraint("jsonb_typeof(metadata) = 'object'", name="metadata"),
        Index("audit_logs_organization_id_occurred_at_idx", "organization_id", "occurred_at"),
        Index("audit_logs_entity_type_entity_id_idx", "entity_type", "entity_id"),
        {
            "comment": "Append-only: who did what to which entity, in which organization, from where."
        },
    )

    # Identity, not uuid: entries are ordered and never referenced from outside.
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    # RESTRICT: an organization or user with history is deactivated, never deleted.
    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("organizations.id", ondelete="RESTRICT")
    )
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    action: Mapped[str] = mapped_column(Text)
    entity_type: Mapped[str] = mapped_column(Text)
    entity_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # "metadata" is reserved on declarative classes: the attribute is details.
    details: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default=text("'{}'"))
    ip_address: Mapped[str | None] = mapped_column(INET)
    occurred_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
