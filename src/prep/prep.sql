-- src/prep/prep.sql
-- Data preparation from SQL: ml.profile describes every column of a table,
-- view or query in one scan.

CREATE FUNCTION ml.profile(source text)
RETURNS TABLE (
    column_name   text,
    type          text,
    kind          text,
    count         bigint,
    nulls         bigint,
    null_fraction float8,
    "distinct"    bigint,
    min           text,
    max           text,
    mean          float8,
    stddev        float8,
    skewness      float8,
    p01           float8,
    p25           float8,
    p50           float8,
    p75           float8,
    p99           float8,
    zeros         bigint,
    negatives     bigint,
    nan_count     bigint,
    inf_count     bigint,
    outliers      bigint,
    sample_size   bigint,
    top_values    jsonb,
    histogram     jsonb,
    warnings      text[])
AS 'MODULE_PATHNAME', 'ml_profile'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.profile(text) IS
'Profiles every column of a table, view or query in one scan: counts, distinct values, range, moments, quantiles, outliers, most frequent values, a histogram and data-quality warnings.';

-- The statistics of a profile as parallel-safe aggregates over bytea states
-- (profile_agg.c), for parallel workers and for states merged across
-- servers.
CREATE TYPE ml.numeric_stats_result AS (
    count       bigint,
    nulls       bigint,
    nan_count   bigint,
    inf_count   bigint,
    zeros       bigint,
    negatives   bigint,
    min         float8,
    max         float8,
    mean        float8,
    stddev      float8,
    skewness    float8,
    p01         float8,
    p25         float8,
    p50         float8,
    p75         float8,
    p99         float8,
    outliers    bigint,
    sample_size bigint,
    histogram   jsonb
);
COMMENT ON TYPE ml.numeric_stats_result IS
'The result of ml.numeric_stats: the statistics ml.profile reports for a numeric column.';

CREATE FUNCTION ml._numeric_stats_trans(bytea, float8) RETURNS bytea
AS 'MODULE_PATHNAME', 'ml_numeric_stats_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ml._numeric_stats_trans(bytea, float8) IS 'Transition function of ml.numeric_stats (internal).';
CREATE FUNCTION ml._numeric_stats_combine(bytea, bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'ml_numeric_stats_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ml._numeric_stats_combine(bytea, bytea) IS 'Combine function of ml.numeric_stats (internal).';
CREATE FUNCTION ml._numeric_stats_final(bytea) RETURNS ml.numeric_stats_result
AS 'MODULE_PATHNAME', 'ml_numeric_stats_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ml._numeric_stats_final(bytea) IS 'Final function of ml.numeric_stats (internal).';

CREATE AGGREGATE ml.numeric_stats(value float8) (
    SFUNC = ml._numeric_stats_trans,
    STYPE = bytea,
    COMBINEFUNC = ml._numeric_stats_combine,
    FINALFUNC = ml._numeric_stats_final,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml.numeric_stats(float8) IS
'Counts, range, moments, quantiles, outliers and histogram of the values of a group, as ml.profile reports a numeric column; runs as a partial aggregate in parallel workers.';

CREATE AGGREGATE ml.numeric_stats_state(value float8) (
    SFUNC = ml._numeric_stats_trans,
    STYPE = bytea,
    COMBINEFUNC = ml._numeric_stats_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml.numeric_stats_state(float8) IS
'The partial state of ml.numeric_stats over the values of a group (a bytea), for ml.numeric_stats_merge on another server.';

CREATE AGGREGATE ml.numeric_stats_merge(state bytea) (
    SFUNC = ml._numeric_stats_combine,
    STYPE = bytea,
    COMBINEFUNC = ml._numeric_stats_combine,
    FINALFUNC = ml._numeric_stats_final,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml.numeric_stats_merge(bytea) IS
'Merges partial states of ml.numeric_stats_state (from any servers): the statistics of all their values.';

CREATE FUNCTION ml._approx_distinct_trans(bytea, anyelement) RETURNS bytea
AS 'MODULE_PATHNAME', 'ml_approx_distinct_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ml._approx_distinct_trans(bytea, anyelement) IS 'Transition function of ml.approx_distinct (internal).';
CREATE FUNCTION ml._approx_distinct_combine(bytea, bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'ml_approx_distinct_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ml._approx_distinct_combine(bytea, bytea) IS 'Combine function of ml.approx_distinct (internal).';
CREATE FUNCTION ml._approx_distinct_final(bytea) RETURNS bigint
AS 'MODULE_PATHNAME', 'ml_approx_distinct_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ml._approx_distinct_final(bytea) IS 'Final function of ml.approx_distinct (internal).';

CREATE AGGREGATE ml.approx_distinct(value anyelement) (
    SFUNC = ml._approx_distinct_trans,
    STYPE = bytea,
    COMBINEFUNC = ml._approx_distinct_combine,
    FINALFUNC = ml._approx_distinct_final,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml.approx_distinct(anyelement) IS
'An estimate of count(DISTINCT value) from a HyperLogLog sketch of 2^14 registers (standard error about 0.8%); runs as a partial aggregate in parallel workers.';

CREATE AGGREGATE ml.approx_distinct_state(value anyelement) (
    SFUNC = ml._approx_distinct_trans,
    STYPE = bytea,
    COMBINEFUNC = ml._approx_distinct_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml.approx_distinct_state(anyelement) IS
'The sketch of ml.approx_distinct over the values of a group (a bytea), for ml.approx_distinct_merge on another server.';

CREATE AGGREGATE ml.approx_distinct_merge(state bytea) (
    SFUNC = ml._approx_distinct_combine,
    STYPE = bytea,
    COMBINEFUNC = ml._approx_distinct_combine,
    FINALFUNC = ml._approx_distinct_final,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml.approx_distinct_merge(bytea) IS
'Merges sketches of ml.approx_distinct_state (from any servers): an estimate of the distinct values of all their rows.';
