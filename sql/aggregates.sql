-- sql/aggregates.sql: ml.linear_fit and ml.ridge_fit, serial, grouped and
-- as partial aggregates in parallel workers.

SELECT setval('ml.models_id_seq', 110000, false);
-- OLS on all of diabetes against scikit-learn's LinearRegression (the
-- reference coefficients of sql/linear.sql, 9 significant digits)
CREATE TEMP TABLE agg_ref(j int, coef float8);
INSERT INTO agg_ref VALUES
    (1, -3.63612242e-02), (2, -2.28596481e+01), (3, 5.60296209e+00), (4, 1.11680799e+00),
    (5, -1.08999633e+00), (6, 7.46450456e-01), (7, 3.72004715e-01), (8, 6.53383194e+00),
    (9, 6.84831250e+01), (10, 2.80116989e-01);
CREATE TEMP TABLE agg_fit AS
SELECT (ml.linear_fit(progression, ARRAY[age, sex, bmi, bp, s1, s2, s3, s4, s5, s6])).* FROM diabetes;
SELECT n, rank, array_length(coefficients, 1) AS p, round(r2::numeric, 4) AS r2, round(rmse::numeric, 4) AS rmse
  FROM agg_fit;
SELECT bool_and(abs(f.coefficients[r.j] - r.coef) / abs(r.coef) < 1e-6) AS coefficients_ok
  FROM agg_fit f, agg_ref r;
-- the same fit as ml.train's linear model on the same rows, to 1e-9
SELECT model_id AS ols FROM ml.train('agg_ols', 'diabetes', 'progression', test_size => 0, deploy => 'never') \gset
SELECT abs(f.intercept - (i ->> 'intercept')::float8) / abs(f.intercept) < 1e-9 AS intercept_ok,
       abs(f.coefficients[9] - (i -> 'coefficients' ->> 's5')::float8) / abs(f.coefficients[9]) < 1e-9 AS s5_ok,
       abs(f.r2 - (m.metrics ->> 'r2')::float8) < 1e-9 AS r2_ok,
       abs(f.rmse - (m.metrics ->> 'rmse')::float8) < 1e-9 AS rmse_ok
  FROM agg_fit f, ml.model_info(:ols) i, ml.models m WHERE m.id = :ols;

-- ridge on unscaled features equals scikit-learn's Ridge(alpha=1.0)
SELECT abs(f.intercept - (-316.07711860428867)) / 316.07711860428867 < 1e-9 AS intercept_ok,
       abs(f.coefficients[9] - 63.1790809) / 63.1790809 < 1e-6 AS s5_ok,
       abs(f.coefficients[2] - (-22.6070454)) / 22.6070454 < 1e-6 AS sex_ok
  FROM (SELECT (ml.ridge_fit(progression, ARRAY[age, sex, bmi, bp, s1, s2, s3, s4, s5, s6], 1.0)).* FROM diabetes) f;

-- one model per group, like any aggregate
SELECT species, (f).n, round((f).intercept::numeric, 4) AS intercept,
       round((f).coefficients[1]::numeric, 4) AS slope, round((f).r2::numeric, 4) AS r2
  FROM (SELECT species, ml.linear_fit(petal_width, ARRAY[petal_length]) AS f FROM iris GROUP BY species) g
 ORDER BY species;
-- the slope of one x is cov(x, y) / var(x)
SELECT species, abs((ml.linear_fit(petal_width, ARRAY[petal_length])).coefficients[1]
                    - covar_pop(petal_width, petal_length) / var_pop(petal_length)) < 1e-12 AS slope_ok
  FROM iris GROUP BY species ORDER BY species;

-- a partial aggregate in parallel workers gives the same fit
CREATE TABLE agg_big AS
SELECT i, x1, x2, x3, 3.0 + 2.0 * x1 - 1.5 * x2 + 0.25 * x3 + 0.1 * sin(i) AS y
  FROM (SELECT i, 1000.0 + sin(i * 0.7) AS x1, cos(i * 1.3) AS x2, (i % 97) / 97.0 AS x3
          FROM generate_series(1, 200000) i) s;
ANALYZE agg_big;
CREATE TEMP TABLE agg_serial AS SELECT (ml.linear_fit(y, ARRAY[x1, x2, x3])).* FROM agg_big;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT ml.linear_fit(y, ARRAY[x1, x2, x3]) FROM agg_big;
CREATE TEMP TABLE agg_parallel AS SELECT (ml.linear_fit(y, ARRAY[x1, x2, x3])).* FROM agg_big;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
SELECT s.n = p.n AS same_n,
       abs(s.intercept - p.intercept) < 1e-8 AS same_intercept,
       (SELECT bool_and(abs(a - b) < 1e-9) FROM unnest(s.coefficients, p.coefficients) u(a, b)) AS same_coefficients,
       round(p.intercept::numeric, 3) AS intercept, round(p.coefficients[1]::numeric, 3) AS b1,
       round(p.coefficients[2]::numeric, 3) AS b2, round(p.coefficients[3]::numeric, 3) AS b3
  FROM agg_serial s, agg_parallel p;

-- the same fit from partial states merged afterwards: per server, here
-- per slice of the table
CREATE TEMP TABLE agg_states AS
SELECT i % 3 AS part, ml.linear_fit_state(y, ARRAY[x1, x2, x3]) AS state FROM agg_big GROUP BY i % 3;
SELECT count(*) AS states, bool_and(octet_length(state) < 200) AS small FROM agg_states;
SELECT (m).n = s.n AS same_n,
       abs((m).intercept - s.intercept) < 1e-8 AS same_intercept,
       (SELECT bool_and(abs(a - b) < 1e-9) FROM unnest((m).coefficients, s.coefficients) u(a, b)) AS same_coefficients,
       abs((m).r2 - s.r2) < 1e-12 AS same_r2
  FROM (SELECT ml.linear_fit_merge(state) AS m FROM agg_states) q, agg_serial s;
SELECT abs((m).coefficients[1] - r.coefficients[1]) < 1e-9 AS ridge_merge_ok
  FROM (SELECT ml.linear_fit_merge(st) AS m
          FROM (SELECT ml.ridge_fit_state(y, ARRAY[x1, x2, x3], 5.0) AS st FROM agg_big GROUP BY i % 4) p) q,
       (SELECT (ml.ridge_fit(y, ARRAY[x1, x2, x3], 5.0)).* FROM agg_big) r;
SELECT ml.linear_fit_merge(state) IS NULL AS no_states FROM agg_states WHERE false;
SELECT expect_error($$SELECT ml.linear_fit_merge(s) FROM (VALUES ('\x0102'::bytea)) v(s)$$);
SELECT expect_error($$SELECT ml.linear_fit_merge(s) FROM (SELECT ml.linear_fit_state(y, ARRAY[x1]) FROM agg_big UNION ALL SELECT ml.linear_fit_state(y, ARRAY[x1, x2]) FROM agg_big) v(s)$$);
SELECT expect_error($$SELECT ml.linear_fit_merge(s) FROM (SELECT ml.linear_fit_state(y, ARRAY[x1]) FROM agg_big UNION ALL SELECT ml.ridge_fit_state(y, ARRAY[x1], 1) FROM agg_big) v(s)$$);

-- NULL y or x skips the row; no rows, no model; rank-deficient x
SELECT (f).n, round((f).coefficients[1]::numeric, 6) AS b
  FROM (SELECT ml.linear_fit(y, x) AS f
          FROM (VALUES (1.0, ARRAY[1.0]), (NULL, ARRAY[5.0]), (3.0, NULL), (3.0, ARRAY[2.0]), (5.0, ARRAY[3.0])) v(y, x)) q;
SELECT ml.linear_fit(y, ARRAY[y]) IS NULL AS no_rows FROM (SELECT 1.0::float8 AS y WHERE false) e;
SELECT (f).rank, round((f).coefficients[1]::numeric, 6) AS b1, round((f).coefficients[2]::numeric, 6) AS b2
  FROM (SELECT ml.linear_fit(progression, ARRAY[bmi, 2 * bmi]) AS f FROM diabetes) q;

-- errors
SELECT expect_error($$SELECT ml.linear_fit(y, x) FROM (VALUES (1.0::float8, ARRAY[1.0, NULL]::float8[])) v(y, x)$$);
SELECT expect_error($$SELECT ml.linear_fit(y, x) FROM (VALUES (1.0::float8, ARRAY[1.0]::float8[]), (2.0, ARRAY[1.0, 2.0])) v(y, x)$$);
SELECT expect_error($$SELECT ml.linear_fit(y, x) FROM (VALUES ('NaN'::float8, ARRAY[1.0]::float8[])) v(y, x)$$);
SELECT expect_error($$SELECT ml.linear_fit(y, x) FROM (VALUES (1.0::float8, ARRAY['Infinity']::float8[])) v(y, x)$$);
SELECT expect_error($$SELECT ml.linear_fit(y, x) FROM (VALUES (1.0::float8, '{}'::float8[])) v(y, x)$$);
SELECT expect_error($$SELECT ml.linear_fit(y, x) FROM (VALUES (1.0::float8, '{{1,2}}'::float8[])) v(y, x)$$);
SELECT expect_error($$SELECT ml.ridge_fit(y, x, 0) FROM (VALUES (1.0::float8, ARRAY[1.0]::float8[])) v(y, x)$$);
SELECT expect_error($$SELECT ml.ridge_fit(y, x, a) FROM (VALUES (1.0::float8, ARRAY[1.0]::float8[], 1.0::float8), (2.0, ARRAY[2.0], 2.0)) v(y, x, a)$$);
SELECT expect_error($$SELECT ml.ridge_fit(y, x, NULL) FROM (VALUES (1.0::float8, ARRAY[1.0]::float8[])) v(y, x)$$);
SELECT expect_error($$SELECT ml._linear_fit_final('\x00'::bytea)$$);
SELECT expect_error($$SELECT ml._linear_fit_final(decode(repeat('00', 40), 'hex'))$$);
SELECT expect_error($$SELECT ml._linear_fit_trans(NULL, 1.0, ARRAY[1.0])$$);
-- a state that is not one, handed over by another aggregate, is refused
CREATE AGGREGATE agg_forged(float8, float8[]) (SFUNC = ml._linear_fit_trans, STYPE = bytea, INITCOND = '');
SELECT expect_error($$SELECT agg_forged(1.0, ARRAY[1.0]::float8[])$$);
DROP AGGREGATE agg_forged(float8, float8[]);
-- a system too large for ml.max_train_memory
SET ml.max_train_memory = '1MB';
SELECT expect_error($$SELECT ml.linear_fit(1.0, array_fill(1.0::float8, ARRAY[300]))$$);
RESET ml.max_train_memory;

-- ml.logistic_step: one Newton step per scan; the loop is the caller's
CREATE FUNCTION pg_temp.iris_logistic(l2 float8, OUT intercept float8, OUT coefficients float8[],
                                      OUT steps int, OUT loss float8, OUT gradient float8)
LANGUAGE plpgsql AS $$
DECLARE
    r ml.logistic_step_result;
BEGIN
    steps := 0;
    LOOP
        SELECT (s).* INTO r
          FROM (SELECT ml.logistic_step((species = 'virginica')::int,
                                        ARRAY[sepal_length, sepal_width, petal_length, petal_width],
                                        intercept, coefficients, l2) AS s
                  FROM iris WHERE species <> 'setosa') q;
        steps := steps + 1;
        intercept := r.intercept;
        coefficients := r.coefficients;
        loss := r.loss;
        gradient := r.gradient;
        EXIT WHEN r.gradient < 1e-12 OR steps >= 50;
    END LOOP;
END
$$;
-- versicolor against virginica, against scikit-learn's LogisticRegression
-- (solver newton-cholesky, tol 1e-14; lbfgs stops some 1e-6 short): C = 1
-- is l2 = 1 / (C n) = 0.01; and no penalty
SELECT f.steps, round(f.loss::numeric, 6) AS loss, f.gradient < 1e-12 AS converged,
       abs(f.intercept - (-14.430758180168686)) / 14.430758180168686 < 1e-9 AS intercept_ok,
       (SELECT bool_and(abs(a - b) / abs(b) < 1e-9)
          FROM unnest(f.coefficients, ARRAY[-0.3944334785720596, -0.5132774044284333,
                                            2.9307513838533605, 2.4170321883370063]) u(a, b)) AS coefficients_ok
  FROM pg_temp.iris_logistic(0.01) f;
SELECT f.steps, round(f.loss::numeric, 6) AS loss, f.gradient < 1e-12 AS converged,
       abs(f.intercept - (-42.637803813021804)) / 42.637803813021804 < 1e-9 AS intercept_ok,
       (SELECT bool_and(abs(a - b) / abs(b) < 1e-9)
          FROM unnest(f.coefficients, ARRAY[-2.465220195186654, -6.680887014078528,
                                            9.4293851539266, 18.28613688785093]) u(a, b)) AS coefficients_ok
  FROM pg_temp.iris_logistic(0) f;
-- the first step starts at zero, where the mean log-loss is log 2; the
-- intercept step is 4 (mean(y) - 1/2) when x is centred
SELECT (s).n, abs((s).loss - ln(2)) < 1e-15 AS loss_is_log2,
       abs((s).intercept - 4 * (0.25 - 0.5)) < 1e-12 AS intercept_ok
  FROM (SELECT ml.logistic_step(y, ARRAY[x], NULL, NULL, 0) AS s
          FROM (VALUES (1, -1.0), (0, 1.0), (0, -1.0), (0, 1.0)) v(y, x)) q;

-- one step per group; each group's equals its own scan
SELECT g, (s).n, round((s).intercept::numeric, 6) AS intercept,
       round((s).coefficients[1]::numeric, 6) AS b1, round((s).loss::numeric, 6) AS loss
  FROM (SELECT sepal_width > 2.8 AS g,
               ml.logistic_step((species = 'virginica')::int, ARRAY[petal_length], -10, ARRAY[2.0], 0.001) AS s
          FROM iris WHERE species <> 'setosa' GROUP BY 1) q
 ORDER BY g;
SELECT round((s).intercept::numeric, 6) AS intercept, round((s).coefficients[1]::numeric, 6) AS b1
  FROM (SELECT ml.logistic_step((species = 'virginica')::int, ARRAY[petal_length], -10, ARRAY[2.0], 0.001) AS s
          FROM iris WHERE species <> 'setosa' AND sepal_width > 2.8) q;

-- partial aggregates in parallel workers, and states merged afterwards,
-- give the step of a serial scan
CREATE TEMP TABLE agg_lserial AS
SELECT (ml.logistic_step((y > 2.0 + 0.3 * sin(i * 0.11))::int, ARRAY[x1 - 1000, x2, x3], 0.5, ARRAY[1.0, -1.0, 0.5], 0.001)).*
  FROM agg_big;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF)
SELECT ml.logistic_step((y > 2.0)::int, ARRAY[x1 - 1000, x2, x3], 0.5, ARRAY[1.0, -1.0, 0.5], 0.001) FROM agg_big;
CREATE TEMP TABLE agg_lparallel AS
SELECT (ml.logistic_step((y > 2.0 + 0.3 * sin(i * 0.11))::int, ARRAY[x1 - 1000, x2, x3], 0.5, ARRAY[1.0, -1.0, 0.5], 0.001)).*
  FROM agg_big;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
SELECT s.n = p.n AS same_n, s.n,
       abs(s.loss - p.loss) < 1e-12 AS same_loss,
       abs(s.intercept - p.intercept) < 1e-9 AS same_intercept,
       (SELECT bool_and(abs(a - b) < 1e-9) FROM unnest(s.coefficients, p.coefficients) u(a, b)) AS same_coefficients
  FROM agg_lserial s, agg_lparallel p;
SELECT (m).n = s.n AS same_n,
       abs((m).loss - s.loss) < 1e-12 AS same_loss,
       abs((m).gradient - s.gradient) < 1e-12 AS same_gradient,
       (SELECT bool_and(abs(a - b) < 1e-9) FROM unnest((m).coefficients, s.coefficients) u(a, b)) AS same_coefficients
  FROM (SELECT ml.logistic_step_merge(st) AS m
          FROM (SELECT ml.logistic_step_state((y > 2.0 + 0.3 * sin(i * 0.11))::int, ARRAY[x1 - 1000, x2, x3],
                                              0.5, ARRAY[1.0, -1.0, 0.5], 0.001) AS st
                  FROM agg_big GROUP BY i % 5) p) q, agg_lserial s;

-- NULL y or x skips the row; no rows, no step
SELECT (s).n FROM (SELECT ml.logistic_step(y, x, NULL, NULL, 0) AS s
                     FROM (VALUES (1, ARRAY[1.0]), (NULL, ARRAY[5.0]), (0, NULL), (0, ARRAY[2.0])) v(y, x)) q;
SELECT ml.logistic_step(1, ARRAY[1.0], NULL, NULL, 0) IS NULL AS no_rows FROM iris WHERE false;

-- errors
SELECT expect_error($$SELECT ml.logistic_step(y, ARRAY[1.0], NULL, NULL, 0) FROM (VALUES (2.0::float8)) v(y)$$);
SELECT expect_error($$SELECT ml.logistic_step(1, ARRAY[1.0], NULL, NULL, NULL)$$);
SELECT expect_error($$SELECT ml.logistic_step(1, ARRAY[1.0], NULL, NULL, -1)$$);
SELECT expect_error($$SELECT ml.logistic_step(1, ARRAY[1.0, 2.0], 0, ARRAY[1.0], 0)$$);
SELECT expect_error($$SELECT ml.logistic_step(1, ARRAY['NaN']::float8[], 0, NULL, 0)$$);
SELECT expect_error($$SELECT ml.logistic_step(1, ARRAY[1.0, NULL], 0, NULL, 0)$$);
SELECT expect_error($$SELECT ml.logistic_step(1, ARRAY[1.0], 'Infinity', NULL, 0)$$);
SELECT expect_error($$SELECT ml.logistic_step(1, ARRAY[1.0], 0, ARRAY['NaN']::float8[], 0)$$);
SELECT expect_error($$SELECT ml.logistic_step(y, ARRAY[1.0], b, NULL, 0) FROM (VALUES (1, 0.0), (0, 1.0)) v(y, b)$$);
SELECT expect_error($$SELECT ml.logistic_step(y, x, NULL, NULL, 0) FROM (VALUES (1, ARRAY[1.0]), (0, ARRAY[1.0, 2.0])) v(y, x)$$);
SELECT expect_error($$SELECT ml.logistic_step_merge(s) FROM (SELECT ml.logistic_step_state(1, ARRAY[1.0], 0, NULL, 0) UNION ALL SELECT ml.logistic_step_state(1, ARRAY[1.0], 1, NULL, 0)) v(s)$$);
SELECT expect_error($$SELECT ml.logistic_step_merge(s) FROM (VALUES ('\x0102'::bytea)) v(s)$$);
SELECT expect_error($$SELECT ml._logistic_step_final(ml.linear_fit_state(1.0, ARRAY[1.0]))$$);
-- a state whose sums are not numbers (here its loss) takes no step
SELECT expect_error($$SELECT ml.logistic_step_merge(overlay(s placing '\x000000000000f87f'::bytea from 45)) FROM (SELECT ml.logistic_step_state(1, ARRAY[1.0], 0, NULL, 0) s) v$$);
CREATE AGGREGATE agg_lforged(float8, float8[], float8, float8[], float8) (SFUNC = ml._logistic_step_trans, STYPE = bytea, INITCOND = '');
SELECT expect_error($$SELECT agg_lforged(1.0, ARRAY[1.0]::float8[], 0, NULL, 0)$$);
DROP AGGREGATE agg_lforged(float8, float8[], float8, float8[], float8);
-- the internal form is ml.train's only
SELECT expect_error($$SELECT ml._logistic_step(1, ARRAY[0.0]::float8[], 1.0::float8, 2.0::float8)$$);
SET ml.max_train_memory = '1MB';
SELECT expect_error($$SELECT ml.logistic_step(1, array_fill(1.0::float8, ARRAY[300]), NULL, NULL, 0)$$);
RESET ml.max_train_memory;
