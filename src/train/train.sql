-- src/train/train.sql
-- ml.train: train, measure, store and (maybe) deploy a model.

CREATE FUNCTION ml.train(
    project     text,
    source      text,
    target      text DEFAULT NULL,
    algorithm   text DEFAULT NULL,
    task        text DEFAULT NULL,
    hyperparams jsonb DEFAULT '{}',
    preprocess  jsonb DEFAULT '{}',
    test_size   float8 DEFAULT 0.25,
    deploy      text DEFAULT 'auto',
    gate        jsonb DEFAULT '{}',
    search      text DEFAULT NULL,
    search_params jsonb DEFAULT NULL,
    search_args jsonb DEFAULT NULL)
RETURNS TABLE (project text, model_id bigint, algorithm text, metrics jsonb, deployed boolean)
AS 'MODULE_PATHNAME', 'ml_train'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.train(text, text, text, text, text, jsonb, jsonb, float8, text, jsonb, text, jsonb, jsonb) IS
'Trains a model of a project on a table, view or query (with a grid or random hyperparameter search, or algorithm => ''auto'' for the autopilot); stores it with its hold-out metrics and deploys it when it passes the gate and beats the live model.';

CREATE FUNCTION ml.autopilot(
    project     text,
    source      text,
    target      text DEFAULT NULL,
    max_seconds float8 DEFAULT 300,
    task        text DEFAULT NULL,
    hyperparams jsonb DEFAULT '{}',
    preprocess  jsonb DEFAULT '{}',
    test_size   float8 DEFAULT 0.25,
    deploy      text DEFAULT 'auto',
    gate        jsonb DEFAULT '{}',
    search_args jsonb DEFAULT '{}')
RETURNS TABLE (project text, run_id bigint, model_id bigint, algorithm text, metrics jsonb,
               deployed boolean, report jsonb)
LANGUAGE sql VOLATILE PARALLEL UNSAFE
AS $$
    SELECT t.project, (t.metrics #>> '{autopilot,run_id}')::bigint, t.model_id, t.algorithm,
           t.metrics - 'autopilot', t.deployed, t.metrics -> 'autopilot'
      FROM ml.train(project, source, target, 'auto', task, hyperparams, preprocess, test_size,
                    deploy, gate, NULL, NULL,
                    coalesce(search_args, '{}') || jsonb_build_object('max_seconds', max_seconds)) t
$$;
COMMENT ON FUNCTION ml.autopilot(text, text, text, float8, text, jsonb, jsonb, float8, text, jsonb, jsonb) IS
'Chooses, tunes and cross-validates candidate algorithms for the task within max_seconds, stores the best of each (ml.leaderboard, filtered by run_id), and promotes the winner through the gate; report says why it won.';

CREATE FUNCTION ml.evaluate(project text, source text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'ml_evaluate' LANGUAGE C STABLE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.evaluate(text, text) IS
'Scores the project''s live model on new labelled rows of a table, view or query: every metric of its task, per-class figures, residual quantiles.';
CREATE FUNCTION ml.evaluate(model_id bigint, source text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'ml_evaluate' LANGUAGE C STABLE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.evaluate(bigint, text) IS
'Scores the given model on new labelled rows of a table, view or query.';
