-- sql/elastic.sql: lasso and elastic net against reference fits.
--
-- Reference numbers: scikit-learn 1.2.1 (Debian python3-sklearn) on every
-- row of test/data/diabetes.csv, target progression, with the default
-- max_iter (1000) and tol (1e-4):
--   lasso_raw     Lasso(alpha=1.0)                       unscaled features
--   enet_raw      ElasticNet(alpha=1.0, l1_ratio=0.5)    unscaled features
--   lasso_raw_01  Lasso(alpha=0.1)                       unscaled features
--   lasso_std     Lasso(alpha=1.0)                       StandardScaler() features
--   enet_std      ElasticNet(alpha=0.5, l1_ratio=0.7)    StandardScaler() features
-- Values are printed to 10 significant digits.  No coefficient of the
-- three unscaled fits is zero; lasso_std has age, s2 and s4 exactly zero,
-- enet_std has age exactly zero.  scikit-learn's n_iter_ (coordinate
-- descent sweeps) is 343, 107, 538, 21 and 20 respectively.
CREATE TEMP TABLE enet_ref(fit text, feature text, coef float8);
INSERT INTO enet_ref VALUES
    ('lasso_raw', 'intercept', -202.3026555),
    ('lasso_raw', 'age', -0.01902671146),
    ('lasso_raw', 'sex', -17.47704968),
    ('lasso_raw', 'bmi', 5.842430567),
    ('lasso_raw', 'bp', 1.091542584),
    ('lasso_raw', 's1', 0.1561323959),
    ('lasso_raw', 's2', -0.3152035183),
    ('lasso_raw', 's3', -1.187751713),
    ('lasso_raw', 's4', 0.1624327459),
    ('lasso_raw', 's5', 34.22471514),
    ('lasso_raw', 's6', 0.3297322813),
    ('enet_raw', 'intercept', -113.3713817),
    ('enet_raw', 'age', -0.03883267406),
    ('enet_raw', 'sex', -5.750946713),
    ('enet_raw', 'bmi', 6.081029118),
    ('enet_raw', 'bp', 1.052777592),
    ('enet_raw', 's1', 1.185832008),
    ('enet_raw', 's2', -1.304778327),
    ('enet_raw', 's3', -2.085728397),
    ('enet_raw', 's4', 0.2422254623),
    ('enet_raw', 's5', 2.823463968),
    ('enet_raw', 's6', 0.3494112913),
    ('lasso_raw_01', 'intercept', -318.120424),
    ('lasso_raw_01', 'age', -0.03422211482),
    ('lasso_raw_01', 'sex', -22.31885199),
    ('lasso_raw_01', 'bmi', 5.628241299),
    ('lasso_raw_01', 'bp', 1.113875634),
    ('lasso_raw_01', 's1', -0.9347573459),
    ('lasso_raw_01', 's2', 0.6133704225),
    ('lasso_raw_01', 's3', 0.1761717093),
    ('lasso_raw_01', 's4', 5.754523382),
    ('lasso_raw_01', 's5', 64.32688762),
    ('lasso_raw_01', 's6', 0.2853758466),
    ('lasso_std', 'intercept', 152.1334842),
    ('lasso_std', 'age', 0),
    ('lasso_std', 'sex', -9.31941253),
    ('lasso_std', 'bmi', 24.83127631),
    ('lasso_std', 'bp', 14.08870568),
    ('lasso_std', 's1', -4.83892808),
    ('lasso_std', 's2', 0),
    ('lasso_std', 's3', -10.62279919),
    ('lasso_std', 's4', 0),
    ('lasso_std', 's5', 24.42081057),
    ('lasso_std', 's6', 2.562129867),
    ('enet_std', 'intercept', 152.1334842),
    ('enet_std', 'age', 0),
    ('enet_std', 'sex', -8.687397505),
    ('enet_std', 'bmi', 22.39970763),
    ('enet_std', 'bp', 13.67665119),
    ('enet_std', 's1', -2.291253844),
    ('enet_std', 's2', -3.351876105),
    ('enet_std', 's3', -9.243138713),
    ('enet_std', 's4', 4.792417374),
    ('enet_std', 's5', 19.82525134),
    ('enet_std', 's6', 4.212496816);

-- the five fits: unscaled with preprocess scale none, scaled with the
-- algorithms' default (standard) scaling; every row, no hold-out
CREATE TEMP TABLE enet_fit(fit text, model_id bigint);
INSERT INTO enet_fit SELECT 'lasso_raw', model_id
  FROM ml.train('lasso_raw', 'diabetes', 'progression', 'lasso',
                hyperparams => '{"alpha": 1.0}', preprocess => '{"scale": "none"}', test_size => 0);
INSERT INTO enet_fit SELECT 'enet_raw', model_id
  FROM ml.train('enet_raw', 'diabetes', 'progression', 'elastic_net',
                hyperparams => '{"alpha": 1.0, "l1_ratio": 0.5}', preprocess => '{"scale": "none"}', test_size => 0);
INSERT INTO enet_fit SELECT 'lasso_raw_01', model_id
  FROM ml.train('lasso_raw_01', 'diabetes', 'progression', 'lasso',
                hyperparams => '{"alpha": 0.1}', preprocess => '{"scale": "none"}', test_size => 0);
INSERT INTO enet_fit SELECT 'lasso_std', model_id
  FROM ml.train('lasso_std', 'diabetes', 'progression', 'lasso', test_size => 0);
INSERT INTO enet_fit SELECT 'enet_std', model_id
  FROM ml.train('enet_std', 'diabetes', 'progression', 'elastic_net',
                hyperparams => '{"alpha": 0.5, "l1_ratio": 0.7}', test_size => 0);

-- every non-zero reference value (coefficients and intercept) is met
-- within 1e-4 relative, and every zero one exactly; "mismatched" lists
-- the features that are not
SELECT r.fit,
       count(*) FILTER (WHERE CASE WHEN r.coef = 0 THEN g.got = 0
                                   ELSE abs(g.got - r.coef) / abs(r.coef) < 1e-4 END) AS matching,
       count(*) AS total,
       string_agg(r.feature, ', ' ORDER BY r.feature)
         FILTER (WHERE NOT CASE WHEN r.coef = 0 THEN g.got = 0
                                ELSE abs(g.got - r.coef) / abs(r.coef) < 1e-4 END) AS mismatched,
       string_agg(r.feature, ', ' ORDER BY r.feature) FILTER (WHERE g.got = 0) AS zero
  FROM enet_ref r
  JOIN enet_fit f USING (fit)
  CROSS JOIN LATERAL (
       SELECT (CASE WHEN r.feature = 'intercept' THEN info ->> 'intercept'
                    ELSE info -> 'coefficients' ->> r.feature END)::float8 AS got
         FROM ml.model_info(f.model_id) info) g
 GROUP BY r.fit ORDER BY r.fit;

-- the same number of coordinate descent sweeps as scikit-learn
SELECT f.fit, (info ->> 'iterations')::int AS iterations, (info ->> 'converged')::boolean AS converged,
       (info ->> 'nonzero_coefficients')::int AS nonzero_coefficients
  FROM enet_fit f, ml.model_info(f.model_id) info ORDER BY f.fit;

-- hyperparameters are stored with their defaults; the default scaling is
-- standard
SELECT f.fit, m.hyperparams, (SELECT array_agg(DISTINCT x.scale) FROM ml.features(f.fit) x) AS scale
  FROM enet_fit f JOIN ml.models m ON m.id = f.model_id
 WHERE f.fit IN ('lasso_std', 'enet_std') ORDER BY f.fit;

-- predictions (through the stored blob) equal intercept + coef . x of the
-- reference within 1e-4 relative, on unscaled and on scaled features
WITH rows AS MATERIALIZED (
       SELECT row_number() OVER () AS ord, d FROM diabetes d),
     cells AS (
       SELECT r.ord, e.key AS feature, e.value::float8 AS x
         FROM rows r, jsonb_each_text(to_jsonb(r.d) - 'progression') e),
     stats AS (
       SELECT feature, avg(x) AS mean, stddev_pop(x) AS sd FROM cells GROUP BY feature),
     ref AS (
       SELECT r.fit, c.ord,
              sum(r.coef * CASE WHEN r.fit LIKE '%\_std' THEN (c.x - s.mean) / s.sd ELSE c.x END)
              + min(i.coef) AS ref
         FROM enet_ref r
         JOIN cells c USING (feature)
         JOIN stats s USING (feature)
         JOIN enet_ref i ON i.fit = r.fit AND i.feature = 'intercept'
        GROUP BY r.fit, c.ord)
SELECT f.fit, max(abs(ml.predict(f.model_id, rows.d) - ref.ref) / abs(ref.ref)) < 1e-4 AS predictions_ok,
       count(*)
  FROM enet_fit f JOIN ref USING (fit) JOIN rows USING (ord)
 WHERE f.fit IN ('lasso_raw', 'enet_std')
 GROUP BY f.fit ORDER BY f.fit;

-- elastic_net with l1_ratio 1 is lasso
SELECT model_id AS enet_l1 FROM ml.train('enet_l1', 'diabetes', 'progression', 'elastic_net',
       hyperparams => '{"alpha": 1.0, "l1_ratio": 1.0}', preprocess => '{"scale": "none"}', test_size => 0) \gset
SELECT a.info -> 'coefficients' = b.info -> 'coefficients' AS same_coefficients,
       a.info -> 'intercept' = b.info -> 'intercept' AS same_intercept
  FROM ml.model_info(:enet_l1) a(info), enet_fit f, ml.model_info(f.model_id) b(info)
 WHERE f.fit = 'lasso_raw';

-- the hold-out split: 111 of 442 rows, metrics on them
SELECT algorithm, round((metrics ->> 'r2')::numeric, 4) AS r2,
       (metrics ->> 'rmse')::float8 > 0 AS rmse_ok, (metrics ->> 'mae')::float8 > 0 AS mae_ok,
       (metrics ->> 'n')::int AS n, metrics ->> 'evaluated_on' AS evaluated_on
  FROM ml.train('enet_split', 'diabetes', 'progression', 'elastic_net');
SELECT algorithm, round((metrics ->> 'r2')::numeric, 4) AS r2, (metrics ->> 'n')::int AS n,
       metrics ->> 'evaluated_on' AS evaluated_on
  FROM ml.train('lasso_split', 'diabetes', 'progression', 'lasso');

-- sparsity: alpha above max|Xc'yc| / n zeroes every coefficient, and the
-- intercept is the mean of the target
SELECT model_id AS lasso_big FROM ml.train('lasso_big', 'diabetes', 'progression', 'lasso',
       hyperparams => '{"alpha": 1000}', test_size => 0) \gset
SELECT (info ->> 'nonzero_coefficients')::int AS nonzero_coefficients,
       (SELECT bool_and(c::float8 = 0) FROM jsonb_each_text(info -> 'coefficients') e(k, c)) AS all_zero,
       abs((info ->> 'intercept')::float8 - (SELECT avg(progression) FROM diabetes)) / 152.13348416289594 < 1e-12 AS intercept_is_mean,
       (info ->> 'iterations')::int AS iterations, (info ->> 'converged')::boolean AS converged
  FROM ml.model_info(:lasso_big) info;
SELECT round(ml.predict('lasso_big', ARRAY[50, 1, 25, 90, 190, 115, 50, 4, 4.6, 90]::float8[])::numeric, 6) AS prediction,
       round(avg(progression)::numeric, 6) AS mean
  FROM diabetes;

-- fit_intercept false, one feature: the solution is in closed form,
-- w = (x'y - n alpha) / x'x = (5845 - 20 * 0.5) / 2870 for y = 2 x + 0.5
CREATE TABLE enet_origin AS SELECT i::float8 AS x, 2 * i::float8 + 0.5 AS y FROM generate_series(1, 20) i;
SELECT model_id AS enet_origin FROM ml.train('enet_origin', 'enet_origin', 'y', 'lasso',
       hyperparams => '{"alpha": 0.5, "fit_intercept": false}', preprocess => '{"scale": "none"}',
       test_size => 0) \gset
SELECT (info ->> 'intercept')::float8 AS intercept,
       round((info -> 'coefficients' ->> 'x')::numeric, 12) AS x,
       round((5845 - 20 * 0.5) / 2870.0, 12) AS expected
  FROM ml.model_info(:enet_origin) info;

-- max_iter reached before convergence: a NOTICE, and the model records it
\set VERBOSITY terse
SELECT model_id AS lasso_short FROM ml.train('lasso_short', 'diabetes', 'progression', 'lasso',
       hyperparams => '{"alpha": 0.1, "max_iter": 5}', preprocess => '{"scale": "none"}', test_size => 0) \gset
\set VERBOSITY default
SELECT (info ->> 'iterations')::int AS iterations, (info ->> 'converged')::boolean AS converged
  FROM ml.model_info(:lasso_short) info;

-- errors
SELECT expect_error($$SELECT * FROM ml.train('enet_bad', 'diabetes', 'progression', 'elastic_net',
                                             hyperparams => '{"l1_ratio": 1.5}')$$);
SELECT expect_error($$SELECT * FROM ml.train('enet_bad', 'diabetes', 'progression', 'lasso',
                                             hyperparams => '{"alpha": -1}')$$);
SELECT expect_error($$SELECT * FROM ml.train('enet_bad', 'iris', 'species', 'lasso')$$);
SELECT expect_error($$SELECT * FROM ml.train('enet_bad', 'diabetes', 'progression', 'lasso',
                                             hyperparams => '{"l1_ratio": 0.5}')$$);
SELECT count(*) AS bad_projects FROM ml.projects WHERE name = 'enet_bad';
