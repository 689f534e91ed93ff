-- sql/clean.sql: ml.clean (a cleaned copy of a source in a new table, with
-- a report of what changed) and ml.split (train and test tables split as
-- ml.train splits).

-- a deliberately dirty table: padded and mixed-case categories, a
-- misspelling, NULLs and NaN, an outlier in each numeric column, rows that
-- are duplicates once cleaned, and a mostly-NULL column
CREATE TABLE messy (
    id      int,
    city    text,
    plan    varchar(10),
    price   float8,
    qty     int,
    comment text
);
INSERT INTO messy VALUES
    (1,  '  New York ', 'Basic',   10.0,    1, NULL),
    (2,  'new   york',  'basic ',  12.0,    2, NULL),
    (3,  'NYC',         'PRO',     NULL,    3, 'call back'),
    (4,  'boston',      'pro',     'NaN',   4, NULL),
    (5,  'Boston',      'Pro',     11.0,  100, NULL),
    (6,  NULL,          'basic',   13.0,    5, NULL),
    (7,  'Bostn',       NULL,    1000.0,    6, NULL),
    (8,  'boston',      'pro',     11.0,    4, NULL),
    (9,  'Chicago',     'basic',   12.0, NULL, NULL),
    (10, 'chicago ',    ' Basic',  12.0,    7, NULL);

-- Every step at once.  comment is 90% NULL and goes.  Text is normalised
-- everywhere, then city's misspellings are mapped; missing values take
-- the mode ("*"), price's median (12 of the finite prices; the NaN is
-- missing too) and qty's mean (132 / 9, rounded to 15 in the integer
-- column).  price's Tukey fences are 11 - 1.5 * 1.25 and 12.25 + 1.5 *
-- 1.25: 1000 is clipped to 14.125.  qty's z-score bounds, mean +- 2
-- population standard deviations, narrow to the integers [-45, 75]: 100
-- becomes NULL.  Dedupe then keeps the lowest id of each (city, plan,
-- price): 8 repeats 5 and 10 repeats 9.  Counters count the rows written.
SELECT jsonb_pretty(ml.clean('messy', 'messy_clean', '{
    "drop_columns_null_fraction": 0.5,
    "*": {"trim": true, "lower": true, "collapse_spaces": true, "impute": "mode"},
    "columns": {
        "city":  {"map": {"nyc": "new york", "bostn": "boston"}},
        "price": {"impute": "median", "outliers": {"method": "iqr", "k": 1.5}},
        "qty":   {"impute": "mean", "outliers": {"method": "zscore", "z": 2, "action": "null"}}
    },
    "dedupe": {"keys": ["city", "plan", "price"], "order_by": "id", "keep": "first"}
}')) AS report;
TABLE messy_clean;

-- the new table keeps the source's column types, in the source's order
SELECT attname, format_type(atttypid, atttypmod) AS type
  FROM pg_attribute WHERE attrelid = 'messy_clean'::regclass AND attnum > 0 ORDER BY attnum;

-- the source is unchanged
SELECT count(*) AS rows, count(*) FILTER (WHERE city = 'NYC') AS nyc, max(price) AS max_price FROM messy;

-- Dropping rows: NULL or NaN prices (drop_row), then prices outside the
-- 5% and 95% quantiles (10.35 and about 654.55: 10 and 1000), then whole
-- rows that are duplicates once plan is normalised.  A query works as a
-- source.
SELECT ml.clean('SELECT plan, price FROM messy', 'messy_rows', '{
    "*": {"trim": true, "lower": true},
    "columns": {"price": {"impute": "drop_row",
                          "outliers": {"method": "quantile", "low": 0.05, "high": 0.95, "action": "drop"}}},
    "dedupe": true
}') AS report;
TABLE messy_rows;

-- dedupe by key, keeping the row with the largest order_by value (a NULL
-- one never wins); a map to null turns a placeholder into a missing
-- value, here imputed by a constant
SELECT ml.clean('messy', 'messy_latest', '{
    "columns": {"plan": {"trim": true, "lower": true, "map": {"pro": null},
                         "impute": "constant", "value": "unknown"}},
    "dedupe": {"keys": ["plan"], "order_by": "qty", "keep": "last"}
}') -> 'rows_out' AS rows_out;
SELECT id, plan, qty FROM messy_latest ORDER BY id;

-- an existing table is an error, unless replace is true; a failure after
-- the replaced table was dropped leaves it as it was
SELECT expect_error($$SELECT ml.clean('messy', 'messy_rows')$$);
SELECT expect_error($$SELECT ml.clean('messy', 'messy_rows',
       '{"replace": true, "columns": {"plan": {"map": {"Basic": "much too long for ten"}}}}')$$);
SELECT count(*) AS still_three FROM messy_rows;
SELECT ml.clean('messy', 'messy_rows', '{"replace": true}') -> 'rows_out' AS replaced;
SELECT count(*) AS now_ten FROM messy_rows;

-- into is never the source, nor a table the source reads, even with replace
SELECT expect_error($$SELECT ml.clean('messy', 'messy', '{"replace": true}')$$);
SELECT expect_error($$SELECT ml.clean('SELECT * FROM messy WHERE id > 1', 'public.messy', '{"replace": true}')$$);

-- bad options: unknown keys, options that do not fit the column's type,
-- missing columns
SELECT expect_error($$SELECT ml.clean('messy', 'x', '{"trim": true}')$$);
SELECT expect_error($$SELECT ml.clean('messy', 'x', '{"columns": {"city": {"strip": true}}}')$$);
SELECT expect_error($$SELECT ml.clean('messy', 'x', '{"*": {"impute": "average"}}')$$);
SELECT expect_error($$SELECT ml.clean('messy', 'x', '{"columns": {"price": {"trim": true}}}')$$);
SELECT expect_error($$SELECT ml.clean('messy', 'x', '{"columns": {"city": {"impute": "median"}}}')$$);
SELECT expect_error($$SELECT ml.clean('messy', 'x', '{"columns": {"city": {"outliers": {"method": "iqr"}}}}')$$);
SELECT expect_error($$SELECT ml.clean('messy', 'x', '{"columns": {"qty": {"impute": "constant", "value": "many"}}}')$$);
SELECT expect_error($$SELECT ml.clean('messy', 'x', '{"columns": {"qty": {"impute": "constant"}}}')$$);
SELECT expect_error($$SELECT ml.clean('messy', 'x', '{"columns": {"qty": {"outliers": {"method": "iqr", "z": 3}}}}')$$);
SELECT expect_error($$SELECT ml.clean('messy', 'x', '{"columns": {"qty": {"outliers": {"method": "quantile", "low": 0.9, "high": 0.1}}}}')$$);
SELECT expect_error($$SELECT ml.clean('messy', 'x', '{"columns": {"town": {"trim": true}}}')$$);
SELECT expect_error($$SELECT ml.clean('messy', 'x', '{"dedupe": {"keys": ["town"]}}')$$);
SELECT expect_error($$SELECT ml.clean('messy', 'x', '{"dedupe": {"keys": ["id"], "keep": "middle"}}')$$);
SELECT expect_error($$SELECT ml.clean('SELECT city, comment FROM messy', 'x', '{"drop_columns_null_fraction": 0}')$$);
SELECT expect_error($$SELECT ml.clean('messy', 'x', '{"drop_columns_null_fraction": 1.5}')$$);
SELECT expect_error($$SELECT ml.clean('messy', 'x', '[]')$$);
SELECT expect_error($$SELECT ml.clean('no_such_table', 'x')$$);
SELECT expect_error($$SELECT ml.clean('WITH d AS (DELETE FROM messy RETURNING *) SELECT * FROM d', 'x')$$);
SELECT expect_error($$SELECT ml.clean(NULL, 'x')$$);
SELECT to_regclass('x') AS nothing_left;

-- the source runs with the caller's rights and the new table is the caller's
CREATE ROLE regress_ml_cleaner;
GRANT ml_developer TO regress_ml_cleaner;
GRANT CREATE ON SCHEMA public TO regress_ml_cleaner;
GRANT SELECT ON messy TO regress_ml_cleaner;
SET ROLE regress_ml_cleaner;
SELECT ml.clean('messy', 'cleaner_copy') -> 'rows_out' AS rows_out;
SELECT expect_error($$SELECT ml.clean('iris', 'cleaner_iris')$$);
RESET ROLE;
SELECT tableowner FROM pg_tables WHERE tablename = 'cleaner_copy';
DROP TABLE cleaner_copy;
REVOKE SELECT ON messy FROM regress_ml_cleaner;
REVOKE CREATE ON SCHEMA public FROM regress_ml_cleaner;
DROP ROLE regress_ml_cleaner;

-- ml.split on iris stratified by species: round(0.25 * 50) = 13 test rows
-- a class
SELECT ml.split('iris', 'split_train', 'split_test', 0.25, 'species') AS report;
SELECT species, count(*) FROM split_test GROUP BY species ORDER BY species;
SELECT count(*) AS train_rows FROM split_train;
SELECT (SELECT count(*) FROM (TABLE split_train UNION ALL TABLE split_test) u) AS together,
       (SELECT count(*) FROM (TABLE iris EXCEPT ALL (TABLE split_train UNION ALL TABLE split_test)) d) AS missing;

-- deterministic: the same seed gives the same rows, another seed others
SELECT ml.split('iris', 'split_train_again', 'split_test_again', 0.25, 'species') -> 'test' AS test_rows;
SELECT (SELECT count(*) FROM (TABLE split_test EXCEPT ALL TABLE split_test_again) d) +
       (SELECT count(*) FROM (TABLE split_test_again EXCEPT ALL TABLE split_test) d) AS differences;
SELECT ml.split('iris', 'split_train_7', 'split_test_7', 0.25, 'species', 7) -> 'test' AS test_rows;
SELECT count(*) > 0 AS other_rows FROM (TABLE split_test EXCEPT ALL TABLE split_test_7) d;

-- the test rows are the rows ml.train holds out: the hold-out metrics
-- count them; a model trained on the train table alone (test_size 0) is
-- the same model; and the full model's accuracy on the test table is its
-- hold-out accuracy
SELECT (metrics ->> 'n')::int = (SELECT count(*) FROM split_test) AS same_count,
       (metrics ->> 'accuracy')::float8 AS holdout_accuracy
  FROM ml.train('split_full', 'iris', 'species', 'logistic');
SELECT project FROM ml.train('split_part', 'split_train', 'species', 'logistic', test_size => 0);
SELECT ml.model_info(f.model_id) -> 'coefficients' = ml.model_info(p.model_id) -> 'coefficients' AS same_coefficients,
       ml.model_info(f.model_id) -> 'intercept' = ml.model_info(p.model_id) -> 'intercept' AS same_intercepts
  FROM (SELECT max(id) AS model_id FROM ml.models WHERE project_id = (SELECT id FROM ml.projects WHERE name = 'split_full')) f,
       (SELECT max(id) AS model_id FROM ml.models WHERE project_id = (SELECT id FROM ml.projects WHERE name = 'split_part')) p;
SELECT avg((ml.predict_label('split_full', t) = t.species)::int)::float8 AS test_table_accuracy FROM split_test t;

-- without stratify, one stratum, as ml.train splits a regression target
SELECT ml.split('iris', 'split_train_r', 'split_test_r') AS report;
SELECT (metrics ->> 'n')::int AS holdout_rows
  FROM ml.train('split_reg', 'iris', 'petal_width', 'linear', preprocess => '{"species": {"exclude": true}}');
SELECT project FROM ml.train('split_reg_part', 'split_train_r', 'petal_width', 'linear',
                             preprocess => '{"species": {"exclude": true}}', test_size => 0);
SELECT ml.model_info(f.model_id) -> 'coefficients' = ml.model_info(p.model_id) -> 'coefficients' AS same_coefficients
  FROM (SELECT max(id) AS model_id FROM ml.models WHERE project_id = (SELECT id FROM ml.projects WHERE name = 'split_reg')) f,
       (SELECT max(id) AS model_id FROM ml.models WHERE project_id = (SELECT id FROM ml.projects WHERE name = 'split_reg_part')) p;

-- NULL is a class of its own, numbered after the others, so the other
-- rows split as ml.train splits them (it skips the NULL target): 3 of 5
-- basic and 2 of 4 pro rows are held out by both
SELECT ml.split('SELECT id, lower(btrim(plan)) AS plan FROM messy', 'messy_train', 'messy_test', 0.5, 'plan') AS report;
SELECT id, plan FROM messy_test ORDER BY id;
SELECT (metrics ->> 'n')::int AS holdout_rows
  FROM ml.train('split_nulls', 'SELECT id, lower(btrim(plan)) AS plan FROM messy', 'plan', test_size => 0.5);

-- bad input
SELECT expect_error($$SELECT ml.split('iris', 'split_train', 'x_test')$$);
SELECT expect_error($$SELECT ml.split('iris', 'x_same', 'public.x_same')$$);
SELECT expect_error($$SELECT ml.split('iris', 'x_train', 'x_test', 1)$$);
SELECT expect_error($$SELECT ml.split('iris', 'x_train', 'x_test', -0.1)$$);
SELECT expect_error($$SELECT ml.split('iris', 'x_train', 'x_test', 0.25, 'kind')$$);
SELECT expect_error($$SELECT ml.split('iris', 'x_train', 'x_test', 0.25, NULL, -1)$$);
SELECT to_regclass('x_train') AS nothing_left;

SELECT ml.drop_project(p) FROM unnest(ARRAY['split_full', 'split_part', 'split_reg', 'split_reg_part', 'split_nulls']) p;
DROP TABLE messy_clean, messy_rows, messy_latest, messy_train, messy_test,
    split_train, split_test, split_train_again, split_test_again, split_train_7, split_test_7,
    split_train_r, split_test_r;
