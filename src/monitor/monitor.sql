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
COMMENT ON TABLE ml.monitor_runs IS 'Every ml.monitor run: the project, the live model it compared with, the source, the rows read, and each check with its value, threshold and verdict; visible to members of the project''s owner role.';
ALTER TABLE ml.monitor_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY monitor_runs_of_members ON ml.monitor_runs FOR SELECT
    USING (pg_catalog.pg_has_role((SELECT p.owner FROM ml.projects p WHERE p.id = project_id), 'USAGE'));
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

-- The counts behind ml.monitor, as a parallel-safe aggregate: the baseline,
-- the names of the baseline columns the values belong to, and the values.
CREATE FUNCTION ml._monitor_trans(internal, jsonb, text[], VARIADIC "any") RETURNS internal
AS 'MODULE_PATHNAME', 'ml_monitor_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION ml._monitor_combine(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'ml_monitor_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION ml._monitor_serialize(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'ml_monitor_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION ml._monitor_deserialize(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'ml_monitor_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION ml._monitor_final(internal) RETURNS bigint[]
AS 'MODULE_PATHNAME', 'ml_monitor_final' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE ml._monitor_counts(jsonb, text[], VARIADIC "any") (
    SFUNC = ml._monitor_trans,
    STYPE = internal,
    FINALFUNC = ml._monitor_final,
    COMBINEFUNC = ml._monitor_combine,
    SERIALFUNC = ml._monitor_serialize,
    DESERIALFUNC = ml._monitor_deserialize,
    PARALLEL = SAFE
);
COMMENT ON FUNCTION ml._monitor_trans(internal, jsonb, text[], "any") IS 'Transition function of ml._monitor_counts (internal).';
COMMENT ON FUNCTION ml._monitor_combine(internal, internal) IS 'Combine function of ml._monitor_counts (internal).';
COMMENT ON FUNCTION ml._monitor_serialize(internal) IS 'Serialize function of ml._monitor_counts (internal).';
COMMENT ON FUNCTION ml._monitor_deserialize(bytea, internal) IS 'Deserialize function of ml._monitor_counts (internal).';
COMMENT ON FUNCTION ml._monitor_final(internal) IS 'Final function of ml._monitor_counts (internal).';
COMMENT ON AGGREGATE ml._monitor_counts(jsonb, text[], VARIADIC "any") IS
'The counts ml.monitor compares with a model''s baseline (rows, NULLs, bins, categories), over the rows of a scan; parallel safe (internal).';
