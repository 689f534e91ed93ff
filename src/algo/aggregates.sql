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

-- Logistic regression, one Newton step per aggregate scan
-- (logistic_step.c).  The loop is the caller's: start from NULL (zeros)
-- and pass each result's intercept and coefficients to the next scan.
CREATE TYPE ml.logistic_step_result AS (
    intercept    float8,
    coefficients float8[],
    n            bigint,
    loss         float8,
    gradient     float8
);
COMMENT ON TYPE ml.logistic_step_result IS
'The result of ml.logistic_step: the intercept and coefficients one Newton step on from the given ones, the rows used, and at the given point the objective (mean log-loss plus l2/2 times the squared coefficients) and the largest absolute component of its gradient.';

CREATE FUNCTION ml._logistic_step_trans(bytea, float8, float8[], float8, float8[], float8) RETURNS bytea
AS 'MODULE_PATHNAME', 'ml_logistic_step_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ml._logistic_step_trans(bytea, float8, float8[], float8, float8[], float8) IS 'Transition function of ml.logistic_step (internal).';
CREATE FUNCTION ml._logistic_step_combine(bytea, bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'ml_logistic_step_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ml._logistic_step_combine(bytea, bytea) IS 'Combine function of ml.logistic_step (internal).';
CREATE FUNCTION ml._logistic_step_final(bytea) RETURNS ml.logistic_step_result
AS 'MODULE_PATHNAME', 'ml_logistic_step_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ml._logistic_step_final(bytea) IS 'Final function of ml.logistic_step (internal).';

CREATE AGGREGATE ml.logistic_step(y float8, x float8[], intercept float8, coefficients float8[], l2 float8) (
    SFUNC = ml._logistic_step_trans,
    STYPE = bytea,
    COMBINEFUNC = ml._logistic_step_combine,
    FINALFUNC = ml._logistic_step_final,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml.logistic_step(float8, float8[], float8, float8[], float8) IS
'One Newton step of logistic regression of y (0 or 1) on the elements of x over the rows of a group, from intercept and coefficients (NULL: zeros), with penalty l2 on the coefficients; runs as a partial aggregate in parallel workers.';

CREATE AGGREGATE ml.logistic_step_state(y float8, x float8[], intercept float8, coefficients float8[], l2 float8) (
    SFUNC = ml._logistic_step_trans,
    STYPE = bytea,
    COMBINEFUNC = ml._logistic_step_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml.logistic_step_state(float8, float8[], float8, float8[], float8) IS
'The partial state of ml.logistic_step over the rows of a group (a bytea), for ml.logistic_step_merge on another server.';

CREATE AGGREGATE ml.logistic_step_merge(state bytea) (
    SFUNC = ml._logistic_step_combine,
    STYPE = bytea,
    COMBINEFUNC = ml._logistic_step_combine,
    FINALFUNC = ml._logistic_step_final,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml.logistic_step_merge(bytea) IS
'Merges partial states of ml.logistic_step_state taken at the same point (from any servers) and takes the step: the same result as ml.logistic_step over all their rows.';

-- What ml.train scans for each Newton step of its aggregate path
-- (internal; stream.c): settings are test_size, the positive class's value,
-- the weights of classes 0 and 1, l2, then the point (w, b) and each
-- feature's centre and inverse scale; the variadic arguments are y and
-- the features, float8.  Only the training side of the row hash counts.
CREATE FUNCTION ml._logistic_step_trans(bytea, int8, float8[], VARIADIC "any") RETURNS bytea
AS 'MODULE_PATHNAME', 'ml_logistic_step_trans_any' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ml._logistic_step_trans(bytea, int8, float8[], VARIADIC "any") IS 'Transition function of ml._logistic_step (internal).';
CREATE AGGREGATE ml._logistic_step(seed int8, settings float8[], VARIADIC "any") (
    SFUNC = ml._logistic_step_trans,
    STYPE = bytea,
    COMBINEFUNC = ml._logistic_step_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE ml._logistic_step(int8, float8[], VARIADIC "any") IS
'A Newton step of logistic regression over the training rows of ml.train''s aggregate path (internal): the state of ml.logistic_step_state.';
