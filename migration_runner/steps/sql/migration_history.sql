-- migration_history: every step the runner applied, with the sha256 of the
-- SQL file it ran. Owned by the runner, like alembic_version, not by any
-- revision: downgrading to base keeps it, so the record stays complete.
CREATE TABLE IF NOT EXISTS migration_history (
    id bigint GENERATED ALWAYS AS IDENTITY,
    revision text NOT NULL,
    direction text NOT NULL,
    -- TRUE when `alembic stamp` recorded the step without running its SQL.
    stamped boolean NOT NULL DEFAULT FALSE,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    applied_by text NOT NULL DEFAULT current_user,
    -- Measured by the runner; NULL when applied from an offline script.
    duration_ms integer,
    CONSTRAINT migration_history_pkey PRIMARY KEY (id),
    CONSTRAINT migration_history_direction_check
    CHECK (direction IN ('up', 'down')),
    CONSTRAINT migration_history_checksum_check
    CHECK (checksum ~ '^[0-9a-f]{64}$')
);

COMMENT ON TABLE migration_history IS
'Applied migration steps with the checksum of the SQL file each ran; '
'written by the migration runner in the same transaction as the step.';
