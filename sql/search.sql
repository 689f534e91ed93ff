-- sql/search.sql: the decision threshold of binary classifiers, and grid
-- and random hyperparameter search with ml.runs and ml.trials.
SELECT setval('ml.models_id_seq', 90000, false);

-- a binary target as 0/1 for the reference computations below
CREATE TABLE bc AS SELECT b.*, (diagnosis = 'malignant')::int AS y FROM breast_cancer b;
SELECT DISTINCT diagnosis FROM breast_cancer ORDER BY 1;

------------------------------------------------------------------------
-- decision threshold
------------------------------------------------------------------------

-- tuned for f1 on the training rows (test_size 0: every row trains)
SELECT model_id AS thr_train, metrics -> 'decision_threshold' AS dt
  FROM ml.train('thr_train', 'SELECT * FROM breast_cancer', 'diagnosis', 'logistic',
                hyperparams => '{"threshold": "f1"}', test_size => 0) \gset
SELECT :'dt'::jsonb ->> 'tuned_for' AS tuned_for, :'dt'::jsonb ->> 'tuned_on' AS tuned_on;
-- reference: every cut between distinct probabilities of the positive class
CREATE TABLE thr_p AS
SELECT (ml.predict_proba(:thr_train, b))[2] AS p, b.y FROM bc b;
WITH cuts AS (
    SELECT DISTINCT p AS t FROM thr_p
), f AS (
    SELECT t, 2.0 * count(*) FILTER (WHERE p >= t AND y = 1)
              / (count(*) FILTER (WHERE p >= t) + count(*) FILTER (WHERE y = 1)) AS f1
      FROM cuts, thr_p GROUP BY t
)
SELECT abs(max(f1) - (:'dt'::jsonb ->> 'score')::float8) < 1e-12 AS best_f1_matches,
       round(max(f1), 4) AS best_f1
  FROM f;
-- the threshold realises that f1, and lies between two training scores
SELECT abs(2.0 * count(*) FILTER (WHERE p >= t AND y = 1)
           / (count(*) FILTER (WHERE p >= t) + count(*) FILTER (WHERE y = 1))
           - (:'dt'::jsonb ->> 'score')::float8) < 1e-12 AS threshold_realises_it,
       count(*) FILTER (WHERE p = t) AS rows_on_threshold
  FROM thr_p, (SELECT (:'dt'::jsonb ->> 'value')::float8 AS t) x;
-- ml.predict and ml.predict_label use it; predict_proba is unchanged
SELECT count(*) AS rows,
       count(*) FILTER (WHERE ml.predict_label(:thr_train, b) =
                        CASE WHEN (ml.predict_proba(:thr_train, b))[2] >= (:'dt'::jsonb ->> 'value')::float8
                             THEN 'malignant' ELSE 'benign' END) AS label_follows_threshold,
       count(*) FILTER (WHERE ml.predict(:thr_train, b) = 1) AS predicted_malignant,
       count(*) FILTER (WHERE (ml.predict_proba(:thr_train, b))[2] >= 0.5) AS above_half
  FROM bc b;
SELECT round((:'dt'::jsonb ->> 'value')::numeric, 4) AS threshold;
-- the training metrics are those of the tuned decision
SELECT abs((train_metrics ->> 'f1')::float8 - (:'dt'::jsonb ->> 'score')::float8) < 1e-12 AS train_f1_is_tuned_f1
  FROM ml.models WHERE id = :thr_train;

-- tuned on the out-of-fold outputs of cross-validation, then measured on the hold-out rows
SELECT model_id AS thr_cv, metrics AS m
  FROM ml.train('thr_cv', 'breast_cancer', 'diagnosis', 'logistic',
                hyperparams => '{"threshold": "f1", "cv": 5}', deploy => 'never') \gset
SELECT model_id AS thr_plain, metrics AS pm
  FROM ml.train('thr_cv', 'breast_cancer', 'diagnosis', 'logistic', deploy => 'never') \gset
SELECT :'m'::jsonb #>> '{decision_threshold,tuned_on}' AS tuned_on,
       round((:'m'::jsonb #>> '{decision_threshold,value}')::numeric, 4) AS threshold,
       round((:'m'::jsonb ->> 'f1')::numeric, 4) AS f1_tuned,
       round((:'pm'::jsonb ->> 'f1')::numeric, 4) AS f1_at_half,
       (:'m'::jsonb ->> 'roc_auc') = (:'pm'::jsonb ->> 'roc_auc') AS same_ranking;

-- a fixed threshold, and accuracy as the tuning metric
SELECT round((metrics ->> 'recall')::numeric, 4) AS recall_at_0_1, metrics -> 'decision_threshold' AS dt
  FROM ml.train('thr_fixed', 'breast_cancer', 'diagnosis', 'logistic',
                hyperparams => '{"threshold": 0.1}', deploy => 'never');
SELECT hyperparams ->> 'threshold' AS stored FROM ml.models WHERE project_id =
       (SELECT id FROM ml.projects WHERE name = 'thr_fixed');
SELECT model_id AS thr_acc, metrics #>> '{decision_threshold,tuned_for}' AS tuned_for
  FROM ml.train('thr_acc', 'breast_cancer', 'diagnosis', 'xgboost',
                hyperparams => '{"threshold": "accuracy", "n_estimators": 20}', deploy => 'never') \gset
SELECT :'tuned_for' AS tuned_for,
       abs((metrics #>> '{decision_threshold,score}')::float8 - (train_metrics ->> 'accuracy')::float8) < 1e-12 AS train_accuracy_is_tuned
  FROM ml.models WHERE id = :thr_acc;
-- the exported booster does not hold the threshold, and says so
SELECT length(ml.export_model(:thr_acc)) > 1000 AS exported;
-- a scores-only algorithm: the threshold is on its decision score
SELECT (metrics #>> '{decision_threshold,value}')::float8 BETWEEN -10 AND 10 AS on_score_scale
  FROM ml.train('thr_svm', 'breast_cancer', 'diagnosis', 'linear_svm',
                hyperparams => '{"threshold": "f1"}', deploy => 'never');
SELECT round((metrics ->> 'accuracy')::numeric, 4) AS acc
  FROM ml.train('thr_svm2', 'breast_cancer', 'diagnosis', 'linear_svm',
                hyperparams => '{"threshold": -0.5}', deploy => 'never');

-- errors
SELECT expect_error($$SELECT * FROM ml.train('thr_e', 'iris', 'species', hyperparams => '{"threshold": "f1"}')$$);
SELECT expect_error($$SELECT * FROM ml.train('thr_e', 'diabetes', 'progression', hyperparams => '{"threshold": 0.5}')$$);
SELECT expect_error($$SELECT * FROM ml.train('thr_e', 'breast_cancer', 'diagnosis', hyperparams => '{"threshold": 1.5}')$$);
SELECT expect_error($$SELECT * FROM ml.train('thr_e', 'breast_cancer', 'diagnosis', hyperparams => '{"threshold": "recall"}')$$);
SELECT expect_error($$SELECT * FROM ml.train('thr_e', 'breast_cancer', 'diagnosis', hyperparams => '{"threshold": true}')$$);
SELECT count(*) AS thr_e_projects FROM ml.projects WHERE name = 'thr_e';

------------------------------------------------------------------------
-- grid search
------------------------------------------------------------------------
SELECT model_id AS grid_model, algorithm, metrics -> 'search' AS rep
  FROM ml.train('grid', 'diabetes', 'progression', 'ridge', search => 'grid',
                search_params => '{"alpha": [0.01, 1, 100], "fit_intercept": [true, false]}',
                search_args => '{"cv": 4}', deploy => 'never') \gset
SELECT :'rep'::jsonb ->> 'strategy' AS strategy, :'rep'::jsonb ->> 'metric' AS metric,
       :'rep'::jsonb ->> 'folds' AS folds, :'rep'::jsonb ->> 'trials_planned' AS planned,
       :'rep'::jsonb ->> 'trials_run' AS run, :'rep'::jsonb ->> 'stopped_by_time' AS stopped;
SELECT (:'rep'::jsonb ->> 'run_id')::bigint AS grid_run \gset
-- every combination ran once, with 4 fold scores whose mean and std are stored
SELECT trial, params ->> 'alpha' AS alpha, params ->> 'fit_intercept' AS intercept,
       array_length(fold_scores, 1) AS folds, round(mean::numeric, 4) AS mean_r2,
       abs(mean - (SELECT avg(s) FROM unnest(fold_scores) s)) < 1e-12 AS mean_ok,
       abs(std - (SELECT stddev_samp(s) FROM unnest(fold_scores) s)) < 1e-12 AS std_ok,
       best, model_id = :grid_model AS refit_model
  FROM ml.trials WHERE run_id = :grid_run ORDER BY trial;
-- the best trial is the one with the highest mean, and the model has its hyperparameters
SELECT (SELECT trial FROM ml.trials WHERE run_id = :grid_run ORDER BY mean DESC, trial LIMIT 1) =
       (SELECT trial FROM ml.trials WHERE run_id = :grid_run AND best) AS best_is_highest,
       (SELECT params FROM ml.trials WHERE run_id = :grid_run AND best) =
       (SELECT hyperparams FROM ml.models WHERE id = :grid_model) AS model_has_best_params,
       (SELECT run_id FROM ml.models WHERE id = :grid_model) = :grid_run AS model_in_run;
-- the model's cv figures are those of its trial; the refit equals a plain ml.train with them
SELECT (SELECT (metrics #>> '{cv,mean}')::float8 FROM ml.models WHERE id = :grid_model) =
       (SELECT mean FROM ml.trials WHERE run_id = :grid_run AND best) AS cv_is_trials;
SELECT (t.metrics - 'cv') = (m.metrics - 'cv' - 'search') AS same_as_plain_train
  FROM ml.models m,
       ml.train('grid_check', 'diabetes', 'progression', 'ridge',
                hyperparams => (SELECT params FROM ml.trials WHERE run_id = :grid_run AND best),
                deploy => 'never') t
 WHERE m.id = :grid_model;
-- a named metric that is lower-is-better picks the lowest mean
SELECT model_id AS mae_model, metrics -> 'search' AS rep2
  FROM ml.train('grid_mae', 'diabetes', 'progression', 'lasso', search => 'grid',
                search_params => '{"alpha": [0.001, 0.1, 10]}',
                search_args => '{"metric": "mae", "cv": 3}', deploy => 'never') \gset
SELECT metric, trial, round(mean::numeric, 3) AS mean_mae, best
  FROM ml.trials WHERE run_id = (:'rep2'::jsonb ->> 'run_id')::bigint ORDER BY trial;
SELECT run.metric, run.folds, run.trials_planned, run.trials_run, run.model_id = :mae_model AS chosen
  FROM ml.runs run WHERE id = (:'rep2'::jsonb ->> 'run_id')::bigint;

------------------------------------------------------------------------
-- random search
------------------------------------------------------------------------
SELECT metrics -> 'search' AS rrep
  FROM ml.train('rand', 'breast_cancer', 'diagnosis', 'xgboost', search => 'random',
                search_params => '{"max_depth": {"low": 2, "high": 5}, "eta": {"low": 0.05, "high": 0.5, "log": true},
                                   "subsample": [0.7, 1.0]}',
                hyperparams => '{"n_estimators": 20}',
                search_args => '{"n_iter": 6, "cv": 3}', deploy => 'never') \gset
SELECT (:'rrep'::jsonb ->> 'run_id')::bigint AS rand_run \gset
-- every draw lies in its range; integers stay integers; the fixed key applies to every trial
SELECT count(*) AS trials,
       bool_and((params ->> 'max_depth')::int BETWEEN 2 AND 5 AND params ->> 'max_depth' !~ '\.') AS depth_ok,
       bool_and((params ->> 'eta')::float8 BETWEEN 0.05 AND 0.5) AS eta_ok,
       bool_and(params ->> 'subsample' IN ('0.7', '1.0', '1')) AS subsample_ok,
       bool_and((params ->> 'n_estimators')::int = 20) AS fixed_ok,
       count(DISTINCT params ->> 'eta') AS distinct_eta,
       count(*) FILTER (WHERE best) AS best
  FROM ml.trials WHERE run_id = :rand_run;
-- the same seed draws the same trials
SELECT metrics -> 'search' AS rrep2
  FROM ml.train('rand', 'breast_cancer', 'diagnosis', 'xgboost', search => 'random',
                search_params => '{"max_depth": {"low": 2, "high": 5}, "eta": {"low": 0.05, "high": 0.5, "log": true},
                                   "subsample": [0.7, 1.0]}',
                hyperparams => '{"n_estimators": 20}',
                search_args => '{"n_iter": 6, "cv": 3}', deploy => 'never') \gset
SELECT bool_and(a.params = b.params AND a.fold_scores = b.fold_scores) AS reproducible
  FROM ml.trials a JOIN ml.trials b ON a.trial = b.trial
 WHERE a.run_id = :rand_run AND b.run_id = (:'rrep2'::jsonb ->> 'run_id')::bigint;

-- the time budget: the first trial always finishes, then the search stops with it
SELECT algorithm, metrics #>> '{search,trials_run}' AS run, metrics #>> '{search,trials_planned}' AS planned,
       metrics #>> '{search,stopped_by_time}' AS stopped
  FROM ml.train('budget', 'breast_cancer', 'diagnosis', 'xgboost', search => 'grid',
                search_params => '{"max_depth": [2, 3, 4, 5, 6], "n_estimators": [50, 100, 150, 200, 250]}',
                search_args => '{"max_seconds": 0.001}', deploy => 'never');
SELECT max_seconds, trials_planned, trials_run, stopped_by_time FROM ml.runs
 WHERE project_id = (SELECT id FROM ml.projects WHERE name = 'budget');

-- a trial that fails is a warning; the others go on
SELECT algorithm, metrics #>> '{search,trials_run}' AS run, metrics #>> '{search,trials_failed}' AS failed
  FROM ml.train('failing', 'iris', 'species', 'xgboost', search => 'grid',
                search_params => '{"objective": ["multi:softprob", "reg:gamma"], "n_estimators": [10]}',
                deploy => 'never');

------------------------------------------------------------------------
-- bad input; none leaves a row behind
------------------------------------------------------------------------
SELECT count(*) AS runs_before FROM ml.runs \gset
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'ridge', search => 'bayes', search_params => '{"alpha": [1]}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'ridge', search_params => '{"alpha": [1]}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'ridge', search_args => '{"cv": 3}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'ridge', search => 'grid')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'ridge', search => 'grid', search_params => '{"alpha": []}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'ridge', search => 'grid', search_params => '{"alpah": [1]}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'ridge', search => 'grid', search_params => '{"cv": [3, 5]}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'ridge', search => 'grid', search_params => '{"alpha": [1, -1]}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'ridge', search => 'grid', search_params => '{"alpha": 1}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'ridge', search => 'grid', search_params => '{"alpha": {"low": 0.1, "high": 10}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'ridge', search => 'random', search_params => '{"alpha": {"low": 10, "high": 0.1}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'ridge', search => 'random', search_params => '{"alpha": {"low": 0, "high": 10, "log": true}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'ridge', search => 'random', search_params => '{"alpha": {"low": 0.1}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'ridge', search => 'random', search_params => '{"fit_intercept": {"low": 0, "high": 1}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'xgboost', search => 'grid',
       search_params => '{"max_depth": [1,2,3,4,5,6,7,8,9,10], "n_estimators": [1,2,3,4,5,6,7,8,9,10], "eta": [0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1], "gamma": [0,1,2,3,4,5,6,7,8,9,10]}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'ridge', search => 'grid', search_params => '{"alpha": [1]}', search_args => '{"max_seconds": 0}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'ridge', search => 'grid', search_params => '{"alpha": [1]}', search_args => '{"max_seconds": -5}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'ridge', search => 'grid', search_params => '{"alpha": [1]}', search_args => '{"max_seconds": 1e12}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'ridge', search => 'grid', search_params => '{"alpha": [1]}', search_args => '{"n_iter": 5}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'ridge', search => 'grid', search_params => '{"alpha": [1]}', search_args => '{"budget": 5}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e', 'diabetes', 'progression', 'ridge', search => 'grid', search_params => '{"alpha": [1]}', search_args => '{"metric": "f1"}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e2', 'iris', 'species', 'logistic', search => 'grid', search_params => '{"C": [1]}', search_args => '{"metric": "roc_auc"}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e2', 'iris', 'species', 'logistic', search => 'grid', search_params => '{"C": [1]}', search_args => '{"cv": 60}')$$);
SELECT expect_error($$SELECT * FROM ml.train('s_e3', 'SELECT sepal_length, sepal_width FROM iris', NULL, 'kmeans', search => 'grid', search_params => '{"k": [2, 3]}')$$);
SELECT count(*) - :runs_before AS new_runs, (SELECT count(*) FROM ml.projects WHERE name LIKE 's\_e%') AS s_e_projects FROM ml.runs;
