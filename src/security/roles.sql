-- src/security/roles.sql
-- Who may do what: three roles instead of PUBLIC.  Runs last, after every
-- module has granted what it grants: whatever a module granted to PUBLIC
-- goes to ml_user instead, and EXECUTE on every function goes to the role
-- of its tier.  PUBLIC keeps only USAGE on the schema, enough to see that
-- pgmaker is installed.  docs/security.md has the tiers.
--
--   ml_user       predicts, explains, reads the catalog of models, chooses
--                 and rewards bandits, labels
--   ml_developer  ml_user, and trains, evaluates, deploys, profiles and
--                 cleans data, monitors, loads, schedules, runs jobs,
--                 creates bandits and labeling jobs (its own projects)
--   ml_admin      ml_developer, and credentials and alert channels
--
-- The roles are cluster-wide: they are made when missing, kept by DROP
-- EXTENSION, and reused by the extension in another database.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'ml_user') THEN
        CREATE ROLE ml_user NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'ml_developer') THEN
        CREATE ROLE ml_developer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'ml_admin') THEN
        CREATE ROLE ml_admin NOLOGIN;
    END IF;
    IF NOT pg_catalog.pg_has_role('ml_developer', 'ml_user', 'MEMBER') THEN
        GRANT ml_user TO ml_developer;
    END IF;
    IF NOT pg_catalog.pg_has_role('ml_admin', 'ml_developer', 'MEMBER') THEN
        GRANT ml_developer TO ml_admin;
    END IF;
END
$$;
COMMENT ON ROLE ml_user IS 'pgmaker: predicts, explains, reads the model catalog, chooses and rewards bandits, labels.';
COMMENT ON ROLE ml_developer IS 'pgmaker: ml_user, and trains, evaluates, deploys, monitors, loads data, runs jobs and schedules.';
COMMENT ON ROLE ml_admin IS 'pgmaker: ml_developer, and credentials and alert channels.';

-- Tables, views and sequences: what PUBLIC was granted goes to ml_user.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT format('ml.%I', c.relname) AS rel, c.relkind, a.privilege_type
          FROM pg_catalog.pg_class c
          CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
         WHERE c.relnamespace = 'ml'::regnamespace AND a.grantee = 0
    LOOP
        EXECUTE format('GRANT %s ON %s %s TO ml_user', r.privilege_type,
                       CASE WHEN r.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.rel);
        EXECUTE format('REVOKE %s ON %s %s FROM PUBLIC', r.privilege_type,
                       CASE WHEN r.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.rel);
    END LOOP;
    FOR r IN
        SELECT format('ml.%I', c.relname) AS rel, att.attname, a.privilege_type
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_attribute att ON att.attrelid = c.oid
          CROSS JOIN LATERAL pg_catalog.aclexplode(att.attacl) a
         WHERE c.relnamespace = 'ml'::regnamespace AND a.grantee = 0
    LOOP
        EXECUTE format('GRANT %s (%I) ON TABLE %s TO ml_user', r.privilege_type, r.attname, r.rel);
        EXECUTE format('REVOKE %s (%I) ON TABLE %s FROM PUBLIC', r.privilege_type, r.attname, r.rel);
    END LOOP;
END
$$;

-- Functions: EXECUTE by tier.  A function PUBLIC could not call (the
-- internals the workers and the catalog's owner call) stays so.  Internal
-- helpers (ml._*) that PUBLIC could call go to ml_user: functions of every
-- tier call them as their caller.  A public function must be in a list:
-- a new one that is not stops the installation.
DO $$
DECLARE
    user_fns text[] := ARRAY[
        'predict', 'predict_label', 'predict_proba', 'embed', 'explain', 'labels', 'model_info',
        'features', 'transform', 'key_metric', 'training_info', 'predict_logged', 'record_ground_truth',
        'report', 'debug', 'job_wait', 'choose', 'reward', 'next_label_task', 'submit_label', 'labeled',
        'labeler_accuracy'];
    developer_fns text[] := ARRAY[
        'train', 'autopilot', 'evaluate', 'deploy', 'drop_project', 'profile', 'clean', 'split',
        'baseline', 'monitor', 'model_quality', 'schedule_monitor', 'schedule_retrain', 'run_schedule',
        'unschedule', 'batch_predict', 'train_job', 'cancel_job', 'load', 'import_model', 'export_model',
        'register_endpoint', 'set_capture', 'create_bandit', 'drop_bandit', 'bandit_evaluate',
        'create_labeling_job', 'drop_labeling_job', 'linear_fit', 'ridge_fit', 'linear_fit_state',
        'ridge_fit_state', 'linear_fit_merge', 'logistic_step', 'logistic_step_state',
        'logistic_step_merge', 'numeric_stats', 'numeric_stats_state', 'numeric_stats_merge',
        'approx_distinct', 'approx_distinct_state', 'approx_distinct_merge', 'grant', 'revoke'];
    admin_fns text[] := ARRAY[
        'set_credentials', 'drop_credentials', 'create_alert_channel', 'drop_alert_channel',
        'test_alert_channel'];
    r record;
    tier text;
BEGIN
    FOR r IN
        SELECT format('ml.%I(%s)', p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)) AS fn,
               p.proname
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'ml'::regnamespace
           AND EXISTS (SELECT 1 FROM pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
                        WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
    LOOP
        tier := CASE
            WHEN r.proname LIKE '\_%' OR r.proname = ANY (user_fns) THEN 'ml_user'
            WHEN r.proname = ANY (developer_fns) THEN 'ml_developer'
            WHEN r.proname = ANY (admin_fns) THEN 'ml_admin'
        END;
        IF tier IS NULL THEN
            RAISE EXCEPTION 'function % has no tier in src/security/roles.sql', r.fn;
        END IF;
        EXECUTE format('REVOKE EXECUTE ON ROUTINE %s FROM PUBLIC', r.fn);
        EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO %I', r.fn, tier);
    END LOOP;
END
$$;
