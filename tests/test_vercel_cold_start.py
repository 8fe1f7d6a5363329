"""Vercel group: a suspended compute (the server down while the runner retries) ends in success."""

import time

import pytest

from support.database import public_tables
from support.processes import run_alembic, start_alembic
from support.project import HEAD_TABLES
from support.vercel_stack import ENDPOINT_VARIABLES as VARIABLES


@pytest.mark.parametrize("endpoint", list(VARIABLES))
def test_runner_retries_while_the_compute_wakes_up_then_migrates(
    vercel_database, endpoint, tree_copy
):
    stack = vercel_database.stack
    variable = VARIABLES[endpoint]
    run = vercel_database.run_for(endpoint, tree_copy)  # from the pooler's floor, if any
    # PgBouncer (pooled, and the direct endpoint when the binaries lack TLS) holds a
    # login while it cannot reach the server, as Neon's proxy does while a compute
    # wakes; a short connect_timeout (Vercel's Prisma URL carries one) makes retries.
    url = vercel_database.environment[variable] + "&connect_timeout=2"
    stack.server.stop()  # the compute suspends
    output = []
    process = start_alembic(
        "upgrade",
        "head",
        tree=run.tree,
        env={variable: url, "MIGRATION_CONNECT_TIMEOUT": "60"},
        fresh_interpreter=True,  # its stdout is read line by line while it runs
    )
    try:
        for line in process.stdout:
            output.append(line)
            if "database not reachable yet" in line and not stack.server.is_running():
                stack.server.start()  # the compute wakes up while the runner is retrying
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        if not stack.server.is_running():
            stack.server.start()

    stdout = "".join(output)
    assert code == 0, stdout
    retries = [line for line in output if "database not reachable yet" in line]
    assert len(retries) >= 1, stdout
    assert all("retrying in" in line and "s left" in line for line in retries)
    assert f"Running upgrade {run.start or ''} -> {run.applied[0]}" in stdout
    assert HEAD_TABLES <= public_tables(stack.superuser_url(vercel_database.name))


def test_compute_that_stays_down_fails_clearly_after_the_connect_timeout(vercel_database):
    stack = vercel_database.stack
    stack.server.stop()
    try:
        started = time.monotonic()
        result = run_alembic(
            "upgrade",
            "head",
            env={
                "POSTGRES_URL_NON_POOLING": vercel_database.direct_url + "&connect_timeout=2",
                "MIGRATION_CONNECT_TIMEOUT": "3",
            },
        )
        elapsed = time.monotonic() - started
    finally:
        stack.server.start()

    assert result.returncode != 0
    failures = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
    assert len(failures) == 1, result.stdout
    assert "Cannot connect to" in failures[0] and "gave up after retrying for 3s" in failures[0]
    assert "(from POSTGRES_URL_NON_POOLING)" in failures[0]
    assert "retrying in" in result.stdout
    assert 3 <= elapsed < 15
