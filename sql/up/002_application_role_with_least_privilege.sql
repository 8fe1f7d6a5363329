-- 002_application_role_with_least_privilege (up): the role the application connects as.
-- It reads and writes rows and owns nothing: only the owner (who runs migrations)
-- may alter, drop or truncate a table, or replace a trigger or its function, so
-- the application cannot switch off audit_logs' append-only triggers. On
-- audit_logs it may only INSERT and SELECT.
-- Destructive: no
-- Transaction: yes
--
-- The role is NOLOGIN: the application's login role is made a member of it
-- (GRANT assessment_app TO app_login; docs/vercel.md). Its name is the run's
-- migration.app_role setting (alembic -x app-role=NAME, MIGRATION_APP_ROLE),
-- default assessment_app. Roles belong to the whole server: an existing one is
-- reused, and creating it needs CREATEROLE (Neon's owner role has it).
DO $grant$
DECLARE
    app_role text := coalesce(
        nullif(current_setting('migration.app_role', TRUE), ''), 'assessment_app'
    );
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = app_role) THEN
        IF NOT (SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            RAISE EXCEPTION 'role % does not exist and % may not create it', app_role, current_user
                USING HINT = format(
                    'Create it once as an administrator: CREATE ROLE %I NOLOGIN; '
                    'or grant CREATEROLE to %I.', app_role, current_user
                );
        END IF;
        EXECUTE format('CREATE ROLE %I NOLOGIN', app_role);
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', app_role);
    EXECUTE format(
        'GRANT SELECT, INSERT, UPDATE, DELETE ON organizations, users, frameworks, questions, '
        'assessments, responses, evidence, assessment_results TO %I',
        app_role
    );
    -- Append-only: no UPDATE, DELETE or TRUNCATE, whatever the triggers say.
    EXECUTE format('GRANT SELECT, INSERT ON audit_logs TO %I', app_role);
    -- Tables later revisions create: the same rights on rows, granted as they are made.
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES IN SCHEMA public '
        'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I',
        app_role
    );
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE ON SEQUENCES TO %I', app_role
    );
END
$grant$;
