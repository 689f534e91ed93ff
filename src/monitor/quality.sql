-- src/monitor/quality.sql
-- Ground truth and model quality: predictions logged with a key, outcomes
-- recorded later under the same key, and the task's metrics over the
-- joined rows per time bucket.

CREATE TABLE ml.prediction_log (
    project      text NOT NULL REFERENCES ml.projects (name) ON DELETE CASCADE,
    key          text NOT NULL,
    model_id     bigint NOT NULL,
    inputs       jsonb NOT NULL,
    prediction   float8,
    label        text,
    predicted_at timestamptz NOT NULL DEFAULT now(),
    logged_by    regrole NOT NULL DEFAULT current_user::regrole,
    PRIMARY KEY (project, key)
);
CREATE INDEX ON ml.prediction_log (project, predicted_at);
COMMENT ON TABLE ml.prediction_log IS 'Predictions made with a key (ml.predict_logged, or batch predictions with "log_predictions"): the model, the inputs, the prediction and its label; written and read by members of the project''s owner role.';
ALTER TABLE ml.prediction_log ENABLE ROW LEVEL SECURITY;
-- Only members of the project's owner role log predictions (what they
-- log is what ml.model_quality measures), and they may replace each
-- other's rows of the same key.
CREATE POLICY prediction_log_of_members ON ml.prediction_log
    USING (pg_catalog.pg_has_role((SELECT p.owner FROM ml.projects p WHERE p.name = project), 'USAGE'))
    WITH CHECK (logged_by = current_user::regrole
                AND pg_catalog.pg_has_role((SELECT p.owner FROM ml.projects p WHERE p.name = project), 'USAGE'));
GRANT SELECT, INSERT, UPDATE ON ml.prediction_log TO PUBLIC;

CREATE TABLE ml.ground_truth (
    project     text NOT NULL REFERENCES ml.projects (name) ON DELETE CASCADE,
    key         text NOT NULL,
    label       text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    recorded_by regrole NOT NULL DEFAULT current_user::regrole,
    PRIMARY KEY (project, key)
);
COMMENT ON TABLE ml.ground_truth IS 'The true outcome of a keyed prediction, as text (a label, or a number for regression); written and read by members of the project''s owner role.';
ALTER TABLE ml.ground_truth ENABLE ROW LEVEL SECURITY;
CREATE POLICY ground_truth_of_members ON ml.ground_truth
    USING (pg_catalog.pg_has_role((SELECT p.owner FROM ml.projects p WHERE p.name = project), 'USAGE'))
    WITH CHECK (pg_catalog.pg_has_role((SELECT p.owner FROM ml.projects p WHERE p.name = project), 'USAGE'));
GRANT SELECT, INSERT, UPDATE, DELETE ON ml.ground_truth TO PUBLIC;

CREATE FUNCTION ml.predict_logged(project text, key text, "row" anyelement)
RETURNS float8
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE
AS $$
DECLARE
    t text;
    p float8;
    l text;
    mid bigint;
    powner regrole;
BEGIN
    IF project IS NULL OR key IS NULL OR "row" IS NULL THEN
        RAISE EXCEPTION 'project, key and row must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT pr.task, (SELECT d.model_id FROM ml.deployments d WHERE d.project_id = pr.id ORDER BY d.id DESC LIMIT 1),
           pr.owner
      INTO t, mid, powner FROM ml.projects pr WHERE pr.name = predict_logged.project;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'project "%" does not exist', project USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT pg_catalog.pg_has_role(powner, 'USAGE') THEN
        RAISE EXCEPTION 'must be a member of role "%" to log predictions of project "%"', powner, project
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    p := ml.predict(project, "row");
    IF t = 'classification' THEN
        l := ml.predict_label(project, "row");
    END IF;
    INSERT INTO ml.prediction_log (project, key, model_id, inputs, prediction, label)
    VALUES (predict_logged.project, predict_logged.key, mid, to_jsonb("row"), p, l)
    ON CONFLICT ON CONSTRAINT prediction_log_pkey DO UPDATE
       SET model_id = EXCLUDED.model_id, inputs = EXCLUDED.inputs, prediction = EXCLUDED.prediction,
           label = EXCLUDED.label, predicted_at = now(), logged_by = current_user::regrole;
    RETURN p;
END
$$;
COMMENT ON FUNCTION ml.predict_logged(text, text, anyelement) IS
'Predicts a row like ml.predict and logs the key, the inputs, the model and the prediction in ml.prediction_log, so that ml.model_quality can join the outcome recorded later.';

CREATE FUNCTION ml.record_ground_truth(project text, key text, label text)
RETURNS void
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE
AS $$
BEGIN
    IF project IS NULL OR key IS NULL OR label IS NULL THEN
        RAISE EXCEPTION 'project, key and label must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ml.projects p WHERE p.name = record_ground_truth.project) THEN
        RAISE EXCEPTION 'project "%" does not exist', project USING ERRCODE = 'undefined_object';
    END IF;
    INSERT INTO ml.ground_truth (project, key, label)
    VALUES (record_ground_truth.project, record_ground_truth.key, record_ground_truth.label)
    ON CONFLICT ON CONSTRAINT ground_truth_pkey DO UPDATE
       SET label = EXCLUDED.label, recorded_at = now(), recorded_by = current_user::regrole;
END
$$;
COMMENT ON FUNCTION ml.record_ground_truth(text, text, text) IS
'Records (or corrects) the true outcome of the prediction logged under key; for members of the project''s owner role.';

CREATE FUNCTION ml._report_quality_violation(project text, message text, details jsonb)
RETURNS bigint
AS 'MODULE_PATHNAME', 'ml_report_quality_violation'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION ml._report_quality_violation(text, text, jsonb) IS 'Raises a model_quality alert for a project whose owner role the caller is a member of (internal).';

CREATE FUNCTION ml.model_quality(project text, since timestamptz, bucket interval DEFAULT '1 day',
                                 thresholds jsonb DEFAULT '{}')
RETURNS TABLE (bucket_start timestamptz, n bigint, metrics jsonb, violated boolean, violations jsonb)
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE
AS $$
DECLARE
    pr record;
    allowed text[];
    k text;
    m text;
    positive text;
    bad jsonb := '[]';
BEGIN
    IF project IS NULL OR since IS NULL OR bucket IS NULL THEN
        RAISE EXCEPTION 'project, since and bucket must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF bucket <= interval '0' THEN
        RAISE EXCEPTION 'bucket must be a positive interval' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT p.id, p.task, p.owner INTO pr FROM ml.projects p WHERE p.name = model_quality.project;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'project "%" does not exist', project USING ERRCODE = 'undefined_object';
    END IF;
    IF pr.task NOT IN ('regression', 'classification') THEN
        RAISE EXCEPTION 'model quality needs a regression or classification project, not %', pr.task
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF NOT pg_catalog.pg_has_role(pr.owner, 'USAGE') THEN
        RAISE EXCEPTION 'must be a member of role "%" to read the ground truth of project "%"', pr.owner, project
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF pr.task = 'regression' THEN
        allowed := ARRAY['rmse', 'mae', 'r2'];
    ELSE
        positive := (ml.labels(project))[2];
        allowed := CASE WHEN array_length(ml.labels(project), 1) = 2
                        THEN ARRAY['accuracy', 'precision', 'recall', 'f1'] ELSE ARRAY['accuracy'] END;
    END IF;
    thresholds := coalesce(thresholds, '{}');
    IF jsonb_typeof(thresholds) <> 'object' THEN
        RAISE EXCEPTION 'thresholds must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR k IN SELECT jsonb_object_keys(thresholds) LOOP
        IF k NOT IN ('min', 'max') OR jsonb_typeof(thresholds -> k) <> 'object' THEN
            RAISE EXCEPTION 'thresholds take "min" and "max" objects, not "%"', k
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'For example {"min": {"accuracy": 0.9}, "max": {"rmse": 5}}.';
        END IF;
        FOR m IN SELECT jsonb_object_keys(thresholds -> k) LOOP
            IF NOT m = ANY (allowed) THEN
                RAISE EXCEPTION 'unknown metric "%" for this project', m
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = format('The metrics are %s.', array_to_string(allowed, ', '));
            END IF;
            IF jsonb_typeof(thresholds -> k -> m) <> 'number' THEN
                RAISE EXCEPTION 'threshold %.% must be a number', k, m USING ERRCODE = 'invalid_parameter_value';
            END IF;
        END LOOP;
    END LOOP;

    FOR bucket_start, n, metrics IN
        SELECT b, count(*),
               CASE WHEN pr.task = 'regression' THEN
                   jsonb_build_object(
                       'rmse', sqrt(avg((l.prediction - g.label::float8) ^ 2)),
                       'mae', avg(abs(l.prediction - g.label::float8)),
                       'r2', CASE WHEN var_pop(g.label::float8) > 0
                                  THEN 1 - avg((l.prediction - g.label::float8) ^ 2) / var_pop(g.label::float8) END)
               ELSE
                   jsonb_strip_nulls(jsonb_build_object(
                       'accuracy', avg((l.label = g.label)::int)::float8,
                       'precision', CASE WHEN positive IS NOT NULL AND count(*) FILTER (WHERE l.label = positive) > 0
                           THEN (count(*) FILTER (WHERE l.label = positive AND g.label = positive))::float8
                                / count(*) FILTER (WHERE l.label = positive) END,
                       'recall', CASE WHEN positive IS NOT NULL AND count(*) FILTER (WHERE g.label = positive) > 0
                           THEN (count(*) FILTER (WHERE l.label = positive AND g.label = positive))::float8
                                / count(*) FILTER (WHERE g.label = positive) END,
                       'f1', CASE WHEN positive IS NOT NULL AND count(*) FILTER (WHERE l.label = positive OR g.label = positive) > 0
                           THEN 2 * (count(*) FILTER (WHERE l.label = positive AND g.label = positive))::float8
                                / (count(*) FILTER (WHERE l.label = positive) + count(*) FILTER (WHERE g.label = positive)) END))
               END
          FROM (SELECT date_bin(model_quality.bucket, lg.predicted_at, model_quality.since) AS b, lg.*
                  FROM ml.prediction_log lg
                 WHERE lg.project = model_quality.project AND lg.predicted_at >= model_quality.since) l
          JOIN ml.ground_truth g ON g.project = l.project AND g.key = l.key
         GROUP BY b ORDER BY b
    LOOP
        violations := '[]';
        FOR k, m IN SELECT t.key, mm.key FROM jsonb_each(thresholds) t, jsonb_each(t.value) mm LOOP
            IF metrics ? m AND ((k = 'min' AND (metrics ->> m)::float8 < (thresholds -> k ->> m)::float8)
                             OR (k = 'max' AND (metrics ->> m)::float8 > (thresholds -> k ->> m)::float8)) THEN
                violations := violations || jsonb_build_object('metric', m, 'value', metrics -> m,
                                                               k, thresholds -> k -> m);
            END IF;
        END LOOP;
        violated := jsonb_array_length(violations) > 0;
        IF violated THEN
            bad := bad || jsonb_build_object('bucket_start', bucket_start, 'n', n, 'violations', violations);
        END IF;
        RETURN NEXT;
    END LOOP;
    IF jsonb_array_length(bad) > 0 THEN
        PERFORM ml._report_quality_violation(project,
            format('model quality of project %s broke its thresholds in %s bucket(s)', project, jsonb_array_length(bad)),
            jsonb_build_object('since', since, 'bucket', bucket, 'buckets', bad));
    END IF;
END
$$;
COMMENT ON FUNCTION ml.model_quality(text, timestamptz, interval, jsonb) IS
'The task''s metrics per time bucket over the logged predictions whose ground truth is recorded; a bucket whose metric breaks a min or max threshold is a violation, and violations raise a model_quality alert.';
