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
    gate        jsonb DEFAULT '{}')
RETURNS TABLE (project text, model_id bigint, algorithm text, metrics jsonb, deployed boolean)
AS 'MODULE_PATHNAME', 'ml_train'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.train(text, text, text, text, text, jsonb, jsonb, float8, text, jsonb) IS
'Trains a model of a project on a table, view or query; stores it with its hold-out metrics and deploys it when it passes the gate and beats the live model.';

CREATE FUNCTION ml.evaluate(project text, source text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'ml_evaluate' LANGUAGE C STABLE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.evaluate(text, text) IS
'Scores the project''s live model on new labelled rows of a table, view or query: every metric of its task, per-class figures, residual quantiles.';
CREATE FUNCTION ml.evaluate(model_id bigint, source text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'ml_evaluate' LANGUAGE C STABLE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.evaluate(bigint, text) IS
'Scores the given model on new labelled rows of a table, view or query.';
