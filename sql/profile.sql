-- sql/profile.sql: ml.profile, one row of statistics per column of a table
-- or query, checked value by value against SQL aggregates over the same
-- rows.

-- profile_mismatches compares the profile of one column of a table with
-- the same statistics computed in SQL, and returns the names of the fields
-- that differ: '{}' when every value agrees.  min and max are the first
-- and last values in the type's order (min() and max() do not take every
-- type).  x is the column as float8
-- (datetimes: days since 1970-01-01), NULL for columns without moments.
-- These tables have fewer values than the sample, so quantiles, outliers
-- and histograms are exact and must equal percentile_cont and friends.
CREATE FUNCTION profile_mismatches(tbl text, col text, x text DEFAULT NULL)
RETURNS text[] LANGUAGE plpgsql AS $fn$
DECLARE
    p record;
    s record;
    m record;
    bad text[] := '{}';
BEGIN
    SELECT * INTO STRICT p FROM ml.profile(tbl) WHERE column_name = col;
    EXECUTE format($q$
        SELECT count(%1$I) AS count, count(*) - count(%1$I) AS nulls,
               (count(*) - count(%1$I))::float8 / count(*) AS null_fraction,
               count(DISTINCT %1$I) AS distinct,
               (SELECT %1$I::text AS v FROM %2$I WHERE %1$I IS NOT NULL ORDER BY %1$I LIMIT 1) AS min,
               (SELECT %1$I::text AS v FROM %2$I WHERE %1$I IS NOT NULL ORDER BY %1$I DESC LIMIT 1) AS max,
               (SELECT coalesce(jsonb_agg(jsonb_build_object('value', v::text, 'count', n) ORDER BY n DESC, v), '[]')
                  FROM (SELECT %1$I AS v, count(*) AS n FROM %2$I WHERE %1$I IS NOT NULL
                         GROUP BY 1 ORDER BY n DESC, v LIMIT 10) top) AS top_values
          FROM %2$I$q$, col, tbl) INTO s;
    IF p.count IS DISTINCT FROM s.count THEN bad := bad || 'count'::text; END IF;
    IF p.nulls IS DISTINCT FROM s.nulls THEN bad := bad || 'nulls'::text; END IF;
    IF p.null_fraction IS DISTINCT FROM s.null_fraction THEN bad := bad || 'null_fraction'::text; END IF;
    IF p."distinct" IS DISTINCT FROM s.distinct THEN bad := bad || 'distinct'::text; END IF;
    IF p.min IS DISTINCT FROM s.min THEN bad := bad || 'min'::text; END IF;
    IF p.max IS DISTINCT FROM s.max THEN bad := bad || 'max'::text; END IF;
    IF p.top_values IS DISTINCT FROM s.top_values THEN bad := bad || 'top_values'::text; END IF;

    IF x IS NULL THEN
        IF num_nonnulls(p.mean, p.stddev, p.skewness, p.p01, p.p25, p.p50, p.p75, p.p99, p.zeros,
                        p.negatives, p.nan_count, p.inf_count, p.outliers, p.sample_size, p.histogram) > 0 THEN
            bad := bad || 'moments of a column without them'::text;
        END IF;
        RETURN bad;
    END IF;

    EXECUTE format($q$
        WITH v AS (SELECT (%1$s)::float8 AS x FROM %2$I WHERE %3$I IS NOT NULL),
             f AS (SELECT x FROM v WHERE x NOT IN ('NaN', 'Infinity', '-Infinity')),
             a AS (SELECT count(*) AS n, avg(x) AS mean, stddev(x) AS stddev, min(x) AS lo, max(x) AS hi,
                          percentile_cont(ARRAY[0.01, 0.25, 0.5, 0.75, 0.99]) WITHIN GROUP (ORDER BY x) AS q
                     FROM f)
        SELECT a.*,
               (SELECT sqrt(a.n) * sum((x - a.mean) ^ 3) / power(sum((x - a.mean) ^ 2), 1.5) FROM f) AS skewness,
               (SELECT count(*) FILTER (WHERE x = 0) FROM v) AS zeros,
               (SELECT count(*) FILTER (WHERE x < 0) FROM v) AS negatives,
               (SELECT count(*) FILTER (WHERE x = 'NaN') FROM v) AS nans,
               (SELECT count(*) FILTER (WHERE x IN ('Infinity', '-Infinity')) FROM v) AS infs,
               (SELECT count(*) FROM f WHERE x < a.q[2] - 1.5 * (a.q[4] - a.q[2])
                                          OR x > a.q[4] + 1.5 * (a.q[4] - a.q[2])) AS outliers,
               CASE WHEN a.hi > a.lo THEN
                   jsonb_build_object(
                       'bounds', (SELECT jsonb_agg(CASE WHEN i = 10 THEN a.hi ELSE a.lo + (a.hi - a.lo) * i / 10 END
                                                   ORDER BY i) FROM generate_series(0, 10) i),
                       'counts', (SELECT jsonb_agg(coalesce(c.n, 0) ORDER BY b)
                                    FROM generate_series(0, 9) b
                                    LEFT JOIN (SELECT least(floor(10 * ((x - a.lo) / (a.hi - a.lo))), 9) AS bin,
                                                      count(*) AS n
                                                 FROM f GROUP BY 1) c ON c.bin = b))
               WHEN a.n > 0 THEN
                   jsonb_build_object('bounds', jsonb_build_array(a.lo, a.hi), 'counts', jsonb_build_array(a.n))
               END AS histogram
          FROM a$q$, x, tbl, col) INTO m;
    IF p.sample_size IS DISTINCT FROM m.n THEN bad := bad || 'sample_size'::text; END IF;
    IF abs(p.mean - m.mean) > 1e-12 * greatest(1, abs(m.mean)) OR (p.mean IS NULL) <> (m.mean IS NULL) THEN
        bad := bad || 'mean'::text;
    END IF;
    IF abs(p.stddev - m.stddev) > 1e-10 * greatest(1, m.stddev) OR (p.stddev IS NULL) <> (m.stddev IS NULL) THEN
        bad := bad || 'stddev'::text;
    END IF;
    IF abs(p.skewness - m.skewness) > 1e-9 * greatest(1, abs(m.skewness))
       OR (p.skewness IS NULL) <> (m.skewness IS NULL) THEN
        bad := bad || 'skewness'::text;
    END IF;
    IF ARRAY[p.p01, p.p25, p.p50, p.p75, p.p99] IS DISTINCT FROM coalesce(m.q, array_fill(NULL::float8, ARRAY[5])) THEN bad := bad || 'quantiles'::text; END IF;
    IF p.zeros IS DISTINCT FROM m.zeros AND p.zeros IS NOT NULL THEN bad := bad || 'zeros'::text; END IF;
    IF p.negatives IS DISTINCT FROM m.negatives AND p.negatives IS NOT NULL THEN bad := bad || 'negatives'::text; END IF;
    IF p.nan_count IS DISTINCT FROM m.nans THEN bad := bad || 'nan_count'::text; END IF;
    IF p.inf_count IS DISTINCT FROM m.infs THEN bad := bad || 'inf_count'::text; END IF;
    IF p.outliers IS DISTINCT FROM m.outliers THEN bad := bad || 'outliers'::text; END IF;
    IF p.histogram IS DISTINCT FROM m.histogram THEN bad := bad || 'histogram'::text; END IF;
    RETURN bad;
END
$fn$;

-- the float8 expression of a profiled column: numbers as they are, dates
-- as days since 1970-01-01, nothing for other kinds
CREATE FUNCTION profile_x(col text, kind text, type text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN kind = 'numeric' THEN quote_ident(col)
                WHEN type = 'date' THEN quote_ident(col) || ' - DATE ''1970-01-01'''
                WHEN kind = 'datetime' THEN 'extract(epoch FROM ' || quote_ident(col) || ') / 86400' END
$$;

-- cars: NULLs in horsepower and miles_per_gallon, categorical origin, text
-- name (311 distinct names in 406 rows: high cardinality, but not the 95%
-- that makes a likely identifier), date year
SELECT column_name, type, kind, count, nulls, round(null_fraction::numeric, 4) AS null_fraction,
       "distinct", min, max, warnings
  FROM ml.profile('cars');
SELECT column_name, profile_mismatches('cars', column_name, profile_x(column_name, kind, type)) AS mismatches
  FROM ml.profile('cars');
SELECT column_name, round(mean::numeric, 6) AS mean, round(stddev::numeric, 6) AS stddev,
       round(skewness::numeric, 6) AS skewness, p01, p25, p50, p75, p99, zeros, outliers, sample_size
  FROM ml.profile('cars') WHERE kind IN ('numeric', 'datetime');
SELECT top_values FROM ml.profile('cars') WHERE column_name = 'origin';
SELECT histogram FROM ml.profile('cars') WHERE column_name = 'cylinders';

-- seattle_weather: a date per day (unique, but dates are not identifiers),
-- skewed precipitation, a categorical target
SELECT column_name, type, kind, count, "distinct", min, max, round(skewness::numeric, 6) AS skewness,
       p50, zeros, outliers, warnings
  FROM ml.profile('seattle_weather');
SELECT column_name, profile_mismatches('seattle_weather', column_name, profile_x(column_name, kind, type)) AS mismatches
  FROM ml.profile('seattle_weather');
SELECT top_values FROM ml.profile('seattle_weather') WHERE column_name = 'weather';

-- a deliberately dirty table: padded and mixed-case categories, duplicated
-- rows (under new ids), outliers, NaN and infinities, a constant column, a
-- mostly NULL column, an id, and text codes more or less unique
CREATE TABLE prof_dirty AS
SELECT i AS id,
       (ARRAY[' Rain', 'rain', 'RAIN ', 'Sun', 'sun', 'Fog', NULL, 'fog  '])[1 + i % 8] COLLATE "C" AS category,
       CASE WHEN i = 7 THEN 'NaN'::float8
            WHEN i = 13 THEN 'Infinity'
            WHEN i = 21 THEN '-Infinity'
            WHEN i IN (30, 31) THEN 1000.0 + i
            ELSE ((i * 37) % 50) / 4.0 - 3 END AS reading,
       CASE WHEN i % 5 <> 0 THEN round((i % 9) * 1.25, 2) END AS amount,
       'same'::text AS constant_col,
       CASE WHEN i % 3 = 0 THEN i END AS mostly_null,
       'C' || lpad(i::text, 3, '0') AS code
  FROM generate_series(1, 60) i;
INSERT INTO prof_dirty
SELECT 60 + id, category, reading, amount, constant_col, mostly_null, code FROM prof_dirty WHERE id <= 5;
ALTER TABLE prof_dirty ADD COLUMN ticket text COLLATE "C";
UPDATE prof_dirty SET ticket = 'T-' || id;

SELECT column_name, type, kind, count, nulls, "distinct", min, max, warnings
  FROM ml.profile('prof_dirty');
SELECT column_name, profile_mismatches('prof_dirty', column_name, profile_x(column_name, kind, type)) AS mismatches
  FROM ml.profile('prof_dirty');
SELECT column_name, round(mean::numeric, 6) AS mean, round(skewness::numeric, 6) AS skewness,
       p25, p50, p75, zeros, negatives, nan_count, inf_count, outliers, sample_size
  FROM ml.profile('prof_dirty') WHERE kind = 'numeric';
SELECT top_values FROM ml.profile('prof_dirty') WHERE column_name = 'category';
SELECT histogram FROM ml.profile('prof_dirty') WHERE column_name = 'reading';
-- the warnings follow their definitions, checked here in SQL
SELECT column_name,
       ("distinct" = 1 AND nulls = 0 OR count = 0) = ('constant' = ANY (warnings)) AS constant_ok,
       (null_fraction > 0.5) = ('high_null_fraction' = ANY (warnings)) AS null_fraction_ok,
       (kind = 'categorical' AND "distinct" > 50 AND "distinct" > 0.5 * count)
           = ('high_cardinality' = ANY (warnings)) AS cardinality_ok,
       (count > 10 AND (kind = 'categorical' AND "distinct" >= 0.75 * count
                        OR type = 'integer' AND "distinct" = count))
           = ('likely_identifier' = ANY (warnings)) AS identifier_ok,
       coalesce(kind = 'numeric' AND abs(skewness) > 2, false) = ('skewed' = ANY (warnings)) AS skewed_ok
  FROM ml.profile('prof_dirty');
SELECT count(DISTINCT lower(btrim(category))) AS normalised, count(DISTINCT category) AS raw FROM prof_dirty;

-- more types: bool is categorical, timestamps are datetimes in days,
-- arrays, jsonb and uuid are profiled as arrays and others; -0 is 0
SET timezone = 'UTC';
CREATE TYPE prof_mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE prof_types AS
SELECT i % 3 = 0 AS flag,
       TIMESTAMPTZ '2024-01-01 00:00:00+00' + i * interval '6 hours' AS ts,
       ARRAY[i % 4, 1] AS arr,
       jsonb_build_object('k', i % 2) AS doc,
       md5(i::text)::uuid AS uid,
       (ARRAY['sad', 'ok', 'happy', 'ok'])[1 + i % 4]::prof_mood AS mood,
       CASE WHEN i % 4 = 0 THEN -0.0::float8 ELSE (i % 4)::float8 END AS signed_zero,
       (i % 7)::numeric(6, 2) AS num,
       NULL::int AS nothing
  FROM generate_series(1, 24) i;
SELECT column_name, type, kind, count, nulls, "distinct", min, max, top_values, warnings
  FROM ml.profile('prof_types');
SELECT column_name, profile_mismatches('prof_types', column_name, profile_x(column_name, kind, type)) AS mismatches
  FROM ml.profile('prof_types') WHERE column_name IN ('flag', 'ts', 'mood', 'num', 'nothing');
-- -0 is the value 0 (SQL may print either as the representative of both)
SELECT "distinct", zeros, negatives, min, top_values -> 0 AS top
  FROM ml.profile('prof_types') WHERE column_name = 'signed_zero';
SELECT round(mean::numeric, 6) AS mean_days, DATE '1970-01-01' + p50::int AS median_day, histogram -> 'counts' AS counts
  FROM ml.profile('prof_types') WHERE column_name = 'ts';
-- types without a hash opclass (json, point) and anonymous records are
-- counted by their text form; those that cannot be ordered have no range
SELECT column_name, kind, count, "distinct", min, max, top_values -> 0 AS top
  FROM ml.profile($$SELECT ('{"k": ' || i % 2 || '}')::json AS js, point(i % 3, 0) AS pt,
                           row(i % 2, 'x') AS rec FROM generate_series(1, 12) i$$);
RESET timezone;

-- a query is profiled like a table; an empty source gives a row per
-- column with count 0 and no statistics
SELECT column_name, kind, count, "distinct", round(mean::numeric, 6) AS mean, warnings
  FROM ml.profile('SELECT origin, horsepower FROM cars WHERE origin = ''Japan''');
SELECT column_name, count, nulls, null_fraction, "distinct", min, max, mean, stddev, p50, zeros,
       outliers, sample_size, top_values, histogram, warnings
  FROM ml.profile('SELECT * FROM prof_dirty WHERE false') WHERE column_name IN ('id', 'category', 'reading');

-- more finite values than the sample: quantiles, outliers and histogram
-- come from a 100,000-value sample, within its rank error (about
-- 1/sqrt(100000) = 0.003); counts, moments and range stay exact
CREATE TABLE prof_big AS SELECT i::float8 AS x, i % 100 AS k FROM generate_series(1, 300000) i;
SELECT count, "distinct", min, max, mean, sample_size,
       abs(p01 - 3000) < 0.01 * 300000 AS p01_ok, abs(p50 - 150000) < 0.01 * 300000 AS p50_ok,
       abs(p99 - 297000) < 0.01 * 300000 AS p99_ok, outliers,
       (SELECT sum(c::bigint) FROM jsonb_array_elements_text(histogram -> 'counts') c) AS histogram_total,
       (SELECT bool_and(abs(c::bigint - 30000) < 1500) FROM jsonb_array_elements_text(histogram -> 'counts') c)
           AS bins_ok
  FROM ml.profile('prof_big') WHERE column_name = 'x';
SELECT abs(stddev - (SELECT stddev(x) FROM prof_big)) < 1e-6 AS stddev_exact
  FROM ml.profile('prof_big') WHERE column_name = 'x';
-- the sample is seeded: the same rows give the same quantiles
SELECT (SELECT ARRAY[p01, p25, p50, p75, p99] FROM ml.profile('prof_big') WHERE column_name = 'x')
     = (SELECT ARRAY[p01, p25, p50, p75, p99] FROM ml.profile('prof_big') WHERE column_name = 'x') AS repeatable;

-- distinct values past ml.max_train_memory: the table stops growing, the
-- values it holds keep exact counts, the rest is estimated (HyperLogLog)
SET ml.max_train_memory = '64kB';
SELECT column_name, count, "distinct" = expected AS exact, abs("distinct" - expected) < 0.03 * expected AS close,
       top_values -> 0 AS top, warnings
  FROM ml.profile('prof_big'), LATERAL (SELECT CASE column_name WHEN 'x' THEN 300000 ELSE 100 END AS expected) e;
RESET ml.max_train_memory;

-- errors
SELECT expect_error($$SELECT * FROM ml.profile('no_such_table')$$);
SELECT expect_error($$SELECT * FROM ml.profile('')$$);
SELECT expect_error($$SELECT * FROM ml.profile('WITH d AS (DELETE FROM prof_dirty RETURNING *) SELECT * FROM d')$$);
SELECT expect_error($$SELECT * FROM ml.profile('SELECT 1; SELECT 2')$$);
SELECT expect_error($$SELECT * FROM ml.profile('SELECT * FROM prof_dirty FOR UPDATE')$$);
SELECT expect_error($$SELECT * FROM ml.profile('SELECT 1e400::numeric AS huge')$$);
SELECT count(*) AS rows_kept FROM prof_dirty;
SELECT count(*) AS no_rows FROM ml.profile(NULL);
