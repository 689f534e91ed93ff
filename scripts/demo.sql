-- scripts/demo.sql: a short tour of pgmaker, run by scripts/demo.sh
-- (`make demo`) after test/data/load.sql has loaded the sample data sets.
-- psql echoes each statement before its result.

\set ON_ERROR_STOP 1
\set QUIET on
\pset null '(null)'
\pset columns 120
\x auto
\set QUIET off

\echo
\echo '== Install the extension'
CREATE EXTENSION pgmaker;

\echo
\echo '== Fetch a data set from a URL into a new table, its column types inferred (a file:// URL: superusers only)'
SELECT ml.load(:'load_url', 'weather_loaded') AS rows_loaded;
SELECT column_name, data_type FROM information_schema.columns
 WHERE table_name = 'weather_loaded' ORDER BY ordinal_position;

\echo
\echo '== Profile a table before training on it'
SELECT column_name, kind, count, nulls, "distinct", round(mean::numeric, 2) AS mean, warnings
  FROM ml.profile('cars');

\echo
\echo '== Train models: regression, classification, a ridge variant, mixed column types'
SELECT * FROM ml.train('diabetes', 'diabetes', 'progression');
SELECT * FROM ml.train('cancer', 'SELECT * FROM breast_cancer', 'diagnosis', 'logistic');
SELECT * FROM ml.train('diabetes', 'diabetes', 'progression', 'ridge', hyperparams => '{"alpha": 1.0}');
SELECT * FROM ml.train('mpg', 'cars', 'miles_per_gallon', preprocess => '{"name": {"exclude": true}}');

\echo
\echo '== Gradient-boosted trees: deployed only if they beat the live model on the same hold-out rows'
SELECT project, model_id, algorithm, round((metrics ->> 'r2')::numeric, 4) AS r2, deployed
  FROM ml.train('mpg', 'cars', 'miles_per_gallon', 'xgboost',
                preprocess => '{"name": {"exclude": true}, "year": {"parts": ["year"]}}');
SELECT project, model_id, algorithm, round((metrics ->> 'f1')::numeric, 4) AS f1, deployed
  FROM ml.train('cancer', 'breast_cancer', 'diagnosis', 'xgboost');

\echo
\echo '== Predict with the deployed models'
SELECT ml.predict_label('cancer', b) AS predicted,
       b.diagnosis AS actual,
       ml.predict_proba('cancer', b) AS proba
  FROM breast_cancer b
 LIMIT 5;
SELECT round(ml.predict('diabetes', d)::numeric, 1) AS predicted,
       d.progression
  FROM diabetes d
 LIMIT 5;

\echo
\echo '== Why this prediction: contributions that add up to the model output'
SELECT feature, value, round(contribution::numeric, 3) AS contribution
  FROM ml.explain('mpg', (SELECT c FROM cars c WHERE miles_per_gallon IS NOT NULL LIMIT 1))
 ORDER BY abs(contribution) DESC;

\echo
\echo '== Batch prediction in a background worker: every row into a table, in checkpointed chunks'
CREATE TABLE patients AS SELECT row_number() OVER () AS patient_id, * FROM breast_cancer;
ALTER TABLE patients ADD PRIMARY KEY (patient_id);
SELECT ml.batch_predict('cancer', 'patients', 'cancer_scores', 'patient_id', '{"chunk_rows": 200}') AS job \gset
SELECT kind, project, status, rows_done, rows_total, progress FROM ml.job_wait(:job, '60 seconds');
SELECT label, count(*) AS rows FROM cancer_scores GROUP BY label ORDER BY label;

\echo
\echo '== Monitoring: the baseline of the live model, then new data whose BMI and age moved'
SELECT feature, kind, count, round(mean::numeric, 2) AS mean, round(std::numeric, 2) AS std, min, max
  FROM ml.baseline('diabetes') ORDER BY feature;
SELECT feature, "check", round(value::numeric, 4) AS value, threshold, violated
  FROM ml.monitor('diabetes', 'SELECT age + 15 AS age, sex, bmi * 1.3 AS bmi, bp, s1, s2, s3, s4, s5, s6 FROM diabetes')
 WHERE violated OR feature = '*'
 ORDER BY feature, "check";
SELECT id, rows, checks, violations FROM ml.monitor_runs ORDER BY id DESC LIMIT 1;

\echo
\echo '== Catalog views'
SELECT * FROM ml.overview;
SELECT * FROM ml.leaderboard;
SELECT * FROM ml.deployments;
