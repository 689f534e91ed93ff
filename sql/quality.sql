-- Ground truth and model quality: keyed predictions, outcomes recorded
-- later, the metrics per time bucket and the violations of thresholds.
SELECT setval('ml.models_id_seq', 150000, false);

CREATE TABLE q_cls AS SELECT g AS id, (g % 10)::float8 AS x, (g % 10) > 4 AS big FROM generate_series(1, 400) g;
SELECT model_id FROM ml.train('q_cls', 'SELECT x, big FROM q_cls', 'big', 'logistic');
CREATE TABLE q_reg AS SELECT g AS id, g::float8 AS x, 3 * g::float8 + 1 AS y FROM generate_series(1, 200) g;
SELECT model_id FROM ml.train('q_reg', 'SELECT x, y FROM q_reg', 'y', 'linear');

-- keyed predictions are logged with the model, the inputs and the label
SELECT ml.predict_logged('q_cls', id::text, q) AS prediction FROM (SELECT id, x FROM q_cls WHERE id IN (3, 7)) q ORDER BY id;
SELECT count(*) FROM (SELECT ml.predict_logged('q_cls', id::text, q) FROM (SELECT id, x FROM q_cls WHERE id <= 100) q) s;
SELECT key, model_id, inputs, prediction, label FROM ml.prediction_log WHERE project = 'q_cls' AND key IN ('3', '7') ORDER BY key;
SELECT count(*) FROM ml.prediction_log WHERE project = 'q_cls';

-- outcomes: right for ids 1..50, wrong for 51..100
SELECT count(*) FROM (SELECT ml.record_ground_truth('q_cls', id::text,
                             CASE WHEN id <= 50 THEN (x > 4)::text ELSE (NOT (x > 4))::text END)
                        FROM q_cls WHERE id <= 100) s;
SELECT n, metrics, violated, violations FROM ml.model_quality('q_cls', now() - interval '1 hour', '1 day');
-- a min threshold that the bucket breaks is a violation, and raises an alert
SELECT n, violated, violations FROM ml.model_quality('q_cls', now() - interval '1 hour', '1 day', '{"min": {"accuracy": 0.9, "f1": 0.4}}');
SELECT kind, severity, message, jsonb_array_length(details->'buckets') AS buckets
  FROM ml.alerts WHERE kind = 'model_quality';
-- corrections replace the recorded outcome
SELECT ml.record_ground_truth('q_cls', '60', 'true');
SELECT label FROM ml.ground_truth WHERE project = 'q_cls' AND key = '60';

-- regression: rmse, mae and r2 against the recorded values
SELECT count(*) FROM (SELECT ml.predict_logged('q_reg', id::text, q) FROM (SELECT id, x FROM q_reg) q) s;
INSERT INTO ml.ground_truth (project, key, label)
SELECT 'q_reg', id::text, (3 * x + 1 + CASE WHEN id % 2 = 0 THEN 2 ELSE -2 END)::text FROM q_reg;
SELECT n, round((metrics->>'rmse')::numeric, 6) AS rmse, round((metrics->>'mae')::numeric, 6) AS mae,
       round((metrics->>'r2')::numeric, 6) AS r2, violated
  FROM ml.model_quality('q_reg', now() - interval '1 hour', '1 day', '{"max": {"rmse": 2.5}}');
-- no logged predictions since: no rows, not an error
SELECT count(*) FROM ml.model_quality('q_reg', now() + interval '1 hour', '1 day');

-- bad input
SELECT ml.predict_logged('nope', 'k', q) FROM (SELECT x FROM q_reg LIMIT 1) q;
SELECT ml.predict_logged('q_reg', NULL, q) FROM (SELECT x FROM q_reg LIMIT 1) q;
SELECT ml.record_ground_truth('nope', 'k', '1');
SELECT ml.record_ground_truth('q_reg', 'k', NULL);
SELECT * FROM ml.model_quality('q_reg', now(), '0 days');
SELECT * FROM ml.model_quality('q_reg', now(), '1 day', '{"min": {"accuracy": 0.5}}');
SELECT * FROM ml.model_quality('q_reg', now(), '1 day', '{"above": {"rmse": 1}}');
SELECT * FROM ml.model_quality('q_reg', now(), '1 day', '{"max": {"rmse": "big"}}');
CREATE ROLE q_other;
GRANT ml_developer TO q_other;
GRANT SELECT ON q_reg TO q_other;
SET ROLE q_other;
SELECT count(*) FROM ml.prediction_log;
SELECT count(*) FROM ml.ground_truth;
INSERT INTO ml.ground_truth (project, key, label) VALUES ('q_reg', 'x', '1');
SELECT * FROM ml.model_quality('q_reg', now(), '1 day');
SELECT round(ml.predict_logged('q_reg', 'other-1', q)::numeric, 6) AS prediction FROM (SELECT x FROM q_reg WHERE id = 1) q;
SELECT count(*) FROM ml.prediction_log;
RESET ROLE;
SELECT count(*) FROM ml.prediction_log WHERE project = 'q_reg' AND logged_by = 'q_other'::regrole;
DELETE FROM ml.prediction_log WHERE logged_by = 'q_other'::regrole;
REVOKE SELECT ON q_reg FROM q_other;
DROP ROLE q_other;
