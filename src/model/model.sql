-- src/model/model.sql
-- Models in and out of pgmaker in XGBoost's own formats.

CREATE FUNCTION ml.export_model(model_id bigint) RETURNS bytea
AS 'MODULE_PATHNAME', 'ml_export_model'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ml.export_model(bigint) IS
'Returns an xgboost or random_forest model as XGBoost''s JSON model, which XGBoost loads in Python or any other language.';

CREATE FUNCTION ml.import_model(project text, format text, data bytea, features jsonb)
RETURNS bigint
AS 'MODULE_PATHNAME', 'ml_import_model'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.import_model(text, text, bytea, jsonb) IS
'Registers an XGBoost model trained elsewhere (format xgboost_json or xgboost_ubj) as a model of a project, without deploying it, and returns its id.';
