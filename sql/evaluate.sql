-- sql/evaluate.sql: ml.evaluate scores a model on new labelled rows.

-- model ids in this suite start at a fixed value, whatever ran before
SELECT setval('ml.models_id_seq', 70000, false);

-- on the very rows ml.train held out, ml.evaluate reproduces its metrics
SELECT model_id AS cancer FROM ml.train('ev_cancer', 'breast_cancer', 'diagnosis') \gset
SELECT ml.split('breast_cancer', 'ev_fit', 'ev_hold', 0.25, 'diagnosis') ->> 'test' AS hold_rows;
SELECT ml.evaluate('ev_cancer', 'ev_hold') AS ev \gset
SELECT (:'ev'::jsonb ->> 'accuracy') = (m.metrics ->> 'accuracy') AS same_accuracy,
       (:'ev'::jsonb ->> 'f1') = (m.metrics ->> 'f1') AS same_f1,
       (:'ev'::jsonb -> 'confusion_matrix') = (m.metrics -> 'confusion_matrix') AS same_confusion,
       :'ev'::jsonb ->> 'evaluated_on' AS evaluated_on
  FROM ml.models m WHERE m.id = :cancer;
-- per class: support adds up to the rows, recall matches the confusion matrix
SELECT label, (v ->> 'support')::int AS support, round((v ->> 'recall')::numeric, 6) AS recall,
       round((v ->> 'precision')::numeric, 6) AS precision
  FROM jsonb_each(:'ev'::jsonb -> 'per_class') AS e(label, v) ORDER BY label;
SELECT (:'ev'::jsonb -> 'confusion_matrix' -> 1 ->> 1)::float8 / (:'ev'::jsonb -> 'per_class' -> 'malignant' ->> 'support')::float8
       = (:'ev'::jsonb -> 'per_class' -> 'malignant' ->> 'recall')::float8 AS recall_from_confusion;
-- by model id, the same
SELECT ml.evaluate(:cancer, 'ev_hold') = :'ev'::jsonb AS by_id_same;

-- regression: residual quantiles of y - prediction, as percentile_cont computes them
SELECT model_id AS dia FROM ml.train('ev_dia', 'diabetes', 'progression') \gset
SELECT ml.evaluate('ev_dia', 'SELECT * FROM diabetes WHERE age > 50') AS evr \gset
SELECT round((:'evr'::jsonb ->> 'n')::numeric) AS n,
       abs((:'evr'::jsonb -> 'residual_quantiles' ->> 'p50')::float8 - q.p50) < 1e-9 AS p50_ok,
       abs((:'evr'::jsonb -> 'residual_quantiles' ->> 'p95')::float8 - q.p95) < 1e-9 AS p95_ok,
       abs((:'evr'::jsonb ->> 'mae')::float8 - q.mae) < 1e-9 AS mae_ok
  FROM (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY r) AS p50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY r) AS p95, avg(abs(r)) AS mae
          FROM (SELECT progression - ml.predict('ev_dia', d) AS r FROM diabetes d WHERE age > 50) x) q;

-- a label the model never learned is one of its errors
CREATE TABLE ev_iris AS SELECT * FROM iris;
UPDATE ev_iris SET species = 'unknown' WHERE sepal_length > 7.5;
SELECT model_id AS iris FROM ml.train('ev_iris', 'iris', 'species') \gset
SELECT ml.evaluate('ev_iris', 'ev_iris') AS evi \gset
SELECT :'evi'::jsonb -> 'labels' AS labels,
       (:'evi'::jsonb -> 'per_class' -> 'unknown' ->> 'support')::int AS unknown_rows,
       (:'evi'::jsonb -> 'per_class' -> 'unknown' ->> 'recall')::float8 AS unknown_recall;

-- a clustering model is evaluated without a target
SELECT model_id AS km FROM ml.train('ev_km', 'SELECT sepal_length, sepal_width, petal_length, petal_width FROM iris',
       hyperparams => '{"n_clusters": 3}') \gset
SELECT (e ->> 'n')::int AS n, (e ->> 'silhouette')::float8 > 0.3 AS silhouette_ok, e ? 'inertia' AS has_inertia
  FROM ml.evaluate('ev_km', 'iris') e;

-- errors
SELECT expect_error($$SELECT ml.evaluate('nope', 'iris')$$);
SELECT expect_error($$SELECT ml.evaluate('ev_dia', 'iris')$$);
SELECT expect_error($$SELECT ml.evaluate('ev_dia', 'SELECT age, sex, bmi, bp, s1, s2, s3, s4, s5, s6, ''x''::text AS progression FROM diabetes')$$);
SELECT expect_error($$SELECT ml.evaluate('ev_dia', 'SELECT * FROM diabetes WHERE false')$$);
SELECT expect_error($$SELECT ml.evaluate('ev_dia', 'no_such_table')$$);
SELECT expect_error($$SELECT ml.evaluate(999999999::bigint, 'diabetes')$$);
