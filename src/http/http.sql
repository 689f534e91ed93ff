-- src/http/http.sql
-- Data from URLs (ml.load) and the credentials that sign S3 requests.

CREATE FUNCTION ml.load(url text, "into" text, format text DEFAULT 'auto',
                        options jsonb DEFAULT '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'ml_load'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.load(text, text, text, jsonb) IS
'Loads CSV or JSON lines (gzip or not) from an http(s)://, s3:// or, for superusers, file:// URL into a table, created with inferred types when missing, and returns the number of rows loaded.';

-- A role's secrets, readable only by the members of the role that stored
-- them (row-level security) and by superusers.
CREATE TABLE ml.credentials (
    owner      regrole NOT NULL DEFAULT current_user::regrole,
    name       text NOT NULL CHECK (name <> ''),
    secret     jsonb NOT NULL CHECK (jsonb_typeof(secret) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, name)
);
COMMENT ON TABLE ml.credentials IS 'Named secrets (S3 keys, webhook tokens), one namespace per role; each row is visible only to members of its owner role and to superusers.';
ALTER TABLE ml.credentials ENABLE ROW LEVEL SECURITY;
CREATE POLICY credentials_of_owner ON ml.credentials
    USING (pg_catalog.pg_has_role(owner, 'USAGE'))
    WITH CHECK (owner = current_user::regrole);
GRANT SELECT, INSERT, UPDATE, DELETE ON ml.credentials TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('ml.credentials', '');

CREATE FUNCTION ml.set_credentials(name text, secret jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF name IS NULL OR name = '' THEN
        RAISE EXCEPTION 'credentials name must not be NULL or empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF secret IS NULL OR jsonb_typeof(secret) <> 'object' THEN
        RAISE EXCEPTION 'credentials secret must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For S3: {"access_key_id": "...", "secret_access_key": "..."}, optionally with "session_token" and "region".';
    END IF;
    INSERT INTO ml.credentials AS c (owner, name, secret)
    VALUES (current_user::regrole, set_credentials.name, set_credentials.secret)
    ON CONFLICT ON CONSTRAINT credentials_pkey
    DO UPDATE SET secret = EXCLUDED.secret, updated_at = now();
END
$$;
COMMENT ON FUNCTION ml.set_credentials(text, jsonb) IS
'Stores (or replaces) a named secret of the current role, e.g. S3 keys for ml.load''s "credentials" option.';

CREATE FUNCTION ml.drop_credentials(name text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM ml.credentials c
     WHERE c.owner = current_user::regrole AND c.name = drop_credentials.name;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n > 0;
END
$$;
COMMENT ON FUNCTION ml.drop_credentials(text) IS
'Removes a named secret of the current role; returns whether it existed.';
