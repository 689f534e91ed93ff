-- sql/linear.sql: ordinary least squares and ridge against reference fits.
--
-- Reference numbers: scikit-learn 1.2.1 (Debian python3-sklearn) on the
-- same rows of test/data/diabetes.csv: LinearRegression() (LAPACK gelsd,
-- an SVD solver, independent of pgmaker's eigen-decomposition of the
-- normal equations), Ridge(alpha=1.0) on unscaled features, and
-- Ridge(alpha=10.0) on StandardScaler()-scaled features.

-- model ids in this suite start at a fixed value, whatever ran before
SELECT setval('ml.models_id_seq', 2000, false);

-- OLS on every row: R^2 on the training rows is 0.5177 (scikit-learn:
-- 0.5177484222).
SELECT project, algorithm, round((metrics ->> 'r2')::numeric, 4) AS r2,
       metrics ->> 'evaluated_on' AS evaluated_on, deployed
  FROM ml.train('ols', 'diabetes', 'progression', test_size => 0);

CREATE TEMP TABLE ols_ref(feature text, coef float8);
INSERT INTO ols_ref VALUES
    ('age', -3.63612242e-02), ('sex', -2.28596481e+01), ('bmi', 5.60296209e+00),
    ('bp', 1.11680799e+00), ('s1', -1.08999633e+00), ('s2', 7.46450456e-01),
    ('s3', 3.72004715e-01), ('s4', 6.53383194e+00), ('s5', 6.84831250e+01),
    ('s6', 2.80116989e-01);

-- coefficients and intercept within 1e-6 relative of the reference
-- (the reference's printed digits carry 9 significant figures)
SELECT r.feature,
       abs((ml.model_info(m.id) -> 'coefficients' ->> r.feature)::float8 - r.coef) / abs(r.coef) < 1e-6 AS coef_ok
  FROM ols_ref r, ml.models m JOIN ml.projects p ON p.id = m.project_id
 WHERE p.name = 'ols'
 ORDER BY r.feature;
SELECT abs((ml.model_info(m.id) ->> 'intercept')::float8 - (-334.5671385187875)) / 334.5671385187875 < 1e-9 AS intercept_ok,
       (ml.model_info(m.id) ->> 'rank')::int AS rank
  FROM ml.models m JOIN ml.projects p ON p.id = m.project_id WHERE p.name = 'ols';

-- predictions within 1e-6 relative of the exact least-squares solution
SELECT max(abs(ml.predict('ols', d) - ref) / abs(ref)) < 1e-6 AS predictions_ok, count(*)
  FROM (SELECT d, -334.5671385187875 + r.s AS ref
          FROM diabetes d,
               LATERAL (SELECT sum(o.coef * (to_jsonb(d) ->> o.feature)::float8) AS s FROM ols_ref o) r) q;

-- the hold-out split: 111 of 442 rows, metrics on them
SELECT round((metrics ->> 'r2')::numeric, 4) AS r2, (metrics ->> 'n')::int AS n,
       metrics ->> 'evaluated_on' AS evaluated_on
  FROM ml.train('ols_split', 'diabetes', 'progression');
SELECT n_train, n_test FROM ml.models m JOIN ml.projects p ON p.id = m.project_id
 WHERE p.name = 'ols_split';

-- ridge on unscaled features equals scikit-learn's Ridge(alpha=1.0):
-- intercept -316.07711860428867, s5 63.179080874 (9 digits printed)
SELECT model_id AS ridge_raw FROM ml.train('ridge_raw', 'diabetes', 'progression', 'ridge',
       hyperparams => '{"alpha": 1.0}', preprocess => '{"scale": "none"}', test_size => 0) \gset
SELECT abs((info ->> 'intercept')::float8 - (-316.07711860428867)) / 316.07711860428867 < 1e-9 AS intercept_ok,
       abs((info -> 'coefficients' ->> 's5')::float8 - 63.1790809) / 63.1790809 < 1e-6 AS s5_ok,
       abs((info -> 'coefficients' ->> 'sex')::float8 - (-22.6070454)) / 22.6070454 < 1e-6 AS sex_ok
  FROM ml.model_info(:ridge_raw) info;

-- ridge with the default standard scaling equals Ridge(alpha=10) on
-- StandardScaler() features: intercept 152.13348416289602,
-- bmi 24.600094464817214, s5 25.33209609204644
SELECT model_id AS ridge_scaled FROM ml.train('ridge_scaled', 'diabetes', 'progression', 'ridge',
       hyperparams => '{"alpha": 10}', test_size => 0) \gset
SELECT abs((info ->> 'intercept')::float8 - 152.13348416289602) / 152.13348416289602 < 1e-9 AS intercept_ok,
       abs((info -> 'coefficients' ->> 'bmi')::float8 - 24.600094464817214) / 24.600094464817214 < 1e-9 AS bmi_ok,
       abs((info -> 'coefficients' ->> 's5')::float8 - 25.33209609204644) / 25.33209609204644 < 1e-9 AS s5_ok
  FROM ml.model_info(:ridge_scaled) info;
SELECT hyperparams, preprocess FROM ml.models WHERE id = :ridge_scaled;

-- collinear and constant columns: the minimum-norm solution, no NaN.
-- y = 3 x1 + 1 with x2 = 2 x1 and c constant: the minimum-norm
-- coefficients are x1 = 3/5, x2 = 6/5, c = 0.
CREATE TABLE collinear AS
SELECT i::float8 AS x1, 2 * i::float8 AS x2, 5.0::float8 AS c, 3 * i + 1.0::float8 AS y
  FROM generate_series(1, 50) i;
SELECT round((metrics ->> 'r2')::numeric, 9) AS r2
  FROM ml.train('collinear', 'collinear', 'y', test_size => 0);
SELECT round((info -> 'coefficients' ->> 'x1')::numeric, 9) AS x1,
       round((info -> 'coefficients' ->> 'x2')::numeric, 9) AS x2,
       round((info -> 'coefficients' ->> 'c')::numeric, 9) AS c,
       round((info ->> 'intercept')::numeric, 9) AS intercept,
       (info ->> 'rank')::int AS rank
  FROM (SELECT ml.model_info(max(id)) AS info FROM ml.models) i;
SELECT round(ml.predict('collinear', ARRAY[10, 20, 5]::float8[])::numeric, 9) AS at_10;

-- fit_intercept false: y = 2 x through the origin
CREATE TABLE origin AS SELECT i::float8 AS x, 2 * i::float8 + 0.5 AS y FROM generate_series(1, 20) i;
SELECT model_id AS origin FROM ml.train('origin', 'origin', 'y',
       hyperparams => '{"fit_intercept": false}', test_size => 0) \gset
-- least squares through the origin: sum(xy) / sum(x^2) = 2 + 0.5 * 210 / 2870
SELECT round((info ->> 'intercept')::numeric, 9) AS intercept,
       round((info -> 'coefficients' ->> 'x')::numeric, 9) AS x,
       round(2 + 0.5 * 210 / 2870.0, 9) AS expected
  FROM ml.model_info(:origin) info;
