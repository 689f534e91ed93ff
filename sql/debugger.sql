-- Debugger rules on training telemetry: a healthy run fires nothing, a run
-- built to overfit fires overfit (and with action stop ends there, keeping
-- its best round), values built to explode fire exploding_tensor, a rare
-- class fires class_imbalance; the rules' settings are checked.
SELECT setval('ml.models_id_seq', 160000, false);
SELECT setseed(0.2);
CREATE TABLE dbg_small AS
SELECT g, random() AS x1, random() AS x2, random() AS x3, random() * 10 AS y FROM generate_series(1, 120) g;

-- healthy: boosting on diabetes
SELECT model_id FROM ml.train('dbg_ok', 'diabetes', 'progression', 'xgboost',
    hyperparams => '{"n_estimators": 30, "max_depth": 2, "rules": {"nan_or_inf": {}, "exploding_tensor": {},
                     "loss_not_decreasing": {}, "stalled_training": {}, "vanishing_gradient": {}}}');
SELECT rule, status, action, iteration, detail FROM ml.debug(160000);

-- deep trees on 90 noisy rows overfit; with action stop the training ends
-- at that iteration and keeps the best validation round
SELECT model_id FROM ml.train('dbg_over', 'SELECT x1, x2, x3, y FROM dbg_small', 'y', 'xgboost',
    hyperparams => '{"n_estimators": 200, "max_depth": 10, "early_stopping_rounds": 1000,
                     "rules": {"overfit": {"action": "stop"}, "overtraining": {"patience": 50}}}');
SELECT rule, status, action, iteration FROM ml.debug(160001);
SELECT count(*) AS iterations FROM ml.training_log WHERE model_id = 160001;
SELECT (ml.model_info(160001)->>'rounds')::int <= (SELECT max(iteration) FROM ml.training_log WHERE model_id = 160001)
       AS kept_at_most_the_rounds_run;
-- the same without stop runs all 200 rounds and only records
SELECT model_id FROM ml.train('dbg_over2', 'SELECT x1, x2, x3, y FROM dbg_small', 'y', 'xgboost',
    hyperparams => '{"n_estimators": 200, "max_depth": 10, "early_stopping_rounds": 1000, "rules": {"overfit": {}}}');
SELECT rule, status, action, iteration FROM ml.debug(160002);
SELECT count(*) AS iterations FROM ml.training_log WHERE model_id = 160002;

-- targets of 1e18: losses past the bound; the alert action raises an alert
CREATE TABLE dbg_big AS SELECT x1, x2, x3, y * 1e18 AS y FROM dbg_small;
SELECT model_id FROM ml.train('dbg_big', 'dbg_big', 'y', 'xgboost',
    hyperparams => '{"n_estimators": 5, "rules": {"exploding_tensor": {"action": "alert"}, "nan_or_inf": {}}}');
SELECT rule, status, action, iteration FROM ml.debug(160003);
SELECT kind, severity, message FROM ml.alerts WHERE kind = 'debugger';

-- a rare class; a logistic fit that a strict loss rule stops early
CREATE TABLE dbg_cls AS SELECT x1, x2, x1 > 0.95 AS rare FROM dbg_small;
SELECT model_id FROM ml.train('dbg_cls', 'dbg_cls', 'rare', 'logistic',
    hyperparams => '{"rules": {"class_imbalance": {}, "loss_not_decreasing": {"window": 2, "min_relative_change": 0.9, "action": "stop"}}}');
SELECT rule, status, action, iteration, detail FROM ml.debug(160004) ORDER BY rule;
SELECT count(*) AS iterations FROM ml.training_log WHERE model_id = 160004;

-- rules that do not apply are skipped, with the reason
SELECT model_id FROM ml.train('dbg_lin', 'SELECT x1, x2, x3, y FROM dbg_small', 'y', 'linear',
    hyperparams => '{"rules": {"overfit": {}, "feature_importance_overweight": {}, "class_imbalance": {}}}');
SELECT rule, status, detail FROM ml.debug(160005) ORDER BY rule;
-- one feature carrying the trees
CREATE TABLE dbg_one AS SELECT x1, x2, 10 * x1 AS y FROM dbg_small;
SELECT model_id FROM ml.train('dbg_one', 'dbg_one', 'y', 'xgboost',
    hyperparams => '{"n_estimators": 10, "rules": {"feature_importance_overweight": {"max_share": 0.9}}}');
SELECT rule, status FROM ml.debug(160006);
-- the rules are kept with the hyperparameters
SELECT hyperparams->'rules' FROM ml.models WHERE id = 160006;

-- bad settings
SELECT * FROM ml.train('dbg_bad', 'dbg_small', 'y', 'xgboost', hyperparams => '{"rules": {"bogus": {}}}');
SELECT * FROM ml.train('dbg_bad', 'dbg_small', 'y', 'xgboost', hyperparams => '{"rules": {"overfit": {"action": "panic"}}}');
SELECT * FROM ml.train('dbg_bad', 'dbg_small', 'y', 'xgboost', hyperparams => '{"rules": {"overfit": {"ratio": -1}}}');
SELECT * FROM ml.train('dbg_bad', 'dbg_small', 'y', 'xgboost', hyperparams => '{"rules": {"overfit": {"window": 3}}}');
SELECT * FROM ml.train('dbg_bad', 'dbg_small', 'y', 'xgboost', hyperparams => '{"rules": {"overfit": true}}');
SELECT * FROM ml.train('dbg_bad', 'dbg_small', 'y', 'xgboost', hyperparams => '{"rules": [1]}');
SELECT count(*) FROM ml.debug(NULL);
