-- src/monitor/capture.sql
-- Prediction capture: a sampled fraction of ml.predict calls, stored by
-- the launcher (see src/monitor/capture.c).  Captures arrive at the rate
-- of the predictions, so they are stored in batches, one row per model
-- and up to 1000 captures: a row per capture would cost the server about
-- as much as the predictions themselves.  ml.captured shows one row each.

CREATE TABLE ml.capture_batches (
    project_id  bigint NOT NULL REFERENCES ml.projects (id) ON DELETE CASCADE,
    model_id    bigint NOT NULL,
    first_at    timestamptz NOT NULL,
    last_at     timestamptz NOT NULL,
    n           int NOT NULL CHECK (n > 0),
    captured_at timestamptz[] NOT NULL,
    inputs      text[] NOT NULL,
    outputs     float8[] NOT NULL
);
-- the batches are written at the rate of the predictions and read rarely:
-- no compression work
ALTER TABLE ml.capture_batches ALTER COLUMN captured_at SET STORAGE EXTERNAL;
ALTER TABLE ml.capture_batches ALTER COLUMN inputs SET STORAGE EXTERNAL;
ALTER TABLE ml.capture_batches ALTER COLUMN outputs SET STORAGE EXTERNAL;
CREATE INDEX ON ml.capture_batches (project_id, last_at);
COMMENT ON TABLE ml.capture_batches IS 'Captured ml.predict calls in batches of up to 1000 of one model: their times, inputs (JSON text) and outputs; read them through ml.captured.';
ALTER TABLE ml.capture_batches ENABLE ROW LEVEL SECURITY;
CREATE POLICY capture_batches_of_members ON ml.capture_batches FOR SELECT
    USING (pg_catalog.pg_has_role((SELECT p.owner FROM ml.projects p WHERE p.id = project_id), 'USAGE'));
GRANT SELECT ON ml.capture_batches TO PUBLIC;

CREATE VIEW ml.captured AS
SELECT u.captured_at, b.project_id, b.model_id, u.inputs::json AS inputs, u.output
  FROM ml.capture_batches b,
       unnest(b.captured_at, b.inputs, b.outputs) AS u(captured_at, inputs, output);
ALTER VIEW ml.captured SET (security_invoker = true);
COMMENT ON VIEW ml.captured IS 'Captured ml.predict calls (ml.set_capture), one row each: when, the project and model, the input as JSON and the output; visible to members of the project''s owner role.';
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
       (SELECT coalesce(sum(b.n), 0) FROM ml.capture_batches b WHERE b.project_id = p.id) AS stored,
       (SELECT max(b.last_at) FROM ml.capture_batches b WHERE b.project_id = p.id) AS last_captured,
       k.available, k.captured AS captured_since_start, k.dropped AS dropped_since_start, k.buffered_bytes
  FROM ml.projects p, ml._capture_counters() k;
ALTER VIEW ml.capture_status SET (security_invoker = true);
COMMENT ON VIEW ml.capture_status IS 'Per project: its capture rate and the captures stored (those the caller may see); and for the whole server: captures taken and dropped (ring full) since it started, and the bytes waiting to be stored.';
GRANT SELECT ON ml.capture_status TO PUBLIC;
