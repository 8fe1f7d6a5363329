"""Is this connection going through PgBouncer, whatever its URL looks like?

Vercel's POSTGRES_URL, a Neon `-pooler` host and `?pgbouncer=true` say so in
the URL, and POSTGRES_URL_NON_POOLING and DATABASE_URL_UNPOOLED say it is direct
(steps/database_url.py). A pooled URL under another name (a Neon integration's
DATABASE_URL, a stand-in on 127.0.0.1) does not. Asked only when it matters,
before a `-- Transaction: none` file runs:
1. the server's own port (inet_server_port()) equals the URL's: nothing sits in
   between, no second connection is made;
2. otherwise something does (PgBouncer, a proxy, a Docker port mapping): a login
   to PgBouncer's console database, `pgbouncer`, tells. PgBouncer answers
   `SHOW VERSION` to its admins and "not allowed" to anyone else; PostgreSQL
   names the database in quotes (`database "pgbouncer" does not exist`, or a
   pg_hba.conf refusal), so a plain proxy or a Docker port mapping in front of
   PostgreSQL is a direct connection.
Only PgBouncer's admins may read its pool_mode, so a PgBouncer found this way
is taken to pool transactions, as Neon's and Vercel's do.
"""

import psycopg2
from alembic.runtime.migration import MigrationContext

from migration_runner.steps.emit import fetch

DEFAULT_PORT = 5432
# A console login is cheap; a proxy that never answers must not hold the run long.
CONSOLE_TIMEOUT = 3


def behind_pgbouncer(ctx: MigrationContext) -> bool:
    url = ctx.connection.engine.url
    server_port = fetch(ctx, "SELECT inet_server_port()")[0][0]
    if server_port is None or server_port == (url.port or DEFAULT_PORT):
        return False  # a Unix socket, or the server itself
    arguments = url.set(database="pgbouncer").translate_connect_args(
        username="user", database="dbname"
    )
    options = {key: value for key, value in url.query.items() if isinstance(value, str)}
    try:
        console = psycopg2.connect(**arguments, **options, connect_timeout=CONSOLE_TIMEOUT)
    except psycopg2.Error as error:
        said = str(error)
        if 'database "pgbouncer"' in said:  # PostgreSQL's words: it has no such database
            return False
        return "not allowed" in said or "pgbouncer" in said.lower()
    try:
        console.autocommit = True
        with console.cursor() as cursor:
            cursor.execute("SHOW VERSION")
            return "pgbouncer" in str(cursor.fetchone()).lower()
    except psycopg2.Error:
        return False
    finally:
        console.close()
