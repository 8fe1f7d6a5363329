"""The assessment platform's tables as typed SQLAlchemy 2.0 models.

The SQL files in sql/up are the source of truth that DBAs review; these models
are the application's typed view of the same schema, proven equal to it in
`make test` (`alembic check` and tests/test_model_parity.py). Change a model,
then run `alembic revision --autogenerate -m "..."` for the SQL pair.
"""

from assessment_models.assessments import (
    Assessment,
    AssessmentResult,
    Evidence,
    Framework,
    Question,
    Response,
)
from assessment_models.audit import AuditLog
from assessment_models.base import Base
from assessment_models.tenancy import Organization, User

metadata = Base.metadata

__all__ = [
    "Assessment",
    "AssessmentResult",
    "AuditLog",
    "Base",
    "Evidence",
    "Framework",
    "Organization",
    "Question",
    "Response",
    "User",
    "metadata",
]
