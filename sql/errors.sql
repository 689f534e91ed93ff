-- sql/errors.sql: bad input to ml.train.  Each case asserts the SQLSTATE
-- and message, and that no catalog row is left behind.

-- model ids in this suite start at a fixed value, whatever ran before
SELECT setval('ml.models_id_seq', 8000, false);

SELECT * FROM catalog_counts() \gset start_

-- arguments
SELECT expect_error($$SELECT * FROM ml.train(NULL, 'diabetes', 'progression')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', NULL, 'progression')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', '', 'progression')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'diabetes', 'progression', test_size => 1)$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'diabetes', 'progression', test_size => -0.1)$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'diabetes', 'progression', test_size => 'NaN')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'diabetes', 'progression', task => 'forecasting')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'diabetes', 'progression', 'deep_learning')$$);

-- missing source, missing target column, a query that fails
SELECT expect_error($$SELECT * FROM ml.train('e', 'no_such_table', 'y')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'public.no_such_table', 'y')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'diabetes', 'no_such_column')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT nope FROM diabetes', 'progression')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT 1 AS a, 2 AS a, 3 AS y', 'y')$$);

-- a source that writes, or is more than one query
CREATE TABLE scratch (x float8, y float8);
SELECT expect_error($$SELECT * FROM ml.train('e', 'WITH w AS (INSERT INTO scratch VALUES (1, 2) RETURNING *) SELECT * FROM w', 'y')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT * FROM scratch; SELECT * FROM scratch', 'y')$$);
SELECT count(*) AS scratch_rows FROM scratch;
DROP TABLE scratch;

-- empty source, target all NULL, one class, no features
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT * FROM diabetes WHERE false', 'progression')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT age, NULL::float8 AS y FROM diabetes', 'y')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT age, ''same''::text AS y FROM diabetes', 'y')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT progression FROM diabetes', 'progression')$$);

-- more features than rows
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT * FROM diabetes LIMIT 5', 'progression', test_size => 0)$$);
-- a hold-out split with no rows
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT * FROM diabetes LIMIT 12', 'progression', test_size => 0.01)$$);

-- NaN and Infinity in a feature are errors (only NULL is missing)
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT CASE WHEN age > 70 THEN ''NaN''::float8 ELSE age END AS age, progression FROM diabetes', 'progression')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT CASE WHEN age > 70 THEN ''-Infinity''::float8 ELSE age END AS age, progression FROM diabetes', 'progression')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT age, CASE WHEN age > 70 THEN ''Infinity''::float8 ELSE progression END AS y FROM diabetes', 'y')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT age::numeric, CASE WHEN age > 70 THEN ''NaN''::numeric END AS x, progression FROM diabetes', 'progression')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT age, ''infinity''::date AS d, progression FROM diabetes', 'progression')$$);

-- unsupported column types
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT age, ''{}''::jsonb AS j, progression FROM diabetes', 'progression')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT age, ARRAY[age]::float8[] AS y FROM diabetes', 'y')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT ARRAY[ARRAY[age]] AS a, progression FROM diabetes', 'progression')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT CASE WHEN age > 50 THEN ARRAY[age] ELSE ARRAY[age, bmi] END AS a, progression FROM diabetes', 'progression')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT ''{}''::float8[] AS a, progression FROM diabetes', 'progression')$$);
-- a text target cannot be regressed; too many classes
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT age, species AS y FROM diabetes, iris LIMIT 300', 'y', task => 'regression')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'SELECT i::float8 AS x, i::text AS y FROM generate_series(1, 1500) i', 'y')$$);

-- task and algorithm mismatches; a project's task and target are fixed
SELECT expect_error($$SELECT * FROM ml.train('e', 'diabetes', 'progression', 'logistic')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'iris', 'species', 'linear')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'diabetes', 'progression', task => 'clustering')$$);
SELECT project FROM ml.train('fixed', 'diabetes', 'progression');
SELECT expect_error($$SELECT * FROM ml.train('fixed', 'diabetes', 'progression', task => 'classification')$$);
SELECT expect_error($$SELECT * FROM ml.train('fixed', 'diabetes', 'bmi')$$);
SELECT expect_error($$SELECT * FROM ml.train('fixed', 'iris', 'species')$$);

-- bad hyperparameters: unknown key (the message lists the valid ones),
-- wrong type, out of range, not an object
SELECT expect_error($$SELECT * FROM ml.train('e', 'diabetes', 'progression', 'ridge', hyperparams => '{"lambda": 1}')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'diabetes', 'progression', 'ridge', hyperparams => '{"alpha": "big"}')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'diabetes', 'progression', 'ridge', hyperparams => '{"alpha": -1}')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'diabetes', 'progression', 'linear', hyperparams => '{"fit_intercept": 1}')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'iris', 'species', hyperparams => '{"max_iter": 2.5}')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'iris', 'species', hyperparams => '{"penalty": "l1"}')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'iris', 'species', hyperparams => '{"class_weight": "auto"}')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'iris', 'species', hyperparams => '{"C": 0}')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'iris', 'species', hyperparams => '{"seed": -1}')$$);
SELECT expect_error($$SELECT * FROM ml.train('e', 'iris', 'species', hyperparams => '[]')$$);
-- the hint names every valid key
DO $$
BEGIN
    PERFORM * FROM ml.train('e', 'diabetes', 'progression', 'ridge', hyperparams => '{"lambda": 1}');
EXCEPTION WHEN invalid_parameter_value THEN
    DECLARE hint text;
    BEGIN
        GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
        RAISE NOTICE 'hint: %', hint;
    END;
END
$$;

-- ml.max_train_memory exceeded
SET ml.max_train_memory = '64kB';
SELECT expect_error($$SELECT * FROM ml.train('e', 'breast_cancer', 'diagnosis')$$);
RESET ml.max_train_memory;
SELECT expect_error($$SET ml.max_train_memory = '1kB'$$);
SELECT expect_error($$SET ml.no_such_setting = 1$$);

-- statement_timeout (and so a cancel) during training leaves no model
SET statement_timeout = '300ms';
SELECT * FROM ml.train('e', 'SELECT * FROM diabetes WHERE pg_sleep(0.005)::text = ''''', 'progression');
RESET statement_timeout;

-- privileges: the source runs with the caller's rights; only members of
-- a project's owner role may change it
CREATE ROLE regress_ml_analyst;
GRANT ml_developer TO regress_ml_analyst;
CREATE TABLE secret AS SELECT * FROM diabetes;
GRANT SELECT ON diabetes TO regress_ml_analyst;
SET ROLE regress_ml_analyst;
SELECT expect_error($$SELECT * FROM ml.train('e', 'secret', 'progression')$$);
SELECT project, deployed FROM ml.train('analyst', 'diabetes', 'progression');
SELECT expect_error($$SELECT * FROM ml.train('fixed', 'diabetes', 'progression')$$);
SELECT expect_error($$SELECT * FROM ml.deploy('fixed', 'most_recent')$$);
SELECT expect_error($$SELECT ml.drop_project('fixed')$$);
SELECT expect_error($$SELECT ml.predict('fixed', d) FROM diabetes d LIMIT 1$$);
RESET ROLE;
SELECT ml.grant('fixed', 'regress_ml_analyst', 'predict');
SET ROLE regress_ml_analyst;
SELECT round(ml.predict('fixed', d)::numeric, 3) = round(ml.predict('analyst', d)::numeric, 3) AS same_model_family
  FROM diabetes d LIMIT 1;
SELECT expect_error($$SELECT * FROM ml.train('fixed', 'diabetes', 'progression')$$);
SELECT expect_error($$SELECT ml.grant('fixed', 'regress_ml_analyst', 'deploy')$$);
SELECT expect_error($$SELECT ml.revoke('fixed', 'regress_ml_analyst')$$);
RESET ROLE;
-- ml.grant replaces a role's level, lower or higher; bad arguments
SELECT ml.grant('fixed', 'regress_ml_analyst', 'deploy');
SELECT ml.grant('fixed', 'regress_ml_analyst', 'train');
SELECT g.grantee, g.privilege, g.owner, g.granted_by
  FROM ml.project_grants g JOIN ml.projects p ON p.id = g.project_id WHERE p.name = 'fixed';
SELECT expect_error($$SELECT ml.grant('fixed', 'regress_ml_analyst', 'own')$$);
SELECT expect_error($$SELECT ml.grant('fixed', 0, 'predict')$$);
SELECT expect_error($$SELECT ml.grant('fixed', 'regress_no_such_role', 'predict')$$);
SELECT expect_error($$SELECT ml.grant('no_such_project', 'regress_ml_analyst', 'predict')$$);
SELECT expect_error($$SELECT ml.grant('', 'regress_ml_analyst', 'predict')$$);
SELECT ml.grant(NULL, 'regress_ml_analyst', 'predict') IS NULL AS strict_grant,
       ml.revoke('fixed', NULL) IS NULL AS strict_revoke;
SELECT ml.revoke('fixed', 'regress_ml_analyst') AS revoked,
       ml.revoke('fixed', 'regress_ml_analyst') AS revoked_again;
SELECT count(*) AS grants_left FROM ml.project_grants;
SET ROLE regress_ml_analyst;
SELECT expect_error($$INSERT INTO ml.projects (name, task, owner) VALUES ('x', 'regression', 'regress_ml_analyst')$$);
RESET ROLE;
SELECT name, owner FROM ml.projects WHERE name = 'analyst';
SELECT ml.drop_project('analyst');
DROP TABLE secret;
REVOKE SELECT ON diabetes FROM regress_ml_analyst;
DROP ROLE regress_ml_analyst;

-- the catalog owner's statements cannot be diverted through the caller's
-- search_path: an operator planted by an unprivileged role is not used
CREATE ROLE regress_ml_intruder;
GRANT ml_developer TO regress_ml_intruder;
CREATE SCHEMA intruder AUTHORIZATION regress_ml_intruder;
GRANT SELECT ON diabetes TO regress_ml_intruder;
SET ROLE regress_ml_intruder;
CREATE FUNCTION intruder.text_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'intruder function ran as %', current_user;
    RETURN $1 OPERATOR(pg_catalog.=) $2;
END
$$;
CREATE OPERATOR intruder.= (LEFTARG = text, RIGHTARG = text, FUNCTION = intruder.text_eq);
SET search_path = intruder, pg_catalog, public;
SELECT project, deployed FROM ml.train('intruded', 'public.diabetes', 'progression');
RESET search_path;
RESET ROLE;
SELECT ml.drop_project('intruded');
DROP SCHEMA intruder CASCADE;
REVOKE SELECT ON diabetes FROM regress_ml_intruder;
DROP ROLE regress_ml_intruder;

-- nothing was left behind by any failed call: since the start there is
-- one more project, model and deployment ("fixed"), and that is all
SELECT (projects - :start_projects, models - :start_models, deployments - :start_deployments) AS since_start
  FROM catalog_counts();
