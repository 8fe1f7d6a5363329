-- 001_initial_schema (up): the nine tables of the assessment platform.
-- Organizations take assessment frameworks, answer their questions, attach
-- evidence and get scored; every action lands in an append-only audit log.
-- Destructive: no
-- Transaction: yes
--
-- Conventions: uuid keys from gen_random_uuid() (core since PostgreSQL 13),
-- timestamptz, text with CHECK constraints instead of enum types (a CHECK
-- can change in a transaction; an enum value cannot be removed), every
-- foreign key indexed, constraints named <table>_<column>_<pkey|fkey|key>
-- and <table>_<what>_check, updated_at kept by a trigger.

-- Keeps updated_at honest whatever the client sends.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION set_updated_at() IS
'Trigger function: sets updated_at to now() on every UPDATE.';

-- organizations -------------------------------------------------------------

CREATE TABLE organizations (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL,
    slug text NOT NULL,
    plan text NOT NULL DEFAULT 'free',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT organizations_pkey PRIMARY KEY (id),
    CONSTRAINT organizations_slug_key UNIQUE (slug),
    CONSTRAINT organizations_name_check
    CHECK (char_length(btrim(name)) BETWEEN 1 AND 200),
    -- URL-safe: lower-case words joined by single hyphens, DNS label length.
    CONSTRAINT organizations_slug_check
    CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length(slug) <= 63),
    CONSTRAINT organizations_plan_check
    CHECK (plan IN ('free', 'team', 'enterprise'))
);

COMMENT ON TABLE organizations IS
'Tenants: every user, assessment and audit entry belongs to one organization.';

CREATE TRIGGER organizations_set_updated_at
BEFORE UPDATE ON organizations
FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- users ---------------------------------------------------------------------

CREATE TABLE users (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    email text NOT NULL,
    full_name text,
    role text NOT NULL DEFAULT 'member',
    last_login_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    -- A user exists only within their organization.
    CONSTRAINT users_organization_id_fkey FOREIGN KEY (organization_id)
    REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT users_email_check
    CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$' AND char_length(email) <= 320),
    CONSTRAINT users_role_check
    CHECK (role IN ('owner', 'admin', 'member', 'viewer'))
);

-- One account per address, whatever its letter case.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_organization_id_idx ON users (organization_id);

COMMENT ON TABLE users IS
'People who sign in; each belongs to one organization with one role.';

CREATE TRIGGER users_set_updated_at
BEFORE UPDATE ON users
FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- frameworks ----------------------------------------------------------------

CREATE TABLE frameworks (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    key text NOT NULL,
    name text NOT NULL,
    version text NOT NULL,
    description text,
    is_active boolean NOT NULL DEFAULT TRUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT frameworks_pkey PRIMARY KEY (id),
    CONSTRAINT frameworks_key_key UNIQUE (key),
    CONSTRAINT frameworks_key_check
    CHECK (key ~ '^[a-z0-9]+([._-][a-z0-9]+)*$' AND char_length(key) <= 100),
    CONSTRAINT frameworks_name_check
    CHECK (char_length(btrim(name)) BETWEEN 1 AND 200),
    CONSTRAINT frameworks_version_check
    CHECK (char_length(btrim(version)) BETWEEN 1 AND 50)
);

COMMENT ON TABLE frameworks IS
'Assessment templates shared by all organizations, e.g. key iso-27001.';

CREATE TRIGGER frameworks_set_updated_at
BEFORE UPDATE ON frameworks
FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- questions -----------------------------------------------------------------

CREATE TABLE questions (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    framework_id uuid NOT NULL,
    code text NOT NULL,
    prompt text NOT NULL,
    category text NOT NULL,
    weight numeric(6, 3) NOT NULL DEFAULT 1,
    -- Display order, never near 2^31:
    -- squawk-ignore prefer-bigint-over-int
    position integer NOT NULL,
    answer_type text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT questions_pkey PRIMARY KEY (id),
    -- Questions are part of their framework and go with it.
    CONSTRAINT questions_framework_id_fkey FOREIGN KEY (framework_id)
    REFERENCES frameworks (id) ON DELETE CASCADE,
    -- Also the index behind questions_framework_id_fkey (leading column).
    CONSTRAINT questions_framework_id_code_key UNIQUE (framework_id, code),
    CONSTRAINT questions_code_check
    CHECK (char_length(btrim(code)) BETWEEN 1 AND 50),
    CONSTRAINT questions_prompt_check CHECK (char_length(btrim(prompt)) > 0),
    CONSTRAINT questions_category_check
    CHECK (char_length(btrim(category)) BETWEEN 1 AND 100),
    CONSTRAINT questions_weight_check CHECK (weight > 0),
    CONSTRAINT questions_position_check CHECK (position >= 0),
    CONSTRAINT questions_answer_type_check
    CHECK (
        answer_type IN (
            'boolean', 'scale', 'single_choice', 'multiple_choice', 'number', 'text'
        )
    )
);

COMMENT ON TABLE questions IS
'The questions of a framework, in display order, with their scoring weight.';

CREATE TRIGGER questions_set_updated_at
BEFORE UPDATE ON questions
FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- assessments ---------------------------------------------------------------

CREATE TABLE assessments (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    framework_id uuid NOT NULL,
    created_by uuid,
    title text NOT NULL,
    status text NOT NULL DEFAULT 'draft',
    started_at timestamptz,
    submitted_at timestamptz,
    scored_at timestamptz,
    archived_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT assessments_pkey PRIMARY KEY (id),
    CONSTRAINT assessments_organization_id_fkey FOREIGN KEY (organization_id)
    REFERENCES organizations (id) ON DELETE CASCADE,
    -- A framework that was used cannot disappear from under its assessments.
    CONSTRAINT assessments_framework_id_fkey FOREIGN KEY (framework_id)
    REFERENCES frameworks (id) ON DELETE RESTRICT,
    -- The assessment outlives the account of whoever created it.
    CONSTRAINT assessments_created_by_fkey FOREIGN KEY (created_by)
    REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT assessments_title_check
    CHECK (char_length(btrim(title)) BETWEEN 1 AND 200),
    CONSTRAINT assessments_status_check
    CHECK (status IN ('draft', 'in_progress', 'submitted', 'scored', 'archived')),
    -- Each status carries the timestamps of the steps that led to it.
    CONSTRAINT assessments_status_timestamps_check
    CHECK (
        (started_at IS NOT NULL OR status IN ('draft', 'archived'))
        AND (submitted_at IS NOT NULL OR status IN ('draft', 'in_progress', 'archived'))
        AND (scored_at IS NOT NULL OR status <> 'scored')
        AND ((archived_at IS NOT NULL) = (status = 'archived'))
    ),
    CONSTRAINT assessments_timestamp_order_check
    CHECK (submitted_at >= started_at AND scored_at >= submitted_at)
);

CREATE INDEX assessments_organization_id_status_idx
ON assessments (organization_id, status);
CREATE INDEX assessments_framework_id_idx ON assessments (framework_id);
CREATE INDEX assessments_created_by_idx ON assessments (created_by);

COMMENT ON TABLE assessments IS
'An organization taking a framework: draft, in_progress, submitted, scored, archived.';

CREATE TRIGGER assessments_set_updated_at
BEFORE UPDATE ON assessments
FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- responses -----------------------------------------------------------------

CREATE TABLE responses (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    assessment_id uuid NOT NULL,
    question_id uuid NOT NULL,
    answer jsonb NOT NULL,
    answered_by uuid,
    answered_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT responses_pkey PRIMARY KEY (id),
    CONSTRAINT responses_assessment_id_fkey FOREIGN KEY (assessment_id)
    REFERENCES assessments (id) ON DELETE CASCADE,
    -- Answered questions stay: edit a framework by adding questions.
    CONSTRAINT responses_question_id_fkey FOREIGN KEY (question_id)
    REFERENCES questions (id) ON DELETE RESTRICT,
    CONSTRAINT responses_answered_by_fkey FOREIGN KEY (answered_by)
    REFERENCES users (id) ON DELETE SET NULL,
    -- One answer per question; also the index behind assessment_id's key.
    CONSTRAINT responses_assessment_id_question_id_key
    UNIQUE (assessment_id, question_id)
);

CREATE INDEX responses_question_id_idx ON responses (question_id);
CREATE INDEX responses_answered_by_idx ON responses (answered_by);

COMMENT ON TABLE responses IS
'One answer (jsonb: {"value": ...}) per question per assessment.';

CREATE TRIGGER responses_set_updated_at
BEFORE UPDATE ON responses
FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- evidence ------------------------------------------------------------------

CREATE TABLE evidence (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    response_id uuid NOT NULL,
    uploaded_by uuid,
    file_name text NOT NULL,
    content_type text NOT NULL,
    byte_size bigint NOT NULL,
    storage_key text NOT NULL,
    sha256 text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT evidence_pkey PRIMARY KEY (id),
    CONSTRAINT evidence_response_id_fkey FOREIGN KEY (response_id)
    REFERENCES responses (id) ON DELETE CASCADE,
    CONSTRAINT evidence_uploaded_by_fkey FOREIGN KEY (uploaded_by)
    REFERENCES users (id) ON DELETE SET NULL,
    -- The object's key in blob storage: two rows never share one file.
    CONSTRAINT evidence_storage_key_key UNIQUE (storage_key),
    CONSTRAINT evidence_file_name_check
    CHECK (char_length(btrim(file_name)) BETWEEN 1 AND 255),
    CONSTRAINT evidence_content_type_check
    CHECK (content_type ~ '^[a-z]+/[a-zA-Z0-9.+_-]+$'),
    CONSTRAINT evidence_byte_size_check CHECK (byte_size >= 0),
    CONSTRAINT evidence_sha256_check CHECK (sha256 ~ '^[0-9a-f]{64}$')
);

CREATE INDEX evidence_response_id_idx ON evidence (response_id);
CREATE INDEX evidence_uploaded_by_idx ON evidence (uploaded_by);

COMMENT ON TABLE evidence IS
'Files attached to a response; the bytes live in blob storage under storage_key.';

CREATE TRIGGER evidence_set_updated_at
BEFORE UPDATE ON evidence
FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- assessment_results --------------------------------------------------------

CREATE TABLE assessment_results (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    assessment_id uuid NOT NULL,
    overall_score numeric(5, 2) NOT NULL,
    -- A level from 1 to 5:
    -- squawk-ignore prefer-bigint-over-smallint
    maturity_level smallint NOT NULL,
    category_scores jsonb NOT NULL DEFAULT '{}',
    computed_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT assessment_results_pkey PRIMARY KEY (id),
    CONSTRAINT assessment_results_assessment_id_fkey FOREIGN KEY (assessment_id)
    REFERENCES assessments (id) ON DELETE CASCADE,
    -- One current result per assessment; rescoring updates it in place.
    CONSTRAINT assessment_results_assessment_id_key UNIQUE (assessment_id),
    CONSTRAINT assessment_results_overall_score_check
    CHECK (overall_score BETWEEN 0 AND 100),
    CONSTRAINT assessment_results_maturity_level_check
    CHECK (maturity_level BETWEEN 1 AND 5),
    -- {"<category>": <score 0-100>, ...}
    CONSTRAINT assessment_results_category_scores_check
    CHECK (jsonb_typeof(category_scores) = 'object')
);

COMMENT ON TABLE assessment_results IS
'Scores of an assessment: overall 0-100, maturity level 1-5, per-category scores.';

CREATE TRIGGER assessment_results_set_updated_at
BEFORE UPDATE ON assessment_results
FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- audit_logs ----------------------------------------------------------------

CREATE TABLE audit_logs (
    -- Identity, not uuid: entries are ordered and never referenced from outside.
    id bigint GENERATED ALWAYS AS IDENTITY,
    organization_id uuid,
    actor_user_id uuid,
    action text NOT NULL,
    entity_type text NOT NULL,
    entity_id uuid,
    metadata jsonb NOT NULL DEFAULT '{}',
    ip_address inet,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_logs_pkey PRIMARY KEY (id),
    -- RESTRICT: the log is append-only, so an organization or user with
    -- history is deactivated, never deleted (a cascade would be rejected).
    CONSTRAINT audit_logs_organization_id_fkey FOREIGN KEY (organization_id)
    REFERENCES organizations (id) ON DELETE RESTRICT,
    CONSTRAINT audit_logs_actor_user_id_fkey FOREIGN KEY (actor_user_id)
    REFERENCES users (id) ON DELETE RESTRICT,
    -- Dotted lower-case verbs such as assessment.submitted.
    CONSTRAINT audit_logs_action_check
    CHECK (action ~ '^[a-z_]+(\.[a-z_]+)*$'),
    CONSTRAINT audit_logs_entity_type_check
    CHECK (entity_type ~ '^[a-z_]+$'),
    CONSTRAINT audit_logs_metadata_check
    CHECK (jsonb_typeof(metadata) = 'object')
);

CREATE INDEX audit_logs_organization_id_occurred_at_idx
ON audit_logs (organization_id, occurred_at);
CREATE INDEX audit_logs_actor_user_id_idx ON audit_logs (actor_user_id);
CREATE INDEX audit_logs_entity_type_entity_id_idx
ON audit_logs (entity_type, entity_id);

COMMENT ON TABLE audit_logs IS
'Append-only: who did what to which entity, in which organization, from where.';

-- The database itself keeps the log append-only, whatever the application does.
CREATE FUNCTION audit_logs_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_logs is append-only: % is not allowed', tg_op
        USING ERRCODE = 'insufficient_privilege',
        HINT = 'Record a new entry instead of changing or removing one.';
END;
$$;

COMMENT ON FUNCTION audit_logs_reject_change() IS
'Trigger function: rejects UPDATE, DELETE and TRUNCATE on audit_logs.';

CREATE TRIGGER audit_logs_reject_update_delete
BEFORE UPDATE OR DELETE ON audit_logs
FOR EACH ROW EXECUTE FUNCTION audit_logs_reject_change();

CREATE TRIGGER audit_logs_reject_truncate
BEFORE TRUNCATE ON audit_logs
FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_reject_change();
