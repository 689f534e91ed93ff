-- sql/pipeline.sql: the feature pipeline fitted on the training rows,
-- stored in the model and replayed by prediction.

-- model ids in this suite start at a fixed value, whatever ran before
SELECT setval('ml.models_id_seq', 5000, false);

-- cars: text name, categorical origin, date year, NULL horsepower and
-- NULL targets (skipped with a NOTICE).
SELECT project, algorithm, (metrics ->> 'r2')::float8 > 0.7 AS r2_ok, (metrics ->> 'n')::int AS n
  FROM ml.train('mpg', 'cars', 'miles_per_gallon', preprocess => '{"name": {"exclude": true}}');

-- one row per model feature: numeric columns, one-hot origin, year as days
SELECT position, feature, "column", kind, category, impute, scale
  FROM ml.features('mpg') ORDER BY position;

-- imputation uses the training rows only: with test_size 0 the fill is
-- the mean of every non-NULL horsepower
SELECT model_id AS mpg_all FROM ml.train('mpg_all', 'cars', 'miles_per_gallon',
       preprocess => '{"name": {"exclude": true}}', test_size => 0) \gset
SELECT abs(f.fill - (SELECT avg(horsepower) FROM cars WHERE miles_per_gallon IS NOT NULL)) < 1e-9 AS mean_fill_ok
  FROM ml.features('mpg_all') f WHERE f.feature = 'horsepower';

-- dates and timestamps are days since 1970-01-01: y = days + 1 fits
-- exactly; jsonb gives dates as strings, parsed by the column's type
CREATE TABLE days AS
SELECT DATE '1970-01-01' + i AS d, TIMESTAMPTZ '1970-01-01 00:00:00+00' + i * interval '12 hours' AS t,
       i + 1.0 AS y
  FROM generate_series(0, 30) i;
SELECT round((metrics ->> 'r2')::numeric, 9) AS r2
  FROM ml.train('days', 'days', 'y', preprocess => '{"t": {"exclude": true}}', test_size => 0);
SELECT round(ml.predict('days', '{"d": "1970-01-11"}'::jsonb)::numeric, 6) AS day_10,
       round(ml.predict('days', ARRAY[20]::float8[])::numeric, 6) AS day_20,
       round(ml.predict('days', r)::numeric, 6) AS day_5
  FROM days r WHERE r.d = DATE '1970-01-06';
SET timezone = 'UTC';
SELECT round((metrics ->> 'r2')::numeric, 9) AS r2
  FROM ml.train('hours', 'SELECT t, y FROM days', 'y', test_size => 0);
SELECT round(ml.predict('hours', '{"t": "1970-01-06 00:00:00+00"}'::jsonb)::numeric, 6) AS half_days_10;
SELECT expect_error($$SELECT ml.predict('days', '{"d": "not a date"}'::jsonb)$$);

-- a NULL feature is imputed exactly as in training: predicting with
-- horsepower NULL equals predicting with horsepower = its fill value
SELECT ml.predict('mpg_all', jsonb_build_object('cylinders', 4, 'displacement', 120, 'horsepower', NULL,
                  'weight_in_lbs', 2500, 'acceleration', 15, 'year', '1975-01-01', 'origin', 'Japan'))
     = ml.predict('mpg_all', jsonb_build_object('cylinders', 4, 'displacement', 120,
                  'horsepower', (SELECT fill FROM ml.features('mpg_all') WHERE feature = 'horsepower'),
                  'weight_in_lbs', 2500, 'acceleration', 15, 'year', '1975-01-01', 'origin', 'Japan')) AS null_imputed;

-- median imputation and standard scaling statistics, checked against SQL
SELECT model_id AS med FROM ml.train('mpg_median', 'cars', 'miles_per_gallon', 'ridge',
       preprocess => '{"name": {"exclude": true}, "horsepower": {"impute": "median"}}', test_size => 0) \gset
SELECT abs(f.fill - (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY horsepower)
                       FROM cars WHERE miles_per_gallon IS NOT NULL)) < 1e-9 AS median_ok,
       f.scale
  FROM ml.features('mpg_median') f WHERE f.feature = 'horsepower';
SELECT abs(f.center - (SELECT avg(weight_in_lbs) FROM cars WHERE miles_per_gallon IS NOT NULL)) < 1e-9 AS center_ok,
       abs(f.scale_by - (SELECT stddev_pop(weight_in_lbs) FROM cars WHERE miles_per_gallon IS NOT NULL)) < 1e-9 AS scale_ok
  FROM ml.features('mpg_median') f WHERE f.feature = 'weight_in_lbs';

-- a top-level default applies to every column it fits, beside the
-- columns' own options: median for numbers (horsepower keeps it while
-- setting its own scale), while text columns keep their NULL category
SELECT model_id AS defaults FROM ml.train('mpg_defaults', 'cars', 'miles_per_gallon',
       preprocess => '{"impute": "median", "name": {"exclude": true}, "horsepower": {"scale": "minmax"}}',
       test_size => 0) \gset
SELECT feature, impute, scale,
       fill = (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY horsepower)
                 FROM cars WHERE miles_per_gallon IS NOT NULL) AS median_fill
  FROM ml.features('mpg_defaults') WHERE feature IN ('horsepower', 'origin=USA') ORDER BY feature;

-- minmax and robust scaling, and constant imputation
SELECT model_id AS mm FROM ml.train('mpg_minmax', 'cars', 'miles_per_gallon', 'ridge',
       preprocess => '{"name": {"exclude": true}, "scale": "minmax",
                       "horsepower": {"impute": "constant", "value": 100, "scale": "robust"}}',
       test_size => 0) \gset
SELECT feature, round(fill::numeric, 9) AS fill, scale, center, scale_by FROM ml.features('mpg_minmax')
 WHERE feature IN ('horsepower', 'cylinders') ORDER BY feature;
SELECT min(cylinders), max(cylinders) - min(cylinders) AS range FROM cars WHERE miles_per_gallon IS NOT NULL;
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY coalesce(horsepower, 100)) AS median,
       percentile_cont(0.75) WITHIN GROUP (ORDER BY coalesce(horsepower, 100))
     - percentile_cont(0.25) WITHIN GROUP (ORDER BY coalesce(horsepower, 100)) AS iqr
  FROM cars WHERE miles_per_gallon IS NOT NULL;

-- max_categories keeps the most frequent categories and adds <other>;
-- a NULL category gets a slot of its own
CREATE TABLE shop AS
SELECT i, (ARRAY['a', 'a', 'a', 'b', 'b', 'c', NULL])[1 + i % 7] AS kind, i * 1.5 + (i % 7) AS y
  FROM generate_series(1, 70) i;
SELECT (metrics ->> 'r2')::float8 > 0.9 AS fits FROM ml.train('shop', 'shop', 'y',
       preprocess => '{"kind": {"max_categories": 2}}', test_size => 0);
SELECT position, feature, category FROM ml.features('shop') ORDER BY position;
-- an unseen category counts as <other>; NULL uses its own slot
SELECT ml.predict('shop', '{"i": 10, "kind": "zzz"}'::jsonb) = ml.predict('shop', '{"i": 10, "kind": "c"}'::jsonb) AS unseen_is_other,
       ml.predict('shop', '{"i": 10, "kind": null}'::jsonb) <> ml.predict('shop', '{"i": 10, "kind": "c"}'::jsonb) AS null_has_slot;

-- array features: a float8[] of fixed length becomes one feature per element
CREATE TABLE vec AS
SELECT ARRAY[i::float8, (i % 5)::float8, 1.0] AS v, 2 * i + 3 * (i % 5) + 7.0 AS y
  FROM generate_series(1, 40) i;
SELECT round((metrics ->> 'r2')::numeric, 9) AS r2 FROM ml.train('vec', 'vec', 'y', test_size => 0);
SELECT feature FROM ml.features('vec') ORDER BY position;
SELECT round(ml.predict('vec', ARRAY[10, 0, 1]::float8[])::numeric, 6) AS by_array,
       round(ml.predict('vec', v)::numeric, 6) AS by_row,
       round(ml.predict('vec', jsonb_build_object('v', v))::numeric, 6) AS by_jsonb
  FROM vec WHERE v[1] = 10;

-- a wide array (more elements than fit the reader's stack buffer), and
-- NULL elements, which are missing values like any NULL
SELECT (metrics ->> 'r2')::float8 > 0.99 AS wide_fits
  FROM ml.train('wide', $$SELECT ARRAY(SELECT (g * i % 17)::float8 FROM generate_series(1, 100) g) AS x,
                                 (i % 17)::float8 AS y FROM generate_series(1, 300) i$$, 'y', test_size => 0);
SELECT count(*) AS wide_features FROM ml.features('wide');
SELECT (metrics ->> 'r2')::float8 > 0.9 AS holes_fit
  FROM ml.train('holes_arr', $$SELECT ARRAY[i::float8, CASE WHEN i % 5 = 0 THEN NULL ELSE (i % 7)::float8 END] AS v,
                                      2.0 * i AS y FROM generate_series(1, 100) i$$, 'y', test_size => 0);
SELECT fill = (SELECT avg(i % 7)::float8 FROM generate_series(1, 100) i WHERE i % 5 <> 0) AS element_mean_fill
  FROM ml.features('holes_arr') WHERE feature = 'v[2]';
SELECT ml.predict('holes_arr', ARRAY[10, NULL]::float8[]) = ml.predict('holes_arr', '{"v": [10, null]}'::jsonb) AS null_element_agrees;
SELECT expect_error($$SELECT * FROM ml.train('nan_arr', $q$SELECT ARRAY[i::float8, 'NaN'::float8] AS v, i::float8 AS y FROM generate_series(1, 10) i$q$, 'y')$$);

-- enums and varchar are categorical, smallint and numeric are numbers
CREATE TYPE size AS ENUM ('small', 'large');
CREATE TABLE typed AS
SELECT (CASE WHEN i % 2 = 0 THEN 'small' ELSE 'large' END)::size AS sz,
       (i % 3)::varchar AS code, i::smallint AS n, (i / 10.0)::numeric AS q,
       (i % 2) * 10 + i + 0.0 AS y
  FROM generate_series(1, 60) i;
SELECT round((metrics ->> 'r2')::numeric, 6) AS r2 FROM ml.train('typed', 'typed', 'y', test_size => 0);
SELECT feature, kind FROM ml.features('typed') ORDER BY position;

-- bad options
SELECT * FROM catalog_counts() \gset base_
SELECT expect_error($$SELECT * FROM ml.train('bad', 'cars', 'miles_per_gallon', preprocess => '{"horsepower": {"impute": "mode"}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('bad', 'cars', 'miles_per_gallon', preprocess => '{"horsepower": {"impute": "constant"}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('bad', 'cars', 'miles_per_gallon', preprocess => '{"horsepower": {"colour": "red"}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('bad', 'cars', 'miles_per_gallon', preprocess => '{"nope": {"exclude": true}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('bad', 'cars', 'miles_per_gallon', preprocess => '{"nope": {"scale": "none"}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('bad', 'cars', 'miles_per_gallon', preprocess => '{"origin": {"impute": "mean"}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('bad', 'cars', 'miles_per_gallon', preprocess => '{"horsepower": {"impute": "error"}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('bad', 'cars', 'miles_per_gallon', preprocess => '{"miles_per_gallon": {"exclude": true}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('bad', 'cars', 'miles_per_gallon', preprocess => '{"max_categories": 0}')$$);
SELECT expect_error($$SELECT * FROM ml.train('bad', 'cars', 'miles_per_gallon', preprocess => '[1, 2]')$$);
SELECT projects = :base_projects AND models = :base_models AND deployments = :base_deployments AS nothing_left
  FROM catalog_counts();
