-- migration_statements: each statement of a `-- Transaction: none` file that
-- committed, recorded as it commits. Such a file is not rolled back when a
-- later statement fails: this says what of it is applied, and a rerun
-- continues after it. Owned by the runner, like migration_history.
CREATE TABLE IF NOT EXISTS migration_statements (
    id bigint GENERATED ALWAYS AS IDENTITY,
    -- The SQL file as a reviewer knows it: sql/up/NNN_slug.sql.
    sql_file text NOT NULL,
    -- The file's sha256 when the statement ran: a rerun skips only what this file committed.
    checksum text NOT NULL,
    -- Where the statement starts in the file, 1-based.
    statement_line integer NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    committed_by text NOT NULL DEFAULT current_user,
    -- FALSE while the file is applied in part; TRUE from the commit that records its revision.
    file_completed boolean NOT NULL DEFAULT FALSE,
    CONSTRAINT migration_statements_pkey PRIMARY KEY (id),
    CONSTRAINT migration_statements_checksum_check
    CHECK (checksum ~ '^[0-9a-f]{64}$')
);

-- A file applied in part has each of its statements recorded once.
CREATE UNIQUE INDEX IF NOT EXISTS migration_statements_sql_file_statement_line_key
ON migration_statements (sql_file, statement_line) WHERE NOT file_completed;

COMMENT ON TABLE migration_statements IS
'Statements of -- Transaction: none files that committed, each recorded as it commits; '
'written by the migration runner, which continues a partly applied file after them.';
