-- sql/predict.sql: ml.predict, ml.predict_label, ml.predict_proba and
-- ml.labels in their record, float8[] and jsonb forms, by project and by
-- model id.

-- model ids in this suite start at a fixed value, whatever ran before
SELECT setval('ml.models_id_seq', 7000, false);

SELECT model_id AS dia FROM ml.train('p_dia', 'diabetes', 'progression') \gset
SELECT model_id AS iris FROM ml.train('p_iris', 'iris', 'species') \gset

-- the three input forms agree on every row
SELECT bool_and(ml.predict('p_dia', d) = ml.predict('p_dia', ARRAY[age, sex, bmi, bp, s1, s2, s3, s4, s5, s6]))
           AS array_agrees,
       bool_and(ml.predict('p_dia', d) = ml.predict('p_dia', to_jsonb(d))) AS jsonb_agrees,
       bool_and(ml.predict('p_dia', d) = ml.predict(:dia, d)) AS model_id_agrees,
       count(*)
  FROM diabetes d;
SELECT bool_and(ml.predict_label('p_iris', i) = ml.predict_label('p_iris', ARRAY[sepal_length, sepal_width, petal_length, petal_width]))
           AS label_array_agrees,
       bool_and(ml.predict_proba('p_iris', i) = ml.predict_proba(:iris, to_jsonb(i))) AS proba_jsonb_agrees,
       bool_and(ml.predict('p_iris', i) = array_position(ml.labels('p_iris'), ml.predict_label('p_iris', i)) - 1)
           AS index_agrees
  FROM iris i;
SELECT ml.labels('p_iris'), ml.labels(:iris), ml.labels('p_dia') IS NULL AS regression_has_no_labels;

-- rows read at fixed offsets and rows that need deforming agree: NULLs,
-- a dropped column, and a text column ahead of the features
CREATE TABLE holes AS SELECT 1 AS dropme, 'x'::text AS note, d.* FROM diabetes d;
ALTER TABLE holes DROP COLUMN dropme;
UPDATE holes SET bmi = NULL WHERE age > 60;
CREATE TABLE plain AS SELECT age, sex, bmi, bp, s1, s2, s3, s4, s5, s6 FROM holes;
SELECT bool_and(ml.predict('p_dia', h) = ml.predict('p_dia', ARRAY[age, sex, bmi, bp, s1, s2, s3, s4, s5, s6]))
           AS deformed_agrees,
       count(*) FILTER (WHERE bmi IS NULL) > 0 AS has_nulls
  FROM holes h;
SELECT bool_and(ml.predict('p_dia', p) = ml.predict('p_dia', ARRAY[age, sex, bmi, bp, s1, s2, s3, s4, s5, s6]))
           AS fixed_agrees
  FROM plain p;

-- extra columns are ignored; columns are matched by name, not position
SELECT ml.predict('p_dia', q) = ml.predict('p_dia', d) AS reordered_ok
  FROM diabetes d,
       LATERAL (SELECT d.s6, d.s5, d.s4, d.s3, d.s2, d.s1, d.bp, d.bmi, d.sex, d.age, 'extra'::text AS note) q
 LIMIT 1;
-- a NULL feature is imputed (the mean of the training rows)
SELECT round(ml.predict('p_dia', ARRAY[NULL, 1, 25, 90, 190, 110, 50, 4, 4.6, 90]::float8[])::numeric, 6)
     = round(ml.predict('p_dia', ARRAY[(SELECT fill FROM ml.features('p_dia') WHERE feature = 'age'),
                                      1, 25, 90, 190, 110, 50, 4, 4.6, 90]::float8[])::numeric, 6) AS null_is_imputed;
-- integer and numeric inputs for float8 features are converted
SELECT ml.predict('p_dia', '{"age": 50, "sex": 1, "bmi": 25, "bp": 90, "s1": 190, "s2": 110, "s3": 50, "s4": 4, "s5": 4.6, "s6": 90}'::jsonb)
     = ml.predict('p_dia', q) AS jsonb_numbers_ok
  FROM (SELECT 50::int AS age, 1::smallint AS sex, 25::numeric AS bmi, 90::bigint AS bp, 190::real AS s1,
               110 AS s2, 50 AS s3, 4 AS s4, 4.6 AS s5, 90 AS s6) q;

-- a NULL input row or project gives NULL (the functions are strict)
SELECT ml.predict('p_dia', NULL::float8[]) IS NULL AS null_row, ml.predict(NULL::text, ARRAY[1.0]) IS NULL AS null_project;

-- the functions are STABLE and PARALLEL SAFE
SELECT proname, provolatile, proparallel, count(*)
  FROM pg_proc WHERE pronamespace = 'ml'::regnamespace
   AND proname IN ('predict', 'predict_label', 'predict_proba', 'labels')
 GROUP BY 1, 2, 3 ORDER BY 1;

-- a parallel plan gives the same result as a serial one
CREATE TABLE many AS SELECT d.* FROM diabetes d, generate_series(1, 50);
ANALYZE many;
SET max_parallel_workers_per_gather = 0;
SELECT round(sum(ml.predict('p_dia', m))::numeric, 6) AS serial_sum FROM many m \gset
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT sum(ml.predict('p_dia', m)) FROM many m;
SELECT round(sum(ml.predict('p_dia', m))::numeric, 6) = :serial_sum AS parallel_agrees FROM many m;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;

-- a PL/pgSQL loop sees a deployment, and a drop, made earlier in its own
-- transaction: the call site looks its model up again after the change
SELECT model_id AS loop_a FROM ml.train('p_loop', 'diabetes', 'progression') \gset
SELECT model_id AS loop_b FROM ml.train('p_loop', 'diabetes', 'progression', 'ridge',
       hyperparams => '{"alpha": 1000}', deploy => 'never') \gset
CREATE FUNCTION loop_predictions() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r text := '';
    v float8;
BEGIN
    FOR i IN 1..3 LOOP
        v := ml.predict('p_loop', ARRAY[50, 1, 25, 90, 190, 110, 50, 4, 4.6, 90]::float8[]);
        r := r || round(v::numeric, 3) || ' ';
        IF i = 1 THEN
            PERFORM ml.deploy('p_loop', (SELECT max(m.id) FROM ml.models m JOIN ml.projects p ON p.id = m.project_id WHERE p.name = 'p_loop'));
        ELSIF i = 2 THEN
            PERFORM ml.drop_project('p_loop');
        END IF;
    END LOOP;
    RETURN r;
EXCEPTION WHEN undefined_object THEN
    RETURN r || '| ' || SQLERRM;
END
$$;
SELECT loop_predictions() AS loop_result \gset
SELECT :'loop_result' ~ '^([0-9.]+) ([0-9.]+) \| project "p_loop" does not exist$' AS switched_then_failed,
       split_part(:'loop_result', ' ', 1) <> split_part(:'loop_result', ' ', 2) AS values_differ;
DROP FUNCTION loop_predictions();

-- errors
SELECT expect_error($$SELECT ml.predict('nope', ARRAY[1.0]::float8[])$$);
SELECT expect_error($$SELECT ml.predict(999999, ARRAY[1.0]::float8[])$$);
SELECT expect_error($$SELECT ml.predict('p_dia', ARRAY[1, 2, 3]::float8[])$$);
SELECT expect_error($$SELECT ml.predict('p_dia', ARRAY[[1, 2], [3, 4]]::float8[])$$);
SELECT expect_error($$SELECT ml.predict('p_dia', ARRAY[1, 2, 3, 4, 5, 6, 7, 8, 9, 'NaN']::float8[])$$);
SELECT expect_error($$SELECT ml.predict('p_dia', ARRAY[1, 2, 3, 4, 5, 6, 7, 8, 9, 'Infinity']::float8[])$$);
SELECT expect_error($$SELECT ml.predict('p_dia', i) FROM iris i LIMIT 1$$);
SELECT expect_error($$SELECT ml.predict('p_dia', '{"age": 1}'::jsonb)$$);
SELECT expect_error($$SELECT ml.predict('p_dia', '[1, 2]'::jsonb)$$);
SELECT expect_error($$SELECT ml.predict('p_dia', '{"age": "old", "sex": 1, "bmi": 25, "bp": 90, "s1": 190, "s2": 110, "s3": 50, "s4": 4, "s5": 4.6, "s6": 90}'::jsonb)$$);
SELECT expect_error($$SELECT ml.predict('p_dia', '{"age": [1], "sex": 1, "bmi": 25, "bp": 90, "s1": 190, "s2": 110, "s3": 50, "s4": 4, "s5": 4.6, "s6": 90}'::jsonb)$$);
SELECT expect_error($$SELECT ml.predict('p_dia', q) FROM (SELECT 'x'::text AS age, 1 sex, 1 bmi, 1 bp, 1 s1, 1 s2, 1 s3, 1 s4, 1 s5, 1 s6) q$$);
SELECT mask_ids(expect_error($$SELECT ml.predict_label('p_dia', d) FROM diabetes d LIMIT 1$$));
SELECT mask_ids(expect_error($$SELECT ml.predict_proba('p_dia', d) FROM diabetes d LIMIT 1$$));
SELECT model_id AS cars FROM ml.train('p_cars', 'SELECT cylinders, origin, miles_per_gallon FROM cars', 'miles_per_gallon') \gset
SELECT expect_error($$SELECT ml.predict('p_cars', ARRAY[4, 1]::float8[])$$);
SELECT expect_error($$SELECT ml.predict('p_cars', '{"cylinders": 4, "origin": ["USA"]}'::jsonb)$$);
SELECT ml.predict('p_cars', '{"cylinders": 4, "origin": "USA"}'::jsonb) > 0 AS categorical_jsonb_ok,
       ml.predict('p_cars', '{"cylinders": 4, "origin": "Mars"}'::jsonb) IS NOT NULL AS unseen_category_ok;
SELECT model_id AS vec2 FROM ml.train('p_vec', 'SELECT ARRAY[age, bmi] AS v, progression FROM diabetes', 'progression') \gset
SELECT expect_error($$SELECT ml.predict('p_vec', '{"v": 3}'::jsonb)$$);
SELECT expect_error($$SELECT ml.predict('p_vec', '{"v": [1, 2, 3]}'::jsonb)$$);
SELECT expect_error($$SELECT ml.predict('p_vec', q) FROM (SELECT ARRAY[1.0, 2.0, 3.0]::float8[] AS v) q$$);
SELECT expect_error($$SELECT ml.predict('p_vec', q) FROM (SELECT 1.0::float8 AS v) q$$);
SELECT expect_error($$SELECT * FROM ml.features('nope')$$);
SELECT model_id AS undeployed FROM ml.train('p_undeployed', 'diabetes', 'progression', deploy => 'never') \gset
SELECT expect_error($$SELECT * FROM ml.features('p_undeployed')$$);
SELECT expect_error($$SELECT ml.labels('p_undeployed')$$);
SELECT expect_error($$SELECT ml.predict('', ARRAY[1.0]::float8[])$$);
SELECT expect_error(format('SELECT ml.predict(%L, ARRAY[1.0]::float8[])', repeat('x', 64)));
