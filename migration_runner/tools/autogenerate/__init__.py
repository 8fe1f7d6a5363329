"""`alembic revision --autogenerate`: a reviewed, online-safe SQL pair from a model change.

render.py turns Alembic's diff (plus the CHECK and index differences of
model_parity) into SQL statements, online-safe by construction; draft.py
checks the draft on a scratch database before anything is written; revision.py
is the hook Alembic calls, which numbers the revision(s) and hands the SQL to
the post-write hook that writes sql/up and sql/down.
"""
