-- sql/telemetry.sql: per-iteration training telemetry (ml.training_log,
-- ml.training_info).

-- model ids in this suite start at a fixed value, whatever ran before
SELECT setval('ml.models_id_seq', 50000, false);

-- logistic: one row per L-BFGS iteration; the objective never rises (the
-- line search only accepts decreases) and the last gradient norm is
-- within tol when the fit converged
SELECT model_id AS lg FROM ml.train('t_logistic', 'breast_cancer', 'diagnosis', 'logistic') \gset
SELECT count(*) = (ml.model_info(:lg) ->> 'iterations')::int AS one_row_per_iteration,
       bool_and(train_loss IS NOT NULL AND gradient_norm IS NOT NULL AND validation_loss IS NULL) AS columns_ok,
       min(iteration) = 1 AS starts_at_one
  FROM ml.training_info(:lg);
SELECT bool_and(train_loss <= prev) AS loss_never_rises
  FROM (SELECT train_loss, lag(train_loss) OVER (ORDER BY iteration) AS prev FROM ml.training_info(:lg)) q
 WHERE prev IS NOT NULL;
SELECT gradient_norm <= 1e-4 AS last_gradient_within_tol
  FROM ml.training_info(:lg) ORDER BY iteration DESC LIMIT 1;
SELECT bool_and(elapsed_seconds >= 0) AND bool_and(elapsed_seconds >= prev) AS time_moves_forward
  FROM (SELECT elapsed_seconds, coalesce(lag(elapsed_seconds) OVER (ORDER BY iteration), 0) AS prev
          FROM ml.training_info(:lg)) q;

-- lasso: one row per coordinate-descent sweep, with the relative change
SELECT model_id AS la FROM ml.train('t_lasso', 'diabetes', 'progression', 'lasso', hyperparams => '{"alpha": 0.5}') \gset
SELECT count(*) = (ml.model_info(:la) ->> 'iterations')::int AS one_row_per_sweep,
       bool_and(change IS NOT NULL AND train_loss IS NOT NULL) AS columns_ok
  FROM ml.training_info(:la);
SELECT change < 1e-4 AS last_change_small FROM ml.training_info(:la) ORDER BY iteration DESC LIMIT 1;

-- xgboost: one row per boosting round, with the validation loss when
-- early stopping holds rows out; the training loss falls
SELECT model_id AS xg FROM ml.train('t_xgb', 'diabetes', 'progression', 'xgboost',
       hyperparams => '{"n_estimators": 300, "early_stopping_rounds": 5}') \gset
SELECT count(*) >= (ml.model_info(:xg) ->> 'rounds')::int AS a_row_per_round_run,
       bool_and(validation_loss IS NOT NULL) AS validation_ok,
       (array_agg(train_loss ORDER BY iteration))[1] > (array_agg(train_loss ORDER BY iteration DESC))[1] AS train_loss_falls
  FROM ml.training_info(:xg);
SELECT model_id AS rf FROM ml.train('t_rf', 'iris', 'species', 'random_forest') \gset
SELECT count(*) AS forest_rounds FROM ml.training_info(:rf);

-- algorithms that do not iterate log nothing
SELECT model_id AS li FROM ml.train('t_linear', 'diabetes', 'progression') \gset
SELECT count(*) AS linear_rows FROM ml.training_info(:li);

-- the log goes with its model
SELECT ml.drop_project('t_lasso');
SELECT count(*) AS orphan_rows FROM ml.training_log WHERE model_id = :la;

SELECT expect_error($$SELECT * FROM ml.training_info(999999999)$$);
