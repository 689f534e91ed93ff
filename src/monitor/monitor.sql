-- src/monitor/monitor.sql
-- Model monitoring: each model's baseline (ml.baseline), the checks of
-- live data against it (ml.monitor), and the record of every run.

CREATE TABLE ml.monitor_runs (
    id         bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES ml.projects (id) ON DELETE CASCADE,
    model_id   bigint NOT NULL,
    source     text NOT NULL,
    ran_at     timestamptz NOT NULL DEFAULT now(),
    rows       bigint NOT NULL,
    checks     int NOT NULL,
    violations int NOT NULL,
    results    jsonb NOT NULL,
    run_by     regrole NOT NULL
);
CREATE INDEX ON ml.monitor_runs (project_id, ran_at);
COMMENT ON TABLE ml.monitor_runs IS 'Every ml.monitor run: the project, the live model it compared with, the source, the rows read, and each check with its value, threshold and verdict.';
GRANT SELECT ON ml.monitor_runs TO PUBLIC;

CREATE FUNCTION ml.monitor(project text, source text DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS TABLE (feature text, "check" text, value float8, threshold float8, violated boolean, detail jsonb)
AS 'MODULE_PATHNAME', 'ml_monitor'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.monitor(text, text, jsonb) IS
'Compares a table, view or query with the baseline of the project''s live model in one scan: drift (PSI, Jensen-Shannon, L-infinity, chi-squared) and data quality (missing columns, type changes, NULLs, out-of-range and unseen values); stores the run in ml.monitor_runs and raises an alert on violations.';

CREATE FUNCTION ml.baseline(project text)
RETURNS TABLE (feature text, kind text, type text, count bigint, null_fraction float8,
               mean float8, std float8, min float8, max float8,
               edges float8[], fractions float8[], categories jsonb, other float8)
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT c.key, c.value->>'kind', c.value->>'type', (c.value->>'count')::bigint,
       (c.value->>'null_fraction')::float8, (c.value->>'mean')::float8, (c.value->>'std')::float8,
       (c.value->>'min')::float8, (c.value->>'max')::float8,
       (SELECT array_agg(e::float8 ORDER BY o) FROM jsonb_array_elements_text(c.value->'edges') WITH ORDINALITY x(e, o)),
       (SELECT array_agg(f::float8 ORDER BY o) FROM jsonb_array_elements_text(c.value->'fractions') WITH ORDINALITY x(f, o)),
       c.value->'categories', (c.value->>'other')::float8
  FROM ml.projects p
  JOIN LATERAL (SELECT d.model_id FROM ml.deployments d WHERE d.project_id = p.id
                 ORDER BY d.id DESC LIMIT 1) d ON true
  JOIN ml.models m ON m.id = d.model_id,
       jsonb_each(m.baseline->'columns') c
 WHERE p.name = $1
 ORDER BY c.key
$$;
COMMENT ON FUNCTION ml.baseline(text) IS
'The baseline of the project''s live model, one row per input column: count, null fraction, mean, std, min, max and decile bins of numbers, or the fractions of the most frequent values.';
