-- ml.train's aggregate path: linear and ridge fitted from one aggregate
-- scan (co-moments of every training row, hold-out chosen by row hash),
-- against the same fits read into memory.
SELECT setval('ml.models_id_seq', 120000, false);
SET client_min_messages = notice;

SELECT setseed(0.7);
CREATE TABLE st_data AS
SELECT x1, x2, x3::int AS x3, x4::real AS x4,
       (2 + 1.5 * x1 - 0.5 * x2 + 0.25 * x3 + 3 * x4 + 0.1 * (random() - 0.5))::numeric(12, 6) AS y
  FROM (SELECT random() AS x1, random() * 10 AS x2, (random() * 5)::int AS x3,
               random() AS x4
          FROM generate_series(1, 5000) OFFSET 0) s;
ANALYZE st_data;

-- every row trains (test_size 0): the aggregate fit equals the in-memory one
SET ml.aggregate_train_min_rows = 0;
SELECT algorithm, metrics->>'split' AS split, metrics->>'evaluated_on' AS evaluated_on,
       (metrics->>'n')::int AS n
  FROM ml.train('st_agg', 'st_data', 'y', 'linear', test_size => 0);
SET ml.aggregate_train_min_rows = -1;
SELECT algorithm, metrics->>'split' AS split, (metrics->>'n')::int AS n
  FROM ml.train('st_mem', 'st_data', 'y', 'linear', test_size => 0);
RESET ml.aggregate_train_min_rows;

SELECT p.name, m.n_train, m.n_test
  FROM ml.models m JOIN ml.projects p ON p.id = m.project_id
 WHERE p.name IN ('st_agg', 'st_mem') ORDER BY p.name;
-- predictions, training metrics and drift baselines agree
SELECT max(abs(ml.predict('st_agg', d) - ml.predict('st_mem', d))) < 1e-9 AS same_predictions
  FROM st_data d;
SELECT abs((a.metrics->>'r2')::float8 - (b.metrics->>'r2')::float8) < 1e-12 AS same_r2,
       abs((a.metrics->>'rmse')::float8 - (b.metrics->>'rmse')::float8) < 1e-12 AS same_rmse,
       abs((a.metrics->>'mae')::float8 - (b.metrics->>'mae')::float8) < 1e-12 AS same_mae
  FROM ml.models a, ml.models b
 WHERE a.id = 120000 AND b.id = 120001;
SELECT a.baseline->'sampled' AS agg_sampled, b.baseline->'sampled' AS mem_sampled,
       a.baseline->'rows' AS agg_rows, b.baseline->'rows' AS mem_rows
  FROM ml.models a, ml.models b
 WHERE a.id = 120000 AND b.id = 120001;
SELECT k, abs((a.baseline->'columns'->k->>'mean')::float8 - (b.baseline->'columns'->k->>'mean')::float8) < 1e-9 AS same_mean,
       abs((a.baseline->'columns'->k->>'std')::float8 - (b.baseline->'columns'->k->>'std')::float8) < 1e-9 AS same_std,
       a.baseline->'columns'->k->'edges' = b.baseline->'columns'->k->'edges' AS same_edges
  FROM ml.models a, ml.models b, jsonb_object_keys(a.baseline->'columns') k
 WHERE a.id = 120000 AND b.id = 120001 ORDER BY k;
-- the coefficients against the aggregate ml.linear_fit over the same rows
SELECT abs(f.intercept - (i->>'intercept')::float8) < 1e-9 AS same_intercept,
       abs(f.coefficients[1] - (i->'coefficients'->>'x1')::float8) < 1e-9 AND
       abs(f.coefficients[2] - (i->'coefficients'->>'x2')::float8) < 1e-9 AND
       abs(f.coefficients[3] - (i->'coefficients'->>'x3')::float8) < 1e-9 AND
       abs(f.coefficients[4] - (i->'coefficients'->>'x4')::float8) < 1e-9 AS same_coefficients
  FROM (SELECT (ml.linear_fit(y, ARRAY[x1, x2, x3, x4])).* FROM st_data) f,
       ml.model_info(120000) i;

-- ridge (standardised) and linear without intercept
SET ml.aggregate_train_min_rows = 0;
SELECT metrics->>'split' AS split
  FROM ml.train('st_ridge_agg', 'st_data', 'y', 'ridge', hyperparams => '{"alpha": 25}', test_size => 0);
SELECT metrics->>'split' AS split
  FROM ml.train('st_noint_agg', 'st_data', 'y', 'linear', hyperparams => '{"fit_intercept": false}', test_size => 0);
SET ml.aggregate_train_min_rows = -1;
SELECT model_id FROM ml.train('st_ridge_mem', 'st_data', 'y', 'ridge', hyperparams => '{"alpha": 25}', test_size => 0);
SELECT model_id FROM ml.train('st_noint_mem', 'st_data', 'y', 'linear', hyperparams => '{"fit_intercept": false}', test_size => 0);
RESET ml.aggregate_train_min_rows;
SELECT max(abs(ml.predict('st_ridge_agg', d) - ml.predict('st_ridge_mem', d))) < 1e-9 AS same_ridge,
       max(abs(ml.predict('st_noint_agg', d) - ml.predict('st_noint_mem', d))) < 1e-9 AS same_no_intercept,
       max(abs(ml.predict('st_ridge_agg', d) - ml.predict('st_agg', d))) > 1e-3 AS ridge_shrinks
  FROM st_data d;

-- a hold-out by row hash: about test_size of the rows, the same every time
SET ml.aggregate_train_min_rows = 0;
SELECT metrics->>'split' AS split, (metrics->>'r2')::float8 > 0.999 AS good_r2
  FROM ml.train('st_split', 'st_data', 'y', 'linear', deploy => 'never');
SELECT metrics->>'split' AS split
  FROM ml.train('st_split', 'st_data', 'y', 'linear', deploy => 'never');
SELECT count(*) AS models, count(DISTINCT n_test) AS distinct_n_test,
       count(DISTINCT metrics->>'rmse') AS distinct_rmse,
       bool_and(n_train + n_test = 5000) AS all_rows,
       bool_and(n_test BETWEEN 1150 AND 1350) AS about_a_quarter,
       bool_and((metrics->>'n')::int = n_test) AS every_holdout_row_measured
  FROM ml.models WHERE project_id = (SELECT id FROM ml.projects WHERE name = 'st_split');

-- rows whose target is NULL are skipped and counted, as in memory
CREATE TABLE st_nulls AS SELECT * FROM st_data;
UPDATE st_nulls SET y = NULL WHERE x1 < 0.1;
ANALYZE st_nulls;
SELECT metrics->>'split' AS split
  FROM ml.train('st_nulls', 'st_nulls', 'y', 'linear', test_size => 0);
SELECT n_train = (SELECT count(y) FROM st_nulls) AS counted
  FROM ml.models WHERE id = (SELECT max(id) FROM ml.models);

-- a NULL feature needs imputation: the source is read into memory instead
UPDATE st_nulls SET x2 = NULL WHERE x1 > 0.95;
SELECT metrics->>'split' AS split, (metrics->>'n')::int AS n
  FROM ml.train('st_impute', 'st_nulls', 'y', 'linear', test_size => 0);
-- NaN is the in-memory path's error
CREATE TABLE st_nan AS SELECT * FROM st_data;
UPDATE st_nan SET x4 = 'NaN' WHERE x1 < 0.01;
SELECT model_id FROM ml.train('st_nan', 'st_nan', 'y', 'linear');
-- a text column, or another algorithm: read into memory
SELECT metrics->>'split' AS split
  FROM ml.train('st_text', 'SELECT x1, x2, x3::text AS x3, y FROM st_data', 'y', 'linear', test_size => 0);
SELECT metrics->>'split' AS split
  FROM ml.train('st_lasso', 'st_data', 'y', 'lasso', test_size => 0);
-- a query source, an excluded column
SELECT metrics->>'split' AS split
  FROM ml.train('st_query', 'SELECT x1, x2, x4, y FROM st_data WHERE x3 > 0', 'y', 'linear',
                preprocess => '{"x4": {"exclude": true}}', test_size => 0);
SELECT jsonb_array_length(features) AS nfeatures, n_train = (SELECT count(*) FROM st_data WHERE x3 > 0) AS all_rows
  FROM ml.models WHERE id = (SELECT max(id) FROM ml.models);
RESET ml.aggregate_train_min_rows;

-- the aggregate itself refuses to run outside an aggregate, and bad arguments
SELECT ml._train_moments(y::float8, ARRAY[x1], 1, 1.5, 10, 0) FROM st_data;
SELECT ml._train_moments(y::float8, CASE WHEN x1 < 0.5 THEN ARRAY[x1] ELSE ARRAY[x1, x2] END, 1, 0.25, 10, 0)
  FROM st_data;
-- the form with the features as arguments of their own (ml.train's, up to
-- 94 features) gives the array form's state byte for byte, and takes only
-- float8 arguments
SELECT ml._train_moments(7::int8, 0.25::float8, 100, 0::float8, y::float8, x1, x2, x4::float8) =
       ml._train_moments(y::float8, ARRAY[x1, x2, x4], 7, 0.25, 100, 0) AS same_state
  FROM st_data;
SELECT ml._train_moments(1::int8, 0.25::float8, 10, 0::float8, y::float8, x1, x3) FROM st_data;
SELECT ml._train_moments(1::int8, 0.25::float8, 10, 0::float8, VARIADIC ARRAY[y::float8, x1]) FROM st_data;
SELECT ml._train_moments(1::int8, 1.5::float8, 10, 0::float8, y::float8, x1) FROM st_data;
SELECT ml._train_moments(1::int8, NULL, 10, 0::float8, y::float8, x1) FROM st_data;

-- binary logistic regression: Newton steps, each a scan with
-- ml._logistic_step, from the fit on the training sample
CREATE TABLE st_cls AS
SELECT x1, x2, x3, x4, (x1 + 0.2 * x2 - 2 * x4 + 0.8 * sin(x2 * 977.0) > 0.0) AS yb,
       (x1 + 0.2 * x2 - 2 * x4 + 0.8 * sin(x2 * 977.0) > 0.0)::int * 4 + 3 AS y37,
       floor(x1 * 3)::int AS y3
  FROM st_data;
ANALYZE st_cls;
SELECT yb, count(*) FROM st_cls GROUP BY yb ORDER BY yb;
CREATE FUNCTION pg_temp.info(project text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT ml.model_info(max(m.id)) FROM ml.models m JOIN ml.projects p ON p.id = m.project_id WHERE p.name = project
$$;
-- the coefficients and intercepts of two binary models agree to tol (relative, or absolute below 1)
CREATE FUNCTION pg_temp.same_logistic(a text, b text, tol float8) RETURNS bool LANGUAGE sql AS $$
    SELECT bool_and(abs(x.value::float8 - y.value::float8) <= tol * greatest(1, abs(y.value::float8)))
      FROM (SELECT pg_temp.info(a) AS ia, pg_temp.info(b) AS ib) q,
           LATERAL jsonb_each_text(ia->'coefficients'->(ia->>'positive_class') ||
                                   jsonb_build_object('(intercept)', ia->'intercept'->(ia->>'positive_class'))) x,
           LATERAL jsonb_each_text(ib->'coefficients'->(ib->>'positive_class') ||
                                   jsonb_build_object('(intercept)', ib->'intercept'->(ib->>'positive_class'))) y
     WHERE x.key = y.key
$$;
-- every row trains, with a tight tolerance: the model of the in-memory path
SET ml.aggregate_train_min_rows = 0;
SELECT algorithm, metrics->>'split' AS split, (metrics->>'n')::int AS n
  FROM ml.train('stl_agg', 'st_cls', 'yb', 'logistic', hyperparams => '{"tol": 1e-10}', test_size => 0,
                preprocess => '{"y37": {"exclude": true}, "y3": {"exclude": true}}');
-- a small ml.max_train_memory: samples of about 1,200 rows, more steps
SET ml.max_train_memory = '256kB';
SELECT metrics->>'split' AS split
  FROM ml.train('stl_small', 'st_cls', 'yb', 'logistic', hyperparams => '{"tol": 1e-10}', test_size => 0,
                preprocess => '{"y37": {"exclude": true}, "y3": {"exclude": true}}');
RESET ml.max_train_memory;
SELECT metrics->>'split' AS split
  FROM ml.train('stl_bal_agg', 'st_cls', 'yb', 'logistic', test_size => 0,
                hyperparams => '{"tol": 1e-10, "class_weight": "balanced", "C": 0.05}',
                preprocess => '{"y37": {"exclude": true}, "y3": {"exclude": true}}');
SELECT metrics->>'split' AS split
  FROM ml.train('stl_none_agg', 'st_cls', 'yb', 'logistic', test_size => 0,
                hyperparams => '{"tol": 1e-10, "penalty": "none"}',
                preprocess => '{"y37": {"exclude": true}, "y3": {"exclude": true}}');
SET ml.aggregate_train_min_rows = -1;
SELECT metrics->>'split' AS split
  FROM ml.train('stl_mem', 'st_cls', 'yb', 'logistic', hyperparams => '{"tol": 1e-10, "max_iter": 1000}', test_size => 0,
                preprocess => '{"y37": {"exclude": true}, "y3": {"exclude": true}}');
SELECT metrics->>'split' AS split
  FROM ml.train('stl_bal_mem', 'st_cls', 'yb', 'logistic', test_size => 0,
                hyperparams => '{"tol": 1e-10, "max_iter": 1000, "class_weight": "balanced", "C": 0.05}',
                preprocess => '{"y37": {"exclude": true}, "y3": {"exclude": true}}');
SELECT metrics->>'split' AS split
  FROM ml.train('stl_none_mem', 'st_cls', 'yb', 'logistic', test_size => 0,
                hyperparams => '{"tol": 1e-10, "max_iter": 1000, "penalty": "none"}',
                preprocess => '{"y37": {"exclude": true}, "y3": {"exclude": true}}');
SET ml.aggregate_train_min_rows = 0;
SELECT i->>'positive_class' AS positive, (i->>'converged')::bool AS converged,
       (i->>'iterations')::int BETWEEN 1 AND 3 AS few_steps,
       pg_temp.same_logistic('stl_agg', 'stl_mem', 1e-6) AS same_model
  FROM pg_temp.info('stl_agg') i;
SELECT (i->>'iterations')::int >= 2 AS more_steps, pg_temp.same_logistic('stl_small', 'stl_mem', 1e-6) AS same_model
  FROM pg_temp.info('stl_small') i;
SELECT pg_temp.same_logistic('stl_bal_agg', 'stl_bal_mem', 1e-6) AS same_balanced,
       pg_temp.same_logistic('stl_none_agg', 'stl_none_mem', 1e-6) AS same_unpenalised,
       NOT pg_temp.same_logistic('stl_bal_agg', 'stl_agg', 1e-2) AS weights_matter;
-- the same predictions and training metrics
SELECT max(abs((ml.predict_proba('stl_agg', d))[2] - (ml.predict_proba('stl_mem', d))[2])) < 1e-6 AS same_probabilities
  FROM st_cls d;
SELECT abs((a.metrics->>'accuracy')::float8 - (b.metrics->>'accuracy')::float8) < 1e-12 AS same_accuracy,
       abs((a.metrics->>'log_loss')::float8 - (b.metrics->>'log_loss')::float8) < 1e-6 AS same_log_loss
  FROM ml.models a, ml.models b
 WHERE a.id = (pg_temp.info('stl_agg')->>'model_id')::int8 AND b.id = (pg_temp.info('stl_mem')->>'model_id')::int8;

-- default settings and a hold-out by row hash
SELECT metrics->>'split' AS split, (metrics->>'accuracy')::float8 BETWEEN 0.75 AND 0.9 AS accuracy_ok
  FROM ml.train('stl_split', 'SELECT x1, x2, x3, x4, yb FROM st_cls', 'yb', 'logistic', deploy => 'always');
SELECT (metrics->>'n')::int = n_test AS every_holdout_row_measured, n_train + n_test = 5000 AS all_rows,
       n_test BETWEEN 1150 AND 1350 AS about_a_quarter
  FROM ml.models WHERE id = (pg_temp.info('stl_split')->>'model_id')::int8;
-- an integer target of 3 and 7: 7 is the positive class
SELECT metrics->>'split' AS split, pg_temp.info('stl_37')->'labels' AS labels,
       pg_temp.info('stl_37')->>'positive_class' AS positive
  FROM ml.train('stl_37', 'SELECT x1, x2, x3, x4, y37 FROM st_cls', 'y37', 'logistic', deploy => 'always');
SELECT count(*) FILTER (WHERE ml.predict('stl_37', d) = d.y37) > 3900 AS predicts_labels,
       bool_and(ml.predict('stl_37', d) IN (3, 7)) AS three_or_seven
  FROM (SELECT x1, x2, x3, x4, y37 FROM st_cls) d;
-- debugger rules watch L-BFGS: read into memory
SELECT metrics->>'split' AS split
  FROM ml.train('stl_rules', 'SELECT x1, x2, x3, x4, yb FROM st_cls', 'yb', 'logistic',
                hyperparams => '{"rules": {"nan_or_inf": {}}}');
-- three classes: multinomial, read into memory
SELECT metrics->>'split' AS split, jsonb_array_length(pg_temp.info('stl_3')->'labels') AS classes
  FROM ml.train('stl_3', 'SELECT x1, x2, x3, x4, y3 FROM st_cls', 'y3', 'logistic');
RESET ml.aggregate_train_min_rows;
-- ml._logistic_step is ml.train's: its settings are checked
SELECT octet_length(ml._logistic_step(1::int8, ARRAY[0.25, 1, 1, 1, 0, 0, 0, 0, 1]::float8[], yb::int::float8, x1)) > 0 AS valid
  FROM st_cls;
SELECT ml._logistic_step(1::int8, ARRAY[0.25, 1, 1, 1, 0, 0, 0]::float8[], yb::int::float8, x1) FROM st_cls;
SELECT ml._logistic_step(1::int8, ARRAY[0.25, 1, 0, 1, 0, 0, 0, 0, 1]::float8[], yb::int::float8, x1) FROM st_cls;
SELECT ml._logistic_step(1::int8, ARRAY[0.25, 1, 1, 1, 0, 0, 0, 0, 1]::float8[], yb::int::float8, x3) FROM st_cls;
SELECT ml._logistic_step(1::int8, ARRAY[0.25, 1, 1, 1, 0, 0, 0, 0, 1]::float8[], yb::int::float8, CASE WHEN x1 < 0.5 THEN x1 END) FROM st_cls;
