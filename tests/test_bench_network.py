"""bench/network.py's proxy adds its delay to every round trip, each way, and passes every
byte on: section 6 of make bench times runs through it, of the tools `--tools` names and psql."""

import sys
import time

import psycopg2
from sqlalchemy.engine import make_url

from support.project import ROOT

sys.path.insert(0, str(ROOT))  # bench/ is a folder of the repository, not an installed package
from bench.network import DelayingProxy, chosen
from bench.scenarios import Tool

DELAY = 0.05


def test_each_round_trip_through_the_proxy_takes_twice_its_delay_more(database_url):
    target = make_url(database_url)
    proxy = DelayingProxy(target.port, DELAY)
    try:
        connection = psycopg2.connect(
            host="127.0.0.1", port=proxy.port, user=target.username, dbname=target.database
        )
        try:
            with connection.cursor() as cursor:
                took = []
                for value in range(3):
                    started = time.perf_counter()
                    cursor.execute("SELECT %s::integer + 1", (value,))
                    took.append(time.perf_counter() - started)
                    assert cursor.fetchone() == (value + 1,)
                cursor.execute("SELECT repeat('x', 200000)")  # more than one chunk back
                assert len(cursor.fetchone()[0]) == 200000
        finally:
            connection.close()
    finally:
        proxy.close()
    assert all(2 * DELAY <= seconds < 2 * DELAY + 1.0 for seconds in took), took


def test_the_section_runs_the_tools_make_bench_was_told_to_and_psql():
    tools = [Tool(name, name) for name in ("psql", "ours", "plain", "dbmate", "yoyo")]
    assert [tool.name for tool in chosen(tools, None)] == ["psql", "ours", "plain", "dbmate"]
    assert [tool.name for tool in chosen(tools, {"ours"})] == ["psql", "ours"]
    assert [tool.name for tool in chosen(tools, {"yoyo", "dbmate"})] == ["psql", "dbmate"]
