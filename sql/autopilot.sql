-- sql/autopilot.sql: algorithm => 'auto' and ml.autopilot.
SELECT setval('ml.models_id_seq', 100000, false);

-- The quality bar.  On each data set the autopilot is compared with every
-- algorithm of the task at its default hyperparameters, trained on the same
-- training rows and measured on the same hold-out rows (the split depends
-- on the seed only).  By construction the autopilot's choice has the best
-- cross-validated score of all its trials, the defaults included; on the
-- hold-out rows (142, 38, 45 and 111 of them) it must be within one row's
-- worth of the best default: 0.015 of f1, 0.01 of r2.
CREATE TABLE quality (data text, who text, holdout float8, cv_mean float8);
DO $$
DECLARE
    d record;
    a text;
    r record;
BEGIN
    FOR d IN SELECT * FROM (VALUES ('breast_cancer', 'diagnosis', 'f1', ARRAY['logistic', 'naive_bayes', 'linear_svm', 'random_forest', 'xgboost']),
                                   ('iris', 'species', 'f1', ARRAY['logistic', 'naive_bayes', 'linear_svm', 'random_forest', 'xgboost']),
                                   ('wine', 'cultivar', 'f1', ARRAY['logistic', 'naive_bayes', 'linear_svm', 'random_forest', 'xgboost']),
                                   ('diabetes', 'progression', 'r2', ARRAY['linear', 'ridge', 'lasso', 'elastic_net', 'random_forest', 'xgboost']))
                      AS v(data, target, metric, algorithms)
    LOOP
        FOREACH a IN ARRAY d.algorithms LOOP
            INSERT INTO quality
            SELECT d.data, a, (t.metrics ->> d.metric)::float8, NULL
              FROM ml.train('q_' || d.data || '_' || a, d.data, d.target, a, deploy => 'never') t;
        END LOOP;
        SELECT * INTO r FROM ml.autopilot('q_' || d.data, d.data, d.target, max_seconds => 600);
        INSERT INTO quality VALUES (d.data, 'autopilot', (r.metrics ->> d.metric)::float8,
                                    (r.report ->> 'run_id')::bigint);
    END LOOP;
END
$$;
SELECT q.data, a.who AS chosen_by, round(a.holdout::numeric, 4) AS autopilot,
       round(max(q.holdout)::numeric, 4) AS best_default,
       (array_agg(q.who ORDER BY q.holdout DESC, q.who))[1] AS best_default_algorithm,
       a.holdout >= max(q.holdout) - CASE WHEN q.data = 'diabetes' THEN 0.01 ELSE 0.015 END AS meets_bar
  FROM quality q
  JOIN (SELECT qa.data, m.algorithm AS who, qa.holdout
          FROM quality qa JOIN ml.runs r ON r.id = qa.cv_mean::bigint JOIN ml.models m ON m.id = r.model_id
         WHERE qa.who = 'autopilot') a ON a.data = q.data
 WHERE q.who <> 'autopilot'
 GROUP BY q.data, a.who, a.holdout
 ORDER BY q.data;
-- the chosen trial has the best cross-validated mean of its run, the
-- default trial of every candidate included
SELECT p.name, bool_and(t.mean <= b.mean) AS best_of_all_trials,
       count(*) FILTER (WHERE t.trial <= r.ncand) AS default_trials,
       count(DISTINCT t.algorithm) AS algorithms
  FROM ml.runs run
  JOIN ml.projects p ON p.id = run.project_id
  JOIN ml.trials t ON t.run_id = run.id
  JOIN ml.trials b ON b.run_id = run.id AND b.best
  CROSS JOIN LATERAL (SELECT jsonb_array_length(run.report -> 'candidates') AS ncand) r
 WHERE run.kind = 'autopilot' AND p.name LIKE 'q\_%'
 GROUP BY p.name ORDER BY p.name;
-- the default trials carry the defaults: the same as a plain ml.train's hyperparameters
SELECT bool_and(t.params = m.hyperparams) AS defaults_match
  FROM ml.trials t
  JOIN ml.runs run ON run.id = t.run_id
  JOIN ml.projects rp ON rp.id = run.project_id
  JOIN ml.projects p ON p.name = rp.name || '_' || t.algorithm
  JOIN ml.models m ON m.project_id = p.id
 WHERE run.kind = 'autopilot' AND rp.name LIKE 'q\_%'
   AND t.trial <= jsonb_array_length(run.report -> 'candidates');

-- the run's leaderboard: one refit model per candidate, the winner live
SELECT (report ->> 'run_id')::bigint AS bc_run FROM ml.autopilot('q_breast_cancer', 'breast_cancer', 'diagnosis', max_seconds => 600, deploy => 'never') \gset
SELECT l.algorithm, round(l.score::numeric, 4) AS holdout_f1, l.model_id = run.model_id AS chosen,
       l.n_train, l.n_test
  FROM ml.leaderboard l JOIN ml.runs run ON run.id = l.run_id
 WHERE l.run_id = :bc_run
 ORDER BY l.score DESC, l.algorithm;
-- the first run of the project was deployed (deploy auto), its winner is live
SELECT p.name, d.model_id = r.model_id AS winner_live
  FROM ml.projects p
  JOIN LATERAL (SELECT model_id FROM ml.deployments WHERE project_id = p.id ORDER BY id DESC LIMIT 1) d ON true
  JOIN LATERAL (SELECT model_id FROM ml.runs WHERE project_id = p.id ORDER BY id LIMIT 1) r ON true
 WHERE p.name IN ('q_breast_cancer', 'q_iris', 'q_wine', 'q_diabetes') ORDER BY p.name;
SELECT kind, strategy, metric, folds, max_seconds, trials_planned, trials_run, stopped_by_time,
       report ->> 'chosen' AS chosen, report -> 'data' AS data,
       (SELECT count(*) FROM ml.trials t WHERE t.run_id = run.id) AS trials,
       (SELECT string_agg(algorithm || ':' || n, ', ' ORDER BY algorithm)
          FROM (SELECT algorithm, count(*) n FROM ml.trials t WHERE t.run_id = run.id GROUP BY algorithm) x) AS per_algorithm
  FROM ml.runs run WHERE id = :bc_run;
SELECT report ->> 'why' AS why FROM ml.runs WHERE id = :bc_run;
-- the report ranks the candidates by their best cross-validated mean
SELECT bool_and(a.cv >= b.cv) AS ranked
  FROM (SELECT o, (c ->> 'cv_mean')::float8 AS cv FROM ml.runs, jsonb_array_elements(report -> 'candidates') WITH ORDINALITY e(c, o) WHERE id = :bc_run) a
  JOIN (SELECT o, (c ->> 'cv_mean')::float8 AS cv FROM ml.runs, jsonb_array_elements(report -> 'candidates') WITH ORDINALITY e(c, o) WHERE id = :bc_run) b
    ON b.o = a.o + 1;

-- ml.train with algorithm => 'auto' is the same run; search_args narrows it
SELECT algorithm, metrics #>> '{autopilot,trials_run}' AS trials,
       metrics #> '{autopilot,candidates}' @> '[{"algorithm": "ridge"}]' AS has_ridge,
       jsonb_array_length(metrics #> '{autopilot,candidates}') AS candidates
  FROM ml.train('auto_db', 'diabetes', 'progression', 'auto',
                search_args => '{"algorithms": ["linear", "ridge"], "n_iter": 3, "cv": 3}', deploy => 'never');
-- and the decision threshold is tuned for the winner
SELECT algorithm, metrics #>> '{decision_threshold,tuned_on}' AS tuned_on
  FROM ml.autopilot('auto_thr', 'breast_cancer', 'diagnosis', hyperparams => '{"threshold": "f1"}',
                    search_args => '{"algorithms": ["logistic"], "n_iter": 2}', deploy => 'never');

-- the budget: the first trial (here xgboost's 5 folds of 100 trees, well
-- over the millisecond) always finishes, then the run stops
SELECT algorithm, report ->> 'trials_run' AS run, report ->> 'trials_planned' AS planned,
       report ->> 'stopped_by_time' AS stopped
  FROM ml.autopilot('auto_budget', 'wine', 'cultivar', max_seconds => 0.001, deploy => 'never',
                    search_args => '{"algorithms": ["xgboost", "logistic"]}');

-- bad input
SELECT count(*) AS runs_before FROM ml.runs \gset
SELECT expect_error($$SELECT * FROM ml.autopilot('a_e', 'wine', 'cultivar', max_seconds => 0)$$);
SELECT expect_error($$SELECT * FROM ml.autopilot('a_e', 'wine', 'cultivar', max_seconds => -1)$$);
SELECT expect_error($$SELECT * FROM ml.autopilot('a_e', 'wine', 'cultivar', max_seconds => NULL)$$);
SELECT expect_error($$SELECT * FROM ml.autopilot('a_e', 'SELECT alcohol, ash FROM wine')$$);
SELECT expect_error($$SELECT * FROM ml.autopilot('a_e', 'breast_cancer', 'diagnosis', hyperparams => '{"threshold": 0.3}')$$);
SELECT expect_error($$SELECT * FROM ml.autopilot('a_e', 'wine', 'cultivar', hyperparams => '{"alpha": 1}')$$);
SELECT expect_error($$SELECT * FROM ml.autopilot('a_e', 'wine', 'cultivar', search_args => '{"algorithms": ["ridge"]}')$$);
SELECT expect_error($$SELECT * FROM ml.autopilot('a_e', 'wine', 'cultivar', search_args => '{"algorithms": ["logistic", "logistic"]}')$$);
SELECT expect_error($$SELECT * FROM ml.autopilot('a_e', 'wine', 'cultivar', search_args => '{"algorithms": ["deep_net"]}')$$);
SELECT expect_error($$SELECT * FROM ml.autopilot('a_e', 'wine', 'cultivar', search_args => '{"algorithms": []}')$$);
SELECT expect_error($$SELECT * FROM ml.autopilot('a_e', 'wine', 'cultivar', search_args => '{"metric": "rmse"}')$$);
SELECT expect_error($$SELECT * FROM ml.autopilot('a_e', 'wine', 'cultivar', gate => '{"min": {"r2": 0.5}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('a_e', 'wine', 'cultivar', 'auto', search => 'grid', search_params => '{"C": [1]}')$$);
SELECT count(*) - :runs_before AS new_runs, (SELECT count(*) FROM ml.projects WHERE name = 'a_e') AS a_e_projects FROM ml.runs;

-- the ensemble: the autopilot's extra candidate, a weighted average of the
-- candidates' best models on one standardised pipeline
SELECT model_id AS ens, algorithm, metrics AS ens_m
  FROM ml.train('ens_db', 'diabetes', 'progression', 'auto', deploy => 'never',
                search_args => '{"algorithms": ["lasso", "xgboost"], "n_iter": 2}') \gset
SELECT :'algorithm' AS chosen, hyperparams -> 'members' AS members,
       (SELECT sum((e ->> 'weight')::float8) FROM jsonb_array_elements(hyperparams -> 'members') e) AS weights
  FROM ml.models WHERE id = :ens;
SELECT trial, algorithm, best, round(mean::numeric, 4) AS cv_r2 FROM ml.trials
 WHERE run_id = (SELECT run_id FROM ml.models WHERE id = :ens) AND algorithm = 'ensemble';
-- stored, read back and used by ml.predict: the hold-out rows score as ml.train measured them
SELECT ml.split('diabetes', 'ens_train', 'ens_test');
SELECT abs((ml.evaluate(:ens, 'ens_test') ->> 'r2')::float8 - (:'ens_m'::jsonb ->> 'r2')::float8) < 1e-9 AS same_r2,
       (SELECT count(*) FROM ens_test t WHERE ml.predict(:ens, t) IS NULL) AS null_predictions;
SELECT jsonb_array_length(ml.model_info(:ens) -> 'members') AS described_members,
       (SELECT string_agg(e ->> 'algorithm', ', ') FROM jsonb_array_elements(ml.model_info(:ens) -> 'members') e) AS algorithms;
SELECT expect_error(format('SELECT * FROM ml.explain(%s, (SELECT t FROM ens_test t LIMIT 1))', :ens));
SELECT expect_error(format('SELECT ml.export_model(%s)', :ens));
SELECT expect_error($$SELECT * FROM ml.train('a_e', 'diabetes', 'progression', 'ensemble')$$);
