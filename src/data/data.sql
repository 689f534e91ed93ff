-- src/data/data.sql
-- ml.clean and ml.split: cleaned copies and train/test splits of a source,
-- written into new tables.

CREATE FUNCTION ml.clean(source text, "into" text, options jsonb DEFAULT '{}')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'ml_clean'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.clean(text, text, jsonb) IS
'Writes a cleaned copy of a table, view or query into a new table (drop mostly-NULL columns, normalise and map text, impute, handle outliers, dedupe) and returns a report of what changed.';

CREATE FUNCTION ml.split(
    source     text,
    train_into text,
    test_into  text,
    test_size  float8 DEFAULT 0.25,
    stratify   text DEFAULT NULL,
    seed       int DEFAULT 42)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'ml_split'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.split(text, text, text, float8, text, int) IS
'Writes the rows of a table, view or query into a new train table and a new test table, split deterministically as ml.train splits them, and returns the counts.';
