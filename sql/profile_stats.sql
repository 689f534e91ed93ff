-- sql/profile_stats.sql: ml.numeric_stats and ml.approx_distinct, the
-- statistics of ml.profile as aggregates: serial, grouped, merged from
-- partial states, and in parallel workers.

-- ml.numeric_stats of a numeric column equals ml.profile's row for it
-- (406 values, so the sample is every value and the quantiles are exact);
-- the moments to 1e-12, since they are summed in another order
CREATE FUNCTION stats_vs_profile(col text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    p record;
    s ml.numeric_stats_result;
    bad text[] := '{}';
BEGIN
    SELECT * INTO STRICT p FROM ml.profile('cars') WHERE column_name = col;
    EXECUTE format('SELECT (ml.numeric_stats(%I)).* FROM cars', col) INTO s;
    IF (s.count, s.nulls, s.nan_count, s.inf_count, s.zeros, s.negatives, s.outliers, s.sample_size)
       IS DISTINCT FROM (p.count, p.nulls, p.nan_count, p.inf_count, p.zeros, p.negatives, p.outliers, p.sample_size) THEN
        bad := bad || 'counts'::text;
    END IF;
    IF s.min::text IS DISTINCT FROM p.min::float8::text OR s.max::text IS DISTINCT FROM p.max::float8::text THEN
        bad := bad || 'range'::text;
    END IF;
    IF abs(s.mean - p.mean) > 1e-12 * abs(p.mean) OR abs(s.stddev - p.stddev) > 1e-12 * p.stddev
       OR abs(s.skewness - p.skewness) > 1e-10 * abs(p.skewness) THEN
        bad := bad || 'moments'::text;
    END IF;
    IF (s.p01, s.p25, s.p50, s.p75, s.p99) IS DISTINCT FROM (p.p01, p.p25, p.p50, p.p75, p.p99) THEN
        bad := bad || 'quantiles'::text;
    END IF;
    IF s.histogram IS DISTINCT FROM p.histogram THEN
        bad := bad || 'histogram'::text;
    END IF;
    RETURN coalesce(array_to_string(bad, ', '), '') ;
END
$$;
SELECT col, stats_vs_profile(col) AS mismatches
  FROM unnest(ARRAY['miles_per_gallon', 'cylinders', 'displacement', 'horsepower', 'weight_in_lbs',
                    'acceleration']) col;

-- the counts of special values, against SQL: NULL, NaN, both infinities,
-- zeros (-0 among them) and negatives
CREATE TEMP TABLE specials(x float8);
INSERT INTO specials
SELECT CASE WHEN i % 50 = 0 THEN NULL WHEN i % 97 = 0 THEN 'NaN' WHEN i % 89 = 0 THEN 'Infinity'
            WHEN i % 83 = 0 THEN '-Infinity' WHEN i % 11 = 0 THEN 0 WHEN i % 13 = 0 THEN '-0'
            ELSE (i % 37) - 12.5 + i / 1000.0 END
  FROM generate_series(1, 5000) i;
CREATE TEMP TABLE specials_ref AS
SELECT count(x) AS count, count(*) - count(x) AS nulls,
       count(*) FILTER (WHERE x = 'NaN') AS nans, count(*) FILTER (WHERE x IN ('Infinity', '-Infinity')) AS infs,
       count(*) FILTER (WHERE x = 0) AS zeros, count(*) FILTER (WHERE x < 0) AS negatives,
       avg(x) FILTER (WHERE x NOT IN ('NaN', 'Infinity', '-Infinity')) AS mean,
       stddev(x) FILTER (WHERE x NOT IN ('NaN', 'Infinity', '-Infinity')) AS stddev,
       percentile_cont(ARRAY[0.01, 0.25, 0.5, 0.75, 0.99]) WITHIN GROUP (ORDER BY x)
           FILTER (WHERE x NOT IN ('NaN', 'Infinity', '-Infinity')) AS q
  FROM specials;
SELECT s.count = r.count AS count_ok, s.nulls = r.nulls AS nulls_ok, s.nan_count = r.nans AS nans_ok,
       s.inf_count = r.infs AS infs_ok, s.zeros = r.zeros AS zeros_ok, s.negatives = r.negatives AS negatives_ok,
       s.count, s.nulls, s.nan_count, s.inf_count, s.zeros, s.negatives, s.min, s.max,
       abs(s.mean - r.mean) < 1e-12 * abs(r.mean) AS mean_ok, abs(s.stddev - r.stddev) < 1e-12 * r.stddev AS stddev_ok,
       ARRAY[s.p01, s.p25, s.p50, s.p75, s.p99] = r.q AS quantiles_ok,
       s.sample_size = r.count - r.nans - r.infs AS sample_ok
  FROM (SELECT (ml.numeric_stats(x)).* FROM specials) s, specials_ref r;
-- NaN is above every number, as max() orders it; only NaN and NULL
SELECT (ml.numeric_stats(x)).max FROM specials WHERE x < 'Infinity' OR x = 'NaN';
SELECT (s).count, (s).nan_count, (s).min, (s).max, (s).mean, (s).p50, (s).histogram, (s).sample_size
  FROM (SELECT ml.numeric_stats(x) AS s FROM (VALUES ('NaN'::float8), (NULL), ('NaN')) v(x)) q;
-- only NULLs; no rows at all
SELECT (s).count, (s).nulls, (s).min, (s).max, (s).mean, (s).outliers, (s).sample_size, (s).histogram
  FROM (SELECT ml.numeric_stats(NULL::float8) AS s FROM generate_series(1, 3)) q;
SELECT ml.numeric_stats(x) IS NULL AS no_rows FROM specials WHERE false;
-- one finite value: no spread, one bin
SELECT (s).mean, (s).stddev, (s).skewness, (s).p01, (s).p99, (s).histogram
  FROM (SELECT ml.numeric_stats(x) AS s FROM (VALUES (2.5::float8), (2.5), ('-Infinity')) v(x)) q;
-- integers and numerics are cast to float8
SELECT (ml.numeric_stats(i)).mean, (ml.numeric_stats(i::numeric / 4)).max FROM generate_series(1, 9) i;

-- one set of statistics per group equals the statistics of each group alone
SELECT origin, (s).count, (s).nulls, (s).p50, (s).outliers, round((s).mean::numeric, 6) AS mean,
       (s).histogram -> 'counts' AS counts
  FROM (SELECT origin, ml.numeric_stats(horsepower) AS s FROM cars GROUP BY origin) g ORDER BY origin;
SELECT bool_and(g.s = (SELECT ml.numeric_stats(horsepower) FROM cars c WHERE c.origin = g.origin)) AS groups_ok
  FROM (SELECT origin, ml.numeric_stats(horsepower) AS s FROM cars GROUP BY origin) g;

-- partial states merged (as from several servers) give the statistics of
-- all the values: exactly for the counts, quantiles and histogram while
-- the sample holds every value
CREATE TEMP TABLE part_states AS
SELECT cylinders, ml.numeric_stats_state(weight_in_lbs) AS st FROM cars GROUP BY cylinders;
SELECT (m).count = (w).count AS count_ok, (m).p25 = (w).p25 AND (m).p50 = (w).p50 AND (m).p99 = (w).p99 AS quantiles_ok,
       (m).histogram = (w).histogram AS histogram_ok, (m).outliers = (w).outliers AS outliers_ok,
       abs((m).mean - (w).mean) < 1e-12 * (w).mean AS mean_ok,
       abs((m).stddev - (w).stddev) < 1e-12 * (w).stddev AS stddev_ok,
       abs((m).skewness - (w).skewness) < 1e-10 * abs((w).skewness) AS skewness_ok
  FROM (SELECT ml.numeric_stats_merge(st) AS m FROM part_states) a,
       (SELECT ml.numeric_stats(weight_in_lbs) AS w FROM cars) b;
-- states kept in a table (4-byte aligned on disk) merge the same way
SELECT (ml.numeric_stats_merge(st)).count FROM part_states WHERE cylinders IN (4, 8);

-- beyond 100,000 finite values the figures come from a uniform sample of
-- 100,000: 1..300,000 in a shuffled order; every quantile's rank within
-- 0.0052 (the bound the reference gives, DKW at 1%), the counts exact, the
-- moments to 1e-12, the histogram's counts within 1,000 of 30,000 each
-- (their standard error is about 230) and summing to 300,000
CREATE TABLE big AS SELECT i::float8 AS x, i % 4 AS part FROM generate_series(1, 300000) i ORDER BY md5(i::text);
CREATE FUNCTION big_check(s ml.numeric_stats_result) RETURNS text LANGUAGE sql AS $$
SELECT concat_ws(', ',
    CASE WHEN s.count <> 300000 OR s.sample_size <> 100000 OR s.min <> 1 OR s.max <> 300000 THEN 'counts' END,
    CASE WHEN abs(s.mean - 150000.5) > 1e-7 OR abs(s.stddev - sqrt(300000.0 * 300001 / 12)) > 1e-6 OR abs(s.skewness) > 1e-9 THEN 'moments' END,
    CASE WHEN abs(s.p01 - 3000) > 1560 OR abs(s.p25 - 75000) > 1560 OR abs(s.p50 - 150000) > 1560
           OR abs(s.p75 - 225000) > 1560 OR abs(s.p99 - 297000) > 1560 THEN 'quantiles' END,
    CASE WHEN s.outliers <> 0 THEN 'outliers' END,
    CASE WHEN (SELECT sum(c::bigint) FROM jsonb_array_elements_text(s.histogram -> 'counts') c) <> 300000
           OR (SELECT max(abs(c::bigint - 30000)) FROM jsonb_array_elements_text(s.histogram -> 'counts') c) > 1000
           OR (s.histogram -> 'bounds' ->> 0)::float8 <> 1 OR (s.histogram -> 'bounds' ->> 10)::float8 <> 300000
        THEN 'histogram' END)
$$;
SELECT big_check(ml.numeric_stats(x)) AS serial FROM big;
-- four parts of 75,000 (each sample holds all of its part) merged: the
-- merge draws the 100,000 of the union
SELECT big_check(ml.numeric_stats_merge(st)) AS merged
  FROM (SELECT ml.numeric_stats_state(x) AS st FROM big GROUP BY part) s;
-- parts larger than the sample: each sample is drawn, then merged
SELECT big_check(ml.numeric_stats_merge(st)) AS merged_samples
  FROM (SELECT ml.numeric_stats_state(x) AS st FROM big GROUP BY part < 2) s;

-- in parallel workers: a Partial Aggregate, and the same statistics
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
ALTER TABLE big SET (parallel_workers = 2);
EXPLAIN (COSTS OFF) SELECT ml.numeric_stats(x), ml.approx_distinct(x) FROM big;
SELECT big_check(ml.numeric_stats(x)) AS parallel FROM big;
SELECT col, stats_vs_profile(col) AS parallel_mismatches
  FROM unnest(ARRAY['miles_per_gallon', 'horsepower', 'acceleration']) col;
RESET parallel_leader_participation;
RESET max_parallel_workers_per_gather;
RESET min_parallel_table_scan_size;
RESET parallel_tuple_cost;
RESET parallel_setup_cost;

-- ml.approx_distinct: against count(DISTINCT) within 3% (the sketch's
-- standard error is about 0.8%)
SELECT abs(ml.approx_distinct(x) - 300000) < 9000 AS float8_ok, abs(ml.approx_distinct(x::int) - 300000) < 9000 AS int_ok,
       abs(ml.approx_distinct(md5(x::text)) - 300000) < 9000 AS text_ok,
       abs(ml.approx_distinct(part) - 4) = 0 AS small_ok
  FROM big;
-- few values are counted almost exactly (linear counting)
SELECT ml.approx_distinct(name) AS names, count(DISTINCT name) AS exact_names,
       ml.approx_distinct(origin) AS origins, ml.approx_distinct(year) AS years, ml.approx_distinct(horsepower) AS hp,
       count(DISTINCT horsepower) AS exact_hp
  FROM cars;
-- the type's equality: 1.0 = 1.00, -0 = 0, every NaN one value, text by
-- its collation; NULL is not a value; no values give 0
SELECT ml.approx_distinct(v) FROM (VALUES (1.0::numeric), (1.00), (2), (NULL)) t(v);
SELECT ml.approx_distinct(v) FROM (VALUES ('0'::float8), ('-0'), ('NaN'), ('NaN'), (NULL)) t(v);
SELECT ml.approx_distinct(v) FROM (VALUES (1), (NULL)) t(v) WHERE v IS NULL;
SELECT ml.approx_distinct(v) FROM (VALUES (ARRAY[1, 2]), (ARRAY[1, 2]), (ARRAY[2, 1])) t(v);
-- a domain is counted as its base type; text with a case-insensitive
-- collation counts 'Rain', 'rain' and 'RAIN' as one
CREATE DOMAIN short_text AS text CHECK (length(VALUE) < 10);
SELECT ml.approx_distinct(v::short_text) FROM (VALUES ('a'), ('a'), ('b')) t(v);
CREATE COLLATION stats_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
SELECT ml.approx_distinct(v COLLATE stats_ci) AS ci, ml.approx_distinct(v) AS cs
  FROM (VALUES ('Rain'), ('rain'), ('RAIN'), ('sun')) t(v);
DROP COLLATION stats_ci;
DROP DOMAIN short_text;
-- a type without a hash operator class is compared by its text form
SELECT ml.approx_distinct(v) FROM (VALUES ('{"a": 1}'::json), ('{"a": 1}'), ('{"a":1}')) t(v);
-- sketches merge by their registers: merged parts give exactly the
-- estimate of one scan, serial or parallel
SELECT (SELECT ml.approx_distinct_merge(st) FROM (SELECT ml.approx_distinct_state(x) AS st FROM big GROUP BY part) s)
       = (SELECT ml.approx_distinct(x) FROM big) AS merge_ok;
SET parallel_setup_cost = 0;
SET min_parallel_table_scan_size = 0;
SELECT (SELECT ml.approx_distinct(x) FROM big)
       = (SELECT ml.approx_distinct_merge(st) FROM (SELECT ml.approx_distinct_state(x) AS st FROM big GROUP BY part) s)
       AS parallel_ok;
RESET min_parallel_table_scan_size;
RESET parallel_setup_cost;
SELECT origin, ml.approx_distinct(name) AS names FROM cars GROUP BY origin ORDER BY origin;

-- errors
SELECT expect_error($$SELECT ml.numeric_stats_merge('\x00'::bytea)$$);
SELECT expect_error($$SELECT ml.numeric_stats_merge(decode(repeat('00', 200), 'hex'))$$);
-- a state whose counts do not add up
SELECT expect_error($$SELECT ml.numeric_stats_merge(overlay(st placing '\x07' from 21 for 1))
                       FROM (SELECT ml.numeric_stats_state(x) AS st FROM specials) s$$);
SELECT expect_error($$SELECT ml.numeric_stats_merge(st) FROM (SELECT ml.approx_distinct_state(1) AS st) s$$);
SELECT expect_error($$SELECT ml.approx_distinct_merge(st) FROM (SELECT ml.numeric_stats_state(1) AS st) s$$);
-- a register beyond the largest run a 64-bit hash can give
SELECT expect_error($$SELECT ml.approx_distinct_merge(overlay(st placing '\x40' from 9 for 1))
                       FROM (SELECT ml.approx_distinct_state(1) AS st) s$$);
-- an aggregate of the transition functions with a forged initial state
CREATE AGGREGATE forged_distinct(anyelement) (SFUNC = ml._approx_distinct_trans, STYPE = bytea, INITCOND = '\x31484c4d00');
CREATE AGGREGATE forged_stats(float8) (SFUNC = ml._numeric_stats_trans, STYPE = bytea,
    INITCOND = '\x314e4c4da086010000000000');
SELECT expect_error($$SELECT forged_distinct(x) FROM generate_series(1, 3) x$$);
SELECT expect_error($$SELECT forged_stats(x) FROM generate_series(1, 3) x$$);
DROP AGGREGATE forged_distinct(anyelement);
DROP AGGREGATE forged_stats(float8);
SELECT expect_error($$SELECT ml._numeric_stats_trans(NULL, 1)$$);
SELECT expect_error($$SELECT ml._numeric_stats_combine(NULL, NULL)$$);
SELECT expect_error($$SELECT ml._approx_distinct_trans(NULL, 1)$$);
SELECT expect_error($$SELECT ml._approx_distinct_combine(NULL, NULL)$$);
SELECT expect_error($$SELECT ml.numeric_stats('a'::text)$$);

DROP TABLE big;

-- values near the ends of float8: the moments overflow to NaN and the
-- interpolated median to Infinity (no error), and the state stays valid
SELECT (s).count, (s).min, (s).max, (s).p50, (s).mean, (s).stddev
  FROM (SELECT ml.numeric_stats(x) AS s FROM (VALUES (1e308::float8), (-1e308), (1e308), (-1e308)) v(x)) q;
SELECT (ml.numeric_stats_merge(st)).count
  FROM (SELECT ml.numeric_stats_state(x) AS st FROM (VALUES (1e308::float8), (-1e308), (1e308)) v(x)) q;
