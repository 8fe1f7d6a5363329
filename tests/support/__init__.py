"""Helpers the tests share, by concern; tests/conftest.py holds the fixtures and imports these.

- project: the tree and its revisions (ROOT, REVISIONS, HEAD, the tables, add_revision)
- database: the test server and queries on it
- processes: `alembic` and `make` runs in a clean environment
- writer: the old release's writes while migrations run, each failed transaction counted
- shares: which PostgreSQL version runs each test in make test
- forked_alembic, past_head, vercel_stack: see each module's docstring
"""
