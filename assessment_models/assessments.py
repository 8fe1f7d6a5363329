"""Assessments: frameworks and their questions, an organization's assessments, the
answers, their evidence and the resulting scores."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from assessment_models.base import Base, created_at, updated_at, uuid_key


def _fk(target: str, ondelete: str, **options) -> Mapped[Any]:
    return mapped_column(UUID(as_uuid=True), ForeignKey(target, ondelete=ondelete), **options)


class Framework(Base):
    __tablename__ = "frameworks"
    __table_args__ = (
        CheckConstraint(
            r"key ~ '^[a-z0-9]+([._-][a-z0-9]+)*$' AND char_length(key) <= 100", name="key"
        ),
        CheckConstraint("char_length(btrim(name)) BETWEEN 1 AND 200", name="name"),
        CheckConstraint("char_length(btrim(version)) BETWEEN 1 AND 50", name="version"),
        {"comment": "Assessment templates shared by all organizations, e.g. key iso-27001."},
    )

    id: Mapped[uuid.UUID] = uuid_key()
    key: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    version: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    questions: Mapped[list[Question]] = relationship(
        back_populates="framework", order_by="Question.position", passive_deletes=True
    )


class Question(Base):
    __tablename__ = "questions"
    __table_args__ = (
        # Also the index behind questions_framework_id_fkey (leading column).
        UniqueConstraint("framework_id", "code"),
        CheckConstraint("char_length(btrim(code)) BETWEEN 1 AND 50", name="code"),
        CheckConstraint("char_length(btrim(prompt)) > 0", name="prompt"),
        CheckConstraint("char_length(btrim(category)) BETWEEN 1 AND 100", name="category"),
        CheckConstraint("weight > 0", name="weight"),
        CheckConstraint("position >= 0", name="position"),
        CheckConstraint(
            "answer_type IN ('boolean', 'scale', 'single_choice', 'multiple_choice', 'number', 'text')",
            name="answer_type",
        ),
        {"comment": "The questions of a framework, in display order, with their scoring weight."},
    )

    id: Mapped[uuid.UUID] = uuid_key()
    framework_id: Mapped[uuid.UUID] = _fk("frameworks.id", "CASCADE")
    code: Mapped[str] = mapped_column(Text)
    prompt: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(Text)
    weight: Mapped[Decimal] = mapped_column(Numeric(6, 3), server_default=text("1"))
    position: Mapped[int] = mapped_column(Integer)
    answer_type: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    framework: Mapped[Framework] = relationship(back_populates="questions")


class Assessment(Base):
    __tablename__ = "assessments"
    __table_args__ = (
        CheckConstraint("char_length(btrim(title)) BETWEEN 1 AND 200", name="title"),
        CheckConstraint(
            "status IN ('draft', 'in_progress', 'submitted', 'scored', 'archived')", name="status"
        ),
        # Each status carries the timestamps of the steps that led to it.
        CheckConstraint(
            "(started_at IS NOT NULL OR status IN ('draft', 'archived'))"
            " AND (submitted_at IS NOT NULL OR status IN ('draft', 'in_progress', 'archived'))"
            " AND (scored_at IS NOT NULL OR status <> 'scored')"
            " AND ((archived_at IS NOT NULL) = (status = 'archived'))",
            name="status_timestamps",
        ),
        CheckConstraint(
            "submitted_at >= started_at AND scored_at >= submitted_at", name="timestamp_order"
        ),
        Index("assessments_organization_id_status_idx", "organization_id", "status"),
        {
            "comment": "An organization taking a framework: draft, in_progress, submitted, scored, archived."
        },
    )

    id: Mapped[uuid.UUID] = uuid_key()
    organization_id: Mapped[uuid.UUID] = _fk("organizations.id", "CASCADE")
    # A framework that was used cannot disappear from under its assessments.
    framework_id: Mapped[uuid.UUID] = _fk("frameworks.id", "RESTRICT", index=True)
    # The assessment outlives the account of whoever created it.
    created_by: Mapped[uuid.UUID | None] = _fk("users.id", "SET NULL", index=True)
    title: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=text("'draft'"))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    framework: Mapped[Framework] = relationship()
    responses: Mapped[list[Response]] = relationship(
        back_populates="assessment", passive_deletes=True
    )
    result: Mapped[AssessmentResult | None] = relationship(
        back_populates="assessment", passive_deletes=True
    )


class Response(Base):
    __tablename__ = "responses"
    __table_args__ = (
        # One answer per question; also the index behind assessment_id's key.
        UniqueConstraint("assessment_id", "question_id"),
        {"comment": 'One answer (jsonb: {"value": ...}) per question per assessment.'},
    )

    id: Mapped[uuid.UUID] = uuid_key()
    assessment_id: Mapped[uuid.UUID] = _fk("assessments.id", "CASCADE")
    # Answered questions stay: edit a framework by adding questions.
    question_id: Mapped[uuid.UUID] = _fk("questions.id", "RESTRICT", index=True)
    answer: Mapped[Any] = mapped_column(JSONB)
    answered_by: Mapped[uuid.UUID | None] = _fk("users.id", "SET NULL", index=True)
    answered_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    assessment: Mapped[Assessment] = relationship(back_populates="responses")
    question: Mapped[Question] = relationship()
    evidence: Mapped[list[Evidence]] = relationship(back_populates="response", passive_deletes=True)


class Evidence(Base):
    __tablename__ = "evidence"
    __table_args__ = (
        CheckConstraint("char_length(btrim(file_name)) BETWEEN 1 AND 255", name="file_name"),
        CheckConstraint(r"content_type ~ '^[a-z]+/[a-zA-Z0-9.+_-]+$'", name="content_type"),
        CheckConstraint("byte_size >= 0", name="byte_size"),
        CheckConstraint(r"sha256 ~ '^[0-9a-f]{64}$'", name="sha256"),
        {
            "comment": "Files attached to a response; the bytes live in blob storage under storage_key."
        },
    )

    id: Mapped[uuid.UUID] = uuid_key()
    response_id: Mapped[uuid.UUID] = _fk("responses.id", "CASCADE", index=True)
    uploaded_by: Mapped[uuid.UUID | None] = _fk("users.id", "SET NULL", index=True)
    file_name: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(Text)
    byte_size: Mapped[int] = mapped_column(BigInteger)
    # The object's key in blob storage: two rows never share one file.
    storage_key: Mapped[str] = mapped_column(Text, unique=True)
    sha256: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    response: Mapped[Response] = relationship(back_populates="evidence")


class AssessmentResult(Base):
    __tablename__ = "assessment_results"
    __table_args__ = (
        CheckConstraint("overall_score BETWEEN 0 AND 100", name="overall_score"),
        CheckConstraint("maturity_level BETWEEN 1 AND 5", name="maturity_level"),
        # {"<category>": <score 0-100>, ...}
        CheckConstraint("jsonb_typeof(category_scores) = 'object'", name="category_scores"),
        {
            "comment": "Scores of an assessment: overall 0-100, maturity level 1-5, per-category scores."
        },
    )

    id: Mapped[uuid.UUID] = uuid_key()
    # One current result per assessment; rescoring updates it in place.
    assessment_id: Mapped[uuid.UUID] = _fk("assessments.id", "CASCADE", unique=True)
    overall_score: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    maturity_level: Mapped[int] = mapped_column(SmallInteger)
    category_scores: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'"))
    computed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    assessment: Mapped[Assessment] = relationship(back_populates="result")
