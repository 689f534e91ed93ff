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
