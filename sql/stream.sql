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
