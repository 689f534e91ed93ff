-- sql/setup.sql: loads the sample data sets (test/data) and defines the
-- helper the other suites use to assert an error's SQLSTATE and message.
\set QUIET on
\i test/data/load.sql
\set QUIET off

-- expect_error runs a statement and returns "SQLSTATE: message" of the
-- error it raises, or 'no error'.  The subtransaction rolls back whatever
-- the statement wrote, as the failed statement itself would.
CREATE FUNCTION expect_error(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- expect_error_detail also returns the error's detail.
CREATE FUNCTION expect_error_detail(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || SQLERRM || ' | ' || coalesce(detail, '');
END
$$;

-- mask_ids hides model ids in messages, which depend on the suites run before.
CREATE FUNCTION mask_ids(msg text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT regexp_replace(msg, 'model [0-9]+', 'model <id>', 'g') $$;

-- catalog_counts shows how many rows each catalog table holds.
CREATE FUNCTION catalog_counts(OUT projects bigint, OUT models bigint, OUT deployments bigint)
LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM ml.projects),
           (SELECT count(*) FROM ml.models),
           (SELECT count(*) FROM ml.deployments)
$$;

SELECT extname, extversion FROM pg_extension WHERE extname = 'pgmaker';
