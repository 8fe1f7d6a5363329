"""The declarative base: one MetaData whose naming convention is the SQL's.

Constraint names in sql/up follow <table>_<columns>_<pkey|fkey|key|idx> and
<table>_<what>_check; with this convention a model that names nothing gets
the same names, so the models and the SQL are compared name for name.
"""

import uuid
from datetime import datetime

from sqlalchemy import DateTime, MetaData, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "pk": "%(table_name)s_pkey",
    "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ix": "%(table_name)s_%(column_0_N_name)s_idx",
    "ck": "%(table_name)s_%(constraint_name)s_check",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def uuid_key() -> Mapped[uuid.UUID]:
    """A uuid primary key the database fills (gen_random_uuid(), core since PostgreSQL 13)."""
    return mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )


def created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=text("now()"))


def updated_at() -> Mapped[datetime]:
    """Kept by the <table>_set_updated_at trigger (set_updated_at()), whatever the client sends."""
    return mapped_column(DateTime(timezone=True), server_default=text("now()"))
