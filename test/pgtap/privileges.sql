-- test/pgtap/privileges.sql: who may do what.  A matrix of the three roles
-- pgmaker creates, plus a role with none of them, against every public
-- function: EXECUTE as the tiers give it (docs/security.md); what PUBLIC
-- keeps; then calls as each role, the catalog's row-level security on the
-- way, and attempts to inject SQL through every argument that names a
-- relation, a column or a project.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pgmaker;
RESET client_min_messages;
BEGIN;
SELECT plan(35);

CREATE ROLE priv_none;
CREATE ROLE priv_user IN ROLE ml_user;
CREATE ROLE priv_dev IN ROLE ml_developer;
CREATE ROLE priv_admin IN ROLE ml_admin;

-- the tiers, function by function: user < developer < admin
CREATE TEMP TABLE tier (fn text, tier int);
INSERT INTO tier
SELECT f, 1 FROM unnest(ARRAY['predict', 'predict_label', 'predict_proba', 'embed', 'explain', 'labels',
    'model_info', 'features', 'transform', 'key_metric', 'training_info', 'predict_logged',
    'record_ground_truth', 'report', 'debug', 'job_wait', 'choose', 'reward', 'next_label_task',
    'submit_label', 'labeled', 'labeler_accuracy']) f
UNION ALL
SELECT f, 2 FROM unnest(ARRAY['train', 'autopilot', 'evaluate', 'deploy', 'drop_project', 'profile', 'clean',
    'split', 'baseline', 'monitor', 'model_quality', 'schedule_monitor', 'schedule_retrain', 'run_schedule',
    'unschedule', 'batch_predict', 'train_job', 'cancel_job', 'load', 'import_model', 'export_model',
    'register_endpoint', 'set_capture', 'create_bandit', 'drop_bandit', 'bandit_evaluate',
    'create_labeling_job', 'drop_labeling_job', 'linear_fit', 'ridge_fit', 'linear_fit_state',
    'ridge_fit_state', 'linear_fit_merge', 'logistic_step', 'logistic_step_state',
    'logistic_step_merge', 'numeric_stats', 'numeric_stats_state', 'numeric_stats_merge',
    'approx_distinct', 'approx_distinct_state', 'approx_distinct_merge', 'grant', 'revoke']) f
UNION ALL
SELECT f, 3 FROM unnest(ARRAY['set_credentials', 'drop_credentials', 'create_alert_channel',
    'drop_alert_channel', 'test_alert_channel']) f;

CREATE TEMP TABLE matrix AS
SELECT r.role, r.level, p.oid::regprocedure AS fn, t.tier,
       has_function_privilege(r.role, p.oid, 'EXECUTE') AS allowed
  FROM pg_proc p
  JOIN tier t ON t.fn = p.proname
  CROSS JOIN (VALUES ('priv_none', 0), ('priv_user', 1), ('priv_dev', 2), ('priv_admin', 3)) r(role, level)
 WHERE p.pronamespace = 'ml'::regnamespace;

SELECT is((SELECT count(*)::int FROM pg_proc p WHERE p.pronamespace = 'ml'::regnamespace AND p.proname NOT LIKE '\_%'
            AND NOT EXISTS (SELECT 1 FROM tier t WHERE t.fn = p.proname)), 0,
          'every public function has a tier');
SELECT is((SELECT count(*)::int FROM matrix),
          4 * (SELECT count(*)::int FROM pg_proc p WHERE p.pronamespace = 'ml'::regnamespace AND p.proname NOT LIKE '\_%'),
          'the matrix covers every public signature for four roles');
SELECT is((SELECT count(*)::int FROM matrix WHERE allowed <> (level >= tier)), 0,
          'each role may call exactly the functions of its tier and below');
SELECT is((SELECT string_agg(fn::text, ', ') FROM matrix WHERE allowed <> (level >= tier)), NULL,
          'no function is allowed or denied against its tier');
SELECT is((SELECT count(*)::int FROM pg_proc p WHERE p.pronamespace = 'ml'::regnamespace
            AND has_function_privilege('public', p.oid, 'EXECUTE')), 0,
          'PUBLIC may call no ml function');
SELECT is((SELECT count(*)::int FROM pg_class c WHERE c.relnamespace = 'ml'::regnamespace
            AND (has_table_privilege('public', c.oid, 'SELECT') OR has_table_privilege('public', c.oid, 'INSERT'))
            AND c.relkind IN ('r', 'v', 'p')), 0,
          'PUBLIC may read or write no ml table or view');
SELECT ok(has_schema_privilege('public', 'ml', 'USAGE'), 'PUBLIC sees the schema: pgmaker is installed');
SELECT ok(NOT has_function_privilege('ml_admin', 'ml._raise_alert(text, text, bigint, regrole, text, jsonb, text)', 'EXECUTE'),
          'not even ml_admin raises alerts by hand');
SELECT ok(NOT has_function_privilege('ml_admin', 'ml._bandit_update(float8[], float8[], float8)', 'EXECUTE'),
          'nor writes a bandit''s state');

-- calls as each role
CREATE TABLE priv_src AS SELECT g::float8 AS x, 2 * g::float8 + 1 AS y FROM generate_series(1, 50) g;
GRANT SELECT ON priv_src TO priv_user, priv_dev, priv_admin;
SET ROLE priv_dev;
SELECT lives_ok($$SELECT ml.train('priv_p', 'priv_src', 'y', 'linear')$$, 'ml_developer trains');
RESET ROLE;
SET ROLE priv_user;
SELECT throws_ok($$SELECT ml.predict('priv_p', ARRAY[3.0]::float8[])$$, '42501',
                 'permission denied to predict with project "priv_p"', 'ml_user predicts only what it was granted');
SELECT is((SELECT count(*)::int FROM ml.projects), 0, 'nor sees the projects it was not granted');
RESET ROLE;
SET ROLE priv_dev;
SELECT lives_ok($$SELECT ml.grant('priv_p', 'priv_user', 'predict')$$, 'the owner grants predict');
RESET ROLE;
SET ROLE priv_user;
SELECT is(ml.predict('priv_p', ARRAY[3.0]::float8[])::numeric(10, 6), 7.0::numeric(10, 6), 'ml_user predicts');
SELECT is((SELECT count(*)::int FROM ml.models m JOIN ml.projects p ON p.id = m.project_id WHERE p.name = 'priv_p'), 1,
          'and reads the catalog rows of a granted project');
SELECT throws_ok($$SELECT model FROM ml.models$$, '42501', 'permission denied for table models',
                 'but not the blobs');
SELECT throws_ok($$SELECT ml.train('priv_q', 'priv_src', 'y', 'linear')$$, '42501',
                 'permission denied for function train', 'ml_user may not train');
RESET ROLE;
SET ROLE priv_none;
SELECT throws_ok($$SELECT ml.predict('priv_p', ARRAY[3.0]::float8[])$$, '42501',
                 NULL, 'a role with no pgmaker role may not predict');
SELECT throws_ok($$SELECT count(*) FROM ml.models$$, '42501', 'permission denied for table models',
                 'nor read the model catalog');
RESET ROLE;
SET ROLE priv_dev;
SELECT throws_ok($$SELECT ml.set_credentials('s3', '{}')$$, '42501', NULL,
                 'ml_developer may not store credentials');
RESET ROLE;

-- The project-level matrix: an operation of each level against roles with
-- each level.  A role is a developer with no grant, with a grant of each
-- level, a member of the owner role, or ml_admin.  Each call runs and is
-- rolled back: 42501 is a refusal, anything else got past the access check.
CREATE ROLE pm_none IN ROLE ml_developer;
CREATE ROLE pm_predict IN ROLE ml_developer;
CREATE ROLE pm_train IN ROLE ml_developer;
CREATE ROLE pm_deploy IN ROLE ml_developer;
CREATE ROLE pm_member IN ROLE ml_developer, priv_dev;
CREATE ROLE pm_admin IN ROLE ml_admin;
GRANT SELECT ON priv_src TO pm_none, pm_predict, pm_train, pm_deploy, pm_member, pm_admin;
GRANT CREATE ON SCHEMA public TO pm_none, pm_predict, pm_train, pm_deploy, pm_member, pm_admin;
SELECT max(id) AS priv_model FROM ml.models \gset
SET ROLE priv_dev;
SELECT ml.grant('priv_p', 'pm_predict', 'predict'), ml.grant('priv_p', 'pm_train', 'train'),
       ml.grant('priv_p', 'pm_deploy', 'deploy');
RESET ROLE;
CREATE FUNCTION pg_temp.outcome(stmt text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
    BEGIN
        EXECUTE stmt;
        RAISE EXCEPTION 'rolled back' USING ERRCODE = 'PM000';
    EXCEPTION WHEN OTHERS THEN
        RETURN CASE WHEN SQLSTATE = 'PM000' THEN 'ran' ELSE SQLSTATE END;
    END;
END
$f$;
CREATE TEMP TABLE pm_ops (op text, level int, stmt text);
INSERT INTO pm_ops VALUES
    ('predict', 1, $$SELECT ml.predict('priv_p', ARRAY[3.0]::float8[])$$),
    ('explain', 1, 'SELECT ml.model_info(' || :priv_model || ')'),
    ('batch_predict', 1, $$SELECT ml.batch_predict('priv_p', 'priv_src', 'pm_out', 'x')$$),
    ('train', 2, $$SELECT ml.train('priv_p', 'priv_src', 'y', 'ridge')$$),
    ('train_job', 2, $$SELECT ml.train_job('priv_p', 'priv_src', '{"target": "y"}')$$),
    ('export', 2, 'SELECT ml.export_model(' || :priv_model || ')'),
    ('deploy', 3, $$SELECT ml.deploy('priv_p', 'most_recent')$$),
    ('schedule_retrain', 3, $$SELECT ml.schedule_retrain('priv_p', '1 hour', 'priv_src', '{"target": "y"}')$$),
    ('schedule_monitor', 4, $$SELECT ml.schedule_monitor('priv_p', '1 hour')$$),
    ('monitor', 4, $$SELECT ml.monitor('priv_p', 'priv_src')$$),
    ('set_capture', 4, $$SELECT ml.set_capture('priv_p', 0.5)$$),
    ('grant', 4, $$SELECT ml.grant('priv_p', 'pm_none', 'predict')$$),
    ('revoke', 4, $$SELECT ml.revoke('priv_p', 'pm_predict')$$),
    ('drop_project', 4, $$SELECT ml.drop_project('priv_p')$$);
CREATE TEMP TABLE pm_matrix (role text, level int, op text, need int, outcome text);
GRANT ALL ON pm_matrix TO PUBLIC;
GRANT SELECT ON pm_ops TO PUBLIC;
DO $$
DECLARE
    r record;
    o record;
BEGIN
    FOR r IN SELECT * FROM (VALUES ('pm_none', 0), ('pm_predict', 1), ('pm_train', 2), ('pm_deploy', 3),
                                   ('pm_member', 4), ('pm_admin', 4)) v(role, level) LOOP
        FOR o IN SELECT * FROM pm_ops LOOP
            EXECUTE format('SET ROLE %I', r.role);
            INSERT INTO pm_matrix VALUES (r.role, r.level, o.op, o.level, pg_temp.outcome(o.stmt));
            RESET ROLE;
        END LOOP;
    END LOOP;
END
$$;
SELECT is((SELECT count(*)::int FROM pm_matrix), 84, 'the project matrix has 6 roles x 14 operations');
SELECT is((SELECT string_agg(format('%s %s: %s', role, op, outcome), '; ' ORDER BY role, op) FROM pm_matrix
            WHERE (outcome = '42501') <> (level < need)), NULL,
          'each role is refused exactly the operations above its level');
SELECT is((SELECT string_agg(format('%s %s: %s', role, op, outcome), '; ' ORDER BY role, op) FROM pm_matrix
            WHERE level >= need AND outcome <> CASE
                WHEN op IN ('batch_predict', 'train_job', 'schedule_retrain', 'schedule_monitor', 'set_capture')
                THEN '55000'    -- the workers and the capture serve another database than this test's
                WHEN op = 'export' THEN '0A000'     -- a linear model has no XGBoost form
                ELSE 'ran' END), NULL,
          'every allowed operation ran, or stopped past the access check where this test''s setup stops it');
SELECT is((SELECT count(*)::int FROM pm_matrix WHERE level >= need AND outcome = 'ran'), 25,
          'the 25 allowed calls that can run here ran');
SELECT is((SELECT outcome FROM pm_matrix WHERE role = 'pm_train' AND op = 'train'), 'ran',
          'a train grantee trains');
SET ROLE pm_train;
SELECT is((SELECT deployed FROM ml.train('priv_p', 'priv_src', 'y', 'ridge')), false,
          'but its model is not promoted without the deploy level');
RESET ROLE;
SELECT is((SELECT reason FROM ml.promotions ORDER BY id DESC LIMIT 1),
          'the caller may train but not deploy with the project', 'and the promotion says why');
SET ROLE pm_predict;
SELECT is((SELECT count(*)::int FROM ml.job_status), 0, 'a grantee does not see the owner''s jobs');
RESET ROLE;
SET ROLE priv_dev;
SELECT ml.revoke('priv_p', 'pm_predict');
RESET ROLE;
SET ROLE pm_predict;
SELECT throws_ok($$SELECT ml.predict('priv_p', ARRAY[3.0]::float8[])$$, '42501', NULL,
                 'a revoked grant stops prediction at once, in the same session');
RESET ROLE;

-- ml_admin removes another owner's schedule (made by hand: the workers
-- serve another database than this test's)
INSERT INTO ml.schedules (project_id, every, source, options, owner, search_path, kind, next_run)
SELECT id, '1 hour', NULL, '{}', 'priv_dev', 'public', 'monitor', now() + '1 hour'
  FROM ml.projects WHERE name = 'priv_p'
RETURNING id AS priv_sched \gset
SET ROLE pm_none;
SELECT throws_ok($$SELECT ml.unschedule($$ || :priv_sched || $$)$$, '42501', NULL,
                 'a developer may not remove another owner''s schedule');
RESET ROLE;
SET ROLE pm_admin;
SELECT ok(ml.unschedule(:priv_sched), 'ml_admin removes any owner''s schedule');
RESET ROLE;

-- a role that cannot read a table cannot train on it, even as a developer
CREATE TABLE priv_secret AS SELECT * FROM priv_src;
SET ROLE priv_dev;
SELECT throws_ok($$SELECT ml.train('priv_s', 'priv_secret', 'y', 'linear')$$, '42501',
                 'permission denied for table priv_secret', 'no training on a table one cannot read');
RESET ROLE;

-- SQL injection through every argument that names something: each
-- statement fails on the name as given or takes it as data, and nothing is
-- dropped
CREATE TABLE priv_canary (x int);
CREATE FUNCTION pg_temp.attempt(stmt text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
    EXECUTE stmt;
    RETURN 'ran';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$f$;
SET ROLE priv_dev;
CREATE TEMP TABLE attempts AS
SELECT stmt, pg_temp.attempt(stmt) AS outcome FROM (VALUES
    ($$SELECT ml.train('p''; DROP TABLE priv_canary; --', 'priv_src', 'y', 'linear')$$),
    ($$SELECT ml.train('priv_i', 'priv_src; DROP TABLE priv_canary', 'y', 'linear')$$),
    ($$SELECT ml.train('priv_i', 'priv_src', 'y"; DROP TABLE priv_canary; --', 'linear')$$),
    ($$SELECT ml.batch_predict('priv_p', 'priv_src', 'out; DROP TABLE priv_canary', 'x')$$),
    ($$SELECT ml.batch_predict('priv_p', 'priv_src', 'out', 'x); DROP TABLE priv_canary; --')$$),
    ($$SELECT * FROM ml.profile('priv_src"; DROP TABLE priv_canary; --')$$),
    ($$SELECT ml.clean('priv_src', 'c; DROP TABLE priv_canary')$$),
    ($$SELECT ml.create_labeling_job('l', 'priv_src', 'x"); DROP TABLE priv_canary; --')$$),
    ($$SELECT ml.create_bandit('b''; DROP TABLE priv_canary; --', ARRAY['a', 'b'])$$),
    ($$SELECT ml.evaluate('priv_p', 'priv_src WHERE true; DROP TABLE priv_canary')$$),
    ($$SELECT * FROM ml.monitor('priv_p', 'priv_src; DROP TABLE priv_canary')$$),
    ($$SELECT ml.predict('priv_p''; DROP TABLE priv_canary; --', ARRAY[1.0]::float8[])$$)) v(stmt);
RESET ROLE;
SELECT is((SELECT count(*)::int FROM attempts), 12, 'twelve injection attempts were made');
SELECT has_table('public', 'priv_canary', 'the canary table is still there');
SELECT is((SELECT count(*)::int FROM ml.projects WHERE name = 'p''; DROP TABLE priv_canary; --'), 1,
          'a project name is data: the project is named by the whole string');

SELECT * FROM finish();
ROLLBACK;
