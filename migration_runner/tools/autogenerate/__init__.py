"""`alembic revision --autogenerate`: reviewed, online-safe SQL pairs from a model change.

render.py turns Alembic's diff (plus the CHECK and index differences of
model_parity) into SQL statements, online-safe by construction, sorted into the
revisions of plan.py (expand, then contract; in a transaction or not);
expand_contract.py writes the changes the old code would break on (a renamed
or retyped column, a NOT NULL, a renamed table) in two phases, from the
triggers of triggers.py, the batched backfills of backfill.py, the facts of
catalog.py (what depends on a column) and of type_changes.py (which type
changes rewrite the table); draft.py checks the draft on a scratch database
before anything is written; revision.py is the hook Alembic calls, which
numbers the revisions and hands the SQL to the post-write hook that writes
sql/up and sql/down.
"""
