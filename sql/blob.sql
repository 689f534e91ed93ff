-- sql/blob.sql: a tampered, truncated or foreign model blob is an ERROR
-- with SQLSTATE XX001 (data_corrupted), and the server stays up.

-- model ids in this suite start at a fixed value, whatever ran before
SELECT setval('ml.models_id_seq', 9000, false);

SELECT model_id AS m FROM ml.train('blob', 'iris', 'species') \gset
SELECT substring(model FROM 1 FOR 4) AS magic, length(model) > 100 AS has_payload
  FROM ml.models WHERE id = :m;
SELECT ml.predict_label('blob', '{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}'::jsonb);
CREATE TABLE saved AS SELECT model FROM ml.models WHERE id = :m;

-- flip one byte in the payload: the checksum catches it
UPDATE ml.models SET model = set_byte(model, length(model) - 20, get_byte(model, length(model) - 20) # 1) WHERE id = :m;
SELECT mask_ids(expect_error_detail($$SELECT ml.predict_label('blob', '{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}'::jsonb)$$));
SELECT mask_ids(expect_error_detail(format('SELECT ml.model_info(%s)', :m)));

-- truncate it
UPDATE ml.models SET model = substring((SELECT model FROM saved) FROM 1 FOR 60) WHERE id = :m;
SELECT mask_ids(expect_error_detail(format('SELECT ml.predict(%s, ARRAY[1, 2, 3, 4]::float8[])', :m)));
UPDATE ml.models SET model = substring((SELECT model FROM saved) FROM 1 FOR 3) WHERE id = :m;
SELECT mask_ids(expect_error_detail(format('SELECT ml.predict(%s, ARRAY[1, 2, 3, 4]::float8[])', :m)));

-- bytes that are not a pgmaker model at all
UPDATE ml.models SET model = '\x00010203040506070809'::bytea WHERE id = :m;
SELECT mask_ids(expect_error_detail(format('SELECT ml.predict(%s, ARRAY[1, 2, 3, 4]::float8[])', :m)));
UPDATE ml.models SET model = ''::bytea WHERE id = :m;
SELECT mask_ids(expect_error_detail(format('SELECT ml.predict(%s, ARRAY[1, 2, 3, 4]::float8[])', :m)));

-- a newer format version
UPDATE ml.models SET model = overlay((SELECT model FROM saved) PLACING '\x0009'::bytea FROM 5 FOR 2) WHERE id = :m;
SELECT mask_ids(expect_error_detail(format('SELECT ml.predict(%s, ARRAY[1, 2, 3, 4]::float8[])', :m)));

-- an unknown algorithm name in the header
UPDATE ml.models SET model = overlay((SELECT model FROM saved) PLACING convert_to('zzzzzzzz', 'UTF8') FROM 11 FOR 8) WHERE id = :m;
SELECT mask_ids(expect_error_detail(format('SELECT ml.predict(%s, ARRAY[1, 2, 3, 4]::float8[])', :m)));

-- extra bytes after a valid payload: the length check catches them
UPDATE ml.models SET model = (SELECT model FROM saved) || '\x00'::bytea WHERE id = :m;
SELECT mask_ids(expect_error_detail(format('SELECT ml.predict(%s, ARRAY[1, 2, 3, 4]::float8[])', :m)));

-- the server is still up, and the restored blob works again
SELECT 1 AS still_up;
UPDATE ml.models SET model = (SELECT model FROM saved) WHERE id = :m;
SELECT ml.predict_label(:m, ARRAY[5.1, 3.5, 1.4, 0.2]::float8[]);
DROP TABLE saved;
