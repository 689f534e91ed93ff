-- sql/export.sql: XGBoost models out of pgmaker (ml.export_model, XGBoost's
-- JSON model) and into it (ml.import_model), and the errors of both.

-- model ids in this suite start at a fixed value, whatever ran before
SELECT setval('ml.models_id_seq', 30000, false);

SET client_min_messages = warning;
SELECT model_id AS dia FROM ml.train('exp_dia', 'diabetes', 'progression', 'xgboost',
                                     hyperparams => '{"n_estimators": 30}') \gset
SELECT model_id AS cancer FROM ml.train('exp_cancer', 'breast_cancer', 'diagnosis', 'xgboost',
                                        hyperparams => '{"n_estimators": 30}') \gset
SELECT model_id AS iris FROM ml.train('exp_iris', 'iris', 'species', 'xgboost',
                                      hyperparams => '{"n_estimators": 20}') \gset
SELECT model_id AS forest FROM ml.train('exp_forest', 'iris', 'species', 'random_forest',
                                        hyperparams => '{"n_estimators": 10}') \gset
SELECT model_id AS lin FROM ml.train('exp_lin', 'diabetes', 'progression', 'linear') \gset
RESET client_min_messages;

-- the export is XGBoost's JSON model: a learner with its gradient booster
SELECT j #>> '{learner,gradient_booster,name}' AS booster,
       jsonb_array_length(j #> '{learner,gradient_booster,model,trees}') AS trees,
       j #>> '{learner,objective,name}' AS objective,
       j #>> '{learner,learner_model_param,num_feature}' AS num_feature
  FROM (SELECT convert_from(ml.export_model(:dia), 'UTF8')::jsonb AS j) e;
SELECT j #>> '{learner,objective,name}' AS objective,
       j #>> '{learner,learner_model_param,num_class}' AS num_class,
       jsonb_array_length(j #> '{learner,gradient_booster,model,trees}') AS trees
  FROM (SELECT convert_from(ml.export_model(:iris), 'UTF8')::jsonb AS j) e;
-- a random forest is one round of parallel trees
SELECT j #>> '{learner,gradient_booster,model,gbtree_model_param,num_parallel_tree}' AS parallel_trees,
       jsonb_array_length(j #> '{learner,gradient_booster,model,trees}') AS trees
  FROM (SELECT convert_from(ml.export_model(:forest), 'UTF8')::jsonb AS j) e;

-- regression: imported under the same column names, deployed, it predicts
-- what the original does on every row
SELECT ml.import_model('imp_dia', 'xgboost_json', ml.export_model(:dia),
                       '["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]') AS imp_dia \gset
SELECT * FROM ml.deploy('imp_dia', :imp_dia);
SELECT count(*) AS rows, max(abs(ml.predict('exp_dia', d) - ml.predict('imp_dia', d))) <= 1e-6 AS same_predictions
  FROM diabetes d;
-- what the catalog holds: no hold-out rows, no metrics, the identity pipeline
SELECT m.algorithm, m.hyperparams, m.preprocess, m.metrics, m.train_metrics, m.baseline,
       m.n_train, m.n_test, p.task, p.target
  FROM ml.models m JOIN ml.projects p ON p.id = m.project_id WHERE m.id = :imp_dia;
SELECT position, feature, "column", kind, impute, fill, scale, center, scale_by
  FROM ml.features('imp_dia') WHERE position <= 3;
SELECT info ->> 'algorithm' AS algorithm, info ->> 'rounds' AS rounds,
       info -> 'features' ->> 2 AS third_feature,
       (info -> 'importance' ->> 'bmi')::float8 > 0 AS bmi_matters
  FROM ml.model_info(:imp_dia) info;
-- NULLs reach XGBoost as missing values, as in the original
SELECT ml.predict('exp_dia', '{"age": 50, "sex": 1, "bmi": null, "bp": 90, "s1": 190, "s2": 110, "s3": 50, "s4": 4, "s5": 4.6, "s6": 90}'::jsonb)
     = ml.predict('imp_dia', '{"age": 50, "sex": 1, "bmi": null, "bp": 90, "s1": 190, "s2": 110, "s3": 50, "s4": 4, "s5": 4.6, "s6": 90}'::jsonb)
       AS same_with_null;
-- explanations work on the imported model: contributions and bias sum to the prediction
SELECT max(abs(e.total - ml.predict('imp_dia', d))) < 1e-3 AS explained
  FROM diabetes d, LATERAL (SELECT sum(contribution) AS total FROM ml.explain('imp_dia', d)) e;
-- the export of the imported model is the same model again
SELECT convert_from(ml.export_model(:imp_dia), 'UTF8')::jsonb #> '{learner,gradient_booster,model,trees}'
     = convert_from(ml.export_model(:dia), 'UTF8')::jsonb #> '{learner,gradient_booster,model,trees}' AS same_trees;

-- UBJSON: the booster inside pgmaker's blob is XGBoost's UBJSON model
SELECT ml.import_model('imp_dia_ubj', 'xgboost_ubj',
                       substring(model FROM position('\x7b4c00000000000000076c6561726e6572'::bytea IN model)),
                       '["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]') AS imp_ubj
  FROM ml.models WHERE id = :dia \gset
SELECT max(abs(ml.predict(:dia::bigint, d) - ml.predict(:imp_ubj::bigint, d))) <= 1e-6 AS same_predictions
  FROM diabetes d;
-- a JSON document may have whitespace between its tokens
SELECT ml.import_model('imp_dia_spaced', 'xgboost_json',
                       convert_to(E'\n ' || replace(replace(replace(replace(convert_from(ml.export_model(:dia), 'UTF8'),
                                                                             ',', E',\n  '), '[', E'[\n '), ']', E'\n]'), '":', '" : '),
                                  'UTF8'),
                       '["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]') AS imp_pretty \gset
SELECT max(abs(ml.predict(:dia::bigint, d) - ml.predict(:imp_pretty::bigint, d))) <= 1e-6 AS same_predictions
  FROM diabetes d;

-- binary classification, with the labels in the model's class order and the target
SELECT ml.import_model('imp_cancer', 'xgboost_json', ml.export_model(:cancer),
                       jsonb_build_object('features', (SELECT jsonb_agg(attname ORDER BY attnum)
                                                         FROM pg_attribute
                                                        WHERE attrelid = 'breast_cancer'::regclass
                                                          AND attnum > 0 AND attname <> 'diagnosis'),
                                          'labels', '["benign", "malignant"]'::jsonb,
                                          'target', 'diagnosis')) AS imp_cancer \gset
SELECT deployed FROM ml.deploy('imp_cancer', :imp_cancer);
SELECT ml.labels('imp_cancer') AS labels, target FROM ml.projects WHERE name = 'imp_cancer';
SELECT count(*) AS rows,
       max(abs(a[1] - b[1]) + abs(a[2] - b[2])) <= 1e-6 AS same_probabilities,
       bool_and(ml.predict_label('exp_cancer', c) = ml.predict_label('imp_cancer', c)) AS same_labels
  FROM breast_cancer c,
       LATERAL (SELECT ml.predict_proba('exp_cancer', c) AS a, ml.predict_proba('imp_cancer', c) AS b) p;

-- multiclass
SELECT ml.import_model('imp_iris', 'xgboost_json', ml.export_model(:iris),
                       '{"features": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
                         "labels": ["setosa", "versicolor", "virginica"]}') AS imp_iris \gset
SELECT deployed FROM ml.deploy('imp_iris', :imp_iris);
SELECT count(*) AS rows,
       max((SELECT max(abs(x - y)) FROM unnest(a, b) u(x, y))) <= 1e-6 AS same_probabilities
  FROM iris i,
       LATERAL (SELECT ml.predict_proba('exp_iris', i) AS a, ml.predict_proba('imp_iris', i) AS b) p;
-- without labels, they are "0", "1", ... and ml.predict returns them
SELECT ml.import_model('imp_iris_numbered', 'xgboost_json', ml.export_model(:iris),
                       '["sepal_length", "sepal_width", "petal_length", "petal_width"]') AS numbered \gset
SELECT ml.labels(:numbered::bigint) AS labels,
       ml.predict(:numbered::bigint, '{"sepal_length": 6.5, "sepal_width": 3, "petal_length": 5.5, "petal_width": 2}'::jsonb) AS predicted,
       ml.predict_label('exp_iris', '{"sepal_length": 6.5, "sepal_width": 3, "petal_length": 5.5, "petal_width": 2}'::jsonb) AS original;
-- a random forest imports as an xgboost model
SELECT ml.import_model('imp_forest', 'xgboost_json', ml.export_model(:forest),
                       '{"features": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
                         "labels": ["setosa", "versicolor", "virginica"]}') AS imp_forest \gset
SELECT algorithm FROM ml.models WHERE id = :imp_forest;
SELECT max((SELECT max(abs(x - y)) FROM unnest(ml.predict_proba(:forest::bigint, i), ml.predict_proba(:imp_forest::bigint, i)) u(x, y))) <= 1e-6
       AS same_probabilities
  FROM iris i;
-- a second import into a project with models: same task, same labels
SELECT ml.import_model('imp_cancer', 'xgboost_json', ml.export_model(:cancer),
                       jsonb_build_object('features', (SELECT jsonb_agg(attname ORDER BY attnum)
                                                         FROM pg_attribute
                                                        WHERE attrelid = 'breast_cancer'::regclass
                                                          AND attnum > 0 AND attname <> 'diagnosis'),
                                          'labels', '["benign", "malignant"]'::jsonb)) > :imp_cancer AS second_import;
-- imported models rank after models with hold-out metrics
SELECT model_id, evaluated_on, live FROM ml.leaderboard WHERE project = 'imp_cancer' ORDER BY rank, model_id;
-- the input of array columns: elements named "x[1]", "x[2]", ...
CREATE TABLE exp_vectors AS SELECT ARRAY[age, sex, bmi, bp, s1, s2, s3, s4, s5, s6] AS x FROM diabetes;
SELECT ml.import_model('imp_vec', 'xgboost_json', ml.export_model(:dia),
                       '["x[1]", "x[2]", "x[3]", "x[4]", "x[5]", "x[6]", "x[7]", "x[8]", "x[9]", "x[10]"]') AS imp_vec \gset
SELECT max(abs(ml.predict(:imp_vec::bigint, v) - ml.predict(:dia::bigint, x))) <= 1e-6 AS same_predictions
  FROM exp_vectors v;

-- errors
-- export: only XGBoost models, and the model must exist
SELECT mask_ids(expect_error($$SELECT ml.export_model($$ || :lin || $$)$$));
SELECT expect_error($$SELECT ml.export_model(999999)$$);
-- unknown format
SELECT expect_error($$SELECT ml.import_model('imp_err', 'onnx', ml.export_model($$ || :dia || $$), '["a"]')$$);
-- data that is no XGBoost model, or not in the format named
SELECT expect_error($$SELECT ml.import_model('imp_err', 'xgboost_json', '\x00010203'::bytea, '["a"]')$$);
SELECT expect_error($$SELECT ml.import_model('imp_err', 'xgboost_json', convert_to('{"learner": {}}', 'UTF8'), '["a"]')$$);
SELECT expect_error($$SELECT ml.import_model('imp_err', 'xgboost_ubj', ml.export_model($$ || :dia || $$), '["a"]')$$);
SELECT expect_error($$SELECT ml.import_model('imp_err', 'xgboost_json', substring(model FROM position('\x7b4c00000000000000076c6561726e6572'::bytea IN model)), '["a"]') FROM ml.models WHERE id = $$ || :dia);
SELECT expect_error($$SELECT ml.import_model('imp_err', 'xgboost_ubj', substring(model FROM position('\x7b4c00000000000000076c6561726e6572'::bytea IN model) FOR 500), '["a"]') FROM ml.models WHERE id = $$ || :dia);
-- documents that would make XGBoost read out of bounds are refused before it sees them
CREATE FUNCTION exp_doctored(path text[], value jsonb) RETURNS bytea LANGUAGE sql AS $$
    SELECT convert_to(jsonb_set(convert_from(ml.export_model(30000), 'UTF8')::jsonb, path, value)::text, 'UTF8')
$$;
SELECT expect_error_detail($$SELECT ml.import_model('imp_err', 'xgboost_json', exp_doctored('{learner,gradient_booster,model,trees,0,left_children,0}', '1000'),
                                                    '["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]')$$);
SELECT expect_error_detail($$SELECT ml.import_model('imp_err', 'xgboost_json', exp_doctored('{learner,gradient_booster,model,trees,0,split_indices,0}', '10'),
                                                    '["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]')$$);
SELECT expect_error_detail($$SELECT ml.import_model('imp_err', 'xgboost_json', exp_doctored('{learner,gradient_booster,model,trees,1,id}', '0'),
                                                    '["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]')$$);
SELECT expect_error_detail($$SELECT ml.import_model('imp_err', 'xgboost_json', exp_doctored('{learner,gradient_booster,model,tree_info}', '[0]'),
                                                    '["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]')$$);
-- XGBoost itself refuses the document
SELECT expect_error($$SELECT ml.import_model('imp_err', 'xgboost_json', exp_doctored('{learner,objective,name}', '"reg:nonsense"'),
                                             '["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]')$$);
-- valid models that pgmaker cannot use
SELECT expect_error($$SELECT ml.import_model('imp_err', 'xgboost_json', exp_doctored('{learner,objective,name}', '"binary:hinge"'),
                                             '["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]')$$);
SELECT expect_error($$SELECT ml.import_model('imp_err', 'xgboost_json', exp_doctored('{learner,gradient_booster,name}', '"gblinear"'),
                                             '["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]')$$);
SELECT expect_error($$SELECT ml.import_model('imp_err', 'xgboost_json', exp_doctored('{learner,gradient_booster,model,trees,0,split_type,0}', '1'),
                                             '["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]')$$);
-- features must be an array of strings, or an object with them
SELECT expect_error($$SELECT ml.import_model('imp_err', 'xgboost_json', ml.export_model($$ || :dia || $$), '{"columns": ["age"]}')$$);
SELECT expect_error_detail($$SELECT ml.import_model('imp_err', 'xgboost_json', ml.export_model($$ || :dia || $$), '[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]')$$);
SELECT expect_error_detail($$SELECT ml.import_model('imp_err', 'xgboost_json', ml.export_model($$ || :dia || $$), '"age"')$$);
SELECT expect_error($$SELECT ml.import_model('imp_err', 'xgboost_json', ml.export_model($$ || :dia || $$), '[]')$$);
SELECT expect_error($$SELECT ml.import_model('imp_err', 'xgboost_json', ml.export_model($$ || :dia || $$), '["a", "b", "c", "d", "e", "f", "g", "h", "i", "a"]')$$);
SELECT expect_error($$SELECT ml.import_model('imp_err', 'xgboost_json', ml.export_model($$ || :dia || $$), '["x[2]", "b", "c", "d", "e", "f", "g", "h", "i", "j"]')$$);
SELECT expect_error($$SELECT ml.import_model('imp_err', 'xgboost_json', ml.export_model($$ || :dia || $$), NULL)$$);
-- one column per model feature
SELECT expect_error($$SELECT ml.import_model('imp_err', 'xgboost_json', ml.export_model($$ || :dia || $$), '["age", "sex", "bmi"]')$$);
-- names the model stores must be the ones given
SELECT expect_error_detail($$SELECT ml.import_model('imp_err', 'xgboost_json',
                                                    exp_doctored('{learner,feature_names}', '["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]'),
                                                    '["sex", "age", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]')$$);
-- labels: for classification, one per class, and the project's
SELECT expect_error($$SELECT ml.import_model('imp_err', 'xgboost_json', ml.export_model($$ || :dia || $$),
                                             '{"features": ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"], "labels": ["a", "b"]}')$$);
SELECT expect_error($$SELECT ml.import_model('imp_err', 'xgboost_json', ml.export_model($$ || :iris || $$),
                                             '{"features": ["sepal_length", "sepal_width", "petal_length", "petal_width"], "labels": ["a", "b"]}')$$);
SELECT expect_error_detail($$SELECT ml.import_model('imp_iris', 'xgboost_json', ml.export_model($$ || :iris || $$),
                                                    '["sepal_length", "sepal_width", "petal_length", "petal_width"]')$$);
-- a project whose task differs, or whose target differs; a target that is a feature
SELECT expect_error($$SELECT ml.import_model('exp_cancer', 'xgboost_json', ml.export_model($$ || :dia || $$),
                                             '["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]')$$);
SELECT expect_error($$SELECT ml.import_model('exp_dia', 'xgboost_json', ml.export_model($$ || :dia || $$),
                                             '{"features": ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"], "target": "y"}')$$);
SELECT expect_error($$SELECT ml.import_model('imp_err', 'xgboost_json', ml.export_model($$ || :dia || $$),
                                             '{"features": ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"], "target": "bmi"}')$$);
-- exporting needs the train level, as importing into a project does
CREATE ROLE regress_ml_exporter;
GRANT ml_developer TO regress_ml_exporter;
GRANT SELECT ON diabetes TO regress_ml_exporter;
SET ROLE regress_ml_exporter;
SELECT expect_error($$SELECT ml.export_model($$ || :dia || $$)$$);
RESET ROLE;
SELECT ml.grant('exp_dia', 'regress_ml_exporter', 'predict');
SET ROLE regress_ml_exporter;
SELECT expect_error($$SELECT ml.export_model($$ || :dia || $$)$$);
SELECT expect_error($$SELECT ml.import_model('exp_dia', 'xgboost_json', '{}'::bytea,
                                             '["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]')$$);
RESET ROLE;
SELECT ml.grant('exp_dia', 'regress_ml_exporter', 'train');
SET ROLE regress_ml_exporter;
SET client_min_messages = warning;
SELECT ml.import_model('exp_dia', 'xgboost_json', ml.export_model(:dia),
                       '["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]') > :dia AS imported_by_grantee;
RESET client_min_messages;
RESET ROLE;
SELECT ml.revoke('exp_dia', 'regress_ml_exporter');
-- a failed import writes nothing
SELECT count(*) AS imp_err_projects FROM ml.projects WHERE name = 'imp_err';

DROP TABLE exp_vectors;
DROP FUNCTION exp_doctored(text[], jsonb);
REVOKE SELECT ON diabetes FROM regress_ml_exporter;
DROP ROLE regress_ml_exporter;
