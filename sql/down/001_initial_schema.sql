-- 001_initial_schema (down): remove everything 001 created.
-- Destructive: yes, every table of the platform and all its rows. The
-- runner refuses while any of them holds rows unless the run passes
-- -x allow-data-loss=true.
-- Transaction: yes
--
-- Reverse creation order, so no table is dropped while another still
-- references it. Dropping a table also drops its indexes, constraints,
-- triggers and identity sequence; the trigger functions go last.

DROP TABLE audit_logs;
DROP TABLE assessment_results;
DROP TABLE evidence;
DROP TABLE responses;
DROP TABLE assessments;
DROP TABLE questions;
DROP TABLE frameworks;
DROP TABLE users;
DROP TABLE organizations;

DROP FUNCTION audit_logs_reject_change();
DROP FUNCTION set_updated_at();
