-- sql/explain.sql: ml.explain splits a prediction into per-column
-- contributions and a bias that add up to the model's raw output.

-- model ids in this suite start at a fixed value, whatever ran before
SELECT setval('ml.models_id_seq', 20000, false);

-- linear: coefficient x transformed value; the sum is the prediction
SELECT model_id AS lin FROM ml.train('e_lin', 'diabetes', 'progression', test_size => 0) \gset
SELECT feature, value, round(contribution::numeric, 6) AS contribution
  FROM ml.explain('e_lin', '{"age": 50, "sex": 1, "bmi": 25, "bp": 90, "s1": 190, "s2": 110, "s3": 50, "s4": 4, "s5": 4.6, "s6": 90}'::jsonb)
 WHERE feature IN ('bmi', 's5', '<bias>') ORDER BY feature;
SELECT max(abs(e.total - ml.predict('e_lin', d))) < 1e-9 AS sums_to_prediction
  FROM diabetes d, LATERAL (SELECT sum(contribution) AS total FROM ml.explain('e_lin', d)) e;
-- the bias is the intercept, bmi's contribution its coefficient times bmi
SELECT abs(c.contribution - (i -> 'coefficients' ->> 'bmi')::float8 * 25) < 1e-9 AS bmi_ok,
       abs(b.contribution - (i ->> 'intercept')::float8) < 1e-12 AS bias_ok
  FROM ml.model_info(:lin) i,
       ml.explain('e_lin', ARRAY[50, 1, 25, 90, 190, 110, 50, 4, 4.6, 90]::float8[]) c,
       ml.explain('e_lin', ARRAY[50, 1, 25, 90, 190, 110, 50, 4, 4.6, 90]::float8[]) b
 WHERE c.feature = 'bmi' AND b.feature = '<bias>';

-- lasso is of the linear family too
SELECT * FROM ml.train('e_lasso', 'diabetes', 'progression', 'lasso', hyperparams => '{"alpha": 0.5}') \gset
SELECT max(abs(e.total - ml.predict('e_lasso', d))) < 1e-9 AS lasso_sums_to_prediction
  FROM diabetes d, LATERAL (SELECT sum(contribution) AS total FROM ml.explain('e_lasso', d)) e;

-- one-hot parts are summed back to their column; NULL values show NULL
SELECT * FROM ml.train('e_cars', 'SELECT cylinders, horsepower, origin, miles_per_gallon FROM cars',
                       'miles_per_gallon', 'ridge', test_size => 0) \gset
SELECT feature, value, round(contribution::numeric, 6) IS NOT NULL AS has_contribution
  FROM ml.explain('e_cars', '{"cylinders": 4, "horsepower": null, "origin": "Japan"}'::jsonb);
SELECT abs(sum(contribution) - ml.predict('e_cars', '{"cylinders": 4, "horsepower": null, "origin": "Japan"}'::jsonb)) < 1e-9 AS sums
  FROM ml.explain('e_cars', '{"cylinders": 4, "horsepower": null, "origin": "Japan"}'::jsonb);

-- binary logistic: the margin of the positive class, log(p / (1 - p))
SELECT * FROM ml.train('e_cancer', 'breast_cancer', 'diagnosis', 'logistic') \gset
-- (rows whose probabilities are not both representable are skipped)
SELECT max(abs(e.total - ln(p[2] / p[1]))) < 1e-9 AS sums_to_log_odds, min(e.label) AS label, count(*) > 500 AS most_rows
  FROM breast_cancer b,
       LATERAL (SELECT ml.predict_proba('e_cancer', b) AS p) q,
       LATERAL (SELECT sum(contribution) AS total, max(value) FILTER (WHERE feature = '<bias>') AS label
                  FROM ml.explain('e_cancer', b)) e
 WHERE p[1] > 1e-12 AND p[2] > 1e-12;

-- multinomial logistic: the predicted class's logit
SELECT model_id AS iris FROM ml.train('e_iris', 'iris', 'species') \gset
SELECT bool_and(e.label = ml.predict_label('e_iris', i)) AS bias_row_names_the_class,
       max(abs(e.total - z.logit)) < 1e-9 AS sums_to_logit
  FROM iris i,
       LATERAL (SELECT sum(contribution) AS total, max(value) FILTER (WHERE feature = '<bias>') AS label
                  FROM ml.explain('e_iris', i)) e,
       LATERAL (SELECT (m -> 'intercept' ->> e.label)::float8
                     + sum((m -> 'coefficients' -> e.label ->> f.feature)::float8
                           * ((to_jsonb(i) ->> f."column")::float8 - f.center) / f.scale_by) AS logit
                  FROM ml.model_info(:iris) m, ml.features('e_iris') f GROUP BY m) z;

-- xgboost: SHAP values from XGBoost's pred_contribs; the sum is the
-- margin.  XGBoost computes both in float32, so they agree to float32
-- precision accumulated over the trees: 1e-5 relative (measured: 1.5e-6
-- on diabetes, 3e-6 absolute on breast_cancer's log-odds)
SELECT * FROM ml.train('e_xgb', 'diabetes', 'progression', 'xgboost') \gset
SELECT max(abs(e.total - ml.predict('e_xgb', d)) / abs(ml.predict('e_xgb', d))) < 1e-5 AS sums_to_prediction,
       count(*)
  FROM diabetes d, LATERAL (SELECT sum(contribution) AS total FROM ml.explain('e_xgb', d)) e;
SELECT * FROM ml.train('e_xgb_cancer', 'breast_cancer', 'diagnosis', 'xgboost') \gset
SELECT max(abs(e.total - ln(p[2] / p[1])) / greatest(1, abs(e.total))) < 1e-5 AS sums_to_log_odds
  FROM breast_cancer b,
       LATERAL (SELECT ml.predict_proba('e_xgb_cancer', b) AS p) q,
       LATERAL (SELECT sum(contribution) AS total FROM ml.explain('e_xgb_cancer', b)) e
 WHERE p[1] > 1e-12 AND p[2] > 1e-12;
-- a multiclass random forest explains the predicted class
SELECT * FROM ml.train('e_rf', 'iris', 'species', 'random_forest') \gset
SELECT count(*) AS rows_per_explanation FROM ml.explain('e_rf', '{"sepal_length": 6, "sepal_width": 3, "petal_length": 4, "petal_width": 1.3}'::jsonb);

-- errors
SELECT expect_error($$SELECT * FROM ml.explain('nope', '{}'::jsonb)$$);
SELECT expect_error($$SELECT * FROM ml.explain('e_lin', '{"age": 1}'::jsonb)$$);
SELECT expect_error($$SELECT * FROM ml.explain('e_lin', ARRAY[1, 2]::float8[])$$);
