"""pytest-alembic's standard checks: one head, every upgrade has a working downgrade, and the
models match what the migrations build (its autogenerate, through Alembic's Python API, gets
env.py's target_metadata and comparison options)."""

import pytest
from pytest_alembic.tests import (  # noqa: F401  (collected as tests)
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)

from support.database import engine_for
from support.project import ROOT


@pytest.fixture
def alembic_config():
    return {"file": str(ROOT / "alembic.ini")}


@pytest.fixture
def alembic_engine(database_url):
    engine = engine_for(database_url)
    yield engine
    engine.dispose()
