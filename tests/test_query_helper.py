"""support.database.query, which most tests call to read the catalog: its engine is made once
per URL, and each call's session ends with the call."""

from support.database import _query_engine, query

OTHER_SESSIONS = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def test_query_reuses_its_engine_and_leaves_no_session_behind(database_url):
    assert query(database_url, "SELECT 1") == [(1,)]
    made = _query_engine.cache_info().misses
    for _ in range(3):
        assert query(database_url, OTHER_SESSIONS) == [(0,)]
    assert _query_engine.cache_info().misses == made  # the same engine each time
    assert query(
        database_url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    ) == [(1,)]
