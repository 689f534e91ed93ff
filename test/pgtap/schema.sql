-- test/pgtap/schema.sql: the extension's objects, their properties, their
-- comments, privileges and pg_dump registration.
\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;
CREATE EXTENSION IF NOT EXISTS pgmaker;
SELECT plan(106);

SELECT has_schema('ml');
SELECT has_table('ml', 'projects', 'ml.projects exists');
SELECT has_table('ml', 'models', 'ml.models exists');
SELECT has_table('ml', 'deployments', 'ml.deployments exists');
SELECT has_table('ml', 'training_log', 'ml.training_log exists');
SELECT has_table('ml', 'promotions', 'ml.promotions exists');
SELECT has_table('ml', 'runs', 'ml.runs exists');
SELECT has_table('ml', 'trials', 'ml.trials exists');
SELECT has_view('ml', 'overview', 'ml.overview exists');
SELECT has_view('ml', 'leaderboard', 'ml.leaderboard exists');
SELECT has_table('ml', 'jobs', 'ml.jobs exists');
SELECT has_table('ml', 'job_parts', 'ml.job_parts exists');
SELECT has_table('ml', 'schedules', 'ml.schedules exists');
SELECT has_view('ml', 'job_status', 'ml.job_status exists');
SELECT has_view('ml', 'schedule_status', 'ml.schedule_status exists');
SELECT has_table('ml', 'credentials', 'ml.credentials exists');
SELECT has_table('ml', 'alert_channels', 'ml.alert_channels exists');
SELECT has_table('ml', 'alerts', 'ml.alerts exists');
SELECT has_table('ml', 'alert_deliveries', 'ml.alert_deliveries exists');
SELECT has_view('ml', 'alert_status', 'ml.alert_status exists');
SELECT has_table('ml', 'monitor_runs', 'ml.monitor_runs exists');
SELECT has_table('ml', 'prediction_log', 'ml.prediction_log exists');
SELECT has_table('ml', 'ground_truth', 'ml.ground_truth exists');
SELECT has_table('ml', 'capture_batches', 'ml.capture_batches exists');
SELECT has_view('ml', 'captured', 'ml.captured exists');
SELECT has_view('ml', 'capture_status', 'ml.capture_status exists');

SELECT columns_are('ml', 'projects', ARRAY['id', 'name', 'task', 'target', 'owner', 'created_at', 'capture_rate']);
SELECT columns_are('ml', 'models', ARRAY['id', 'project_id', 'run_id', 'algorithm', 'hyperparams', 'preprocess',
    'features', 'metrics', 'train_metrics', 'baseline', 'curves', 'n_train', 'n_test', 'fit_seconds', 'created_at', 'model']);
SELECT columns_are('ml', 'deployments', ARRAY['id', 'project_id', 'model_id', 'strategy', 'reason',
    'deployed_at', 'deployed_by']);
SELECT col_type_is('ml', 'projects', 'owner', 'regrole', 'a project is owned by a role');
SELECT col_type_is('ml', 'models', 'model', 'bytea', 'the model blob is bytea');
SELECT col_is_unique('ml', 'projects', 'name', 'project names are unique');
SELECT fk_ok('ml', 'models', 'project_id', 'ml', 'projects', 'id');
SELECT fk_ok('ml', 'deployments', 'model_id', 'ml', 'models', 'id');
SELECT fk_ok('ml', 'models', 'run_id', 'ml', 'runs', 'id');
SELECT fk_ok('ml', 'trials', 'run_id', 'ml', 'runs', 'id');

-- every catalog table and its sequence is dumped by pg_dump
SELECT set_eq(
    $$SELECT c::regclass::text FROM pg_extension e, unnest(e.extconfig) c WHERE e.extname = 'pgmaker'$$,
    ARRAY['ml.projects', 'ml.projects_id_seq', 'ml.project_grants', 'ml.models', 'ml.models_id_seq',
          'ml.deployments', 'ml.deployments_id_seq', 'ml.promotions', 'ml.promotions_id_seq',
          'ml.runs', 'ml.runs_id_seq', 'ml.trials', 'ml.trials_id_seq', 'ml.training_log',
          'ml.schedules', 'ml.schedules_id_seq', 'ml.credentials', 'ml.alert_channels', 'ml.debug_events',
          'ml.bandits', 'ml.bandits_id_seq', 'ml.bandit_arms', 'ml.bandit_decisions', 'ml.bandit_decisions_id_seq',
          'ml.labeling_jobs', 'ml.labeling_jobs_id_seq', 'ml.label_items', 'ml.label_tasks', 'ml.label_tasks_id_seq',
          'ml.label_batches'],
    'catalog tables and sequences are registered with pg_extension_config_dump');

-- the SQL API
SELECT has_function('ml', 'train', ARRAY['text', 'text', 'text', 'text', 'text', 'jsonb', 'jsonb',
    'double precision', 'text', 'jsonb', 'text', 'jsonb', 'jsonb']);
SELECT has_function('ml', 'autopilot', ARRAY['text', 'text', 'text', 'double precision', 'text', 'jsonb',
    'jsonb', 'double precision', 'text', 'jsonb', 'jsonb']);
SELECT is_aggregate('ml', 'linear_fit', ARRAY['double precision', 'double precision[]']);
SELECT is_aggregate('ml', 'ridge_fit', ARRAY['double precision', 'double precision[]', 'double precision']);
SELECT has_function('ml', 'predict', ARRAY['text', 'record']);
SELECT has_function('ml', 'predict', ARRAY['text', 'double precision[]']);
SELECT has_function('ml', 'predict', ARRAY['text', 'jsonb']);
SELECT has_function('ml', 'predict', ARRAY['bigint', 'record']);
SELECT has_function('ml', 'predict_label', ARRAY['text', 'record']);
SELECT has_function('ml', 'predict_proba', ARRAY['text', 'record']);
SELECT has_function('ml', 'deploy', ARRAY['text', 'text']);
SELECT has_function('ml', 'deploy', ARRAY['text', 'bigint']);
SELECT function_returns('ml', 'predict_proba', ARRAY['text', 'jsonb'], 'double precision[]');
SELECT function_returns('ml', 'labels', ARRAY['text'], 'text[]');
SELECT function_returns('ml', 'batch_predict', ARRAY['text', 'text', 'text', 'text', 'jsonb'], 'bigint');
SELECT function_returns('ml', 'train_job', ARRAY['text', 'text', 'jsonb'], 'bigint');
SELECT function_returns('ml', 'schedule_retrain', ARRAY['text', 'interval', 'text', 'jsonb'], 'bigint');
SELECT function_returns('ml', 'unschedule', ARRAY['bigint'], 'boolean');
SELECT function_returns('ml', 'run_schedule', ARRAY['bigint'], 'bigint');
SELECT function_returns('ml', 'job_wait', ARRAY['bigint', 'interval'], 'ml.job_status');
SELECT function_returns('ml', 'cancel_job', ARRAY['bigint'], 'boolean');
SELECT function_returns('ml', 'load', ARRAY['text', 'text', 'text', 'jsonb'], 'bigint');
SELECT function_returns('ml', 'set_credentials', ARRAY['text', 'jsonb'], 'void');
SELECT function_returns('ml', 'create_alert_channel', ARRAY['text', 'text', 'jsonb'], 'void');
SELECT function_returns('ml', 'test_alert_channel', ARRAY['text'], 'bigint');
SELECT has_function('ml', 'register_endpoint', ARRAY['text', 'text', 'jsonb']);
SELECT has_function('ml', 'monitor', ARRAY['text', 'text', 'jsonb']);
SELECT has_function('ml', 'baseline', ARRAY['text']);
SELECT has_function('ml', 'schedule_monitor', ARRAY['text', 'interval', 'text', 'jsonb']);
SELECT has_function('ml', 'model_quality', ARRAY['text', 'timestamp with time zone', 'interval', 'jsonb']);
SELECT ok((SELECT relrowsecurity FROM pg_class WHERE oid = 'ml.ground_truth'::regclass),
    'ml.ground_truth has row-level security');
SELECT function_returns('ml', 'set_capture', ARRAY['text', 'double precision'], 'void');
SELECT ok(NOT has_table_privilege('public', 'ml.monitor_runs', 'INSERT'), 'PUBLIC may not write ml.monitor_runs');

-- prediction is STABLE and PARALLEL SAFE; training is VOLATILE
SELECT is(
    (SELECT count(*)::int FROM pg_proc
      WHERE pronamespace = 'ml'::regnamespace
        AND proname IN ('predict', 'predict_label', 'predict_proba', 'labels')
        AND (provolatile <> 's' OR proparallel <> 's')),
    0, 'every prediction function is STABLE PARALLEL SAFE');
SELECT volatility_is('ml', 'train', ARRAY['text', 'text', 'text', 'text', 'text', 'jsonb', 'jsonb',
    'double precision', 'text', 'jsonb', 'text', 'jsonb', 'jsonb'], 'volatile');
SELECT ok(NOT has_table_privilege('public', 'ml.trials', 'INSERT'), 'PUBLIC may not write ml.trials');

-- every object of the extension has a comment
SELECT is(
    (SELECT string_agg(p.oid::regprocedure::text, ', ')
       FROM pg_proc p
      WHERE p.pronamespace = 'ml'::regnamespace
        AND obj_description(p.oid, 'pg_proc') IS NULL),
    NULL, 'every function has a COMMENT');
SELECT is(
    (SELECT string_agg(c.oid::regclass::text, ', ')
       FROM pg_class c
      WHERE c.relnamespace = 'ml'::regnamespace AND c.relkind IN ('r', 'v')
        AND obj_description(c.oid, 'pg_class') IS NULL),
    NULL, 'every table and view has a COMMENT');

-- privileges: ml_user reads the catalog (the rows row-level security
-- shows), nobody but its owner writes it
SELECT ok(has_column_privilege('ml_user', 'ml.models', 'algorithm', 'SELECT'), 'ml_user may read ml.models');
SELECT ok(NOT has_table_privilege('public', 'ml.models', 'SELECT'), 'PUBLIC may not read ml.models');
SELECT ok(NOT has_table_privilege('public', 'ml.models', 'INSERT'), 'PUBLIC may not write ml.models');
SELECT ok(NOT has_table_privilege('public', 'ml.deployments', 'INSERT'), 'PUBLIC may not write ml.deployments');
SELECT ok(NOT has_table_privilege('public', 'ml.promotions', 'INSERT'), 'PUBLIC may not write ml.promotions');
SELECT ok(NOT has_any_column_privilege('public', 'ml.jobs', 'INSERT, UPDATE'), 'PUBLIC may not write ml.jobs');
SELECT ok(NOT has_column_privilege('public', 'ml.jobs', 'args', 'SELECT'), 'PUBLIC may not read the arguments of jobs');
SELECT ok(NOT has_function_privilege('public', 'ml._settle_job(bigint)', 'EXECUTE'),
    'PUBLIC may not run the workers'' bookkeeping');

-- secrets and alerts: row-level security keeps each row to its owner role
SELECT ok((SELECT relrowsecurity FROM pg_class WHERE oid = 'ml.credentials'::regclass),
    'ml.credentials has row-level security');
SELECT ok((SELECT relrowsecurity FROM pg_class WHERE oid = 'ml.alert_channels'::regclass),
    'ml.alert_channels has row-level security');
SELECT ok((SELECT relrowsecurity FROM pg_class WHERE oid = 'ml.alerts'::regclass),
    'ml.alerts has row-level security');
SELECT ok(NOT has_table_privilege('public', 'ml.alerts', 'INSERT'), 'PUBLIC may not write ml.alerts');
SELECT ok(NOT has_table_privilege('public', 'ml.alert_deliveries', 'UPDATE'),
    'PUBLIC may not write ml.alert_deliveries');
SELECT ok(NOT has_function_privilege('public', 'ml._raise_alert(text, text, bigint, regrole, text, jsonb, text)', 'EXECUTE'),
    'PUBLIC may not raise alerts directly');

-- bandits: read under row-level security, written only through their functions
SELECT ok((SELECT bool_and(relrowsecurity) FROM pg_class
            WHERE oid IN ('ml.bandits'::regclass, 'ml.bandit_arms'::regclass, 'ml.bandit_decisions'::regclass)),
    'the bandit tables have row-level security');
SELECT ok(NOT has_table_privilege('public', 'ml.bandit_arms', 'UPDATE'), 'PUBLIC may not write ml.bandit_arms');
SELECT ok(NOT has_table_privilege('public', 'ml.bandit_decisions', 'INSERT'), 'PUBLIC may not write ml.bandit_decisions');
SELECT ok(has_table_privilege('ml_user', 'ml.bandits', 'SELECT'), 'ml_user may read ml.bandits (its own rows)');
-- labeling: every table under row-level security by the job's owner
SELECT ok((SELECT bool_and(relrowsecurity) FROM pg_class
            WHERE oid IN ('ml.labeling_jobs'::regclass, 'ml.label_items'::regclass, 'ml.label_tasks'::regclass,
                          'ml.label_batches'::regclass)),
    'the labeling tables have row-level security');
SELECT is((SELECT count(*)::int FROM pg_policies WHERE schemaname = 'ml'
            AND tablename IN ('labeling_jobs', 'label_items', 'label_tasks', 'label_batches')), 4,
    'one policy per labeling table');

-- the model catalog: row-level security by project (ml.grant), blobs not
-- granted, views as the caller
SELECT has_function('ml', 'grant', ARRAY['text', 'regrole', 'text']);
SELECT has_function('ml', 'revoke', ARRAY['text', 'regrole']);
SELECT columns_are('ml', 'project_grants', ARRAY['project_id', 'grantee', 'privilege', 'owner', 'granted_by', 'granted_at']);
SELECT is((SELECT string_agg(relname, ', ' ORDER BY relname) FROM pg_class
            WHERE relnamespace = 'ml'::regnamespace AND relkind = 'r' AND NOT relrowsecurity), NULL,
    'every ml table has row-level security');
SELECT ok(NOT has_column_privilege('ml_user', 'ml.models', 'model', 'SELECT')
          AND NOT has_column_privilege('ml_developer', 'ml.models', 'model', 'SELECT')
          AND has_column_privilege('ml_user', 'ml.models', 'metrics', 'SELECT'),
    'model blobs are not granted, the other columns are');
SELECT is((SELECT string_agg(relname, ', ' ORDER BY relname) FROM pg_class
            WHERE relnamespace = 'ml'::regnamespace AND relkind = 'v'
              AND NOT coalesce('security_invoker=true' = ANY (reloptions), false)), 'job_status, schedule_status',
    'views read as the caller, but the job and schedule views, which filter their rows themselves');

-- the ml.* settings exist and the prefix is reserved
SELECT is(current_setting('ml.max_train_memory'), '1GB', 'ml.max_train_memory defaults to 1GB');
SELECT is(current_setting('ml.http_allow'), '', 'ml.http_allow defaults to empty: no network for plain roles');
SELECT is(current_setting('ml.http_timeout'), '30s', 'ml.http_timeout defaults to 30s');
SELECT is(current_setting('ml.http_max_bytes'), '1GB', 'ml.http_max_bytes defaults to 1GB');
SELECT is((SELECT context FROM pg_settings WHERE name = 'ml.http_allow'), 'superuser',
    'ml.http_allow is superuser-only');

SELECT * FROM finish();
ROLLBACK;
