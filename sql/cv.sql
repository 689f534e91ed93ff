-- sql/cv.sql: k-fold cross-validation with hyperparams => '{"cv": k}'.
SELECT setval('ml.models_id_seq', 80000, false);

-- regression: 5 folds of the 331 training rows of diabetes
SELECT model_id AS cv_dia, metrics AS cvm FROM ml.train('cv_dia', 'diabetes', 'progression',
       hyperparams => '{"cv": 5}', deploy => 'never') \gset
SELECT model_id AS plain_dia, metrics AS plainm FROM ml.train('cv_dia', 'diabetes', 'progression', deploy => 'never') \gset
SELECT :'cvm'::jsonb -> 'cv' ->> 'folds' AS folds, :'cvm'::jsonb -> 'cv' ->> 'metric' AS metric,
       jsonb_array_length(:'cvm'::jsonb -> 'cv' -> 'fold_scores') AS scores;
-- mean and std are those of the fold scores; each fold score is its fold's r2
SELECT abs(avg(s) - (:'cvm'::jsonb -> 'cv' ->> 'mean')::float8) < 1e-12 AS mean_ok,
       abs(stddev_samp(s) - (:'cvm'::jsonb -> 'cv' ->> 'std')::float8) < 1e-12 AS std_ok,
       round(avg(s)::numeric, 4) AS mean_r2, round(min(s)::numeric, 4) AS min_r2, round(max(s)::numeric, 4) AS max_r2
  FROM jsonb_array_elements_text(:'cvm'::jsonb -> 'cv' -> 'fold_scores') f(s0), LATERAL (SELECT s0::float8 AS s) x;
SELECT bool_and((fm ->> 'r2')::float8 = (:'cvm'::jsonb -> 'cv' -> 'fold_scores' ->> (o - 1)::int)::float8) AS scores_match,
       sum((fm ->> 'n')::int) AS rows_in_folds, min((fm ->> 'n')::int) AS smallest, max((fm ->> 'n')::int) AS largest
  FROM jsonb_array_elements(:'cvm'::jsonb -> 'cv' -> 'fold_metrics') WITH ORDINALITY AS e(fm, o);
SELECT n_train FROM ml.models WHERE id = :cv_dia;
-- the model itself is refit on every training row: the same as without cv
SELECT (:'cvm'::jsonb - 'cv') = :'plainm'::jsonb AS same_holdout_metrics,
       (SELECT hyperparams ->> 'cv' FROM ml.models WHERE id = :cv_dia) AS stored_cv;

-- classification: stratified folds of iris
SELECT metrics AS cvi FROM ml.train('cv_iris', 'iris', 'species', 'logistic',
       hyperparams => '{"cv": 5}', deploy => 'never') \gset
SELECT o AS fold, (fm ->> 'n')::int AS n,
       (SELECT array_agg((SELECT sum(v::int) FROM jsonb_array_elements_text(r) v) ORDER BY i)
          FROM jsonb_array_elements(fm -> 'confusion_matrix') WITH ORDINALITY AS c(r, i)) AS per_class
  FROM jsonb_array_elements(:'cvi'::jsonb -> 'cv' -> 'fold_metrics') WITH ORDINALITY AS e(fm, o) ORDER BY o;
SELECT round((:'cvi'::jsonb -> 'cv' ->> 'mean')::numeric, 4) >= 0.93 AS mean_f1_ok;

-- bad input
SELECT expect_error($$SELECT * FROM ml.train('cv_bad', 'iris', 'species', hyperparams => '{"cv": 50}')$$);
SELECT expect_error($$SELECT * FROM ml.train('cv_bad', 'iris', 'species', hyperparams => '{"cv": 1}')$$);
SELECT expect_error($$SELECT * FROM ml.train('cv_bad', 'iris', 'species', hyperparams => '{"cv": 2.5}')$$);
SELECT expect_error($$SELECT * FROM ml.train('cv_bad', 'iris', 'species', hyperparams => '{"cv": "5"}')$$);
SELECT expect_error($$SELECT * FROM ml.train('cv_bad', 'SELECT sepal_length, sepal_width FROM iris', NULL, 'kmeans', hyperparams => '{"cv": 3}')$$);
SELECT expect_error($$SELECT * FROM ml.train('cv_bad', 'SELECT bmi, progression FROM diabetes LIMIT 8', 'progression', hyperparams => '{"cv": 5}', test_size => 0)$$);
SELECT count(*) AS cv_bad_projects FROM ml.projects WHERE name = 'cv_bad';
