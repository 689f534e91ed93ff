-- Model monitoring: the baseline a model stores, and ml.monitor's drift and
-- data-quality checks against it (reference p-values from scipy.stats.chi2).
SELECT setval('ml.models_id_seq', 140000, false);
SET extra_float_digits = 0;

-- 4000 training rows: x uniform on 0.00 .. 9.99, c four values equally often
CREATE TABLE mon_train AS
SELECT (g % 1000) / 100.0 AS x, (ARRAY['a', 'b', 'c', 'd'])[1 + g % 4] AS c,
       2 * ((g % 1000) / 100.0) + (g % 4) AS y
  FROM generate_series(0, 3999) g;
SELECT model_id, deployed FROM ml.train('mon', 'mon_train', 'y', 'linear');

-- the baseline: counts, moments, deciles with their fractions, category fractions
SELECT feature, kind, type, count, null_fraction, round(mean::numeric, 6) AS mean,
       round(std::numeric, 6) AS std, min, max, other
  FROM ml.baseline('mon');
SELECT edges, fractions FROM ml.baseline('mon') WHERE feature = 'x';
SELECT categories FROM ml.baseline('mon') WHERE feature = 'c';

-- the same distribution: nothing flagged, chi-squared p = 1 (counts as expected)
CREATE TABLE mon_same AS
SELECT ((g * 7) % 1000) / 100.0 AS x, (ARRAY['a', 'b', 'c', 'd'])[1 + g % 4] AS c
  FROM generate_series(0, 1999) g;
SELECT feature, "check", round(value::numeric, 6) AS value, threshold, violated
  FROM ml.monitor('mon', 'mon_same') ORDER BY feature, "check";

-- a shifted mean: PSI and Jensen-Shannon flag x, and values leave the range
CREATE TABLE mon_shift AS SELECT x + 3 AS x, c FROM mon_same;
SELECT feature, "check", round(value::numeric, 4) AS value, violated
  FROM ml.monitor('mon', 'mon_shift') WHERE feature = 'x' ORDER BY "check";
SELECT detail->'current' AS current_bins
  FROM ml.monitor('mon', 'mon_shift') WHERE feature = 'x' AND "check" = 'psi';

-- re-weighted categories 560/480/480/480: chi2 = 9.6 on 3 degrees of freedom,
-- p = 0.02229098312870182 (scipy); flagged at 0.05, not at the default 0.01
CREATE TABLE mon_cat AS
SELECT x, CASE WHEN g < 560 THEN 'a' WHEN g < 1040 THEN 'b' WHEN g < 1520 THEN 'c' ELSE 'd' END AS c
  FROM (SELECT row_number() OVER () - 1 AS g, x FROM mon_same) s;
SELECT "check", abs(value - 0.02229098312870182) < 1e-12 AS p_as_scipy, violated, detail
  FROM ml.monitor('mon', 'mon_cat') WHERE feature = 'c' AND "check" = 'chi2_p';
SELECT "check", round(value::numeric, 6) AS value, violated
  FROM ml.monitor('mon', 'mon_cat', '{"features": {"c": {"chi2_p": 0.05, "linf": 0.02}}}')
 WHERE feature = 'c' AND "check" IN ('chi2_p', 'linf') ORDER BY "check";

-- a strong re-weighting: chi2 = 240, p = 9.517135183222611e-52 (scipy)
CREATE TABLE mon_cat2 AS
SELECT x, CASE WHEN g < 800 THEN 'a' WHEN g < 1200 THEN 'b' WHEN g < 1600 THEN 'c' ELSE 'd' END AS c
  FROM (SELECT row_number() OVER () - 1 AS g, x FROM mon_same) s;
SELECT abs(value / 9.517135183222611e-52 - 1) < 1e-9 AS p_as_scipy, violated
  FROM ml.monitor('mon', 'mon_cat2') WHERE feature = 'c' AND "check" = 'chi2_p';

-- data quality: NULLs, unseen values, a renamed column, a changed type, no rows
CREATE TABLE mon_dq AS
SELECT CASE WHEN g % 4 = 0 THEN NULL ELSE x END AS x,
       CASE WHEN g % 5 = 0 THEN 'new' ELSE c END AS c
  FROM (SELECT row_number() OVER () - 1 AS g, x, c FROM mon_same) s;
SELECT feature, "check", round(value::numeric, 4) AS value, violated, detail
  FROM ml.monitor('mon', 'mon_dq') WHERE "check" IN ('null_increase', 'unseen', 'chi2_p')
 ORDER BY feature, "check";
SELECT feature, "check", value, violated, detail
  FROM ml.monitor('mon', 'SELECT x AS x2, c::varchar AS c FROM mon_same') WHERE violated;
SELECT feature, "check", value, violated, detail
  FROM ml.monitor('mon', 'SELECT x::text AS x, c FROM mon_same') WHERE violated;
SELECT feature, "check", value, threshold, violated, detail
  FROM ml.monitor('mon', 'SELECT * FROM mon_same WHERE false');

-- the counts are a parallel-safe aggregate: with parallel query forced, the
-- plan has a Partial Aggregate and the counts are those of a serial scan
SELECT baseline AS mon_baseline FROM ml.models WHERE id = 140000 \gset
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT ml._monitor_counts(:'mon_baseline'::jsonb, ARRAY['c', 'x'], c, x) FROM mon_shift;
CREATE TEMP TABLE mon_parallel AS
SELECT ml._monitor_counts(:'mon_baseline'::jsonb, ARRAY['c', 'x'], c, x) AS counts FROM mon_shift;
RESET max_parallel_workers_per_gather;
SET max_parallel_workers_per_gather = 0;
SELECT counts = (SELECT ml._monitor_counts(:'mon_baseline'::jsonb, ARRAY['c', 'x'], c, x) FROM mon_shift) AS same_counts,
       counts[1] AS rows
  FROM mon_parallel;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
SELECT ml._monitor_counts(:'mon_baseline'::jsonb, ARRAY['nope'], x) FROM mon_shift;
-- whatever a caller passes, an error and no crash
SELECT ml._monitor_counts('{"columns": {"a": {"kind": "numeric", "source": "a", "element": 0}}}', ARRAY['a'], 1);
SELECT ml._monitor_counts('{"columns": {"a": {"kind": "odd", "source": "a", "element": 0, "type": "int"}}}', ARRAY['a'], 1);
SELECT ml._monitor_counts(:'mon_baseline'::jsonb, ARRAY['c', 'c'], c, c) FROM mon_shift;
SELECT ml._monitor_counts(:'mon_baseline'::jsonb, ARRAY['c'], 42) FROM mon_shift;
SELECT ml._monitor_counts(:'mon_baseline'::jsonb, ARRAY['x'], 'text'::text) FROM mon_shift;
SELECT ml._monitor_counts(:'mon_baseline'::jsonb, ARRAY['x', 'c'], x) FROM mon_shift;

-- every run is recorded; one with violations raises an alert
SELECT rows, checks, violations FROM ml.monitor_runs ORDER BY id;
SELECT kind, severity, message, jsonb_array_length(details->'violations') AS violations
  FROM ml.alerts WHERE kind = 'monitor' ORDER BY id;

-- false alarms: 20 fresh samples of the training distribution, each of 1000
-- rows drawn with a fixed seed; at most 1 may be flagged
SELECT setseed(0.42);
CREATE TABLE mon_fresh AS
SELECT s AS sample, floor(random() * 1000) / 100.0 AS x, (ARRAY['a', 'b', 'c', 'd'])[1 + floor(random() * 4)::int] AS c
  FROM generate_series(1, 20) s, generate_series(1, 1000) g;
SELECT count(*) FILTER (WHERE flagged) <= 1 AS at_most_one_false_alarm
  FROM (SELECT s, EXISTS (SELECT 1 FROM ml.monitor('mon', format('SELECT x, c FROM mon_fresh WHERE sample = %s', s))
                           WHERE violated) AS flagged
          FROM generate_series(1, 20) s) r;

-- bad input
SELECT * FROM ml.monitor('nope', 'mon_same');
SELECT * FROM ml.monitor('mon', 'mon_same', '{"features": {"zz": {"psi": 0.3}}}');
SELECT * FROM ml.monitor('mon', 'mon_same', '{"thresholds": {"psi": -1}}');
SELECT * FROM ml.monitor('mon', 'mon_same', '{"thresholds": {"chi2_p": 1}}');
SELECT * FROM ml.monitor('mon', 'mon_same', '{"thresholds": {"bogus": 0.5}}');
SELECT * FROM ml.monitor('mon', 'mon_same', '{"colour": 1}');
SELECT * FROM ml.monitor('mon', 'no_such_table');
CREATE ROLE mon_other;
GRANT ml_developer TO mon_other;
SET ROLE mon_other;
SELECT * FROM ml.monitor('mon', 'mon_same');
RESET ROLE;
DROP ROLE mon_other;

-- the deciles are percentile_cont's over the training values, whatever
-- their order and however many repeat: ascending, descending, in runs of
-- seven, and a zigzag of low and high values
CREATE TABLE mon_order AS
SELECT i::float8 AS asc_x, (6000 - i)::float8 AS desc_x, (i / 7)::float8 AS runs_x,
       (CASE WHEN i % 2 = 0 THEN i ELSE 6000 - i END)::float8 AS zigzag_x,
       (i % 13)::float8 AS y
  FROM generate_series(1, 6000) i;
SELECT count(*) FROM ml.train('mon_order', 'mon_order', 'y', 'linear', test_size => 0.2);
WITH p AS (
    SELECT percentile_cont(ARRAY[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]) WITHIN GROUP (ORDER BY asc_x) AS asc_x,
           percentile_cont(ARRAY[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]) WITHIN GROUP (ORDER BY desc_x) AS desc_x,
           percentile_cont(ARRAY[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]) WITHIN GROUP (ORDER BY runs_x) AS runs_x,
           percentile_cont(ARRAY[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]) WITHIN GROUP (ORDER BY zigzag_x) AS zigzag_x
      FROM mon_order)
SELECT b.feature,
       (SELECT bool_and(abs(e.v - w.v) <= 1e-9 * (1 + abs(w.v))) AND count(*) = 9
          FROM unnest(b.edges) WITH ORDINALITY e(v, k)
          JOIN unnest(CASE b.feature WHEN 'asc_x' THEN p.asc_x WHEN 'desc_x' THEN p.desc_x
                                     WHEN 'runs_x' THEN p.runs_x ELSE p.zigzag_x END)
               WITH ORDINALITY w(v, k) USING (k)) AS edges_are_percentiles
  FROM ml.baseline('mon_order') b, p ORDER BY b.feature;
