"""The runner behind our Alembic environment: raw SQL files plus the safety steps Alembic lacks."""
