-- sql/features.sql: feature engineering inside the model: transforms,
-- encodings and interactions fitted on the training rows, replayed by
-- prediction, shown by ml.features and ml.transform.

-- model ids in this suite start at a fixed value, whatever ran before
SELECT setval('ml.models_id_seq', 60000, false);

CREATE TABLE shop2 AS
SELECT i,
       DATE '2023-01-01' + (i * 37 % 365) AS day,
       TIMESTAMPTZ '2023-01-01 00:00:00+00' + i * interval '7 hours' AS seen,
       (ARRAY['red', 'green', 'blue', 'red', 'red', 'green'])[1 + i % 6] AS colour,
       (ARRAY['S', 'M', 'L', 'XL'])[1 + i % 4] AS size,
       (i % 50)::float8 AS spend,
       ((i * 7) % 13)::float8 AS visits,
       10 + 2 * (i % 50) + 5 * ((i * 7) % 13) + (CASE WHEN i % 6 IN (0, 3, 4) THEN 20 ELSE 0 END)
           + (i % 4) * 3.0 AS y
  FROM generate_series(1, 400) i;
SET timezone = 'UTC';

-- date parts: each part is a numeric feature of its own
SELECT (metrics ->> 'r2')::float8 > -1 AS trained
  FROM ml.train('f_parts', 'SELECT day, seen, y FROM shop2', 'y',
                preprocess => '{"day": {"parts": ["year", "month", "day", "dow"]}, "seen": {"parts": ["hour", "epoch"]}}',
                test_size => 0);
SELECT position, feature, "column", transform FROM ml.features('f_parts') ORDER BY position;
-- replayed at prediction: the transformed row shows the parts
-- (epoch seconds: 86400 + 5.5 * 3600 = 106200, to float precision)
SELECT t.features[1:5] AS parts, round(t.features[6]::numeric, 3) AS epoch
  FROM ml.transform('f_parts', $$SELECT DATE '2024-02-29' AS day, TIMESTAMPTZ '1970-01-02 05:30:00+00' AS seen$$) t;
SELECT expect_error($$SELECT ml.predict('f_parts', ARRAY[1, 2]::float8[])$$);

-- clip, log1p and quantile bins, in that order; maxabs scaling
SELECT model_id AS tr FROM ml.train('f_transforms', 'SELECT spend, visits, i, y FROM shop2', 'y', 'ridge',
       preprocess => '{"spend": {"clip": [5, 40], "log1p": true, "scale": "none"},
                       "visits": {"bins": 4, "scale": "none"},
                       "i": {"scale": "maxabs"}}', test_size => 0) \gset
SELECT feature, transform, scale, scale_by FROM ml.features('f_transforms') ORDER BY position;
SELECT round(t.features[1]::numeric, 9) = round(ln(1 + 40)::numeric, 9) AS clipped_high,
       round(t2.features[1]::numeric, 9) = round(ln(1 + 5)::numeric, 9) AS clipped_low,
       t.features[2] AS bin_of_12, t2.features[2] AS bin_of_0,
       t.features[3] = 200 / 400.0 AS maxabs_scaled
  FROM ml.transform('f_transforms', 'SELECT 99.0::float8 AS spend, 12.0::float8 AS visits, 200 AS i') t,
       ml.transform('f_transforms', 'SELECT 1.0::float8 AS spend, 0.0::float8 AS visits, 200 AS i') t2;
-- the bin edges are the training quartiles: 4 equally filled bins
SELECT bin, count(*) FROM (SELECT t.features[2] AS bin FROM ml.transform('f_transforms', 'SELECT spend, visits, i FROM shop2') t) q
 GROUP BY bin ORDER BY bin;
SELECT expect_error($$SELECT * FROM ml.train('f_bad', 'SELECT spend - 10 AS spend, y FROM shop2', 'y', preprocess => '{"spend": {"log1p": true}}')$$);

-- ordinal encoding with an explicit order; unknown values and NULL are -1
SELECT model_id AS ord FROM ml.train('f_ordinal', 'SELECT size, y FROM shop2', 'y',
       preprocess => '{"size": {"encode": "ordinal", "order": ["S", "M", "L", "XL"]}}', test_size => 0) \gset
SELECT feature, encode, kind FROM ml.features('f_ordinal');
SELECT (SELECT features[1] FROM ml.transform('f_ordinal', $$SELECT 'L'::text AS size$$)) AS l,
       (SELECT features[1] FROM ml.transform('f_ordinal', $$SELECT 'XXL'::text AS size$$)) AS unknown,
       (SELECT features[1] FROM ml.transform('f_ordinal', $$SELECT NULL::text AS size$$)) AS null_value;

-- target encoding: the smoothed mean of the target per category, fitted
-- on the training rows only: (sum + m * prior) / (count + m), m = 10
SELECT model_id AS te FROM ml.train('f_target', 'SELECT colour, y FROM shop2', 'y',
       preprocess => '{"colour": {"encode": "target"}}', test_size => 0) \gset
SELECT abs(t.features[1] - ((s.total + 10 * p.prior) / (s.n + 10))) < 1e-9 AS red_ok
  FROM ml.transform('f_target', $$SELECT 'red'::text AS colour$$) t,
       (SELECT sum(y) AS total, count(*) AS n FROM shop2 WHERE colour = 'red') s,
       (SELECT avg(y) AS prior FROM shop2) p;
SELECT abs(t.features[1] - p.prior) < 1e-9 AS unseen_gets_prior
  FROM ml.transform('f_target', $$SELECT 'purple'::text AS colour$$) t, (SELECT avg(y) AS prior FROM shop2) p;
-- leakage: changing only the hold-out rows leaves every fitted statistic
-- as it was; ml.split names the rows ml.train holds out (same order, seed
-- and test_size; a regression target is not stratified)
SELECT ml.split('shop2', 'shop2_fit', 'shop2_hold', 0.25) ->> 'test' AS hold_rows;
CREATE TABLE shop2_hold_changed AS
SELECT s.i, s.day, s.seen,
       CASE WHEN h.i IS NULL THEN s.colour ELSE 'purple' END AS colour, s.size,
       CASE WHEN h.i IS NULL THEN s.spend ELSE s.spend * 100 END AS spend, s.visits,
       CASE WHEN h.i IS NULL THEN s.y ELSE s.y * 10 END AS y
  FROM shop2 s LEFT JOIN shop2_hold h ON h.i = s.i ORDER BY s.i;
CREATE TABLE shop2_fit_changed AS
SELECT s.i, s.day, s.seen, s.colour, s.size,
       CASE WHEN s.i = (SELECT min(i) FROM shop2_fit) THEN s.spend * 100 ELSE s.spend END AS spend,
       s.visits, s.y
  FROM shop2 s ORDER BY s.i;
SELECT model_id AS leak0 FROM ml.train('f_leak', 'SELECT colour, spend, y FROM shop2', 'y',
       preprocess => '{"colour": {"encode": "target"}, "spend": {"bins": 5, "scale": "standard"}}', deploy => 'never') \gset
SELECT model_id AS leak1 FROM ml.train('f_leak', 'SELECT colour, spend, y FROM shop2_hold_changed', 'y',
       preprocess => '{"colour": {"encode": "target"}, "spend": {"bins": 5, "scale": "standard"}}', deploy => 'never') \gset
SELECT model_id AS leak2 FROM ml.train('f_leak', 'SELECT colour, spend, y FROM shop2_fit_changed', 'y',
       preprocess => '{"colour": {"encode": "target"}, "spend": {"bins": 5, "scale": "standard"}}', deploy => 'never') \gset
SELECT (SELECT features FROM ml.models WHERE id = :leak0) = (SELECT features FROM ml.models WHERE id = :leak1) AS hold_out_changes_nothing,
       (SELECT features FROM ml.models WHERE id = :leak0) <> (SELECT features FROM ml.models WHERE id = :leak2) AS a_training_row_changes_it,
       (SELECT metrics FROM ml.models WHERE id = :leak0) <> (SELECT metrics FROM ml.models WHERE id = :leak1) AS metrics_see_the_hold_out;

-- hash encoding: values land in n buckets by a hash of the text
SELECT model_id AS hh FROM ml.train('f_hash', 'SELECT colour, y FROM shop2', 'y',
       preprocess => '{"colour": {"encode": "hash", "buckets": 8}}', test_size => 0) \gset
SELECT count(*) AS features, min(feature) AS first, max(feature) AS last FROM ml.features('f_hash');
SELECT (SELECT sum(x) FROM unnest(features) x) AS ones FROM ml.transform('f_hash', $$SELECT 'blue'::text AS colour$$);

-- interactions: the product of two columns' transformed values
SELECT model_id AS ix FROM ml.train('f_inter', 'SELECT spend, visits, y FROM shop2', 'y',
       preprocess => '{"interactions": [["spend", "visits"]], "*": {"scale": "none"}}', test_size => 0) \gset
SELECT feature, kind FROM ml.features('f_inter') ORDER BY position;
SELECT features FROM ml.transform('f_inter', 'SELECT 3.0::float8 AS spend, 4.0::float8 AS visits');
-- every input form applies the interaction (the float8[] and all-float8
-- record forms take a faster path)
SELECT ml.predict('f_inter', ARRAY[3, 4]::float8[]) = ml.predict('f_inter', '{"spend": 3, "visits": 4}'::jsonb) AS array_agrees,
       ml.predict('f_inter', q) = ml.predict('f_inter', '{"spend": 3, "visits": 4}'::jsonb) AS record_agrees
  FROM (SELECT 3.0::float8 AS spend, 4.0::float8 AS visits) q;

-- a live model with date parts does not block automatic deployment: the
-- challenger is scored against it on the same hold-out rows
SELECT deployed FROM ml.train('f_parts_deploy', 'SELECT day, spend, y FROM shop2', 'y',
                              preprocess => '{"day": {"parts": ["month"]}}');
SELECT deployed, model_id > 0 AS stored FROM ml.train('f_parts_deploy', 'SELECT day, spend, visits, y FROM shop2', 'y',
                              preprocess => '{"day": {"parts": ["month"]}}');
SELECT reason ~ 'beats live model' AS compared FROM ml.deployments d JOIN ml.projects p ON p.id = d.project_id
 WHERE p.name = 'f_parts_deploy' ORDER BY d.id DESC LIMIT 1;

-- for any row, ml.predict on the raw row equals the model applied to
-- ml.transform's output (a linear model: intercept + coefficients . features)
SELECT model_id AS lin FROM ml.train('f_all', 'SELECT day, colour, size, spend, visits, y FROM shop2', 'y', 'ridge',
       preprocess => '{"day": {"parts": ["month", "dow"]}, "colour": {"encode": "target"},
                       "size": {"encode": "ordinal", "order": ["S", "M", "L", "XL"]},
                       "spend": {"log1p": true}, "visits": {"bins": 3},
                       "interactions": [["spend", "visits"]]}') \gset
SELECT max(abs(ml.predict('f_all', s) - (info ->> 'intercept')::float8
               - (SELECT sum(t.features[k] * (info -> 'coefficients' ->> t.names[k])::float8)
                    FROM generate_subscripts(t.features, 1) k))) < 1e-9 AS predict_equals_transform,
       count(*)
  FROM (SELECT row_number() OVER () AS ordinal, * FROM shop2) s
  JOIN ml.transform('f_all', 'SELECT day, colour, size, spend, visits FROM shop2') t ON t.ordinal = s.ordinal,
       ml.model_info(:lin) info;
-- ml.explain shows a date part's value, and attributes the interaction
-- on its own row
SELECT feature, value FROM ml.explain('f_all', (SELECT s FROM shop2 s WHERE i = 1)) WHERE feature LIKE 'day.%' ORDER BY feature;
SELECT extract(month FROM day) AS month, extract(dow FROM day) AS dow FROM shop2 WHERE i = 1;
SELECT count(*) FILTER (WHERE feature = 'spend*visits') AS interaction_rows, count(*) AS rows
  FROM ml.explain('f_all', (SELECT s FROM shop2 s LIMIT 1));

-- "*" defaults apply where they fit; a column's own options win
SELECT model_id AS star FROM ml.train('f_star', 'SELECT colour, spend, visits, y FROM shop2', 'y', 'ridge',
       preprocess => '{"*": {"scale": "minmax", "encode": "ordinal"}, "visits": {"scale": "none"}}', test_size => 0) \gset
SELECT feature, scale, encode FROM ml.features('f_star') ORDER BY position;

-- seattle_weather: date parts of a date column, a categorical target
SELECT algorithm, (metrics ->> 'accuracy')::float8 > 0.7 AS accuracy_ok, metrics -> 'labels' AS labels
  FROM ml.train('f_weather', 'seattle_weather', 'weather', 'xgboost',
                preprocess => '{"date": {"parts": ["year", "month", "dow"]}}');
SELECT position, feature, transform FROM ml.features('f_weather') ORDER BY position;
SELECT ml.predict_label('f_weather', w) IS NOT NULL AS predicts, w.weather
  FROM seattle_weather w ORDER BY date LIMIT 1;

-- bad options
SELECT expect_error($$SELECT * FROM ml.train('f_bad', 'shop2', 'y', preprocess => '{"colour": {"log1p": true}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('f_bad', 'shop2', 'y', preprocess => '{"spend": {"encode": "target"}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('f_bad', 'shop2', 'y', preprocess => '{"spend": {"parts": ["year"]}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('f_bad', 'shop2', 'y', preprocess => '{"day": {"parts": ["week"]}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('f_bad', 'shop2', 'y', preprocess => '{"colour": {"encode": "embedding"}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('f_bad', 'shop2', 'y', preprocess => '{"colour": {"order": ["a"]}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('f_bad', 'shop2', 'y', preprocess => '{"colour": {"encode": "hash", "buckets": 0}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('f_bad', 'shop2', 'y', preprocess => '{"spend": {"clip": [10, 1]}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('f_bad', 'shop2', 'y', preprocess => '{"spend": {"bins": 1}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('f_bad', 'shop2', 'y', preprocess => '{"interactions": [["spend", "nope"]]}')$$);
SELECT expect_error($$SELECT * FROM ml.train('f_bad', 'shop2', 'y', preprocess => '{"interactions": [["spend", "colour"]]}')$$);
SELECT expect_error($$SELECT * FROM ml.train('f_bad', 'shop2', 'y', preprocess => '{"interactions": [["spend"]]}')$$);
SELECT expect_error($$SELECT * FROM ml.train('f_bad', 'SELECT colour, spend FROM shop2', NULL, preprocess => '{"colour": {"encode": "target"}}')$$);
SELECT expect_error($$SELECT * FROM ml.transform('nope', 'shop2')$$);
SELECT expect_error($$SELECT * FROM ml.transform('f_inter', 'SELECT 1 AS spend')$$);
