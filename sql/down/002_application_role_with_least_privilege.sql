-- 002_application_role_with_least_privilege (down): undo the application role's grants.
-- Undoes the up file: the grants in this database are revoked. The role itself
-- is left: it belongs to the whole server and may hold grants in other
-- databases (drop it by hand: DROP ROLE assessment_app).
-- Destructive: no
-- Transaction: yes
DO $revoke$
DECLARE
    app_role text := coalesce(
        nullif(current_setting('migration.app_role', TRUE), ''), 'assessment_app'
    );
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = app_role) THEN
        RETURN;
    END IF;
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE ON SEQUENCES FROM %I', app_role
    );
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES IN SCHEMA public '
        'REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM %I',
        app_role
    );
    EXECUTE format('REVOKE ALL ON audit_logs FROM %I', app_role);
    EXECUTE format(
        'REVOKE ALL ON organizations, users, frameworks, questions, assessments, responses, '
        'evidence, assessment_results FROM %I',
        app_role
    );
    EXECUTE format('REVOKE USAGE ON SCHEMA public FROM %I', app_role);
END
$revoke$;
