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

-- ml.train's aggregate path (src/train/stream.c): the co-moments of the
-- training and hold-out rows and a sample of each, in one parallel scan.
CREATE FUNCTION ml._train_moments_trans(internal, float8, float8[], int8, float8, int4, float8)
RETURNS internal
AS 'MODULE_PATHNAME', 'ml_train_moments_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ml._train_moments_trans(internal, float8, float8[], int8, float8, int4, float8) IS 'Transition function of ml._train_moments (internal).';
CREATE FUNCTION ml._train_moments_combine(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'ml_train_moments_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ml._train_moments_combine(internal, internal) IS 'Combine function of ml._train_moments (internal).';
CREATE FUNCTION ml._train_moments_serialize(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'ml_train_moments_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ml._train_moments_serialize(internal) IS 'Serialisation function of ml._train_moments (internal).';
CREATE FUNCTION ml._train_moments_deserialize(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'ml_train_moments_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ml._train_moments_deserialize(bytea, internal) IS 'Deserialisation function of ml._train_moments (internal).';

CREATE AGGREGATE ml._train_moments(y float8, x float8[], seed int8, test_size float8, sample int4, expected float8) (
    SFUNC = ml._train_moments_trans,
    STYPE = internal,
    COMBINEFUNC = ml._train_moments_combine,
    SERIALFUNC = ml._train_moments_serialize,
    DESERIALFUNC = ml._train_moments_deserialize,
    FINALFUNC = ml._train_moments_serialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml._train_moments(float8, float8[], int8, float8, int4, float8) IS
'What ml.train reads of a source on its aggregate path (internal): least-squares co-moments of the training and hold-out rows, chosen by a hash of each row''s values, and a sample of each.';

-- The same with the features as arguments of their own (float8, up to 94):
-- no array is built for each row.
CREATE FUNCTION ml._train_moments_trans(internal, int8, float8, int4, float8, VARIADIC "any")
RETURNS internal
AS 'MODULE_PATHNAME', 'ml_train_moments_trans_any' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ml._train_moments_trans(internal, int8, float8, int4, float8, VARIADIC "any") IS 'Transition function of ml._train_moments with features as arguments (internal).';
CREATE AGGREGATE ml._train_moments(seed int8, test_size float8, sample int4, expected float8, VARIADIC "any") (
    SFUNC = ml._train_moments_trans,
    STYPE = internal,
    COMBINEFUNC = ml._train_moments_combine,
    SERIALFUNC = ml._train_moments_serialize,
    DESERIALFUNC = ml._train_moments_deserialize,
    FINALFUNC = ml._train_moments_serialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml._train_moments(int8, float8, int4, float8, VARIADIC "any") IS
'ml._train_moments with y and then each feature as float8 arguments of their own (internal): ml.train''s form for up to 94 features.';

-- Checks ml.register_endpoint's options and turns them into ml.train's arguments.
CREATE FUNCTION ml._endpoint_train_args(url text, options jsonb,
    OUT source text, OUT target text, OUT task text, OUT hyperparams jsonb,
    OUT preprocess jsonb, OUT test_size float8, OUT deploy text, OUT gate jsonb)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
BEGIN
    IF url IS NULL THEN
        RAISE EXCEPTION 'url must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    options := coalesce(options, '{}');
    IF jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR k IN SELECT jsonb_object_keys(options) LOOP
        IF k NOT IN ('source', 'target', 'task', 'content_type', 'batch_size', 'preprocess',
                     'test_size', 'deploy', 'gate') THEN
            RAISE EXCEPTION 'unknown option "%"', k USING ERRCODE = 'invalid_parameter_value',
                HINT = 'ml.register_endpoint takes source, target, task, content_type, batch_size, preprocess, test_size, deploy and gate.';
        END IF;
    END LOOP;
    IF options->>'source' IS NULL THEN
        RAISE EXCEPTION 'ml.register_endpoint needs the option "source"'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The container is evaluated on the hold-out rows of the source, as a trained model is, before the gate decides whether it goes live.';
    END IF;
    source := options->>'source';
    target := options->>'target';
    task := options->>'task';
    hyperparams := jsonb_strip_nulls(jsonb_build_object('url', url,
                                                        'content_type', options->'content_type',
                                                        'batch_size', options->'batch_size'));
    preprocess := coalesce(options->'preprocess', '{}');
    test_size := coalesce((options->>'test_size')::float8, 0.25);
    deploy := coalesce(options->>'deploy', 'auto');
    gate := coalesce(options->'gate', '{}');
END
$$;
COMMENT ON FUNCTION ml._endpoint_train_args(text, jsonb) IS 'The ml.train arguments of ml.register_endpoint (internal).';

CREATE FUNCTION ml.register_endpoint(project text, url text, options jsonb DEFAULT '{}')
RETURNS TABLE (project text, model_id bigint, algorithm text, metrics jsonb, deployed boolean)
LANGUAGE sql VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE
AS $$
SELECT t.*
  FROM ml._endpoint_train_args($2, $3) a,
       LATERAL ml.train($1, a.source, a.target, 'endpoint', a.task, a.hyperparams, a.preprocess,
                        a.test_size, a.deploy, a.gate) t
$$;
COMMENT ON FUNCTION ml.register_endpoint(text, text, jsonb) IS
'Registers a model served by an HTTP container speaking the SageMaker protocol (GET /ping, POST /invocations): it is evaluated on the hold-out rows of options.source, gated, deployed and rolled back like a trained model, and ml.predict calls it.';

-- What the debugger rules of each model's training found (src/algo/debugger.c).
CREATE TABLE ml.debug_events (
    model_id   bigint NOT NULL REFERENCES ml.models (id) ON DELETE CASCADE,
    rule       text NOT NULL,
    status     text NOT NULL CHECK (status IN ('ok', 'fired', 'skipped')),
    action     text NOT NULL CHECK (action IN ('record', 'alert', 'stop')),
    iteration  int,
    detail     text,
    PRIMARY KEY (model_id, rule)
);
COMMENT ON TABLE ml.debug_events IS 'Per model and debugger rule asked for in hyperparams.rules: whether it fired (at which iteration, why), stayed quiet, or could not be evaluated.';
GRANT SELECT ON ml.debug_events TO PUBLIC;
ALTER TABLE ml.debug_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY debug_events_visible ON ml.debug_events FOR SELECT
    USING (model_id IN (SELECT m.id FROM ml.models m));
SELECT pg_catalog.pg_extension_config_dump('ml.debug_events', '');

CREATE FUNCTION ml.debug(model_id bigint)
RETURNS TABLE (rule text, status text, action text, iteration int, detail text)
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT e.rule, e.status, e.action, e.iteration, e.detail
  FROM ml.debug_events e WHERE e.model_id = $1
 ORDER BY e.status = 'fired' DESC, e.rule
$$;
COMMENT ON FUNCTION ml.debug(bigint) IS
'The debugger rules a model was trained with: which fired, at which iteration and why (a rule with action stop ended the training there), which stayed quiet, which could not be evaluated.';
