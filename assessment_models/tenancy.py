"""Tenancy: organizations and the users who sign in to them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Text, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from assessment_models.base import Base, created_at, updated_at, uuid_key


class Organization(Base):
    __tablename__ = "organizations"
    __table_args__ = (
        CheckConstraint("char_length(btrim(name)) BETWEEN 1 AND 200", name="name"),
        CheckConstraint(
            r"slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length(slug) <= 63", name="slug"
        ),
        CheckConstraint("plan IN ('free', 'team', 'enterprise')", name="plan"),
        {"comment": "Tenants: every user, assessment and audit entry belongs to one organization."},
    )

    id: Mapped[uuid.UUID] = uuid_key()
    name: Mapped[str] = mapped_column(Text)
    slug: Mapped[str] = mapped_column(Text, unique=True)
    plan: Mapped[str] = mapped_column(Text, server_default=text("'free'"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    users: Mapped[list[User]] = relationship(back_populates="organization", passive_deletes=True)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "email ~ '^[^@[:space:]]+@[^@[:space:]]+$' AND char_length(email) <= 320", name="email"
        ),
        CheckConstraint("role IN ('owner', 'admin', 'member', 'viewer')", name="role"),
        # One account per address, whatever its letter case.
        Index("users_email_key", func.lower(text("email")), unique=True),
        {"comment": "People who sign in; each belongs to one organization with one role."},
    )

    id: Mapped[uuid.UUID] = uuid_key()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(Text)
    full_name: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text, server_default=text("'member'"))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    organization: Mapped[Organization] = relationship(back_populates="users")
