-- src/monitor/capture.sql
-- Prediction capture: a sampled fraction of ml.predict calls, stored by
-- the launcher in ml.captured (see src/monitor/capture.c).

-- Written at the rate of the predictions: no key, the inputs kept as the
-- JSON text they were captured as (json, not jsonb: no conversion), and a
-- BRIN index on the time, which rows arrive in order of.
CREATE TABLE ml.captured (
    captured_at timestamptz NOT NULL,
    project_id  bigint NOT NULL REFERENCES ml.projects (id) ON DELETE CASCADE,
    model_id    bigint NOT NULL,
    inputs      json NOT NULL,
    output      float8
);
CREATE INDEX ON ml.captured USING brin (captured_at);
COMMENT ON TABLE ml.captured IS 'Captured ml.predict calls (ml.set_capture): when, the model, the input columns as JSON and the output; visible to members of the project''s owner role.';
ALTER TABLE ml.captured ENABLE ROW LEVEL SECURITY;
CREATE POLICY captured_of_members ON ml.captured FOR SELECT
    USING (pg_catalog.pg_has_role((SELECT p.owner FROM ml.projects p WHERE p.id = project_id), 'USAGE'));
GRANT SELECT ON ml.captured TO PUBLIC;

CREATE FUNCTION ml.set_capture(project text, rate float8) RETURNS void
AS 'MODULE_PATHNAME', 'ml_set_capture'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.set_capture(text, float8) IS
'Captures the given fraction (0 to 1) of the project''s ml.predict calls into ml.captured; needs pgmaker in shared_preload_libraries.';

CREATE FUNCTION ml._capture_counters(OUT available boolean, OUT captured bigint, OUT dropped bigint,
                                     OUT buffered_bytes bigint)
AS 'MODULE_PATHNAME', 'ml_capture_counters'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION ml._capture_counters() IS 'The capture ring''s counts since the server started (internal; see ml.capture_status).';

CREATE VIEW ml.capture_status AS
SELECT p.name AS project, p.capture_rate,
       (SELECT count(*) FROM ml.captured c WHERE c.project_id = p.id) AS stored,
       (SELECT max(c.captured_at) FROM ml.captured c WHERE c.project_id = p.id) AS last_captured,
       k.available, k.captured AS captured_since_start, k.dropped AS dropped_since_start, k.buffered_bytes
  FROM ml.projects p, ml._capture_counters() k;
ALTER VIEW ml.capture_status SET (security_invoker = true);
COMMENT ON VIEW ml.capture_status IS 'Per project: its capture rate and the captures stored (those the caller may see); and for the whole server: captures taken and dropped (ring full) since it started, and the bytes waiting to be stored.';
GRANT SELECT ON ml.capture_status TO PUBLIC;
