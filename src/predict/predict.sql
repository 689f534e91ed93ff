-- src/predict/predict.sql
-- Prediction from SQL, addressed by project (its live model) or by model
-- id, with the input as a record, a float8[] or a jsonb object.  STABLE:
-- they read which model is deployed.

CREATE FUNCTION ml.predict(project text, "row" record) RETURNS float8
AS 'MODULE_PATHNAME', 'ml_predict' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.predict(project text, features float8[]) RETURNS float8
AS 'MODULE_PATHNAME', 'ml_predict' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.predict(project text, features jsonb) RETURNS float8
AS 'MODULE_PATHNAME', 'ml_predict' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.predict(model_id bigint, "row" record) RETURNS float8
AS 'MODULE_PATHNAME', 'ml_predict' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.predict(model_id bigint, features float8[]) RETURNS float8
AS 'MODULE_PATHNAME', 'ml_predict' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.predict(model_id bigint, features jsonb) RETURNS float8
AS 'MODULE_PATHNAME', 'ml_predict' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ml.predict(text, record) IS 'Predicts one row with the project''s live model: the value, or the class (its label if numeric or boolean, else its index in ml.labels).';
COMMENT ON FUNCTION ml.predict(text, float8[]) IS 'Predicts from the input columns'' values in training order with the project''s live model.';
COMMENT ON FUNCTION ml.predict(text, jsonb) IS 'Predicts from a jsonb object keyed by column name with the project''s live model.';
COMMENT ON FUNCTION ml.predict(bigint, record) IS 'Predicts one row with the given model.';
COMMENT ON FUNCTION ml.predict(bigint, float8[]) IS 'Predicts from the input columns'' values in training order with the given model.';
COMMENT ON FUNCTION ml.predict(bigint, jsonb) IS 'Predicts from a jsonb object keyed by column name with the given model.';

CREATE FUNCTION ml.predict_label(project text, "row" record) RETURNS text
AS 'MODULE_PATHNAME', 'ml_predict_label' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.predict_label(project text, features float8[]) RETURNS text
AS 'MODULE_PATHNAME', 'ml_predict_label' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.predict_label(project text, features jsonb) RETURNS text
AS 'MODULE_PATHNAME', 'ml_predict_label' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.predict_label(model_id bigint, "row" record) RETURNS text
AS 'MODULE_PATHNAME', 'ml_predict_label' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.predict_label(model_id bigint, features float8[]) RETURNS text
AS 'MODULE_PATHNAME', 'ml_predict_label' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.predict_label(model_id bigint, features jsonb) RETURNS text
AS 'MODULE_PATHNAME', 'ml_predict_label' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ml.predict_label(text, record) IS 'Predicts the class label of one row with the project''s live classification model.';
COMMENT ON FUNCTION ml.predict_label(text, float8[]) IS 'Predicts the class label from values in training order with the project''s live model.';
COMMENT ON FUNCTION ml.predict_label(text, jsonb) IS 'Predicts the class label from a jsonb object with the project''s live model.';
COMMENT ON FUNCTION ml.predict_label(bigint, record) IS 'Predicts the class label of one row with the given model.';
COMMENT ON FUNCTION ml.predict_label(bigint, float8[]) IS 'Predicts the class label from values in training order with the given model.';
COMMENT ON FUNCTION ml.predict_label(bigint, jsonb) IS 'Predicts the class label from a jsonb object with the given model.';

CREATE FUNCTION ml.predict_proba(project text, "row" record) RETURNS float8[]
AS 'MODULE_PATHNAME', 'ml_predict_proba' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.predict_proba(project text, features float8[]) RETURNS float8[]
AS 'MODULE_PATHNAME', 'ml_predict_proba' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.predict_proba(project text, features jsonb) RETURNS float8[]
AS 'MODULE_PATHNAME', 'ml_predict_proba' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.predict_proba(model_id bigint, "row" record) RETURNS float8[]
AS 'MODULE_PATHNAME', 'ml_predict_proba' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.predict_proba(model_id bigint, features float8[]) RETURNS float8[]
AS 'MODULE_PATHNAME', 'ml_predict_proba' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.predict_proba(model_id bigint, features jsonb) RETURNS float8[]
AS 'MODULE_PATHNAME', 'ml_predict_proba' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ml.predict_proba(text, record) IS 'Class probabilities of one row, in the order of ml.labels, with the project''s live model.';
COMMENT ON FUNCTION ml.predict_proba(text, float8[]) IS 'Class probabilities from values in training order with the project''s live model.';
COMMENT ON FUNCTION ml.predict_proba(text, jsonb) IS 'Class probabilities from a jsonb object with the project''s live model.';
COMMENT ON FUNCTION ml.predict_proba(bigint, record) IS 'Class probabilities of one row with the given model.';
COMMENT ON FUNCTION ml.predict_proba(bigint, float8[]) IS 'Class probabilities from values in training order with the given model.';
COMMENT ON FUNCTION ml.predict_proba(bigint, jsonb) IS 'Class probabilities from a jsonb object with the given model.';

CREATE FUNCTION ml.explain(project text, "row" record)
RETURNS TABLE (feature text, value text, contribution float8)
AS 'MODULE_PATHNAME', 'ml_explain' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 20;
CREATE FUNCTION ml.explain(project text, features float8[])
RETURNS TABLE (feature text, value text, contribution float8)
AS 'MODULE_PATHNAME', 'ml_explain' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 20;
CREATE FUNCTION ml.explain(project text, features jsonb)
RETURNS TABLE (feature text, value text, contribution float8)
AS 'MODULE_PATHNAME', 'ml_explain' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 20;
CREATE FUNCTION ml.explain(model_id bigint, "row" record)
RETURNS TABLE (feature text, value text, contribution float8)
AS 'MODULE_PATHNAME', 'ml_explain' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 20;
CREATE FUNCTION ml.explain(model_id bigint, features float8[])
RETURNS TABLE (feature text, value text, contribution float8)
AS 'MODULE_PATHNAME', 'ml_explain' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 20;
CREATE FUNCTION ml.explain(model_id bigint, features jsonb)
RETURNS TABLE (feature text, value text, contribution float8)
AS 'MODULE_PATHNAME', 'ml_explain' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 20;
COMMENT ON FUNCTION ml.explain(text, record) IS 'Contributions of each input column, and the bias, to the live model''s raw output for one row.';
COMMENT ON FUNCTION ml.explain(text, float8[]) IS 'Contributions of each input column, and the bias, to the live model''s raw output for values in training order.';
COMMENT ON FUNCTION ml.explain(text, jsonb) IS 'Contributions of each input column, and the bias, to the live model''s raw output for a jsonb object.';
COMMENT ON FUNCTION ml.explain(bigint, record) IS 'Contributions of each input column, and the bias, to the given model''s raw output for one row.';
COMMENT ON FUNCTION ml.explain(bigint, float8[]) IS 'Contributions of each input column, and the bias, to the given model''s raw output for values in training order.';
COMMENT ON FUNCTION ml.explain(bigint, jsonb) IS 'Contributions of each input column, and the bias, to the given model''s raw output for a jsonb object.';

CREATE FUNCTION ml.embed(project text, "row" record) RETURNS float8[]
AS 'MODULE_PATHNAME', 'ml_embed' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.embed(project text, features float8[]) RETURNS float8[]
AS 'MODULE_PATHNAME', 'ml_embed' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.embed(project text, features jsonb) RETURNS float8[]
AS 'MODULE_PATHNAME', 'ml_embed' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.embed(model_id bigint, "row" record) RETURNS float8[]
AS 'MODULE_PATHNAME', 'ml_embed' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.embed(model_id bigint, features float8[]) RETURNS float8[]
AS 'MODULE_PATHNAME', 'ml_embed' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.embed(model_id bigint, features jsonb) RETURNS float8[]
AS 'MODULE_PATHNAME', 'ml_embed' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ml.embed(text, record) IS 'A row''s coordinates under the project''s live model: distances to the cluster centres (clustering) or projections on the components (decomposition).';
COMMENT ON FUNCTION ml.embed(text, float8[]) IS 'Coordinates of values in training order under the project''s live clustering or decomposition model.';
COMMENT ON FUNCTION ml.embed(text, jsonb) IS 'Coordinates of a jsonb object under the project''s live clustering or decomposition model.';
COMMENT ON FUNCTION ml.embed(bigint, record) IS 'A row''s coordinates under the given clustering or decomposition model.';
COMMENT ON FUNCTION ml.embed(bigint, float8[]) IS 'Coordinates of values in training order under the given clustering or decomposition model.';
COMMENT ON FUNCTION ml.embed(bigint, jsonb) IS 'Coordinates of a jsonb object under the given clustering or decomposition model.';

CREATE FUNCTION ml.labels(project text) RETURNS text[]
AS 'MODULE_PATHNAME', 'ml_labels' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ml.labels(model_id bigint) RETURNS text[]
AS 'MODULE_PATHNAME', 'ml_labels' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ml.labels(text) IS 'Class labels of the project''s live model, in the order of ml.predict_proba; NULL for regression.';
COMMENT ON FUNCTION ml.labels(bigint) IS 'Class labels of the given model, in the order of ml.predict_proba; NULL for regression.';

CREATE FUNCTION ml.model_info(model_id bigint) RETURNS jsonb
AS 'MODULE_PATHNAME', 'ml_model_info' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ml.model_info(bigint) IS 'What a model learned: algorithm, task, labels, feature names, coefficients and intercepts.';

CREATE FUNCTION ml.features(project text)
RETURNS TABLE (model_id bigint, "position" int, feature text, "column" text, kind text,
               category text, impute text, fill float8, scale text, center float8, scale_by float8,
               encode text, transform text)
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    live bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ml.projects p WHERE p.name = features.project) THEN
        RAISE EXCEPTION 'project "%" does not exist', features.project
            USING ERRCODE = 'undefined_object';
    END IF;
    SELECT d.model_id INTO live
      FROM ml.deployments d JOIN ml.projects p ON p.id = d.project_id
     WHERE p.name = features.project
     ORDER BY d.id DESC LIMIT 1;
    IF live IS NULL THEN
        RAISE EXCEPTION 'project "%" has no deployed model', features.project
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN QUERY
    SELECT live, f.ord::int, f.e ->> 'feature', f.e ->> 'column', f.e ->> 'kind',
           f.e ->> 'category', f.e ->> 'impute', (f.e ->> 'fill')::float8, f.e ->> 'scale',
           (f.e ->> 'center')::float8, (f.e ->> 'scale_by')::float8, f.e ->> 'encode',
           f.e ->> 'transform'
      FROM ml.models m
     CROSS JOIN LATERAL jsonb_array_elements(m.features) WITH ORDINALITY AS f(e, ord)
     WHERE m.id = live
     ORDER BY f.ord;
END
$$;
COMMENT ON FUNCTION ml.features(text) IS 'The fitted pipeline of the project''s live model, one row per model feature.';

CREATE FUNCTION ml.transform(project text, source text)
RETURNS TABLE (ordinal bigint, features float8[], names text[])
AS 'MODULE_PATHNAME', 'ml_transform' LANGUAGE C STABLE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.transform(text, text) IS 'The features the project''s live model sees for every row of a source (a table, view or query), with their names, in the source''s order.';

CREATE FUNCTION ml._predict_batch(model_id bigint, "rows" anyarray, batch_size int DEFAULT 0)
RETURNS TABLE (ord int, prediction float8, label text, probabilities float8[])
AS 'MODULE_PATHNAME', 'ml_predict_batch' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ml._predict_batch(bigint, anyarray, int) IS 'Predicts an array of rows with a model, batch_size rows per call of the model (0: all at once); used by batch prediction jobs for models served by a container (internal).';
