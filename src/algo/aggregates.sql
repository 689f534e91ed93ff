-- src/algo/aggregates.sql
-- Least squares as parallel-safe aggregates with a combine function.

CREATE TYPE ml.linear_fit_result AS (
    intercept    float8,
    coefficients float8[],
    n            bigint,
    rank         int,
    r2           float8,
    rmse         float8
);
COMMENT ON TYPE ml.linear_fit_result IS
'The result of ml.linear_fit and ml.ridge_fit: intercept, one coefficient per element of x, rows used, rank of the system, and R^2 and RMSE on those rows.';

CREATE FUNCTION ml._linear_fit_trans(bytea, float8, float8[]) RETURNS bytea
AS 'MODULE_PATHNAME', 'ml_linear_fit_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ml._linear_fit_trans(bytea, float8, float8[]) IS 'Transition function of ml.linear_fit (internal).';
CREATE FUNCTION ml._ridge_fit_trans(bytea, float8, float8[], float8) RETURNS bytea
AS 'MODULE_PATHNAME', 'ml_linear_fit_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ml._ridge_fit_trans(bytea, float8, float8[], float8) IS 'Transition function of ml.ridge_fit (internal).';
CREATE FUNCTION ml._linear_fit_combine(bytea, bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'ml_linear_fit_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ml._linear_fit_combine(bytea, bytea) IS 'Combine function of ml.linear_fit and ml.ridge_fit (internal).';
CREATE FUNCTION ml._linear_fit_final(bytea) RETURNS ml.linear_fit_result
AS 'MODULE_PATHNAME', 'ml_linear_fit_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ml._linear_fit_final(bytea) IS 'Final function of ml.linear_fit and ml.ridge_fit (internal).';

CREATE AGGREGATE ml.linear_fit(y float8, x float8[]) (
    SFUNC = ml._linear_fit_trans,
    STYPE = bytea,
    COMBINEFUNC = ml._linear_fit_combine,
    FINALFUNC = ml._linear_fit_final,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml.linear_fit(float8, float8[]) IS
'Ordinary least squares of y on the elements of x (with an intercept) over the rows of a group; runs as a partial aggregate in parallel workers.';

CREATE AGGREGATE ml.ridge_fit(y float8, x float8[], alpha float8) (
    SFUNC = ml._ridge_fit_trans,
    STYPE = bytea,
    COMBINEFUNC = ml._linear_fit_combine,
    FINALFUNC = ml._linear_fit_final,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml.ridge_fit(float8, float8[], float8) IS
'Ridge regression (penalty alpha on the coefficients, not the intercept) of y on the elements of x over the rows of a group; runs as a partial aggregate in parallel workers.';

-- The partial state itself, and its merge: the two halves of a fit over
-- several servers (each computes ml.linear_fit_state over its rows; the
-- coordinator runs ml.linear_fit_merge over the states).
CREATE AGGREGATE ml.linear_fit_state(y float8, x float8[]) (
    SFUNC = ml._linear_fit_trans,
    STYPE = bytea,
    COMBINEFUNC = ml._linear_fit_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml.linear_fit_state(float8, float8[]) IS
'The partial state of ml.linear_fit over the rows of a group (a bytea), for ml.linear_fit_merge on another server.';

CREATE AGGREGATE ml.ridge_fit_state(y float8, x float8[], alpha float8) (
    SFUNC = ml._ridge_fit_trans,
    STYPE = bytea,
    COMBINEFUNC = ml._linear_fit_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml.ridge_fit_state(float8, float8[], float8) IS
'The partial state of ml.ridge_fit over the rows of a group (a bytea), for ml.linear_fit_merge on another server.';

CREATE AGGREGATE ml.linear_fit_merge(state bytea) (
    SFUNC = ml._linear_fit_combine,
    STYPE = bytea,
    COMBINEFUNC = ml._linear_fit_combine,
    FINALFUNC = ml._linear_fit_final,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml.linear_fit_merge(bytea) IS
'Merges partial states of ml.linear_fit_state or ml.ridge_fit_state (from any servers) and solves: the same result as ml.linear_fit or ml.ridge_fit over all their rows.';
