-- NNN_backfill_organizations_score (up): fill organizations.score, in batches.
-- A backfill of a big table, resumable: keyset batches in primary-key order,
-- each its own transaction with short lock and statement timeouts, a pause
-- between batches, progress published at each commit. It touches only rows
-- still NULL, so a rerun after an interruption picks up where it stopped.
-- Destructive: no
-- Transaction: none
--
-- Settings the runner sets for this session (-x batch-size, -x batch-pause):
-- migration.batch_size, migration.batch_pause, migration.lock_timeout,
-- migration.statement_timeout.

DO $backfill$
DECLARE
    batch_size integer := current_setting('migration.batch_size', TRUE)::integer;
    batch_pause interval := current_setting('migration.batch_pause', TRUE)::interval;
    last_id uuid := '00000000-0000-0000-0000-000000000000';
    batch_last uuid;
    changed bigint;
    done bigint := 0;
    total bigint;
BEGIN
    -- What is left to do: the progress line's total.
    SELECT count(*) INTO total FROM organizations WHERE score IS NULL;
    LOOP
        -- This batch's transaction: never queue the application for long.
        PERFORM set_config('lock_timeout', current_setting('migration.lock_timeout'), TRUE);
        PERFORM set_config(
            'statement_timeout', current_setting('migration.statement_timeout'), TRUE
        );
        WITH batch AS (
            SELECT id FROM organizations
            WHERE id > last_id
            ORDER BY id
            LIMIT batch_size
        ),

        filled AS (
            UPDATE organizations AS o
            SET score = length(o.slug)
            FROM batch
            WHERE o.id = batch.id AND o.score IS NULL
            RETURNING o.id
        )

        -- The batch's last key (uuid has no max()), and how many rows it filled.
        SELECT
            (SELECT id FROM batch ORDER BY id DESC LIMIT 1),
            (SELECT count(*) FROM filled)
        INTO batch_last, changed;
        EXIT WHEN batch_last IS NULL;
        last_id := batch_last;
        done := done + changed;
        PERFORM pg_notify(
            'migration_progress',
            json_build_object(
                'what', 'backfill organizations.score', 'done', done, 'total', total
            )::text
        );
        COMMIT;
        PERFORM pg_sleep_for(batch_pause);
    END LOOP;
END
$backfill$;
